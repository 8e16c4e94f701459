/* preempt.c -- preemption: SIGTERM and SIGUSR1 only set a flag (async-signal-safe), which the
 * job polls; the collective poll makes every rank see a signal that any one rank received, so
 * all of them save together and exit with CKPT_EXIT_REQUEUE. */
#include "ckpt.h"
#include "error.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t preempt_flag = 0;

/* The handler does nothing but store to a volatile sig_atomic_t: async-signal-safe, and errno
 * is untouched. */
static void on_preempt_signal(int sig)
{
    (void)sig;
    preempt_flag = 1;
}

int ckpt_preempt_install(void)
{
    ckpt_error_clear();
    static const int sigs[] = {SIGTERM, SIGUSR1};
    static const char *const names[] = {"SIGTERM", "SIGUSR1"};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_preempt_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 2; i++)
        sigaddset(&sa.sa_mask, sigs[i]); /* one handler runs at a time */
    sa.sa_flags = SA_RESTART;             /* system calls interrupted by the signal resume */
    for (int i = 0; i < 2; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            return ckpt_error(CKPT_EUNSUPPORTED, "cannot install the preemption handler for %s: %s", names[i],
                              strerror(errno));
    return CKPT_OK;
}

int ckpt_preempt_requested(MPI_Comm comm, int *requested)
{
    ckpt_error_clear();
    /* bit 0: a signal arrived here; bit 1: this rank passed NULL (every rank still takes part in
     * the reduction, so a bad argument on one rank cannot leave the others waiting) */
    int mine = (preempt_flag ? 1 : 0) | (requested ? 0 : 2), all = mine;
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    if (init)
        MPI_Finalized(&fin);
    if (init && !fin && comm != MPI_COMM_NULL) {
        int rc = MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_BOR, comm);
        if (rc != MPI_SUCCESS) {
            char s[MPI_MAX_ERROR_STRING];
            int n = 0;
            MPI_Error_string(rc, s, &n);
            return ckpt_error(CKPT_EMPI, "ckpt_preempt_requested: MPI_Allreduce of the preemption flags failed: %.*s",
                              n, s);
        }
    }
    if (all & 2)
        return ckpt_error(CKPT_EINVAL, "ckpt_preempt_requested: requested is NULL%s",
                          (mine & 2) ? "" : " on another rank");
    *requested = all & 1;
    return CKPT_OK;
}

void ckpt_preempt_clear(void)
{
    preempt_flag = 0;
}
