/* rootlock.h -- one job per checkpoint root: the lock a manager's rank 0 holds on
 * ROOT/ckpt-manager.lock for the manager's lifetime.
 *
 * The lock is a whole-file write lock on that file (an open-file-description lock, F_OFD_SETLK;
 * a process-associated F_SETLK on kernels without them), taken without waiting; the kernel
 * drops it when the holder ends in any way (kill -9 included). The file also holds a record of
 * the holder (host, pid, process start time, boot id, since when, scheduler job id) so that a
 * refused job can say who holds the root, and a holder that is gone without unlocking
 * (impossible locally; a client that lost an NFS lease, a file system without locks) can be
 * told from a live one. A normal release unlinks the file while still holding the lock. */
#ifndef CKPT_ROOTLOCK_H
#define CKPT_ROOTLOCK_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_ROOT_LOCK_FILE "ckpt-manager.lock"

typedef struct ckpt_lock_record {
    char host[256];    /* gethostname() of the holder */
    char boot_id[64];  /* /proc/sys/kernel/random/boot_id of its host ("-" when unknown) */
    char job[128];     /* SLURM_JOB_ID / PBS_JOBID / LSB_JOBID, or "-" */
    int64_t pid;
    uint64_t start;    /* process start time in clock ticks since boot (/proc/PID/stat), 0 unknown */
    int64_t since;     /* Unix time the lock was taken */
} ckpt_lock_record;

/* The record's text ("ckpt-manager-lock" then key value lines; kvtext.h). Parse: 0, or -1 with
 * the reason in why. Format: the length, or -1 when it does not fit. */
int ckpt_lock_record_parse(const char *buf, size_t n, ckpt_lock_record *r, char *why, size_t whylen);
int ckpt_lock_record_format(const ckpt_lock_record *r, char *buf, size_t len);

/* One line naming the holder: "pid 123 on host h since 2024-05-01 12:00:00 UTC (job 77)". */
void ckpt_lock_record_describe(const ckpt_lock_record *r, char *buf, size_t len);

/* The record of this process now. */
void ckpt_lock_record_self(ckpt_lock_record *r);

typedef struct ckpt_root_lock {
    int fd;            /* -1 when not held */
    char path[4200];   /* ROOT/ckpt-manager.lock */
} ckpt_root_lock;

/* Takes the lock of `root` for this process. Returns CKPT_OK (the holder's record written),
 * CKPT_EBUSY naming the live holder, or CKPT_EIO. A stale record (its holder gone) is taken over
 * after warn(msg, user) says whose it was; so is a root on a file system without locks, with a
 * warning that only the record protects it. */
int ckpt_root_lock_acquire(const char *root, ckpt_root_lock *l, void (*warn)(const char *msg, void *user),
                           void *user);

/* Removes the lock file and releases the lock (no-op when not held). */
void ckpt_root_lock_release(ckpt_root_lock *l);

#endif
