/* commit.c -- temporary directory, commit marker, atomic rename, and completeness checks. */
#define _GNU_SOURCE
#include "commit.h"
#include "ckpt.h"
#include "error.h"
#include "h5util.h"
#include "meta.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

int ckpt_path_join(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len)
        return ckpt_error(CKPT_EINVAL, "path '%s/%s' is too long", dir, name);
    return CKPT_OK;
}

static int parent_of(const char *path, char *buf, size_t len)
{
    if (snprintf(buf, len, "%s", path) >= (int)len)
        return ckpt_error(CKPT_EINVAL, "path '%s' is too long", path);
    char *p = dirname(buf);
    if (p != buf)
        memmove(buf, p, strlen(p) + 1);
    return CKPT_OK;
}

int ckpt_commit_prepare(const char *path, int overwrite, uint64_t nonce, char *tmp, size_t len)
{
    char parent[4096];
    struct stat st;
    if (!path || !path[0])
        return ckpt_error(CKPT_EINVAL, "checkpoint path is empty");
    int rc = parent_of(path, parent, sizeof parent);
    if (rc)
        return rc;
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
        return ckpt_error(CKPT_ENOTFOUND, "cannot save to '%s': parent directory '%s' does not exist",
                          path, parent);
    if (lstat(path, &st) == 0 && !overwrite)
        return ckpt_error(CKPT_EEXIST, "cannot save to '%s': it already exists (overwriting was not asked for)",
                          path);
    if (snprintf(tmp, len, "%s.tmp-%016" PRIx64, path, nonce) >= (int)len)
        return ckpt_error(CKPT_EINVAL, "path '%s' is too long", path);
    if (mkdir(tmp, 0755) != 0)
        return ckpt_error(CKPT_EIO, "cannot create temporary directory '%s': %s", tmp, strerror(errno));
    return CKPT_OK;
}

static int hash_file(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    XXH3_state_t *st = XXH3_createState();
    if (!st) {
        fclose(f);
        return -ENOMEM;
    }
    XXH3_64bits_reset(st);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        XXH3_64bits_update(st, buf, n);
    int err = ferror(f) ? -EIO : 0;
    fclose(f);
    *out = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return err;
}

int ckpt_commit_finish(const char *tmp, const char *path, int overwrite, int do_fsync)
{
    char ipath[4096], mpath[4096], parent[4096];
    int rc;
    if ((rc = ckpt_path_join(ipath, sizeof ipath, tmp, CKPT_INDEX_FILE)) ||
        (rc = ckpt_path_join(mpath, sizeof mpath, tmp, CKPT_COMMIT_FILE)) ||
        (rc = parent_of(path, parent, sizeof parent)))
        return rc;
    uint64_t h;
    int err = hash_file(ipath, &h);
    if (err)
        return ckpt_error(CKPT_EIO, "cannot read back index '%s': %s", ipath, strerror(-err));
    if (do_fsync && (err = ckpt_fsync_path(ipath)) != 0)
        return ckpt_error(CKPT_EIO, "fsync of '%s' failed: %s", ipath, strerror(-err));
    FILE *f = fopen(mpath, "w");
    if (!f)
        return ckpt_error(CKPT_EIO, "cannot create commit marker '%s': %s", mpath, strerror(errno));
    int w = fprintf(f, "ckpt-commit\nformat_version %d\nindex_xxh3 %016" PRIx64 "\n", CKPT_FORMAT_VERSION, h);
    if (fflush(f) != 0 || w < 0 || (do_fsync && fsync(fileno(f)) != 0)) {
        int e = errno;
        fclose(f);
        return ckpt_error(CKPT_EIO, "cannot write commit marker '%s': %s", mpath, strerror(e));
    }
    if (fclose(f) != 0)
        return ckpt_error(CKPT_EIO, "cannot write commit marker '%s': %s", mpath, strerror(errno));
    if (do_fsync && (err = ckpt_fsync_path(tmp)) != 0)
        return ckpt_error(CKPT_EIO, "fsync of '%s' failed: %s", tmp, strerror(-err));
    struct stat st;
    if (overwrite && lstat(path, &st) == 0) {
        /* swap atomically, so path always holds a complete checkpoint; then drop the old one */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
            ckpt_remove_tree(tmp);
        } else {
            char old[4200];
            snprintf(old, sizeof old, "%s.old", tmp);
            if (rename(path, old) != 0)
                return ckpt_error(CKPT_EIO, "cannot move old checkpoint '%s' aside: %s", path, strerror(errno));
            if (rename(tmp, path) != 0) {
                int e = errno;
                rename(old, path);
                return ckpt_error(CKPT_EIO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
            }
            ckpt_remove_tree(old);
        }
    } else if (rename(tmp, path) != 0) {
        return ckpt_error(CKPT_EIO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    }
    if (do_fsync && (err = ckpt_fsync_path(parent)) != 0)
        return ckpt_error(CKPT_EIO, "fsync of directory '%s' failed: %s", parent, strerror(-err));
    return CKPT_OK;
}

int ckpt_commit_check(const char *path)
{
    struct stat st;
    char mpath[4096], ipath[4096];
    int rc;
    if (!path || !path[0])
        return ckpt_error(CKPT_EINVAL, "checkpoint path is empty");
    if (stat(path, &st) != 0)
        return ckpt_error(CKPT_ENOTFOUND, "no checkpoint at '%s': %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ckpt_error(CKPT_ENOTFOUND, "'%s' is not a checkpoint directory", path);
    if ((rc = ckpt_path_join(mpath, sizeof mpath, path, CKPT_COMMIT_FILE)) ||
        (rc = ckpt_path_join(ipath, sizeof ipath, path, CKPT_INDEX_FILE)))
        return rc;
    FILE *f = fopen(mpath, "r");
    if (!f) {
        if (errno == ENOENT)
            return ckpt_error(CKPT_EINCOMPLETE,
                              "checkpoint '%s' is incomplete: it has no %s marker (the save was interrupted "
                              "or is still running)", path, CKPT_COMMIT_FILE);
        return ckpt_error(CKPT_EIO, "cannot read '%s': %s", mpath, strerror(errno));
    }
    char line[256];
    int version = -1;
    uint64_t want = 0;
    int have_hash = 0, magic = 0;
    while (fgets(line, sizeof line, f)) {
        if (strcmp(line, "ckpt-commit\n") == 0)
            magic = 1;
        else if (sscanf(line, "format_version %d", &version) == 1)
            ;
        else if (sscanf(line, "index_xxh3 %" SCNx64, &want) == 1)
            have_hash = 1;
    }
    fclose(f);
    if (!magic || !have_hash || version < 1)
        return ckpt_error(CKPT_ECORRUPT, "commit marker '%s' is malformed", mpath);
    if (version > CKPT_FORMAT_VERSION)
        return ckpt_error(CKPT_EVERSION,
                          "checkpoint '%s' has format version %d; this library (%s) reads versions 1..%d",
                          path, version, CKPT_VERSION_STRING, CKPT_FORMAT_VERSION);
    uint64_t got;
    int err = hash_file(ipath, &got);
    if (err == -ENOENT)
        return ckpt_error(CKPT_ECORRUPT, "checkpoint '%s' has a commit marker but no %s", path, CKPT_INDEX_FILE);
    if (err)
        return ckpt_error(CKPT_EIO, "cannot read '%s': %s", ipath, strerror(-err));
    if (got != want)
        return ckpt_error(CKPT_ECORRUPT,
                          "index '%s' does not match its commit marker (xxh3 %016" PRIx64 ", marker says %016" PRIx64
                          "): the index was modified or damaged", ipath, got, want);
    return CKPT_OK;
}

int ckpt_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : -errno;
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    int first = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[4096];
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub)
            continue;
        int rc = ckpt_remove_tree(sub);
        if (rc && !first)
            first = rc;
    }
    closedir(d);
    if (rmdir(path) != 0 && !first)
        first = -errno;
    return first;
}
