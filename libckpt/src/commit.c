/* commit.c -- temporary directory, commit marker, atomic rename (with a crash-safe fallback
 * where RENAME_EXCHANGE is missing), completeness checks, and recovery. All file-system calls
 * go through sysio.h. */
#include "commit.h"
#include "ckpt.h"
#include "error.h"
#include "kvtext.h"
#include "meta.h"
#include "sysio.h"

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

#define MARKER_MAGIC "ckpt-commit"

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

/* ------------------------------------------------------------------------- */
/* The marker's text                                                          */
/* ------------------------------------------------------------------------- */

int ckpt_commit_marker_format(const ckpt_commit_marker *m, char *buf, size_t len)
{
    int n = snprintf(buf, len, MARKER_MAGIC "\nformat_version %d\nindex_xxh3 %016" PRIx64 "\n", m->format_version,
                     m->index_xxh3);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int ckpt_commit_marker_parse(const char *buf, size_t n, ckpt_commit_marker *m, char *why, size_t whylen)
{
    ckpt_kv_reader r;
    memset(m, 0, sizeof *m);
    if (n > CKPT_KV_MAX) {
        snprintf(why, whylen, "it is %zu bytes; a commit marker is at most %d", n, CKPT_KV_MAX);
        return CKPT_ECORRUPT;
    }
    if (ckpt_kv_begin(&r, buf, n, MARKER_MAGIC) != 0) {
        snprintf(why, whylen, "it does not start with the line '" MARKER_MAGIC "' (or holds a NUL byte)");
        return CKPT_ECORRUPT;
    }
    int have_version = 0, have_hash = 0, got;
    const char *k, *v;
    size_t kl, vl;
    while ((got = ckpt_kv_next(&r, &k, &kl, &v, &vl)) == 1) {
        if (ckpt_kv_is(k, kl, "format_version")) {
            uint64_t ver;
            if (have_version++) {
                snprintf(why, whylen, "line %ld: format_version given twice", r.line);
                return CKPT_ECORRUPT;
            }
            if (ckpt_kv_uint(v, vl, 2147483647u, &ver) != 0 || ver < 1) {
                snprintf(why, whylen, "line %ld: format_version '%.*s' is not a version number (1..2147483647)",
                         r.line, (int)(vl > 40 ? 40 : vl), v);
                return CKPT_ECORRUPT;
            }
            m->format_version = (int)ver;
        } else if (ckpt_kv_is(k, kl, "index_xxh3")) {
            if (have_hash++) {
                snprintf(why, whylen, "line %ld: index_xxh3 given twice", r.line);
                return CKPT_ECORRUPT;
            }
            if (ckpt_kv_hex64(v, vl, &m->index_xxh3) != 0) {
                snprintf(why, whylen, "line %ld: index_xxh3 '%.*s' is not 16 hex digits", r.line,
                         (int)(vl > 40 ? 40 : vl), v);
                return CKPT_ECORRUPT;
            }
        } /* other keys: later versions may add lines */
    }
    if (got < 0) {
        snprintf(why, whylen, "line %ld is not 'key value' ending in a newline", r.line);
        return CKPT_ECORRUPT;
    }
    if (!have_version || !have_hash) {
        snprintf(why, whylen, "it has no %s line", !have_version ? "format_version" : "index_xxh3");
        return CKPT_ECORRUPT;
    }
    return CKPT_OK;
}

/* ------------------------------------------------------------------------- */
/* Files inside a checkpoint directory                                        */
/* ------------------------------------------------------------------------- */

/* Opens the regular file `name` inside dfd for reading (no symlink). -errno, with -ELOOP for a
 * symlink and -EISDIR/-EINVAL for something that is not a regular file. */
static int open_regular(int dfd, const char *name, struct stat *st)
{
    int fd = ckpt_sys_open_in(dfd, name, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    if (fstat(fd, st) != 0) {
        int e = errno;
        ckpt_sys_close(fd);
        return -e;
    }
    if (!S_ISREG(st->st_mode)) {
        ckpt_sys_close(fd);
        return S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
    }
    return fd;
}

/* XXH3-64 of an open file, from its start. */
static int hash_fd(int fd, uint64_t *out)
{
    XXH3_state_t *st = XXH3_createState();
    unsigned char *buf = malloc(1 << 16);
    int rc = 0;
    if (!st || !buf)
        rc = -ENOMEM;
    else {
        XXH3_64bits_reset(st);
        int64_t off = 0, got;
        while ((got = ckpt_sys_pread_full(fd, buf, 1 << 16, off)) > 0) {
            XXH3_64bits_update(st, buf, (size_t)got);
            off += got;
        }
        if (got < 0)
            rc = (int)got;
        *out = XXH3_64bits_digest(st);
    }
    XXH3_freeState(st);
    free(buf);
    return rc;
}

static const char *file_error(int err)
{
    return err == -ELOOP ? "it is a symbolic link (refused)"
           : err == -EISDIR || err == -EINVAL ? "it is not a regular file"
                                              : strerror(-err);
}

/* ------------------------------------------------------------------------- */
/* Prepare and finish                                                         */
/* ------------------------------------------------------------------------- */

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
    int err = ckpt_sys_mkdir(tmp, 0755);
    if (err)
        return ckpt_error(CKPT_EIO, "cannot create temporary directory '%s': mkdir failed: %s", tmp, strerror(-err));
    return CKPT_OK;
}

/* Hashes (and fsyncs) tmp/index.h5, then writes tmp/COMMITTED and fsyncs it and tmp. */
static int write_marker(const char *tmp, int do_fsync)
{
    int dfd = ckpt_sys_open_dir(tmp, 1);
    if (dfd < 0)
        return ckpt_error(CKPT_EIO, "cannot open temporary directory '%s': %s", tmp, strerror(-dfd));
    struct stat st;
    ckpt_commit_marker m = {CKPT_FORMAT_VERSION, 0};
    char text[256];
    int rc = CKPT_OK, err = 0, n;
    int fd = open_regular(dfd, CKPT_INDEX_FILE, &st);
    if (fd < 0) {
        rc = ckpt_error(CKPT_EIO, "cannot read back index '%s/%s': open failed: %s", tmp, CKPT_INDEX_FILE,
                        file_error(fd));
        goto out;
    }
    if ((err = hash_fd(fd, &m.index_xxh3)) != 0)
        rc = ckpt_error(CKPT_EIO, "cannot read back index '%s/%s': read failed: %s", tmp, CKPT_INDEX_FILE,
                        strerror(-err));
    else if (do_fsync && (err = ckpt_sys_fsync(fd)) != 0)
        rc = ckpt_error(CKPT_EIO, "fsync of '%s/%s' failed: %s", tmp, CKPT_INDEX_FILE, strerror(-err));
    err = ckpt_sys_close(fd);
    if (rc == CKPT_OK && err)
        rc = ckpt_error(CKPT_EIO, "close of '%s/%s' failed: %s", tmp, CKPT_INDEX_FILE, strerror(-err));
    if (rc)
        goto out;
    n = ckpt_commit_marker_format(&m, text, sizeof text);
    fd = ckpt_sys_open_in(dfd, CKPT_COMMIT_FILE, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        rc = ckpt_error(CKPT_EIO, "cannot create commit marker '%s/%s': open failed: %s", tmp, CKPT_COMMIT_FILE,
                        strerror(-fd));
        goto out;
    }
    if ((err = ckpt_sys_write_all(fd, text, (size_t)n)) != 0)
        rc = ckpt_error(CKPT_EIO, "cannot write commit marker '%s/%s': write failed: %s", tmp, CKPT_COMMIT_FILE,
                        strerror(-err));
    else if (do_fsync && (err = ckpt_sys_fsync(fd)) != 0)
        rc = ckpt_error(CKPT_EIO, "fsync of commit marker '%s/%s' failed: %s", tmp, CKPT_COMMIT_FILE,
                        strerror(-err));
    err = ckpt_sys_close(fd);
    if (rc == CKPT_OK && err)
        rc = ckpt_error(CKPT_EIO, "close of commit marker '%s/%s' failed: %s", tmp, CKPT_COMMIT_FILE,
                        strerror(-err));
    if (rc == CKPT_OK && do_fsync && (err = ckpt_sys_fsync(dfd)) != 0)
        rc = ckpt_error(CKPT_EIO, "fsync of directory '%s' failed: %s", tmp, strerror(-err));
out:
    ckpt_sys_close(dfd);
    return rc;
}

/* fsync of the parent after the renames; on failure the renames are undone by `undo` (which
 * returns what it could not undo, or NULL). */
static int sync_parent(const char *parent, int do_fsync, const char *path, const char *(*undo)(void *), void *u)
{
    int err = do_fsync ? ckpt_sys_fsync_path(parent) : 0;
    if (!err)
        return CKPT_OK;
    const char *left = undo(u);
    if (left)
        return ckpt_error(CKPT_EIO,
                          "fsync of directory '%s' failed: %s; undoing the rename failed too: %s (the checkpoint at "
                          "'%s' may not survive a power loss)", parent, strerror(-err), left, path);
    return ckpt_error(CKPT_EIO, "fsync of directory '%s' failed: %s (the rename to '%s' was undone: nothing committed)",
                      parent, strerror(-err), path);
}

typedef struct undo_ctx {
    const char *tmp, *path, *old; /* old: the displaced copy, NULL when none (or exchanged) */
    int exchanged;
    char msg[512];
} undo_ctx;

static const char *undo_publish(void *p)
{
    undo_ctx *u = p;
    int err = u->exchanged ? ckpt_sys_exchange(u->tmp, u->path) : ckpt_sys_rename(u->path, u->tmp);
    if (err) {
        snprintf(u->msg, sizeof u->msg, "moving '%s' back: %s", u->path, strerror(-err));
        return u->msg;
    }
    if (u->old && (err = ckpt_sys_rename(u->old, u->path)) != 0) {
        snprintf(u->msg, sizeof u->msg, "putting the old checkpoint '%s' back at '%s': %s", u->old, u->path,
                 strerror(-err));
        return u->msg;
    }
    return NULL;
}

/* Renames tmp into place (see ckpt_commit_finish). */
static int publish(const char *tmp, const char *path, const char *parent, int overwrite, int do_fsync)
{
    struct stat st;
    undo_ctx u = {tmp, path, NULL, 0, ""};
    int err;
    if (lstat(path, &st) != 0) {
        if ((err = ckpt_sys_rename(tmp, path)) != 0)
            return ckpt_error(CKPT_EIO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(-err));
        return sync_parent(parent, do_fsync, path, undo_publish, &u);
    }
    if (!overwrite)
        return ckpt_error(CKPT_EEXIST, "cannot save to '%s': it appeared while saving (overwriting was not asked for)",
                          path);
    err = ckpt_sys_exchange(tmp, path);
    if (err == 0) {
        u.exchanged = 1;
        int rc = sync_parent(parent, do_fsync, path, undo_publish, &u);
        if (rc == CKPT_OK)
            ckpt_remove_tree(tmp); /* the old checkpoint; left over, it is debris clean-up removes */
        return rc;
    }
    if (err != -ENOSYS && err != -EINVAL && err != -EOPNOTSUPP)
        return ckpt_error(CKPT_EIO, "cannot exchange '%s' with the old checkpoint '%s': %s", tmp, path, strerror(-err));
    /* no RENAME_EXCHANGE: old aside under a name recovery knows, new in place, old removed */
    char old[4200];
    if (snprintf(old, sizeof old, "%s.old", tmp) >= (int)sizeof old)
        return ckpt_error(CKPT_EINVAL, "path '%s' is too long", tmp);
    if ((err = ckpt_sys_rename(path, old)) != 0)
        return ckpt_error(CKPT_EIO, "cannot move the old checkpoint '%s' aside to '%s': %s", path, old, strerror(-err));
    if ((err = ckpt_sys_rename(tmp, path)) != 0) {
        int e2 = ckpt_sys_rename(old, path);
        if (e2)
            return ckpt_error(CKPT_EIO,
                              "cannot rename '%s' to '%s': %s; putting the old checkpoint back failed too: %s (it is "
                              "at '%s', which ckpt_manager_latest restores)", tmp, path, strerror(-err),
                              strerror(-e2), old);
        return ckpt_error(CKPT_EIO, "cannot rename '%s' to '%s': %s (the old checkpoint is back in place)", tmp, path,
                          strerror(-err));
    }
    u.old = old;
    int rc = sync_parent(parent, do_fsync, path, undo_publish, &u);
    if (rc == CKPT_OK)
        ckpt_remove_tree(old);
    return rc;
}

int ckpt_commit_finish(const char *tmp, const char *path, int overwrite, int do_fsync)
{
    char parent[4096];
    int rc = parent_of(path, parent, sizeof parent);
    if (rc == CKPT_OK)
        rc = write_marker(tmp, do_fsync);
    if (rc == CKPT_OK)
        rc = publish(tmp, path, parent, overwrite, do_fsync);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Checks                                                                     */
/* ------------------------------------------------------------------------- */

int ckpt_commit_check(const char *path)
{
    struct stat st;
    if (!path || !path[0])
        return ckpt_error(CKPT_EINVAL, "checkpoint path is empty");
    if (stat(path, &st) != 0)
        return ckpt_error(CKPT_ENOTFOUND, "no checkpoint at '%s': %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ckpt_error(CKPT_ENOTFOUND, "'%s' is not a checkpoint directory", path);
    int dfd = ckpt_sys_open_dir(path, 0);
    if (dfd < 0)
        return ckpt_error(CKPT_EIO, "cannot open checkpoint directory '%s': %s", path, strerror(-dfd));
    int rc = CKPT_OK;
    char *buf = malloc(CKPT_KV_MAX + 1);
    char why[256];
    ckpt_commit_marker m;
    uint64_t got = 0;
    int64_t n = 0;
    int fd = open_regular(dfd, CKPT_COMMIT_FILE, &st);
    if (fd == -ENOENT) {
        rc = ckpt_error(CKPT_EINCOMPLETE,
                        "checkpoint '%s' is incomplete: it has no %s marker (the save was interrupted or is still "
                        "running)", path, CKPT_COMMIT_FILE);
        goto out;
    }
    if (fd < 0) {
        rc = ckpt_error(fd == -ELOOP || fd == -EISDIR || fd == -EINVAL ? CKPT_ECORRUPT : CKPT_EIO,
                        "cannot read commit marker '%s/%s': %s", path, CKPT_COMMIT_FILE, file_error(fd));
        goto out;
    }
    if (!buf)
        rc = ckpt_error(CKPT_ENOMEM, "out of memory reading '%s/%s'", path, CKPT_COMMIT_FILE);
    else if ((n = ckpt_sys_read_full(fd, buf, CKPT_KV_MAX + 1)) < 0)
        rc = ckpt_error(CKPT_EIO, "cannot read commit marker '%s/%s': %s", path, CKPT_COMMIT_FILE,
                        strerror((int)-n));
    else if (ckpt_commit_marker_parse(buf, (size_t)n, &m, why, sizeof why) != CKPT_OK)
        rc = ckpt_error(CKPT_ECORRUPT, "commit marker '%s/%s' is malformed: %s", path, CKPT_COMMIT_FILE, why);
    else if (m.format_version > CKPT_FORMAT_VERSION)
        rc = ckpt_error(CKPT_EVERSION, "checkpoint '%s' has format version %d; this library (%s) reads versions 1..%d",
                        path, m.format_version, CKPT_VERSION_STRING, CKPT_FORMAT_VERSION);
    ckpt_sys_close(fd);
    if (rc)
        goto out;
    fd = open_regular(dfd, CKPT_INDEX_FILE, &st);
    if (fd == -ENOENT) {
        rc = ckpt_error(CKPT_ECORRUPT, "checkpoint '%s' has a commit marker but no %s", path, CKPT_INDEX_FILE);
        goto out;
    }
    if (fd < 0) {
        rc = ckpt_error(fd == -ELOOP || fd == -EISDIR || fd == -EINVAL ? CKPT_ECORRUPT : CKPT_EIO,
                        "cannot read index '%s/%s': %s", path, CKPT_INDEX_FILE, file_error(fd));
        goto out;
    }
    int err = hash_fd(fd, &got);
    ckpt_sys_close(fd);
    if (err)
        rc = ckpt_error(CKPT_EIO, "cannot read '%s/%s': %s", path, CKPT_INDEX_FILE, strerror(-err));
    else if (got != m.index_xxh3)
        rc = ckpt_error(CKPT_ECORRUPT,
                        "index '%s/%s' does not match its commit marker (xxh3 %016" PRIx64 ", marker says %016" PRIx64
                        "): the index was modified or damaged", path, CKPT_INDEX_FILE, got, m.index_xxh3);
out:
    free(buf);
    ckpt_sys_close(dfd);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Recovery of an interrupted overwrite                                       */
/* ------------------------------------------------------------------------- */

int ckpt_commit_displaced(const char *name, char *base, size_t blen, char *fresh, size_t flen)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 4 || strcmp(name + n - 4, ".old") != 0)
        return 0;
    const char *t = NULL;
    for (const char *p = strstr(name, ".tmp-"); p; p = strstr(p + 1, ".tmp-"))
        t = p;
    if (!t || t == name)
        return 0;
    const char *nonce = t + 5, *end = name + n - 4;
    if (nonce >= end || memchr(nonce, '.', (size_t)(end - nonce)))
        return 0;
    size_t bl = (size_t)(t - name), fl = (size_t)(end - name);
    if (bl >= blen || fl >= flen)
        return 0;
    memcpy(base, name, bl);
    base[bl] = '\0';
    memcpy(fresh, name, fl);
    fresh[fl] = '\0';
    return 1;
}

int ckpt_commit_recover(const char *dir, const char *displaced, int restore, char *chosen, size_t len)
{
    char base[256], fresh[256], p[4200], from[4200];
    struct stat st;
    if (!ckpt_commit_displaced(displaced, base, sizeof base, fresh, sizeof fresh))
        return 0;
    if (snprintf(p, sizeof p, "%s/%s", dir, base) >= (int)sizeof p)
        return 0;
    if (lstat(p, &st) == 0 || errno != ENOENT)
        return 0; /* the step is there (or cannot be told): nothing stands in for it */
    const char *pick = NULL;
    int st_save = ckpt_errcode();
    char msg[CKPT_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", ckpt_errmsg());
    if (snprintf(from, sizeof from, "%s/%s", dir, displaced) < (int)sizeof from && ckpt_commit_check(from) == CKPT_OK)
        pick = displaced;
    else if (snprintf(from, sizeof from, "%s/%s", dir, fresh) < (int)sizeof from && ckpt_commit_check(from) == CKPT_OK)
        pick = fresh;
    ckpt_error(st_save, "%s", msg);
    if (!pick)
        return 0;
    snprintf(from, sizeof from, "%s/%s", dir, pick);
    if (restore) {
        int err = ckpt_sys_rename(from, p);
        if (err)
            return ckpt_error(CKPT_EIO, "cannot restore '%s' to '%s' (an overwrite interrupted between its renames): %s",
                              from, p, strerror(-err));
        ckpt_sys_fsync_path(dir); /* best effort: the rename is done either way */
        pick = base;
    }
    if (chosen && len)
        snprintf(chosen, len, "%s", pick);
    return 1;
}

/* ------------------------------------------------------------------------- */
/* Removal                                                                    */
/* ------------------------------------------------------------------------- */

/* Removes `name` inside dfd (a tree when it is a directory; never through a symlink). */
static int remove_in(int dfd, const char *name, int depth)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode)) {
        int err = ckpt_sys_unlink_in(dfd, name);
        return err == -ENOENT ? 0 : err;
    }
    if (depth > 32)
        return -ELOOP;
    int sub = ckpt_sys_open_in(dfd, name, O_RDONLY | O_DIRECTORY, 0);
    if (sub < 0)
        return sub;
    int first = ckpt_sys_unlink_in(sub, CKPT_COMMIT_FILE); /* first: never a half-removed "committed" one */
    if (first == -ENOENT || first == -EISDIR || first == -EPERM)
        first = 0;
    int err = 0;
    DIR *d = ckpt_sys_opendir_in(dfd, name, &err);
    if (!d && !first)
        first = err;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int rc = remove_in(sub, e->d_name, depth + 1);
        if (rc && !first)
            first = rc;
    }
    if (d)
        ckpt_sys_closedir(d);
    ckpt_sys_close(sub);
    int rc = ckpt_sys_rmdir_in(dfd, name);
    if (rc && rc != -ENOENT && !first)
        first = rc;
    return first;
}

int ckpt_remove_tree(const char *path)
{
    char parent[4096], copy[4096];
    if (!path || snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy ||
        parent_of(path, parent, sizeof parent) != CKPT_OK)
        return -ENAMETOOLONG;
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = '\0';
    const char *base = strrchr(copy, '/');
    base = base ? base + 1 : copy;
    if (!ckpt_sys_plain_name(base))
        return -EINVAL;
    int pfd = ckpt_sys_open_dir(parent, 0);
    if (pfd < 0)
        return pfd;
    int rc = remove_in(pfd, base, 0);
    ckpt_sys_close(pfd);
    return rc;
}
