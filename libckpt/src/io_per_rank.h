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

/* How data files are compressed (both layouts). */
typedef struct ckpt_io_codec {
    ckpt_compress compress;
    int level, shuffle, threads;
} ckpt_io_codec;

/* Creates `path` (which must not exist) and writes every item; computes the piece checksums
 * from memory; fsyncs the file when asked. With compression, chunks are shuffled and
 * compressed here (codec->threads at a time) and stored with H5Dwrite_chunk: the file is
 * opened by this process alone, where direct chunk writes are safe. On failure the partial
 * file is left for the caller to remove with the temporary directory. */
int ckpt_io_write_rank_file(const char *path, ckpt_write_item *items, int64_t n, const ckpt_io_codec *codec,
                            int do_fsync);

/* The same in steps, for a writer that receives items one at a time (async saves): create the
 * file, write items, close it (passing the status so far; returns the final one). */
int ckpt_io_rank_open(const char *path, hid_t *out);
int ckpt_io_rank_write(hid_t f, ckpt_write_item *it, const ckpt_io_codec *codec, const char *path);
int ckpt_io_rank_close(hid_t f, const char *path, int do_fsync, int rc);

/* Fills in the checksums of an item's pieces from its memory. */
void ckpt_io_checksum_item(ckpt_write_item *it);

/* Fails with a clear message when a dataset needs an HDF5 filter this process lacks. */
int ckpt_io_check_filters(hid_t ds, const char *dataset, const char *display);

/* Opens a data file of a checkpoint read-only; missing and damaged files get distinct
 * messages naming the file and the rank that wrote it. */
int ckpt_io_open_read(const char *path, const char *display, int writer_rank, hid_t *out);

/* Opens a dataset that holds the part `dbox` of a tensor (a saved box in the file-per-rank
 * layout, the whole tensor in the shared layout) and checks its shape and filters. */
int ckpt_io_open_dataset(hid_t file, const char *dataset, const ckpt_box *dbox, const char *display, hid_t *out);

/* Reads `region` (global coordinates, inside `dbox`) of the open dataset holding `dbox` into
 * buf as a dense row-major array of the region, in the stored dtype. */
int ckpt_io_read_region(hid_t ds, const char *dataset, ckpt_dtype dtype, const ckpt_box *dbox,
                        const ckpt_box *region, void *buf, const char *display);

#endif
