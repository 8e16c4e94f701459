/* reader.h -- internal view of ckpt_reader (public API in ckpt.h). */
#ifndef CKPT_READER_H
#define CKPT_READER_H

#include "ckpt.h"
#include "meta.h"

#include <hdf5.h>

struct ckpt_reader {
    char *path;
    ckpt_index *ix;
    hid_t *files; /* per index file, -1 until opened */
    hid_t *dsets; /* per saved box, -1 until opened */
    unsigned char *buf; /* piece buffer */
    size_t buf_cap;
    signed char *zinfo; /* per saved box: -1 unknown, 0 HDF5 pipeline, 1 zstd, 2 shuffle+zstd */
    int threads;        /* decompression threads */
};

/* The index of an open reader (for tools and the planner). */
const ckpt_index *ckpt_reader_index(const ckpt_reader *r);

#endif
