/* io_per_rank.h -- HDF5 I/O of the file-per-rank layout: a rank's file holds one chunked
 * dataset per box it writes (chunks = checksum pieces); readers read pieces by hyperslab.
 * No MPI here: tools read through the same code from one process. */
#ifndef CKPT_IO_PER_RANK_H
#define CKPT_IO_PER_RANK_H

#include "box.h"
#include "ckpt.h"
#include "piece.h"

#include <hdf5.h>
#include <stdint.h>

typedef struct ckpt_write_item {
    const char *tensor;   /* for messages and the dataset's attributes */
    const char *dataset;  /* HDF5 path, e.g. /boxes/17 */
    ckpt_dtype dtype;
    ckpt_box box;
    const void *data;     /* row-major box memory */
    ckpt_pieces pieces;
    uint64_t *checksums;  /* out: pieces.count entries */
    int64_t stored_bytes; /* out */
} ckpt_write_item;

/* Creates `path` (which must not exist) and writes every item; computes the piece checksums
 * from memory; fsyncs the file when asked. On failure the partial file is left for the
 * caller to remove with the temporary directory. */
int ckpt_io_write_rank_file(const char *path, ckpt_write_item *items, int64_t n, int do_fsync);

/* Opens a data file of a checkpoint read-only; missing and damaged files get distinct
 * messages naming the file and the rank that wrote it. */
int ckpt_io_open_read(const char *path, const char *display, int writer_rank, hid_t *out);

/* Opens the dataset holding `box` and checks its shape against the index. */
int ckpt_io_open_dataset(hid_t file, const char *dataset, const ckpt_box *box, const char *display, hid_t *out);

/* Reads `region` (global coordinates, inside `box`) of the open dataset of `box` into buf as
 * a dense row-major array of the region, in the stored dtype. */
int ckpt_io_read_region(hid_t ds, const char *dataset, ckpt_dtype dtype, const ckpt_box *box,
                        const ckpt_box *region, void *buf, const char *display);

#endif
