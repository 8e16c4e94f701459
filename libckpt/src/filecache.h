/* filecache.h -- a bounded set of open HDF5 data files, least recently used closed first, for
 * the readers and the offline writer: one process reads, verifies, merges or writes a checkpoint
 * of 100,000 files under the usual descriptor limit. Each entry also keeps the dataset opened
 * last in its file and the file's checksum table, both closed with it. */
#ifndef CKPT_FILECACHE_H
#define CKPT_FILECACHE_H

#include <hdf5.h>
#include <stdint.h>

typedef struct ckpt_fc_entry {
    int64_t id;       /* file id (meta.h) */
    hid_t file;
    hid_t dset;       /* the dataset opened last in this file, -1 when none */
    int64_t dset_key; /* which one (the owner's key: a global box id, or a tensor) */
    int dset_kind;    /* the owner's note about it */
    int64_t dset_first_piece; /* its first_piece attribute, -1 until read */
    hid_t sums;       /* the file's /checksums dataset, -1 until opened */
    int64_t sums_len; /* its entries */
    uint64_t used;
} ckpt_fc_entry;

/* Opens file `id` into *out; returns a ckpt status with the error set. */
typedef int (*ckpt_fc_open_fn)(int64_t id, hid_t *out, void *arg);

typedef struct ckpt_filecache {
    ckpt_fc_entry *e;
    int n, cap;
    uint64_t clock;
    ckpt_fc_open_fn open;
    void (*on_close)(ckpt_fc_entry *e, void *arg); /* optional: called before an entry is closed */
    void *arg;
    const char *dir; /* for messages */
    char why[600];   /* detail of the first failed close */
} ckpt_filecache;

/* The default bound: CKPT_MAX_OPEN_FILES from the environment when set (>= 1), else a quarter
 * of the soft RLIMIT_NOFILE, between 4 and 256. */
int ckpt_fc_default_cap(void);

/* An empty cache of at most cap open files. Returns CKPT_OK or CKPT_ENOMEM. */
int ckpt_fc_init(ckpt_filecache *c, int cap, ckpt_fc_open_fn open, void *arg, const char *dir);

/* Changes the bound (closing the least recently used files beyond it). */
int ckpt_fc_set_cap(ckpt_filecache *c, int cap);

/* The entry of file id, opened when needed (closing the least recently used one when full). The
 * pointer is valid until the next call on the cache. */
int ckpt_fc_get(ckpt_filecache *c, int64_t id, ckpt_fc_entry **out);

/* Closes one entry's dataset (when another is to be opened in its place). */
void ckpt_fc_drop_dataset(ckpt_fc_entry *e);

/* Closes every file; returns -1 when a close failed (a write that did not reach the file: the
 * detail is in c->why). */
int ckpt_fc_close_all(ckpt_filecache *c);

/* Closes every file and frees the cache. */
void ckpt_fc_free(ckpt_filecache *c);

/* After an HDF5 open/create failed: 1 when it was for lack of file descriptors. */
int ckpt_fc_out_of_descriptors(void);

#endif
