/* interrupt.h -- Ctrl-C (SIGINT), SIGTERM and SIGHUP as a request to stop cleanly: the handler
 * only sets a flag that a long-running tool polls between pieces, so that it can abandon its
 * output (nothing left behind) before exiting. A second signal ends the process at once. */
#ifndef CKPT_TOOLS_INTERRUPT_H
#define CKPT_TOOLS_INTERRUPT_H

/* Installs the handlers. */
void interrupt_install(void);
/* The signal that arrived since the install, 0 when none. */
int interrupt_signal(void);

#endif
