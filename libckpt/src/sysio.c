/* sysio.c -- every POSIX file-system call of the library, counted and fault-injectable, with a
 * bound on descriptors and the plain-name rule (see sysio.h). */
#define _GNU_SOURCE
#include "sysio.h"
#include "fault.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static _Atomic int open_files;

/* The shape of most calls: counted and maybe failed before they are made (gate), then -errno
 * or a crash right after (done):  rc = gate(KIND, what, &a); return rc ? rc : done(call(), &a); */
static int gate(ckpt_io_kind kind, const char *what, ckpt_fault_action *a)
{
    *a = ckpt_fault_next(kind, what);
    return a->err ? -a->err : 0;
}

static int done(int call_rc, const ckpt_fault_action *a)
{
    if (call_rc != 0)
        return -errno;
    ckpt_fault_after(a);
    return 0;
}
static int max_files;
static pthread_once_t limit_once = PTHREAD_ONCE_INIT;

static void init_limit(void)
{
    struct rlimit rl;
    long lim = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)INT_MAX)
        lim = (long)rl.rlim_cur;
    lim /= 2;
    if (lim < 64)
        lim = 64;
    const char *env = getenv("CKPT_MAX_OPEN_FILES");
    if (env && *env) {
        char *end = NULL;
        long v = strtol(env, &end, 10);
        if (end && *end == '\0' && v >= 1 && v < lim)
            lim = v;
    }
    max_files = (int)(lim > INT_MAX ? INT_MAX : lim);
}

int ckpt_sys_max_files(void)
{
    pthread_once(&limit_once, init_limit);
    return max_files;
}

int ckpt_sys_open_files(void)
{
    return atomic_load(&open_files);
}

/* Reserves a descriptor slot; -EMFILE past the bound. */
static int reserve(void)
{
    int lim = ckpt_sys_max_files();
    if (atomic_fetch_add(&open_files, 1) >= lim) {
        atomic_fetch_sub(&open_files, 1);
        return -EMFILE;
    }
    return 0;
}

/* The common shape of an open: count, maybe fail, reserve, call, keep or release the slot. */
static int finish_open(int fd, const ckpt_fault_action *a)
{
    if (fd < 0) {
        int e = errno;
        atomic_fetch_sub(&open_files, 1);
        ckpt_fault_after(a); /* a crash comes after the call, whatever it returned */
        return -e;
    }
    ckpt_fault_after(a);
    return fd;
}

int ckpt_sys_open(const char *path, int flags, mode_t mode)
{
    ckpt_fault_action a = ckpt_fault_next(CKPT_IO_OPEN, path);
    if (a.err)
        return -a.err;
    int rc = reserve();
    if (rc)
        return rc;
    return finish_open(open(path, flags | O_CLOEXEC, mode), &a);
}

int ckpt_sys_plain_name(const char *name)
{
    if (!name || !name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    return strlen(name) <= 255;
}

int ckpt_sys_open_in(int dirfd, const char *name, int flags, mode_t mode)
{
    if (!ckpt_sys_plain_name(name))
        return -EINVAL;
    ckpt_fault_action a = ckpt_fault_next(CKPT_IO_OPEN, name);
    if (a.err)
        return -a.err;
    int rc = reserve();
    if (rc)
        return rc;
    return finish_open(openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode), &a);
}

int ckpt_sys_open_dir(const char *path, int nofollow)
{
    ckpt_fault_action a = ckpt_fault_next(CKPT_IO_OPEN, path);
    if (a.err)
        return -a.err;
    int rc = reserve();
    if (rc)
        return rc;
    int fd = finish_open(open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0)), &a);
    struct stat st;
    if (fd == -ENOTDIR && nofollow && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        fd = -ELOOP; /* a symlink, as ckpt_sys_open_in reports it */
    return fd;
}

static DIR *open_stream(int fd, int *err)
{
    if (fd < 0) {
        *err = fd;
        return NULL;
    }
    DIR *d = fdopendir(fd); /* the stream owns fd (and its slot) from here */
    if (!d) {
        *err = -errno;
        close(fd);
        atomic_fetch_sub(&open_files, 1);
    }
    return d;
}

DIR *ckpt_sys_opendir(const char *path, int *err)
{
    return open_stream(ckpt_sys_open_dir(path, 0), err);
}

DIR *ckpt_sys_opendir_in(int dirfd, const char *name, int *err)
{
    return open_stream(ckpt_sys_open_in(dirfd, name, O_RDONLY | O_DIRECTORY, 0), err);
}

/* After close(2)/closedir(2) returned rc (0 or -errno): Linux releases the descriptor whatever
 * close reports (an NFS close may report a deferred write error), so does an injected failure. */
static int closed(ckpt_fault_action *a, int rc)
{
    atomic_fetch_sub(&open_files, 1);
    if (a->err)
        return -a->err;
    ckpt_fault_after(a);
    return rc == -EINTR ? 0 : rc;
}

int ckpt_sys_closedir(DIR *d)
{
    if (!d)
        return -EBADF;
    ckpt_fault_action a = ckpt_fault_next(CKPT_IO_CLOSE, NULL);
    return closed(&a, closedir(d) == 0 ? 0 : -errno);
}

int ckpt_sys_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    ckpt_fault_action a = ckpt_fault_next(CKPT_IO_CLOSE, NULL);
    return closed(&a, close(fd) == 0 ? 0 : -errno);
}

/* One write(2)/pwrite(2) (off < 0: write), after the fault layer had its say. */
static ssize_t write_once(int fd, const void *buf, size_t n, int64_t off)
{
    ckpt_fault_action a = ckpt_fault_next(CKPT_IO_WRITE, NULL);
    if (a.err) {
        errno = a.err;
        return -1;
    }
    if (a.half) {
        n /= 2;
        if (n == 0) {
            errno = ENOSPC;
            return -1;
        }
    }
    ssize_t w = off < 0 ? write(fd, buf, n) : pwrite(fd, buf, n, (off_t)off);
    if (w >= 0)
        ckpt_fault_after(&a);
    return w;
}

static int write_all(int fd, const void *buf, size_t n, int64_t off)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = write_once(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -ENOSPC; /* no progress on a regular file: the disk is full */
        p += w;
        n -= (size_t)w;
        if (off >= 0)
            off += w;
    }
    return 0;
}

int ckpt_sys_write_all(int fd, const void *buf, size_t n)
{
    return write_all(fd, buf, n, -1);
}

int ckpt_sys_pwrite_all(int fd, const void *buf, size_t n, int64_t off)
{
    if (off < 0)
        return -EINVAL;
    return write_all(fd, buf, n, off);
}

static int64_t read_full(int fd, void *buf, size_t n, int64_t off)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        ckpt_fault_action a = ckpt_fault_next(CKPT_IO_READ, NULL);
        if (a.err)
            return -a.err;
        ssize_t r = off < 0 ? read(fd, p + got, n - got) : pread(fd, p + got, n - got, (off_t)(off + (int64_t)got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        ckpt_fault_after(&a);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

int64_t ckpt_sys_read_full(int fd, void *buf, size_t n)
{
    return read_full(fd, buf, n, -1);
}

int64_t ckpt_sys_pread_full(int fd, void *buf, size_t n, int64_t off)
{
    if (off < 0)
        return -EINVAL;
    return read_full(fd, buf, n, off);
}

int ckpt_sys_ftruncate(int fd, int64_t len)
{
    ckpt_fault_action a;
    int rc = gate(CKPT_IO_TRUNCATE, NULL, &a);
    return rc ? rc : done(ftruncate(fd, (off_t)len), &a);
}

int ckpt_sys_fsync(int fd)
{
    ckpt_fault_action a;
    int rc = gate(CKPT_IO_FSYNC, NULL, &a);
    return rc ? rc : done(fsync(fd), &a);
}

int ckpt_sys_fsync_path(const char *path)
{
    int fd = ckpt_sys_open(path, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    int rc = ckpt_sys_fsync(fd);
    int crc = ckpt_sys_close(fd);
    return rc ? rc : crc;
}

int ckpt_sys_fsync_in(int dirfd, const char *name)
{
    int fd = ckpt_sys_open_in(dirfd, name, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    int rc = ckpt_sys_fsync(fd);
    int crc = ckpt_sys_close(fd);
    return rc ? rc : crc;
}

int ckpt_sys_rename(const char *from, const char *to)
{
    ckpt_fault_action a;
    int rc = gate(CKPT_IO_RENAME, to, &a);
    return rc ? rc : done(rename(from, to), &a);
}

int ckpt_sys_exchange(const char *a_path, const char *b_path)
{
    if (ckpt_fault("no_exchange"))
        return -ENOSYS;
    ckpt_fault_action a;
    int rc = gate(CKPT_IO_RENAME, b_path, &a);
    return rc ? rc : done(renameat2(AT_FDCWD, a_path, AT_FDCWD, b_path, RENAME_EXCHANGE), &a);
}

int ckpt_sys_mkdir(const char *path, mode_t mode)
{
    ckpt_fault_action a;
    int rc = gate(CKPT_IO_MKDIR, path, &a);
    return rc ? rc : done(mkdir(path, mode), &a);
}

static int unlink_in(int dirfd, const char *name, int dir)
{
    if (!ckpt_sys_plain_name(name))
        return -EINVAL;
    ckpt_fault_action a;
    int rc = gate(dir ? CKPT_IO_RMDIR : CKPT_IO_UNLINK, name, &a);
    return rc ? rc : done(unlinkat(dirfd, name, dir ? AT_REMOVEDIR : 0), &a);
}

int ckpt_sys_unlink_in(int dirfd, const char *name)
{
    return unlink_in(dirfd, name, 0);
}

int ckpt_sys_rmdir_in(int dirfd, const char *name)
{
    return unlink_in(dirfd, name, 1);
}

int ckpt_sys_rmdir(const char *path)
{
    ckpt_fault_action a;
    int rc = gate(CKPT_IO_RMDIR, path, &a);
    return rc ? rc : done(rmdir(path), &a);
}

int ckpt_sys_unlink(const char *path)
{
    ckpt_fault_action a;
    int rc = gate(CKPT_IO_UNLINK, path, &a);
    return rc ? rc : done(unlink(path), &a);
}

int ckpt_sys_lock(int fd)
{
    ckpt_fault_action a = ckpt_fault_next(CKPT_IO_LOCK, NULL);
    if (a.err)
        return -a.err;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET; /* l_start = l_len = 0: the whole file, however it grows */
    int kind = 0;
#ifdef F_OFD_SETLK
    int rc = fcntl(fd, F_OFD_SETLK, &fl);
    if (rc != 0 && errno == EINVAL) { /* a kernel without OFD locks */
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        rc = fcntl(fd, F_SETLK, &fl);
        kind = 1;
    }
#else
    int rc = fcntl(fd, F_SETLK, &fl);
    kind = 1;
#endif
    if (rc != 0)
        return -errno;
    ckpt_fault_after(&a);
    return kind;
}

int ckpt_sys_flock(int fd, int exclusive)
{
    ckpt_fault_action a = ckpt_fault_next(CKPT_IO_LOCK, NULL);
    if (a.err)
        return -a.err;
    int op = exclusive < 0 ? LOCK_UN : (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
    if (flock(fd, op) != 0)
        return -errno;
    ckpt_fault_after(&a);
    return 0;
}
