/*
 * ckpt.h -- distributed, reshardable checkpoints for sharded training state.
 *
 * The one public header of libckpt. Every name is prefixed ckpt_ / CKPT_.
 *
 * Model. A tensor is a global array: a name, a dtype and a global shape (0 to
 * CKPT_MAX_NDIM dims, zero-size dims allowed). What a rank holds of it is zero
 * or more *boxes*: an N-D offset and extent into the global array, backed by
 * row-major contiguous memory owned by the caller. A ckpt_state collects the
 * tensors and boxes of one rank plus typed attributes (step, config, RNG state).
 *
 *   save: every rank passes the boxes it holds; the library checks across ranks
 *         that the boxes cover every tensor exactly once (identical boxes held
 *         by several ranks are replicas and are written once), writes each box
 *         with per-piece checksums, writes a global index, and commits the
 *         checkpoint directory atomically.
 *   load: every rank passes the boxes it *wants*, in any sharding and at any
 *         world size; the library reads only the saved pieces that overlap them,
 *         verifies their checksums and converts dtypes where asked.
 *
 * Errors. Every function that can fail returns an int status: CKPT_OK (0) or a
 * negative ckpt_status. ckpt_errmsg() gives the calling thread's last error
 * message, naming the tensor, rank, file and HDF5/MPI detail at fault.
 * Collective calls agree on failure: when one rank fails, every rank returns
 * the same status -- that of the lowest-numbered failing rank -- and the same
 * message, which starts with "rank N: ", so that every rank takes the same
 * branch afterwards and no rank is left waiting.
 *
 * Thread safety. Distinct handles may be used from distinct threads; the last
 * error is thread-local. Calls that touch HDF5 are serialised internally.
 */
#ifndef CKPT_H
#define CKPT_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; what this header declares is its ABI. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define CKPT_VERSION_MAJOR 0
#define CKPT_VERSION_MINOR 2
#define CKPT_VERSION_PATCH 0
#define CKPT_VERSION_STRING "0.2.0"

/* The on-disk format version this library writes (formats/SPEC.md); it reads 1 and 2. */
#define CKPT_FORMAT_VERSION 2

/* Most dims a tensor may have. */
#define CKPT_MAX_NDIM 8

/* Longest tensor name or attribute key, in bytes, without the NUL. */
#define CKPT_MAX_NAME 1024

/* ------------------------------------------------------------------------- */
/* Status codes and errors                                                    */
/* ------------------------------------------------------------------------- */

typedef enum ckpt_status {
    CKPT_OK = 0,
    CKPT_EINVAL = -1,      /* bad argument: NULL pointer, bad name, bad dims */
    CKPT_ENOMEM = -2,      /* allocation failed */
    CKPT_EIO = -3,         /* the file system or HDF5 failed to read or write */
    CKPT_ENOTFOUND = -4,   /* no such checkpoint, file, tensor or attribute */
    CKPT_EINCOMPLETE = -5, /* checkpoint directory has no commit marker */
    CKPT_ECORRUPT = -6,    /* checksum mismatch, truncated or malformed file */
    CKPT_EMISMATCH = -7,   /* shape/dtype/type disagreement (across ranks or with the checkpoint) */
    CKPT_ECOVERAGE = -8,   /* boxes out of bounds, overlapping, or leaving a gap */
    CKPT_EVERSION = -9,    /* format version this library does not know */
    CKPT_EMPI = -10,       /* an MPI call failed */
    CKPT_EEXIST = -11,     /* destination exists and overwriting was not asked for */
    CKPT_EUNSUPPORTED = -12, /* valid request this build or layout cannot do */
    CKPT_EBUSY = -13         /* the checkpoint root is held by another live job (ckpt_manager_open) */
} ckpt_status;

/* The calling thread's last error message ("" when none). Never NULL. The
 * pointer is valid until the next libckpt call on this thread. */
const char *ckpt_errmsg(void);

/* The calling thread's last error status (CKPT_OK when none). */
int ckpt_errcode(void);

/* A static name for a status code, e.g. "CKPT_ECORRUPT". */
const char *ckpt_status_name(int status);

/* ------------------------------------------------------------------------- */
/* Data types                                                                 */
/* ------------------------------------------------------------------------- */

typedef enum ckpt_dtype {
    CKPT_F32 = 0,
    CKPT_F64 = 1,
    CKPT_F16 = 2,  /* IEEE 754 binary16 */
    CKPT_BF16 = 3, /* bfloat16: the top 16 bits of an f32 */
    CKPT_I8 = 4,
    CKPT_I16 = 5,
    CKPT_I32 = 6,
    CKPT_I64 = 7,
    CKPT_U8 = 8,
    CKPT_BOOL = 9, /* one byte, 0 or 1 */
    CKPT_DTYPE_COUNT = 10
} ckpt_dtype;

/* Bytes per element of a dtype, 0 for an unknown one. */
size_t ckpt_dtype_size(ckpt_dtype dtype);

/* The dtype's name as written on disk ("f32", "bf16", ...), NULL if unknown. */
const char *ckpt_dtype_name(ckpt_dtype dtype);

/* Parses a dtype name; returns CKPT_EINVAL for an unknown name. */
int ckpt_dtype_from_name(const char *name, ckpt_dtype *out);

/* ------------------------------------------------------------------------- */
/* Box helpers                                                                */
/* ------------------------------------------------------------------------- */

/*
 * The box that rank `rank` of `nranks` holds under an even Shard(dim) split of
 * a tensor of global `shape`: dim `dim` is cut into chunks of ceil(n/nranks)
 * rows, the last ones smaller or empty (the split of torch.chunk and FSDP2);
 * every other dim is whole. Writes ndim entries to offset and extent.
 */
int ckpt_shard_box(int ndim, const int64_t *shape, int dim, int rank, int nranks,
                   int64_t *offset, int64_t *extent);

/* ------------------------------------------------------------------------- */
/* State: what one rank holds (save) or wants (load)                          */
/* ------------------------------------------------------------------------- */

typedef struct ckpt_state ckpt_state;

/* Tensor flags for ckpt_state_add_tensor. */
#define CKPT_TENSOR_OPTIONAL 0x1u /* load: not an error when the checkpoint lacks it */

/* Creates an empty state. Free it with ckpt_state_free. */
int ckpt_state_create(ckpt_state **out);

/* Frees a state and everything it owns (never the caller's tensor memory). */
void ckpt_state_free(ckpt_state *state);

/*
 * Declares a tensor: its name, dtype and global shape. For a save, the dtype is
 * the one written; for a load, it is the dtype of the caller's buffers, which
 * may differ from the saved dtype when a conversion exists (ckpt_dtype_can_cast).
 * Declaring the same name twice with the same dtype/shape is allowed; with a
 * different one it is CKPT_EMISMATCH. Names: 1..CKPT_MAX_NAME bytes, printable
 * ASCII, '/' separates groups (no leading, trailing or doubled '/', no "." or
 * ".." components).
 */
int ckpt_state_add_tensor(ckpt_state *state, const char *name, ckpt_dtype dtype,
                          int ndim, const int64_t *shape, unsigned flags);

/*
 * Adds a box of a declared tensor that this rank holds (save) or wants (load).
 * `data` points at the box's elements in row-major order, extent[0] slowest;
 * it must stay valid until the save or load returns. May be NULL only for a
 * box of zero volume. Boxes of one rank must not overlap each other.
 */
int ckpt_state_add_box(ckpt_state *state, const char *name, const int64_t *offset,
                       const int64_t *extent, void *data);

/* Declares a tensor and adds this rank's even Shard(dim) box of it (see
 * ckpt_shard_box); `data` holds that box. */
int ckpt_state_add_shard(ckpt_state *state, const char *name, ckpt_dtype dtype, int ndim,
                         const int64_t *shape, int dim, int rank, int nranks, void *data);

/* Declares a tensor and adds the whole of it as this rank's box. Called on
 * several ranks with the same name, the copies are replicas: saved once. */
int ckpt_state_add_replicated(ckpt_state *state, const char *name, ckpt_dtype dtype,
                              int ndim, const int64_t *shape, void *data);

/* After a load: 1 when the tensor was found and read, 0 when it was optional and
 * absent. CKPT_ENOTFOUND when the state never declared it. */
int ckpt_state_tensor_loaded(const ckpt_state *state, const char *name, int *loaded);

/* Number of tensors declared in the state. */
int ckpt_state_num_tensors(const ckpt_state *state);

/*
 * Attributes: global non-tensor state. On save the attributes of rank 0 are
 * written (every rank may set them; only rank 0's are kept). On load every
 * rank receives all of the checkpoint's attributes, replacing those it had.
 * Setting an existing key replaces its value and type.
 */
typedef enum ckpt_attr_type {
    CKPT_ATTR_INT = 0,    /* int64 */
    CKPT_ATTR_DOUBLE = 1, /* double */
    CKPT_ATTR_STRING = 2, /* NUL-terminated UTF-8 */
    CKPT_ATTR_BYTES = 3   /* arbitrary bytes (RNG state, serialized config) */
} ckpt_attr_type;

int ckpt_state_set_int(ckpt_state *state, const char *key, int64_t value);
int ckpt_state_set_double(ckpt_state *state, const char *key, double value);
int ckpt_state_set_string(ckpt_state *state, const char *key, const char *value);
int ckpt_state_set_bytes(ckpt_state *state, const char *key, const void *data, size_t len);

/* Getters: CKPT_ENOTFOUND when the key is absent, CKPT_EMISMATCH when it has
 * another type. Returned pointers stay valid until the state is modified or
 * freed. */
int ckpt_state_get_int(const ckpt_state *state, const char *key, int64_t *value);
int ckpt_state_get_double(const ckpt_state *state, const char *key, double *value);
int ckpt_state_get_string(const ckpt_state *state, const char *key, const char **value);
int ckpt_state_get_bytes(const ckpt_state *state, const char *key, const void **data, size_t *len);

/* Number of attributes, and the key and type of the i-th (in key order). */
int ckpt_state_num_attrs(const ckpt_state *state);
int ckpt_state_attr_info(const ckpt_state *state, int i, const char **key, ckpt_attr_type *type);

/* ------------------------------------------------------------------------- */
/* Save                                                                       */
/* ------------------------------------------------------------------------- */

typedef enum ckpt_layout {
    CKPT_LAYOUT_PER_RANK = 0, /* one HDF5 file per writing rank + index.h5 */
    CKPT_LAYOUT_SHARED = 1,   /* one HDF5 file written by all ranks through MPI-IO, one global
                                 dataset per tensor (plain h5py reads whole tensors) + index.h5 */
    CKPT_LAYOUT_GROUP = 2     /* one HDF5 file per group of ranks (the ranks of a node, or every
                                 group_size ranks), written by the group through MPI-IO; boxes as
                                 in the file-per-rank layout. Between the two: few files for the
                                 file system's metadata servers, no single lock domain */
} ckpt_layout;

typedef enum ckpt_compress {
    CKPT_COMPRESS_NONE = 0,
    CKPT_COMPRESS_ZSTD = 1 /* HDF5 filter 32015 (zstd), optionally after HDF5's byte shuffle */
} ckpt_compress;

#define CKPT_SAVE_OPTIONS_VERSION 2

typedef struct ckpt_save_options {
    unsigned version;       /* CKPT_SAVE_OPTIONS_VERSION (1 is still accepted: the fields of 1) */
    ckpt_layout layout;     /* default CKPT_LAYOUT_PER_RANK */
    int overwrite;          /* replace an existing checkpoint at path; default 0 (CKPT_EEXIST) */
    int fsync;              /* fsync files and directories before commit; default 1 */
    int64_t piece_bytes;    /* checksum piece (= HDF5 chunk) size; default 4 MiB */
    ckpt_compress compress; /* default CKPT_COMPRESS_NONE */
    int level;              /* zstd level, ZSTD_minCLevel()..22 (negative = fast); default 1 */
    int shuffle;            /* byte-shuffle before zstd; default 1 */
    int threads;            /* compression threads per rank (file-per-rank layout); default 1 */
    /* version 2 */
    int group_size;         /* CKPT_LAYOUT_GROUP: ranks per file (ranks r with the same r / group_size
                               share a file); 0 (default) = the ranks of one node (shared memory) */
} ckpt_save_options;

/* Fills *opts with the defaults of this library version. */
void ckpt_save_options_init(ckpt_save_options *opts);

/*
 * Saves `state` to the checkpoint directory `path`. Collective over `comm`:
 * every rank calls it with the same path and options. Checks before writing
 * anything: dtypes and shapes of a name agree on every rank that declares it,
 * every box lies inside its tensor, and the boxes of all ranks cover every
 * tensor exactly once (replicas aside). Writes under a temporary name beside
 * `path` and renames it into place only when every rank succeeded; on failure
 * nothing is left at `path` and every rank returns the same error. With
 * opts->overwrite an existing checkpoint at `path` is swapped out atomically
 * (renameat2 RENAME_EXCHANGE) and then removed. Where the file system cannot
 * exchange (NFS, some parallel file systems) the old one is renamed to
 * `<path>.tmp-<nonce>.old` first, the new one renamed into place, and the old
 * one removed: a crash between the renames leaves both copies committed, and
 * the manager (ckpt_manager_latest, ckpt_manager_clean_incomplete) puts the
 * old one back. opts may be NULL.
 */
int ckpt_save(MPI_Comm comm, const char *path, const ckpt_state *state,
              const ckpt_save_options *opts);

/* ------------------------------------------------------------------------- */
/* Asynchronous saves                                                         */
/* ------------------------------------------------------------------------- */

/*
 * A saver runs one save at a time in the background. ckpt_saver_save plans the
 * save collectively, copies this rank's boxes into a staging buffer and
 * returns: the caller may modify its tensors at once. A background thread
 * writes and fsyncs the data (it makes no MPI calls). The collective commit --
 * every rank agrees that its data is written, rank 0 writes the index, renames
 * and marks the checkpoint committed -- happens on the caller's thread in
 * ckpt_saver_wait, in a ckpt_saver_test that finds the writing finished, or at
 * the start of the next ckpt_saver_save (which therefore waits for the previous
 * save). An error in the background (disk full, I/O error) is reported by that
 * call on every rank, and the checkpoint is not committed.
 *
 * Memory: the staging buffer is allocated once (at most staging_bytes) and
 * reused. When a rank's boxes exceed it, the save call streams: it waits for the
 * writer to drain the buffer and refills it; a box larger than the whole buffer
 * is written from the caller's memory while the call waits. The stall grows,
 * memory does not. The shared layout's collective write happens inside
 * ckpt_saver_save (only its commit is deferred).
 */
typedef struct ckpt_saver ckpt_saver;

#define CKPT_SAVER_OPTIONS_VERSION 1

typedef struct ckpt_saver_options {
    unsigned version;      /* CKPT_SAVER_OPTIONS_VERSION */
    int64_t staging_bytes; /* per rank; default 1 GiB */
    int no_copy;           /* 1: no staging copy -- the caller promises not to modify the saved
                              boxes until the save completes (e.g. until before its next
                              optimizer update); the stall is then the planning only. Default 0 */
} ckpt_saver_options;

/* Fills *opts with the defaults of this library version. */
void ckpt_saver_options_init(ckpt_saver_options *opts);

/* Creates a saver for the ranks of comm (not collective; the comm must outlive
 * the saver). opts may be NULL. */
int ckpt_saver_create(MPI_Comm comm, const ckpt_saver_options *opts, ckpt_saver **out);

/* Starts an asynchronous save of `state` to `path` (collective; arguments as
 * for ckpt_save). First completes the save in flight, if any: when that one
 * failed, its error is returned and the new save is not started. */
int ckpt_saver_save(ckpt_saver *saver, const char *path, const ckpt_state *state,
                    const ckpt_save_options *opts);

/* Completes the save in flight (collective): waits for the writing, commits,
 * and returns the save's status, the same on every rank. CKPT_OK when no save
 * is in flight. */
int ckpt_saver_wait(ckpt_saver *saver);

/* Collective and non-blocking: *done = 1 when no save is in flight or when
 * every rank has finished writing, in which case the save is committed here and
 * its status returned; *done = 0 otherwise. */
int ckpt_saver_test(ckpt_saver *saver, int *done);

/* Local query: 1 when a save awaits its commit (*path, if non-NULL, names it). */
int ckpt_saver_in_flight(const ckpt_saver *saver, const char **path);

/* Frees the saver. A save still in flight is finished writing but abandoned
 * uncommitted (call ckpt_saver_wait first to commit it). */
void ckpt_saver_free(ckpt_saver *saver);

/* ------------------------------------------------------------------------- */
/* Load                                                                       */
/* ------------------------------------------------------------------------- */

#define CKPT_LOAD_OPTIONS_VERSION 1

typedef struct ckpt_load_options {
    unsigned version; /* CKPT_LOAD_OPTIONS_VERSION */
    int verify;       /* verify the checksum of every piece read; default 1 */
    int threads;      /* decompression threads per rank (zstd, file-per-rank); default 1 */
} ckpt_load_options;

/* Fills *opts with the defaults of this library version. */
void ckpt_load_options_init(ckpt_load_options *opts);

/*
 * Fills the boxes of `state` from the checkpoint at `path`, and replaces the
 * state's attributes with the checkpoint's. Collective over `comm`, whose size
 * need not equal the world size that saved. Each rank reads only the saved
 * pieces overlapping its boxes. Every declared tensor must exist in the
 * checkpoint with the same global shape (CKPT_TENSOR_OPTIONAL ones may be
 * absent). When MPI is not initialised, or comm is MPI_COMM_NULL, the call is
 * local to this process. opts may be NULL.
 */
int ckpt_load(MPI_Comm comm, const char *path, ckpt_state *state, const ckpt_load_options *opts);

/* ------------------------------------------------------------------------- */
/* Writer: one process writes the checkpoint N ranks would have written       */
/* ------------------------------------------------------------------------- */

/*
 * For offline tools (resharding, merging, conversion): declare tensors and
 * which rank owns which box, then write the data piece by piece -- memory stays
 * at what the caller passes per call -- and commit atomically. The result is
 * indistinguishable from a ckpt_save by world_size ranks with those boxes (same
 * planner: coverage checked, identical boxes of several ranks are replicas).
 * No MPI needed. Declarations close at the first write.
 */
typedef struct ckpt_writer ckpt_writer;

/* Starts a checkpoint at `path` as `world_size` ranks would write it, with the
 * layout, compression and piece size of opts (NULL: defaults). */
int ckpt_writer_open(const char *path, int world_size, const ckpt_save_options *opts, ckpt_writer **out);

/* Declares a tensor (global shape and the dtype written). */
int ckpt_writer_add_tensor(ckpt_writer *w, const char *name, ckpt_dtype dtype, int ndim, const int64_t *shape);

/* Declares that `rank` holds box [offset, offset+extent) of a declared tensor. */
int ckpt_writer_add_box(ckpt_writer *w, const char *name, const int64_t *offset, const int64_t *extent, int rank);

/* Declares that ranks 0..nranks-1 (nranks <= world size) hold the even Shard(dim) boxes of a
 * declared tensor (ckpt_shard_box). Costs O(1) memory whatever nranks: prefer it to nranks calls
 * of ckpt_writer_add_box. */
int ckpt_writer_add_shard(ckpt_writer *w, const char *name, int dim, int nranks);

/* Most data files the writer keeps open at once (least recently used closed first); default
 * ckpt_reader_set_max_open_files's. */
int ckpt_writer_set_max_open_files(ckpt_writer *w, int n);

/* Sets the checkpoint's attributes (copies those of `attrs`). */
int ckpt_writer_set_attrs(ckpt_writer *w, const ckpt_state *attrs);

/* Plans the checkpoint now (declarations close) and gives the number of saved
 * boxes of a tensor after replica removal -- the range of j below. */
int ckpt_writer_num_boxes(ckpt_writer *w, const char *name, int64_t *nboxes);

/* The k-th checksum piece of the j-th saved box of a tensor (boxes in the
 * index's order, after replica removal): its offset and extent. With k = -1
 * only *npieces is set. The natural unit of ckpt_writer_write. */
int ckpt_writer_box_piece(ckpt_writer *w, const char *name, int64_t j, int64_t k, int64_t *offset, int64_t *extent,
                          int64_t *npieces);

/* Writes the region [offset, offset+extent) of a tensor from `data` (row-major,
 * the tensor's dtype). The region must lie in one saved box and consist of
 * whole pieces of it; every piece must be written exactly once before commit. */
int ckpt_writer_write(ckpt_writer *w, const char *name, const int64_t *offset, const int64_t *extent,
                      const void *data);

/* Checks that every piece was written, writes the index and commits; frees the
 * writer whatever the outcome. */
int ckpt_writer_commit(ckpt_writer *w);

/* Abandons the checkpoint (removes what was written) and frees the writer. */
void ckpt_writer_abort(ckpt_writer *w);

/* The on-disk name of a layout ("file-per-rank", "shared", "file-per-group"). */
const char *ckpt_layout_name(ckpt_layout layout);

/* ------------------------------------------------------------------------- */
/* Reader: a committed checkpoint seen from one process, no MPI needed        */
/* ------------------------------------------------------------------------- */

typedef struct ckpt_reader ckpt_reader;

typedef struct ckpt_tensor_info {
    const char *name;
    ckpt_dtype dtype;
    int ndim;
    int64_t shape[CKPT_MAX_NDIM];
    int64_t nboxes;       /* saved boxes (replicas counted once) */
    int64_t raw_bytes;    /* bytes of the whole tensor */
    int64_t stored_bytes; /* bytes its datasets take on disk */
} ckpt_tensor_info;

typedef struct ckpt_box_info {
    int64_t offset[CKPT_MAX_NDIM];
    int64_t extent[CKPT_MAX_NDIM];
    int writer_rank;      /* the rank that wrote it */
    const char *file;     /* file name, relative to the checkpoint directory (valid until the reader closes) */
    const char *dataset;  /* HDF5 path of the dataset inside that file (likewise) */
    int64_t npieces;      /* checksummed pieces */
} ckpt_box_info;

/* Opens the committed checkpoint at `path` and reads its index. Refuses a
 * directory without a commit marker (CKPT_EINCOMPLETE) and a format version it
 * does not know (CKPT_EVERSION). */
int ckpt_reader_open(const char *path, ckpt_reader **out);

/* Closes the reader and every file it opened. */
void ckpt_reader_close(ckpt_reader *reader);

/* Global facts of the checkpoint. */
int ckpt_reader_format_version(const ckpt_reader *reader);
const char *ckpt_reader_library_version(const ckpt_reader *reader);
int ckpt_reader_world_size(const ckpt_reader *reader);
ckpt_layout ckpt_reader_layout(const ckpt_reader *reader);

/* How the checkpoint was compressed ("none", or e.g. "zstd:1+shuffle"), and its
 * checksum piece size in bytes. */
const char *ckpt_reader_compression(const ckpt_reader *reader);
int64_t ckpt_reader_piece_bytes(const ckpt_reader *reader);

/* Tensors, in name order. */
int ckpt_reader_num_tensors(const ckpt_reader *reader);
int ckpt_reader_tensor_info(const ckpt_reader *reader, int i, ckpt_tensor_info *info);
/* Index of a tensor by name, CKPT_ENOTFOUND when absent. */
int ckpt_reader_find(const ckpt_reader *reader, const char *name, int *i);
/* The j-th saved box of tensor i. */
int ckpt_reader_box_info(const ckpt_reader *reader, int i, int64_t j, ckpt_box_info *info);

/*
 * Reads the region [offset, offset+extent) of tensor `name` into `buf`
 * (row-major, `dtype`, converting from the saved dtype where needed). Only the
 * saved pieces overlapping the region are read; with `verify` their checksums
 * are checked first.
 */
int ckpt_reader_read(ckpt_reader *reader, const char *name, ckpt_dtype dtype,
                     const int64_t *offset, const int64_t *extent, void *buf, int verify);

/* Threads used to decompress zstd pieces in ckpt_reader_read (default 1). */
int ckpt_reader_set_threads(ckpt_reader *reader, int threads);

/* Most data files the reader keeps open at once (least recently used closed first), so one
 * process reads a checkpoint of any number of files. Default: CKPT_MAX_OPEN_FILES from the
 * environment when set, else a quarter of the RLIMIT_NOFILE soft limit, between 4 and 256. */
int ckpt_reader_set_max_open_files(ckpt_reader *reader, int n);

/* Fills every box of `state` (and its attributes) from this checkpoint; the
 * non-collective core of ckpt_load. */
int ckpt_reader_load(ckpt_reader *reader, ckpt_state *state, const ckpt_load_options *opts);

/* The checkpoint's attributes, read into a state of their own: the caller
 * queries them with the ckpt_state_get_* calls. The state belongs to the
 * reader. */
const ckpt_state *ckpt_reader_attrs(const ckpt_reader *reader);

/* 1 when a dtype can be converted to another on load: any dtype to itself, and
 * among f32/f64/f16/bf16. */
int ckpt_dtype_can_cast(ckpt_dtype from, ckpt_dtype to);

/* Converts n elements as loads do (round to nearest, ties to even, in one step
 * even from f64; NaN stays NaN; overflow gives Inf). CKPT_EINVAL unless
 * ckpt_dtype_can_cast(from, to). */
int ckpt_dtype_convert(ckpt_dtype from, const void *src, ckpt_dtype to, void *dst, size_t n);

/* ------------------------------------------------------------------------- */
/* Checkpoint manager: step-numbered checkpoints under one root directory     */
/* ------------------------------------------------------------------------- */

/*
 * A manager keeps the checkpoints of one training run under a root directory,
 * one per step, at ROOT/step-%08lld ("step-00001200"; a step of more than 8
 * digits takes as many as it needs). Step directories that are not usable are
 * told apart from those that are:
 *
 *   committed    a COMMITTED marker matching the index, and the index opens
 *                (ckpt_reader_open succeeds): the only ones that count;
 *   incomplete   a step directory without a COMMITTED marker;
 *   corrupt      a marker, but the index does not match it or does not parse;
 *   temporary    ROOT/step-N.tmp-*: a save in progress, or the debris of a save
 *                that was interrupted (crash, kill -9, node failure).
 *
 * ckpt_manager_latest skips everything but committed checkpoints (warning
 * about each it skips); retention counts and deletes only committed ones;
 * ckpt_manager_clean_incomplete removes incomplete directories and debris.
 * Names in ROOT that are not step directories are never touched.
 *
 * One job per root. Rank 0 of a manager holds a lock on ROOT/ckpt-manager.lock
 * from ckpt_manager_open to ckpt_manager_close; the file also records the
 * holder (host, pid, since when, scheduler job id). A second manager of the
 * root -- another job, or this process -- gets CKPT_EBUSY naming the holder,
 * for as long as the holder's process lives: after a kill -9 of mpirun its
 * ranks may go on running and committing, and a requeued job is refused until
 * they end. A lock whose holder is gone is taken over with a warning naming
 * it. What this guarantees depends on the file system:
 *   local file systems: exact; the kernel drops the lock when the holder ends
 *     in any way (it is an open-file-description lock, F_OFD_SETLK);
 *   NFS (v3 through the NLM lock manager, v4 in the protocol): the lock is
 *     held by the server and excludes jobs on every client. A holder whose
 *     host crashed keeps it until the server notices (NFSv4: the lease, 90 s
 *     by default; NFSv3: the client's reboot); mounts with "nolock" or
 *     "local_lock=posix|all" make locks local to one client, and then only
 *     jobs on the same host are excluded (the record still tells a live
 *     holder there from a dead one);
 *   parallel file systems: as coherent as the mount makes fcntl locks --
 *     GPFS/Spectrum Scale: cluster-wide; Lustre: cluster-wide with the "flock"
 *     mount option, node-local with "localflock", none with "noflock";
 *     BeeGFS: node-local unless tuneUseGlobalFileLocks is set. Where locks
 *     are missing (ENOLCK, ENOSYS) the record alone protects, with a warning;
 *     a record from another host is then never taken over automatically
 *     (remove the file once that job is known to be gone).
 * Tools that only look at a root (ckpt_manager_peek_latest, ckpt_reader_*)
 * take no lock.
 *
 * Collective calls run over the manager's communicator (a dup of the one given
 * to ckpt_manager_open; MPI_COMM_NULL gives a manager local to one process):
 * rank 0 reads and changes the root, the other ranks wait, and all return the
 * same status and message. Call them in the same order on every rank.
 *
 * A training loop with preemption (see ckpt_preempt_install):
 *
 *   ckpt_preempt_install();
 *   ckpt_manager_open(MPI_COMM_WORLD, "ckpt", &mo, &m);
 *   if (ckpt_manager_latest(m, &step, path, sizeof path) == CKPT_OK)
 *       ckpt_load(MPI_COMM_WORLD, path, state, NULL);      // resume
 *   for (step++; step <= last; step++) {
 *       train_one_step();
 *       int save, stop;
 *       ckpt_manager_should_save(m, step, &save);
 *       ckpt_preempt_requested(MPI_COMM_WORLD, &stop);
 *       if (save || stop)
 *           ckpt_manager_save(m, step, state, NULL);          // then retention
 *       if (stop) {
 *           ckpt_manager_close(m);
 *           MPI_Finalize();
 *           return CKPT_EXIT_REQUEUE;                          // "run me again"
 *       }
 *   }
 */
typedef struct ckpt_manager ckpt_manager;

typedef enum ckpt_best_mode {
    CKPT_BEST_MIN = 0, /* lower is better (a loss) */
    CKPT_BEST_MAX = 1  /* higher is better (an accuracy) */
} ckpt_best_mode;

#define CKPT_MANAGER_OPTIONS_VERSION 1

typedef struct ckpt_manager_options {
    unsigned version;         /* CKPT_MANAGER_OPTIONS_VERSION */
    /* Retention, applied after each save committed. A checkpoint survives when
     * any rule keeps it; the newest committed one always survives. */
    int keep_last;            /* the keep_last newest committed; 0 = keep all (default) */
    int64_t keep_every;       /* also those whose step is a multiple of keep_every; 0 = off */
    int keep_best;            /* also the keep_best best by best_metric; 0 = off */
    const char *best_metric;  /* attribute key of the metric (a double, or an int); copied */
    ckpt_best_mode best_mode; /* default CKPT_BEST_MIN */
    /* Save policy (ckpt_manager_should_save); both 0 (default) = never. */
    int64_t save_every_steps; /* steps that are multiples of this */
    double save_every_secs;   /* when this many seconds passed since the last save */
    /* Warnings (skipped checkpoints, debris, replaced directories), on rank 0.
     * NULL (default): printed to stderr as "libckpt: warning: ...". */
    void (*warn)(const char *msg, void *user);
    void *warn_user;
} ckpt_manager_options;

/* Fills *opts with the defaults: keep all, no save policy, warnings to stderr. */
void ckpt_manager_options_init(ckpt_manager_options *opts);

/* Opens a manager of the checkpoints under `root`, creating the directory (and
 * its parents) on rank 0 when missing; every rank must then see it (a shared
 * file system), and takes the root's lock on rank 0 (see above): CKPT_EBUSY
 * on every rank, naming the holder, while another manager of the root lives.
 * Collective over comm (MPI_COMM_NULL: this process alone); the timer of
 * save_every_secs starts here. opts may be NULL (defaults). */
int ckpt_manager_open(MPI_Comm comm, const char *root, const ckpt_manager_options *opts,
                      ckpt_manager **out);

/* Frees the manager and releases the root's lock (and its communicator: call
 * it on every rank, before MPI_Finalize). NULL is a no-op. */
void ckpt_manager_close(ckpt_manager *m);

/* Writes ROOT/step-%08lld of `step` (>= 0) to buf; local. */
int ckpt_manager_step_path(const ckpt_manager *m, int64_t step, char *buf, size_t len);

/* The newest committed checkpoint: its step and path (path may be NULL).
 * Rank 0 first restores every step whose overwrite was interrupted between
 * its renames (see ckpt_save; a warning says which copy), then looks from the
 * highest step down, skipping with a warning every directory that is not
 * committed (and warning about debris), and tells all ranks. CKPT_ENOTFOUND
 * when there is none; a restore that fails is an error (CKPT_EIO), never a
 * silent fall back to an older step. Collective. */
int ckpt_manager_latest(ckpt_manager *m, int64_t *step, char *path, size_t len);

/* What ckpt_manager_latest would answer for `root`, read-only: no lock (the
 * root may be in use by a job), no warnings, nothing restored, no MPI. The
 * same rule: the newest committed step directory, where a step whose
 * overwrite was interrupted between its renames (file systems without
 * RENAME_EXCHANGE) counts through the copy that ckpt_manager_latest would
 * restore -- then path names that copy's directory. CKPT_ENOTFOUND when there
 * is none. Local. */
int ckpt_manager_peek_latest(const char *root, int64_t *step, char *path, size_t len);

typedef enum ckpt_entry_state {
    CKPT_ENTRY_COMMITTED = 0,  /* usable: marker matches the index, which opens */
    CKPT_ENTRY_INCOMPLETE = 1, /* step directory without a COMMITTED marker */
    CKPT_ENTRY_CORRUPT = 2,    /* marker present, index damaged or not matching it */
    CKPT_ENTRY_UNREADABLE = 3, /* cannot be judged: I/O error, newer format version; never removed */
    CKPT_ENTRY_TEMPORARY = 4   /* step-N.tmp-*: a save in progress or debris of an interrupted one */
} ckpt_entry_state;

typedef struct ckpt_manager_entry {
    int64_t step;
    ckpt_entry_state state;
    int status;       /* CKPT_OK, or the status ckpt_reader_open gave (why it is not committed) */
    int64_t bytes;    /* bytes of the files in it */
    int has_metric;   /* committed and holds the attribute best_metric (not NaN) */
    double metric;
    char name[256];   /* the directory's name inside the root */
} ckpt_manager_entry;

/* Every step directory and temporary directory under the root, by step (a
 * step's directory before its temporaries), each opened to tell its state and
 * read its metric. *entries is malloc'ed (caller frees; NULL when *n is 0).
 * Local: this process reads the root, no communication. */
int ckpt_manager_list(const ckpt_manager *m, ckpt_manager_entry **entries, int *n);

/* Whether to save at `step`: 1 when save_every_steps divides it, or when
 * save_every_secs have passed since the last save recorded (or since open),
 * and `step` is not the step last saved. Rank 0's clock (monotonic) decides
 * and every rank receives its answer. Collective. */
int ckpt_manager_should_save(ckpt_manager *m, int64_t step, int *save);

/* Records that `step` was saved now (ckpt_manager_save does it): restarts the
 * save_every_secs timer and protects the step from retention. For saves made
 * by other means; call it on every rank. Local. */
int ckpt_manager_mark_saved(ckpt_manager *m, int64_t step);

/* ckpt_save of `state` to ckpt_manager_step_path(step) (replacing an
 * incomplete or corrupt directory of that step, with a warning), then
 * ckpt_manager_mark_saved and ckpt_manager_apply_retention. A committed
 * checkpoint of that step is CKPT_EEXIST unless opts->overwrite. When the save
 * committed but retention failed, the status is retention's and the message
 * says the step was saved. Collective; opts may be NULL. */
int ckpt_manager_save(ckpt_manager *m, int64_t step, const ckpt_state *state,
                      const ckpt_save_options *opts);

/* Deletes the committed checkpoints no retention rule keeps. Never deletes the
 * newest committed one nor the step last saved, nor anything not committed.
 * Each is first renamed to a step-N.tmp-del-* name and then removed, so an
 * interrupted deletion leaves only debris. Rank 0 deletes, the others wait;
 * *removed (may be NULL) gets the count on every rank. Collective. */
int ckpt_manager_apply_retention(ckpt_manager *m, int *removed);

/* Removes incomplete step directories and step-N.tmp-* debris (corrupt and
 * unreadable ones are left for a person to look at), after restoring the
 * steps of interrupted overwrites as ckpt_manager_latest does; the committed
 * copy a step stands on is never removed. Call it only while no
 * save into this root is running: it would take that save's temporary
 * directory. Rank 0 removes, the others wait; *removed (may be NULL) gets the
 * count on every rank. Collective. */
int ckpt_manager_clean_incomplete(ckpt_manager *m, int *removed);

/* ------------------------------------------------------------------------- */
/* Preemption                                                                 */
/* ------------------------------------------------------------------------- */

/*
 * Exit status of a job that saved on preemption and wants to be run again:
 * 75 is EX_TEMPFAIL of <sysexits.h>, "temporary failure, the user is invited to
 * retry", which wrappers and schedulers read as "retry" and which no crash or
 * ordinary failure produces. With SLURM: submit with --requeue and requeue on
 * that code, e.g. in the batch script
 *     srun ./train; rc=$?
 *     if [ $rc -eq 75 ]; then scontrol requeue "$SLURM_JOB_ID"; fi
 * and ask for a warning signal before the time limit (sbatch --signal=USR1@120).
 * Under Open MPI's mpirun, signal mpirun with SIGUSR1: it forwards it to every
 * rank and exits with the first non-zero rank status, i.e. 75. (A SIGTERM sent
 * to mpirun itself makes it kill the ranks, leaving them no time to save.)
 */
#define CKPT_EXIT_REQUEUE 75

/* Installs handlers for SIGTERM and SIGUSR1 that only set a flag (a volatile
 * sig_atomic_t), with SA_RESTART so interrupted system calls resume. Neither
 * signal then ends the process: the caller polls ckpt_preempt_requested, saves
 * and exits. Calling it again re-installs the handlers (idempotent). */
int ckpt_preempt_install(void);

/* *requested = 1 when SIGTERM or SIGUSR1 arrived on any rank of comm since the
 * install (or the last ckpt_preempt_clear), else 0; the same on every rank.
 * Collective over comm (one MPI_Allreduce on it); MPI_COMM_NULL, or MPI not
 * initialised: this process's flag alone. */
int ckpt_preempt_requested(MPI_Comm comm, int *requested);

/* Clears this process's flag (a job that saves on SIGUSR1 and goes on). */
void ckpt_preempt_clear(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* CKPT_H */
