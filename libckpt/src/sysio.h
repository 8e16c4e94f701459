/* sysio.h -- the library's door to the POSIX file system. Every open, read, write, fsync,
 * rename, mkdir, unlink, rmdir, close and lock of the library's own code goes through here, so
 * three rules live in one place:
 *
 *   - fault injection: each call is counted by kind and may be failed (fault.h, CKPT_FAULT);
 *   - bounded descriptors: the library never holds more than ckpt_sys_max_files() descriptors
 *     at once (half the process's RLIMIT_NOFILE, at least 64; CKPT_MAX_OPEN_FILES lowers it);
 *     past it an open fails with EMFILE instead of starving the application;
 *   - inside the directory: a file of a checkpoint is opened by a plain name (no '/', not "."
 *     or "..") relative to its directory's descriptor with O_NOFOLLOW, so a symlink planted in a
 *     checkpoint directory is refused (ELOOP) instead of read or written through.
 *
 * Every function returns >= 0 on success or -errno; none leaves errno for the caller. Every
 * descriptor is opened with O_CLOEXEC. Thread-safe. */
#ifndef CKPT_SYSIO_H
#define CKPT_SYSIO_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* open(2) of a path (kind open). */
int ckpt_sys_open(const char *path, int flags, mode_t mode);

/* openat(2) of a plain name inside the directory dirfd, never following a symlink (kind open):
 * -EINVAL when name is not a plain name, -ELOOP when it is a symlink. */
int ckpt_sys_open_in(int dirfd, const char *name, int flags, mode_t mode);

/* A directory's descriptor, for ckpt_sys_open_in and the *_in calls (kind open). With
 * nofollow, a symlink at path is refused (ELOOP). */
int ckpt_sys_open_dir(const char *path, int nofollow);

/* A directory stream of path, or of the plain name `name` inside dirfd (no symlink followed),
 * counted as one descriptor (kind open); NULL with *err = -errno on failure. Close it with
 * ckpt_sys_closedir (kind close). */
DIR *ckpt_sys_opendir(const char *path, int *err);
DIR *ckpt_sys_opendir_in(int dirfd, const char *name, int *err);
int ckpt_sys_closedir(DIR *d);

/* 1 when name is a plain file name: 1..255 bytes, no '/', not "." or "..". */
int ckpt_sys_plain_name(const char *name);

/* close(2) (kind close). The descriptor is released even when an error is reported. */
int ckpt_sys_close(int fd);

/* Writes all n bytes (at off for the p-version), retrying short writes; each underlying
 * write(2)/pwrite(2) is one call of kind write. */
int ckpt_sys_write_all(int fd, const void *buf, size_t n);
int ckpt_sys_pwrite_all(int fd, const void *buf, size_t n, int64_t off);

/* Reads up to n bytes (from off for the p-version), stopping only at end of file; returns the
 * bytes read. Each underlying read(2)/pread(2) is one call of kind read. */
int64_t ckpt_sys_read_full(int fd, void *buf, size_t n);
int64_t ckpt_sys_pread_full(int fd, void *buf, size_t n, int64_t off);

/* ftruncate(2) (kind truncate). */
int ckpt_sys_ftruncate(int fd, int64_t len);

/* fsync(2) of a descriptor, and of a path (file or directory: open, fsync, close). */
int ckpt_sys_fsync(int fd);
int ckpt_sys_fsync_path(const char *path);
/* fsync of the plain name `name` inside dirfd (no symlink followed): a data file after its
 * ckpt_h5_close_file, without opening it by path again. */
int ckpt_sys_fsync_in(int dirfd, const char *name);

/* rename(2) (kind rename). */
int ckpt_sys_rename(const char *from, const char *to);

/* renameat2(a, b, RENAME_EXCHANGE) (kind rename): -ENOSYS/-EINVAL where the file system or
 * kernel cannot, and always -ENOSYS under the fault point "no_exchange". */
int ckpt_sys_exchange(const char *a, const char *b);

/* mkdir(2) (kind mkdir). */
int ckpt_sys_mkdir(const char *path, mode_t mode);

/* unlinkat(2) of a plain name in dirfd: a file (kind unlink) or an empty directory (kind
 * rmdir); and rmdir(2) of a path (kind rmdir). */
int ckpt_sys_unlink_in(int dirfd, const char *name);
int ckpt_sys_rmdir_in(int dirfd, const char *name);
int ckpt_sys_rmdir(const char *path);
int ckpt_sys_unlink(const char *path);

/* A whole-file write lock on fd that does not wait (kind lock): an open-file-description lock
 * (F_OFD_SETLK), released when this descriptor is closed, or a process-associated one
 * (F_SETLK) where the kernel has no OFD locks. Returns 0 (OFD lock), 1 (process lock),
 * -EAGAIN/-EACCES when another holder has it, or -errno (e.g. -ENOLCK: no locks here). */
int ckpt_sys_lock(int fd);

/* flock(2) without waiting (kind lock), as HDF5 locks its files: exclusive or shared; unlock
 * with exclusive = -1. -ENOSYS/-EOPNOTSUPP where the file system has no flock. */
int ckpt_sys_flock(int fd, int exclusive);

/* Descriptors the library holds now, and the most it may hold. */
int ckpt_sys_open_files(void);
int ckpt_sys_max_files(void);

#endif
