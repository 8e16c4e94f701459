/* progress.h -- a one-line progress bar on stderr, drawn only when stderr is a terminal (and at
 * most ten times a second), so that redirected output and test logs never see it. */
#ifndef CKPT_TOOLS_PROGRESS_H
#define CKPT_TOOLS_PROGRESS_H

#include <stdint.h>

typedef struct progress {
    int enabled;
    int drawn;
    int64_t total, done;
    double start, last;
    char label[64];
} progress;

/* Starts a bar for `total` units (bytes) labelled `label`; disabled unless stderr is a TTY. */
void progress_begin(progress *p, const char *label, int64_t total);
/* Adds `n` units done; `what` (may be NULL) names the current item. */
void progress_add(progress *p, int64_t n, const char *what);
/* Erases the bar for a line of other output; the next update draws it again. */
void progress_clear(progress *p);
/* Erases the bar for good. */
void progress_end(progress *p);

#endif
