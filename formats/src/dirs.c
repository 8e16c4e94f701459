/* Output directories built under a temporary name beside their destination and renamed into place
 * only when complete (renameat2 RENAME_NOREPLACE: an existing destination is never replaced). */
#define _GNU_SOURCE
#include "error.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int fsync_path(const char *path, int is_dir)
{
    int fd = open(path, (is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return fmt_error(CKPTFMT_EIO, "cannot open '%s' to fsync it: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0)
        return fmt_error(CKPTFMT_EIO, "cannot fsync '%s': %s", path, strerror(e));
    return CKPTFMT_OK;
}

static void parent_of(const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s", path);
    char *p = dirname(buf);
    if (p != buf)
        memmove(buf, p, strlen(p) + 1);
}

int tmpdir_create(const char *dest, char *tmp, size_t len)
{
    struct stat st;
    if (!dest || !dest[0])
        return fmt_error(CKPTFMT_EINVAL, "the output path is empty");
    if (lstat(dest, &st) == 0)
        return fmt_error(CKPTFMT_EEXIST, "'%s' already exists (nothing is overwritten)", dest);
    char parent[4096];
    parent_of(dest, parent, sizeof parent);
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
        return fmt_error(CKPTFMT_ENOTFOUND, "cannot write '%s': its parent directory '%s' does not exist", dest,
                         parent);
    uint64_t nonce;
    if (getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce)
        nonce = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
    if (snprintf(tmp, len, "%s.tmp-%016" PRIx64, dest, nonce) >= (int)len)
        return fmt_error(CKPTFMT_EINVAL, "path '%s' is too long", dest);
    if (mkdir(tmp, 0755) != 0)
        return fmt_error(CKPTFMT_EIO, "cannot create the temporary directory '%s': %s", tmp, strerror(errno));
    return CKPTFMT_OK;
}

int tmpdir_commit(const char *tmp, const char *dest, int do_fsync)
{
    int s;
    if (do_fsync && (s = fsync_path(tmp, 1)) != CKPTFMT_OK)
        return s;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE) != 0) {
        int e = errno;
        if (e == EEXIST)
            return fmt_error(CKPTFMT_EEXIST, "'%s' appeared while it was being written (nothing is overwritten)", dest);
        struct stat st;
        /* file systems without RENAME_NOREPLACE: the check and the rename are then two steps */
        if ((e != EINVAL && e != ENOSYS) || lstat(dest, &st) == 0 || rename(tmp, dest) != 0)
            return fmt_error(CKPTFMT_EIO, "cannot rename '%s' to '%s': %s", tmp, dest, strerror(e));
    }
    char parent[4096];
    parent_of(dest, parent, sizeof parent);
    if (do_fsync && (s = fsync_path(parent, 1)) != CKPTFMT_OK)
        return s;
    return CKPTFMT_OK;
}

void tmpdir_remove(const char *tmp)
{
    DIR *d = opendir(tmp);
    if (d) {
        struct dirent *e;
        char p[8192];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", tmp, e->d_name);
                unlink(p); /* the directory holds only the files we wrote */
            }
        closedir(d);
    }
    rmdir(tmp);
}
