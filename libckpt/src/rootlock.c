/* rootlock.c -- the manager's lock on its root (see rootlock.h). */
#include "rootlock.h"
#include "ckpt.h"
#include "error.h"
#include "kvtext.h"
#include "sysio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECORD_MAGIC "ckpt-manager-lock"

/* ------------------------------------------------------------------------- */
/* The record                                                                 */
/* ------------------------------------------------------------------------- */

/* Copies a value into a fixed field; -1 when it does not fit. */
static int take(char *dst, size_t cap, const char *v, size_t vl)
{
    if (vl >= cap)
        return -1;
    memcpy(dst, v, vl);
    dst[vl] = '\0';
    return 0;
}

int ckpt_lock_record_parse(const char *buf, size_t n, ckpt_lock_record *r, char *why, size_t whylen)
{
    ckpt_kv_reader kr;
    memset(r, 0, sizeof *r);
    if (ckpt_kv_begin(&kr, buf, n, RECORD_MAGIC) != 0) {
        snprintf(why, whylen, "it does not start with the line '" RECORD_MAGIC "' (or is too long)");
        return -1;
    }
    unsigned seen = 0;
    const char *k, *v;
    size_t kl, vl;
    int got;
    while ((got = ckpt_kv_next(&kr, &k, &kl, &v, &vl)) == 1) {
        static const char *const keys[] = {"host", "boot", "job", "pid", "start", "since"};
        int which = -1;
        for (int i = 0; i < 6; i++)
            if (ckpt_kv_is(k, kl, keys[i]))
                which = i;
        if (which < 0)
            continue;
        if (seen & (1u << which)) {
            snprintf(why, whylen, "line %ld: %s given twice", kr.line, keys[which]);
            return -1;
        }
        seen |= 1u << which;
        uint64_t u = 0;
        int bad = 0;
        switch (which) {
        case 0: bad = take(r->host, sizeof r->host, v, vl); break;
        case 1: bad = take(r->boot_id, sizeof r->boot_id, v, vl); break;
        case 2: bad = take(r->job, sizeof r->job, v, vl); break;
        case 3:
            bad = ckpt_kv_uint(v, vl, INT32_MAX, &u) || u == 0;
            r->pid = (int64_t)u;
            break;
        case 4: bad = ckpt_kv_uint(v, vl, UINT64_MAX, &r->start); break;
        case 5:
            bad = ckpt_kv_uint(v, vl, INT64_MAX, &u);
            r->since = (int64_t)u;
            break;
        }
        if (bad) {
            snprintf(why, whylen, "line %ld: bad value for %s", kr.line, keys[which]);
            return -1;
        }
    }
    if (got < 0) {
        snprintf(why, whylen, "line %ld is not 'key value' ending in a newline", kr.line);
        return -1;
    }
    if ((seen & 0x3f) != 0x3f) {
        snprintf(why, whylen, "it lacks a line (host, boot, job, pid, start and since are required)");
        return -1;
    }
    return 0;
}

int ckpt_lock_record_format(const ckpt_lock_record *r, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     RECORD_MAGIC "\nhost %s\nboot %s\njob %s\npid %" PRId64 "\nstart %" PRIu64 "\nsince %" PRId64 "\n",
                     r->host, r->boot_id, r->job, r->pid, r->start, r->since);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

void ckpt_lock_record_describe(const ckpt_lock_record *r, char *buf, size_t len)
{
    char when[64] = "an unknown time";
    time_t t = (time_t)r->since;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    int n = snprintf(buf, len, "pid %" PRId64 " on host %s since %s", r->pid, r->host, when);
    if (n > 0 && (size_t)n < len && strcmp(r->job, "-") != 0)
        snprintf(buf + n, len - (size_t)n, " (job %s)", r->job);
}

/* A small text file of /proc, first line, no newline; "" when unreadable. */
static void read_proc(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    int fd = ckpt_sys_open(path, O_RDONLY, 0);
    if (fd < 0)
        return;
    int64_t n = ckpt_sys_read_full(fd, buf, len - 1);
    ckpt_sys_close(fd);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

/* Field 22 of /proc/PID/stat (start time in clock ticks since boot); 0 when unknown. */
static uint64_t start_time(int64_t pid)
{
    char p[64], s[1024];
    snprintf(p, sizeof p, "/proc/%" PRId64 "/stat", pid);
    read_proc(p, s, sizeof s);
    const char *q = strrchr(s, ')'); /* the command name may hold spaces and ')' */
    if (!q)
        return 0;
    int field = 2;
    for (q++; *q && field < 22; q++)
        if (*q == ' ')
            field++;
    return field == 22 ? strtoull(q, NULL, 10) : 0;
}

void ckpt_lock_record_self(ckpt_lock_record *r)
{
    memset(r, 0, sizeof *r);
    if (gethostname(r->host, sizeof r->host - 1) != 0 || !r->host[0])
        snprintf(r->host, sizeof r->host, "unknown");
    for (char *c = r->host; *c; c++)
        if (*c < 0x21 || *c > 0x7e)
            *c = '_';
    read_proc("/proc/sys/kernel/random/boot_id", r->boot_id, sizeof r->boot_id);
    if (!r->boot_id[0] || strspn(r->boot_id, "0123456789abcdef-") != strlen(r->boot_id))
        snprintf(r->boot_id, sizeof r->boot_id, "-");
    const char *job = getenv("SLURM_JOB_ID");
    if (!job)
        job = getenv("PBS_JOBID");
    if (!job)
        job = getenv("LSB_JOBID");
    snprintf(r->job, sizeof r->job, "%s", job && *job ? job : "-");
    for (char *c = r->job; *c; c++)
        if (*c < 0x21 || *c > 0x7e)
            *c = '_';
    r->pid = (int64_t)getpid();
    r->start = start_time(r->pid);
    r->since = (int64_t)time(NULL);
}

/* 1: the holder runs (on this host); 0: it is gone; -1: it is on another host (cannot tell). */
static int holder_alive(const ckpt_lock_record *r, const ckpt_lock_record *self)
{
    if (strcmp(r->host, self->host) != 0)
        return -1;
    if (strcmp(r->boot_id, "-") != 0 && strcmp(self->boot_id, "-") != 0 && strcmp(r->boot_id, self->boot_id) != 0)
        return 0; /* recorded before the host rebooted */
    if (kill((pid_t)r->pid, 0) != 0 && errno == ESRCH)
        return 0;
    if (r->start != 0) {
        uint64_t now = start_time(r->pid);
        if (now != 0 && now != r->start)
            return 0; /* the pid was reused by another process */
    }
    return 1;
}

/* ------------------------------------------------------------------------- */
/* Locks this process holds (a process-associated lock does not exclude the process itself,
 * and closing any descriptor of the file would drop it)                       */
/* ------------------------------------------------------------------------- */

#define MAX_HELD 64
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    dev_t dev;
    ino_t ino;
    pid_t pid; /* a child of fork() inherits the table, not the locks' ownership */
} held[MAX_HELD];
static int nheld;

static int held_find(dev_t dev, ino_t ino)
{
    for (int i = 0; i < nheld; i++)
        if (held[i].dev == dev && held[i].ino == ino && held[i].pid == getpid())
            return i;
    return -1;
}

static int held_add(dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&held_mu);
    int ok = nheld < MAX_HELD;
    if (ok) {
        held[nheld].dev = dev;
        held[nheld].ino = ino;
        held[nheld].pid = getpid();
        nheld++;
    }
    pthread_mutex_unlock(&held_mu);
    return ok ? 0 : -1;
}

static void held_remove(dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&held_mu);
    int i = held_find(dev, ino);
    if (i >= 0)
        held[i] = held[--nheld];
    pthread_mutex_unlock(&held_mu);
}

static int held_here(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    pthread_mutex_lock(&held_mu);
    int i = held_find(st.st_dev, st.st_ino);
    pthread_mutex_unlock(&held_mu);
    return i >= 0;
}

/* ------------------------------------------------------------------------- */
/* Acquire, release                                                           */
/* ------------------------------------------------------------------------- */

static void say(void (*warn)(const char *, void *), void *user, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(void (*warn)(const char *, void *), void *user, const char *fmt, ...)
{
    char msg[CKPT_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (warn)
        warn(msg, user);
}

static int busy(const char *root, const char *path, const char *who, const char *why)
{
    return ckpt_error(CKPT_EBUSY,
                      "checkpoint root '%s' is in use by another job: %s holds '%s'%s; two jobs saving into one "
                      "root overwrite and delete each other's checkpoints. Stop that job first (after a kill -9 of "
                      "mpirun its ranks may still be running: kill them) or use another root", root, who, path, why);
}

/* One attempt: 1 to retry (the file was replaced under us), else a status. */
static int try_acquire(const char *root, ckpt_root_lock *l, const ckpt_lock_record *self,
                       void (*warn)(const char *, void *), void *user)
{
    struct stat fst, pst;
    char buf[CKPT_KV_MAX + 1], why[256], who[512];
    int fd = ckpt_sys_open(l->path, O_RDWR | O_CREAT | O_NOFOLLOW, 0644);
    if (fd < 0)
        return ckpt_error(CKPT_EIO, "cannot open the lock file '%s' of checkpoint root '%s': %s", l->path, root,
                          fd == -ELOOP ? "it is a symbolic link (refused)" : strerror(-fd));
    if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
        ckpt_sys_close(fd);
        return ckpt_error(CKPT_EIO, "the lock file '%s' of checkpoint root '%s' is not a regular file", l->path, root);
    }
    int lk = ckpt_sys_lock(fd);
    int64_t n = ckpt_sys_pread_full(fd, buf, sizeof buf, 0);
    ckpt_lock_record rec;
    int have = n > 0 && ckpt_lock_record_parse(buf, (size_t)n, &rec, why, sizeof why) == 0;
    if (have)
        ckpt_lock_record_describe(&rec, who, sizeof who);
    if (lk == -EAGAIN || lk == -EACCES) {
        ckpt_sys_close(fd);
        return busy(root, l->path, have ? who : "another process (which has not written its record yet)", "");
    }
    int nolocks = lk == -ENOLCK || lk == -EOPNOTSUPP || lk == -ENOSYS || lk == -EINVAL;
    if (lk < 0 && !nolocks) {
        ckpt_sys_close(fd);
        return ckpt_error(CKPT_EIO, "cannot lock '%s' (the lock of checkpoint root '%s'): %s", l->path, root,
                          strerror(-lk));
    }
    if (lstat(l->path, &pst) != 0 || pst.st_dev != fst.st_dev || pst.st_ino != fst.st_ino) {
        ckpt_sys_close(fd); /* a holder released (unlinked) it between our open and lock */
        return 1;
    }
    if (have) {
        int alive = holder_alive(&rec, self);
        if (alive == 1 && rec.pid != self->pid) {
            ckpt_sys_close(fd);
            return busy(root, l->path, who,
                        " (it runs, though the file system let this job lock the file too: its locks are not "
                        "shared between processes, e.g. an NFS mount with local_lock or nolock)");
        }
        if (alive < 0 && nolocks) {
            ckpt_sys_close(fd);
            return busy(root, l->path, who,
                        " (on another host; this file system has no locks to tell whether it still runs: when that "
                        "job is gone, remove the lock file)");
        }
        if (alive == 1 || (alive == 0 && rec.pid == self->pid && strcmp(rec.host, self->host) == 0))
            ; /* this process's own leftover record */
        else if (alive < 0)
            say(warn, user, "taking over the lock of checkpoint root '%s' from %s: its lock was released (that job "
                "ended or its host went down)", root, who);
        else
            say(warn, user, "taking over the stale lock of checkpoint root '%s' from %s: that process is gone", root,
                who);
    } else if (n > 0) {
        say(warn, user, "taking over the lock file '%s' of checkpoint root '%s', whose record is unreadable (%s)",
            l->path, root, why);
    }
    if (nolocks)
        say(warn, user, "the file system of checkpoint root '%s' has no file locks (%s): only the lock record keeps "
            "a second job on this host out", root, strerror(-lk));
    char text[CKPT_KV_MAX];
    int tn = ckpt_lock_record_format(self, text, sizeof text);
    int err = tn < 0 ? -EOVERFLOW : ckpt_sys_ftruncate(fd, 0);
    if (!err)
        err = ckpt_sys_pwrite_all(fd, text, (size_t)tn, 0);
    if (!err)
        err = ckpt_sys_fsync(fd);
    if (!err && held_add(fst.st_dev, fst.st_ino) != 0)
        err = -EMFILE;
    if (err) {
        ckpt_sys_close(fd);
        return ckpt_error(CKPT_EIO, "cannot write the lock record '%s' of checkpoint root '%s': %s", l->path, root,
                          strerror(-err));
    }
    l->fd = fd;
    return CKPT_OK;
}

int ckpt_root_lock_acquire(const char *root, ckpt_root_lock *l, void (*warn)(const char *msg, void *user),
                           void *user)
{
    l->fd = -1;
    if (snprintf(l->path, sizeof l->path, "%s/%s", root, CKPT_ROOT_LOCK_FILE) >= (int)sizeof l->path)
        return ckpt_error(CKPT_EINVAL, "checkpoint root '%s' is too long", root);
    if (held_here(l->path))
        return ckpt_error(CKPT_EBUSY,
                          "checkpoint root '%s' is in use by another checkpoint manager of this process (pid %ld): "
                          "close it first; one manager per root", root, (long)getpid());
    ckpt_lock_record self;
    ckpt_lock_record_self(&self);
    for (int attempt = 0; attempt < 8; attempt++) {
        int rc = try_acquire(root, l, &self, warn, user);
        if (rc != 1)
            return rc;
    }
    return ckpt_error(CKPT_EIO, "cannot lock checkpoint root '%s': its lock file '%s' keeps being replaced", root,
                      l->path);
}

void ckpt_root_lock_release(ckpt_root_lock *l)
{
    if (!l || l->fd < 0)
        return;
    struct stat fst, pst;
    if (fstat(l->fd, &fst) == 0) {
        /* unlink while holding the lock, and only our own file */
        if (lstat(l->path, &pst) == 0 && pst.st_dev == fst.st_dev && pst.st_ino == fst.st_ino)
            ckpt_sys_unlink(l->path);
        held_remove(fst.st_dev, fst.st_ino);
    }
    ckpt_sys_close(l->fd);
    l->fd = -1;
}
