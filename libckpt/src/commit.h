/* commit.h -- atomic visibility of a checkpoint directory: temporary name, commit marker
 * (which also carries the index file's checksum), rename, and the matching checks. */
#ifndef CKPT_COMMIT_H
#define CKPT_COMMIT_H

#include <stddef.h>
#include <stdint.h>

/* Checks that `path` can be written (parent exists; path absent unless overwrite) and creates
 * the temporary directory "<path>.tmp-<nonce>" whose name is written to tmp. */
int ckpt_commit_prepare(const char *path, int overwrite, uint64_t nonce, char *tmp, size_t len);

/* Writes the commit marker into tmp (hashing tmp/index.h5), fsyncs when asked, and renames
 * tmp to path (atomically exchanging with an existing checkpoint when overwrite, which is
 * then removed). */
int ckpt_commit_finish(const char *tmp, const char *path, int overwrite, int do_fsync);

/* For readers: CKPT_OK when path is a committed checkpoint whose index matches the marker;
 * CKPT_ENOTFOUND, CKPT_EINCOMPLETE or CKPT_ECORRUPT otherwise. */
int ckpt_commit_check(const char *path);

/* Removes a directory tree (best effort); returns 0 or -errno of the first failure. */
int ckpt_remove_tree(const char *path);

/* Joins dir and name into buf; CKPT_EINVAL when it does not fit. */
int ckpt_path_join(char *buf, size_t len, const char *dir, const char *name);

#endif
