/* fault.h -- fault injection for tests (SQLite style), read from the environment.
 *
 * CKPT_FAULT is a comma-separated list of items of two forms:
 *
 *   NAME               a named point of the library fails, e.g. "commit" (rank 0 fails just
 *                      before the commit), "io_write" (data writes of this process fail),
 *                      "no_zstd" (the zstd filter looks unavailable), "no_exchange"
 *                      (renameat2(RENAME_EXCHANGE) looks unsupported, as on NFS);
 *   KIND@K[+][:WHAT]   the K-th call (K >= 1; with '+' the K-th and every later one) of a kind
 *                      of system call made through sysio.h fails. KIND is one of open, read,
 *                      write, truncate, fsync, rename, mkdir, unlink, rmdir, close, lock,
 *                      or mpiio: a collective HDF5 call on a file opened through MPI-IO
 *                      (file create, dataset write, flush, close) -- the call is still made,
 *                      since the other ranks are in it, and then reported failed with WHAT
 *                      (open counts open and openat; write counts write and pwrite; unlink
 *                      counts unlinkat of files, rmdir of directories). WHAT is
 *                        ENOSPC (the default), EIO, EDQUOT, EROFS, EACCES, EMFILE, ENOLCK:
 *                               the call is not made and fails with that errno;
 *                        short: a write writes half its bytes (none when that is 0 bytes: then
 *                               it fails with ENOSPC, as a full disk does);
 *                        crash: the call is made, then the process ends at once with
 *                               _exit(CKPT_FAULT_CRASH_EXIT) (a kill -9 right after it).
 *
 * e.g. CKPT_FAULT="write@3:ENOSPC,fsync@1:EIO" fails the third write and the first fsync.
 * Counters are per process and per kind, from the process start (a child of fork() inherits
 * its parent's) or from ckpt_fault_reset(), which also re-reads CKPT_FAULT; the KIND@K rules
 * are read once, at the first system call, so a test that changes CKPT_FAULT in-process
 * calls ckpt_fault_reset() (named points are read at each check).
 *
 * Counting mode: with CKPT_FAULT_COUNT set, the process reports at exit how many calls of each
 * kind it made, as one line "ckpt-fault-count pid=P rank=R open=N read=N ..." (rank from the
 * launcher's environment, -1 without one) appended to the file CKPT_FAULT_COUNT names, or
 * written to stderr when it is "stderr": a sweep learns the range of K from it. */
#ifndef CKPT_FAULT_H
#define CKPT_FAULT_H

#include <stdint.h>

/* The exit status of a process ended by a "crash" rule. */
#define CKPT_FAULT_CRASH_EXIT 86

typedef enum ckpt_io_kind {
    CKPT_IO_OPEN = 0,
    CKPT_IO_READ,
    CKPT_IO_WRITE,
    CKPT_IO_TRUNCATE,
    CKPT_IO_FSYNC,
    CKPT_IO_RENAME,
    CKPT_IO_MKDIR,
    CKPT_IO_UNLINK,
    CKPT_IO_RMDIR,
    CKPT_IO_CLOSE,
    CKPT_IO_LOCK,
    CKPT_IO_MPIIO, /* a collective HDF5 call on a file of the MPI-IO driver (create, write, flush, close) */
    CKPT_IO_KINDS
} ckpt_io_kind;

/* What the fault layer decided for one call. */
typedef struct ckpt_fault_action {
    int err;   /* > 0: fail the call with this errno without making it */
    int half;  /* a write: write half the bytes */
    int crash; /* make the call, then _exit (ckpt_fault_after) */
} ckpt_fault_action;

/* 1 when CKPT_FAULT names the point `point`. */
int ckpt_fault(const char *point);

/* Counts one call of `kind` and says what to do with it; `what` names the call's object
 * (a path) for the trace hook. Thread-safe. */
ckpt_fault_action ckpt_fault_next(ckpt_io_kind kind, const char *what);

/* After the call: ends the process when the action says crash. */
void ckpt_fault_after(const ckpt_fault_action *a);

/* Calls of `kind` counted so far. */
uint64_t ckpt_fault_count(ckpt_io_kind kind);

/* Zeroes the counters and re-reads CKPT_FAULT; CKPT_EINVAL (with a message naming the item)
 * when it is malformed. A malformed CKPT_FAULT read at the first call is reported on stderr
 * once and ignored. */
int ckpt_fault_reset(void);

/* "open", "write", ...; NULL for a kind out of range. */
const char *ckpt_io_kind_name(ckpt_io_kind kind);

/* Tests: a function called (under a lock) for every counted call: its kind, its number k
 * (1-based, per kind) and what it names. NULL removes it. */
typedef void (*ckpt_fault_trace_fn)(ckpt_io_kind kind, uint64_t k, const char *what, void *user);
void ckpt_fault_set_trace(ckpt_fault_trace_fn fn, void *user);

#endif
