/* io_per_rank.h -- HDF5 I/O of the data files: in the file-per-rank (and file-per-group) layout a
 * file holds one chunked dataset per box (chunks = checksum pieces, attribute first_piece = where
 * the box's checksums start in the file's /checksums table); readers read pieces by hyperslab
 * and fetch only the checksums of the pieces they read. No MPI here: tools read through the same
 * code from one process. */
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
    int64_t first_piece;  /* where its checksums go in the file's /checksums table */
    uint64_t *checksums;  /* out: pieces.count entries */
    int64_t stored_bytes; /* out */
} ckpt_write_item;

/* How data files are compressed (both layouts). */
typedef struct ckpt_io_codec {
    ckpt_compress compress;
    int level, shuffle, threads;
} ckpt_io_codec;

/* The name of the checksum table in every data file of format version 2. */
#define CKPT_CHECKSUM_TABLE "/checksums"

/* Creates `path` (which must not exist) and writes every item (numbering their checksum slots in
 * order), then the checksum table; computes the piece checksums from memory; fsyncs the file when
 * asked. With compression, chunks are shuffled and
 * compressed here (codec->threads at a time) and stored with H5Dwrite_chunk: the file is
 * opened by this process alone, where direct chunk writes are safe. On failure the partial
 * file is left for the caller to remove with the temporary directory. */
int ckpt_io_write_rank_file(const char *dir, const char *name, ckpt_write_item *items, int64_t n,
                            const ckpt_io_codec *codec, int do_fsync);

/* The same in steps, for a writer that receives items one at a time (async saves): create the
 * file, write items (each with its first_piece set, in order), close it (passing the status so
 * far; on success the checksums of items[0..n) become the file's checksum table; returns the
 * final status). */
typedef struct ckpt_rank_file {
    hid_t h;
    int dirfd;
    char name[64];
    char path[4200]; /* for messages */
} ckpt_rank_file;
int ckpt_io_rank_open(const char *dir, const char *name, ckpt_rank_file *f);
int ckpt_io_rank_write(ckpt_rank_file *f, ckpt_write_item *it, const ckpt_io_codec *codec);
int ckpt_io_rank_close(ckpt_rank_file *f, int do_fsync, int rc, const ckpt_write_item *items, int64_t n);

/* Creates the checksum table (nslots entries) of a data file opened by several ranks and writes
 * this rank's items' checksums at their first_piece slots, collectively (every rank calls it,
 * with or without items). Returns this rank's status. */
int ckpt_io_write_checksum_slots(hid_t f, int64_t nslots, const ckpt_write_item *items, int64_t n, int parallel,
                                 const char *path);

/* Creates the checksum table of an open data file from n checksums. */
int ckpt_io_write_checksums(hid_t f, const uint64_t *sums, int64_t n, const char *path);

/* Creates a box dataset (file-per-rank / -group layouts): shape = the box, chunks = its pieces,
 * compression per codec, attributes tensor/dtype/offset/first_piece. The caller writes it. */
int ckpt_io_create_box_dataset(hid_t f, const ckpt_write_item *it, const ckpt_io_codec *codec, const char *path,
                               hid_t *out);

/* The same in a file opened with the MPI-IO driver (space allocated at creation, as parallel
 * HDF5 wants); collective over the file's communicator. */
int ckpt_io_create_box_dataset_parallel(hid_t f, const ckpt_write_item *it, const ckpt_io_codec *codec,
                                        const char *path, hid_t *out);

/* Fills in the checksums of an item's pieces from its memory. */
void ckpt_io_checksum_item(ckpt_write_item *it);

/* Fails with a clear message when a dataset needs an HDF5 filter this process lacks. */
int ckpt_io_check_filters(hid_t ds, const char *dataset, const char *display);

/* Opens the data file `name` of the checkpoint directory dirfd read-only (no symlink followed);
 * missing and damaged files get distinct
 * messages naming the file and the rank that wrote it (writer_rank < 0: not one rank), and
 * running out of descriptors says so (max_open: the caller's bound on open files). */
int ckpt_io_open_read(int dirfd, const char *name, const char *display, int writer_rank, hid_t *out, int max_open);

/* Opens a dataset that holds the part `dbox` of a tensor of `dtype` (a saved box in the
 * file-per-rank layout, the whole tensor in the shared layout) reached through hard links only,
 * and checks its shape, element type, storage (inside the file) and filters. */
int ckpt_io_open_dataset(hid_t file, const char *dataset, ckpt_dtype dtype, const ckpt_box *dbox, const char *display,
                         hid_t *out);

/* Opens the checksum table of a data file and checks it is a 1-D uint64 table with storage for
 * all its entries; *n = entries. */
int ckpt_io_open_checksums(hid_t file, const char *display, hid_t *out, int64_t *n);

/* Reads entries [first, first + n) of an open checksum table of `len` entries into out. */
int ckpt_io_read_checksums(hid_t sums, int64_t len, int64_t first, int64_t n, uint64_t *out, const char *display);

/* The first_piece attribute of a box dataset (where its checksums start). */
int ckpt_io_box_first_piece(hid_t ds, const char *dataset, const char *display, int64_t *out);

/* Reads `region` (global coordinates, inside `dbox`) of the open dataset holding `dbox` into
 * buf as a dense row-major array of the region, in the stored dtype. */
int ckpt_io_read_region(hid_t ds, const char *dataset, ckpt_dtype dtype, const ckpt_box *dbox,
                        const ckpt_box *region, void *buf, const char *display);

#endif
