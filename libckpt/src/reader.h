/* reader.h -- internal view of ckpt_reader (public API in ckpt.h). */
#ifndef CKPT_READER_H
#define CKPT_READER_H

#include "ckpt.h"
#include "filecache.h"
#include "meta.h"
#include "strmap.h"

#include <hdf5.h>

struct ckpt_reader {
    char *path;
    int dirfd;          /* the checkpoint directory: data files are opened inside it by plain name */
    ckpt_index *ix;
    ckpt_filecache fc;  /* open data files, bounded */
    unsigned char *buf; /* piece buffer */
    size_t buf_cap;
    uint64_t *sums;     /* checksums of the box being read */
    size_t sums_cap;
    int threads;        /* decompression threads */
    /* strings handed out by ckpt_reader_box_info, kept until close */
    ckpt_strmap names;
    char **pool;
    size_t npool, pool_cap;
};

/* Opens a reader over an index already in memory (ckpt_load: rank 0 read it and broadcast its
 * bytes; the commit marker was checked there). */
int ckpt_reader_open_image(const char *path, const void *image, size_t len, ckpt_reader **out);

/* Reads the index of the committed checkpoint at path into memory after checking its marker:
 * *image is malloc'ed. */
int ckpt_reader_read_index(const char *path, unsigned char **image, size_t *len);

/* The index of an open reader (for tools and the planner). */
const ckpt_index *ckpt_reader_index(const ckpt_reader *r);

#endif
