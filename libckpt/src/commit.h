/* commit.h -- atomic visibility of a checkpoint directory: temporary name, commit marker
 * (which also carries the index file's checksum), rename, the matching checks, and the
 * recovery of an overwrite interrupted between its renames. */
#ifndef CKPT_COMMIT_H
#define CKPT_COMMIT_H

#include <stddef.h>
#include <stdint.h>

/* Checks that `path` can be written (parent exists; path absent unless overwrite) and creates
 * the temporary directory "<path>.tmp-<nonce>" whose name is written to tmp. */
int ckpt_commit_prepare(const char *path, int overwrite, uint64_t nonce, char *tmp, size_t len);

/*
 * Writes the commit marker into tmp (hashing tmp/index.h5), fsyncs when asked, and renames tmp
 * to path. Over an existing checkpoint (overwrite) the two are exchanged atomically
 * (renameat2 RENAME_EXCHANGE) and the old one is removed; where the file system cannot
 * exchange (NFS, some parallel file systems) the old one is first renamed to
 * "<tmp>.old" (a *displaced* copy), tmp renamed to path, and the displaced copy removed: at
 * every instant one committed copy is findable, and ckpt_commit_recover puts it back after a
 * crash between the renames. On failure nothing is committed at path (a failed fsync of the
 * parent undoes the renames) and the old checkpoint, if any, is back at path.
 */
int ckpt_commit_finish(const char *tmp, const char *path, int overwrite, int do_fsync);

/* For readers: CKPT_OK when path is a committed checkpoint whose index matches the marker;
 * CKPT_ENOTFOUND, CKPT_EINCOMPLETE, CKPT_ECORRUPT or CKPT_EVERSION otherwise. COMMITTED and
 * index.h5 must be regular files (a symlink is corrupt). */
int ckpt_commit_check(const char *path);

/* The commit marker's content (formats/SPEC.md section 2). */
typedef struct ckpt_commit_marker {
    int format_version; /* >= 1 */
    uint64_t index_xxh3;
} ckpt_commit_marker;

/* Parses a marker held in buf[0..n) (untrusted: at most CKPT_KV_MAX bytes): CKPT_OK, or
 * CKPT_ECORRUPT with the reason (no path) in why. Unknown "key value" lines are ignored;
 * a known key given twice, a missing one, or a malformed line is corrupt. */
int ckpt_commit_marker_parse(const char *buf, size_t n, ckpt_commit_marker *m, char *why, size_t whylen);

/* Writes a marker's text to buf; its length, or -1 when it does not fit. */
int ckpt_commit_marker_format(const ckpt_commit_marker *m, char *buf, size_t len);

/* 1 when `name` is a displaced copy "<base>.tmp-<nonce>.old" (base and nonce non-empty, nonce
 * without '.'); then base gets "<base>" and fresh the overwrite's new copy "<base>.tmp-<nonce>". */
int ckpt_commit_displaced(const char *name, char *base, size_t blen, char *fresh, size_t flen);

/*
 * After a crash between the renames of an overwrite: `displaced` is such a name inside `dir`.
 * When dir/<base> does not exist, the copy that stands for it is the displaced one when it is
 * committed (the overwrite never finished: the old checkpoint), else the overwrite's new copy
 * when that one is committed. With restore, that copy is renamed to dir/<base>; without, the
 * file system is not touched. `chosen` (may be NULL) gets the name standing for base now
 * ("<base>" after a restore). Returns 1 when a copy stands (or was restored), 0 when there is
 * nothing to do (base exists, or no committed copy), or an error status (rename failed).
 */
int ckpt_commit_recover(const char *dir, const char *displaced, int restore, char *chosen, size_t len);

/* Removes a directory tree without following symlinks (a directory's COMMITTED marker first,
 * so a half-removed checkpoint is never taken for a committed one); best effort: returns 0 or
 * -errno of the first failure. */
int ckpt_remove_tree(const char *path);

/* Joins dir and name into buf; CKPT_EINVAL when it does not fit. */
int ckpt_path_join(char *buf, size_t len, const char *dir, const char *name);

#endif
