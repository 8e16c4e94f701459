/* meta.h -- the global index of a checkpoint in memory: tensors with their sharding (a regular
 * grid descriptor, or explicit box rows), the file-per-group map, attributes; and the queries
 * every reader, writer and tool asks of it (the k-th saved box of a tensor, the saved boxes that
 * overlap a region, the file and dataset holding a box, where its checksums are). Encoded in
 * index.h5 by meta_io.c; see formats/SPEC.md. */
#ifndef CKPT_META_H
#define CKPT_META_H

#include "box.h"
#include "ckpt.h"
#include "grid.h"
#include "piece.h"
#include "state.h"
#include "strmap.h"
#include "tiling.h"

#define CKPT_INDEX_FILE "index.h5"
#define CKPT_COMMIT_FILE "COMMITTED"
#define CKPT_SHARED_FILE "data.h5"
/* The largest piece_bytes any version of the library writes (a reader refuses more). */
#define CKPT_INDEX_MAX_PIECE_BYTES (INT64_C(1) << 30)

typedef enum ckpt_sharding {
    CKPT_SHARDING_GRID = 0,    /* one box per cell of a regular grid (grid.h) */
    CKPT_SHARDING_EXPLICIT = 1 /* boxes listed one by one (rows) */
} ckpt_sharding;

typedef struct ckpt_itensor {
    char *name;
    ckpt_dtype dtype;
    int ndim;
    int64_t shape[CKPT_MAX_NDIM];
    ckpt_sharding sharding;
    ckpt_grid grid;             /* GRID (a save in the shared layout carries an EXPLICIT tensor's dataset
                                   chunk dims, chosen by rank 0, in grid.chunk) */
    int64_t first_box, nboxes;  /* its saved boxes have global ids first_box .. first_box + nboxes - 1 */
    int64_t first_row;          /* EXPLICIT: rows[first_row .. first_row + nboxes) */
    int64_t first_piece;        /* shared layout: its checksum slots in data.h5:/checksums start here */
    int64_t piece_stride;       /* shared layout, GRID: slots per box (box j at first_piece + j * stride) */
    int64_t nslots;             /* shared layout: its checksum slots (derived) */
    int64_t raw_bytes, stored_bytes;
    ckpt_box_finder *finder;    /* EXPLICIT: built by the first region query */
} ckpt_itensor;

/* One explicitly listed saved box. */
typedef struct ckpt_irow {
    ckpt_box box;
    int32_t tensor;
    int32_t writer;
    int64_t first_piece; /* shared layout: slot relative to the tensor's first_piece; version 1: into checksums */
    /* version 1 only (version 2 derives them) */
    int32_t file;        /* into files */
    int32_t piece_dim;
    int64_t piece_len;
    int64_t stored_bytes;
    char *dataset;
} ckpt_irow;

/* Ranks [first_rank, first_rank + nranks) write the file of `group` (file-per-group layout). */
typedef struct ckpt_igroup {
    int64_t first_rank, nranks, group;
} ckpt_igroup;

typedef struct ckpt_index {
    int format_version;
    char library_version[32];
    ckpt_layout layout;
    int world_size;
    int64_t piece_bytes;
    char compression[64]; /* "none", or e.g. "zstd:1+shuffle" (informational) */
    ckpt_itensor *tensors; /* sorted by name */
    int64_t ntensors;
    int64_t nboxes;        /* all saved boxes */
    ckpt_irow *rows;       /* explicit boxes, grouped by tensor */
    int64_t nrows;
    ckpt_igroup *groups;   /* file-per-group layout, sorted by first_rank */
    int64_t ngroups;
    int64_t nfiles_v2;     /* file-per-group: number of group files */
    /* version 1 only: the file table and the checksums, which version 2 keeps in the data files */
    char **files;
    int nfiles;
    uint64_t *checksums;
    int64_t npieces;
    ckpt_state *attrs;   /* attributes only */
    ckpt_strmap by_name; /* tensor name -> index (ckpt_index_build_lookup) */
} ckpt_index;

/* Where the checksums of a saved box's pieces are. */
typedef enum ckpt_sums_at {
    CKPT_SUMS_INDEX = 0, /* version 1: ix->checksums[base + k] */
    CKPT_SUMS_SLOT = 1,  /* shared layout: data file /checksums[base + k] */
    CKPT_SUMS_ATTR = 2   /* file-per-rank / -group: data file /checksums[a + k], a = the box dataset's first_piece attribute */
} ckpt_sums_at;

/* A saved box, resolved from the index. */
typedef struct ckpt_boxref {
    int64_t tensor, j, gid; /* tensor row, box ordinal within it, global box id */
    ckpt_box box;
    int writer;
    int64_t file;           /* file id (ckpt_index_file_name) */
    ckpt_pieces pieces;
    ckpt_sums_at sums;
    int64_t sum_base;
    const char *dataset_v1; /* version 1: the dataset path stored in the index */
} ckpt_boxref;

/* Allocates an empty index of this library's format version (attrs state created). */
int ckpt_index_new(ckpt_index **out);
void ckpt_index_free(ckpt_index *ix);

/* Builds the name lookup; CKPT_ECORRUPT on duplicate names. */
int ckpt_index_build_lookup(ckpt_index *ix);

/* Box j of tensor t. */
void ckpt_index_box(const ckpt_index *ix, int64_t t, int64_t j, ckpt_boxref *out);

/* Calls fn for every saved box of tensor t that intersects region (every box of a 0-D tensor);
 * O(log n + hits) for explicit boxes, O(hits) for a grid. Stops on fn's non-zero value, which
 * it returns; CKPT_ENOMEM when the explicit finder cannot be built. */
typedef int (*ckpt_index_box_fn)(const ckpt_boxref *b, void *arg);
int ckpt_index_foreach_in(ckpt_index *ix, int64_t t, const ckpt_box *region, ckpt_index_box_fn fn, void *arg);

/* The dataset holding box b inside its file ("/boxes/<gid>", "/tensors/<name>"). */
void ckpt_index_dataset(const ckpt_index *ix, const ckpt_boxref *b, char *buf, size_t len);

/* The part of the tensor a box's dataset holds: the box itself, or (shared layout) all of it. */
void ckpt_index_dataset_box(const ckpt_index *ix, const ckpt_boxref *b, ckpt_box *out);

/* The file a writer's boxes are in (file-per-rank: the rank; -group: its group; shared: 0), -1
 * when the writer is outside the world. And the file's name relative to the directory. */
int64_t ckpt_index_file_of_writer(const ckpt_index *ix, int64_t writer);
void ckpt_index_file_name(const ckpt_index *ix, int64_t file, char *buf, size_t len);

/* Data file names by layout. */
void ckpt_rank_file_name(int64_t rank, char *buf, size_t len);
void ckpt_group_file_name(int64_t group, char *buf, size_t len);
void ckpt_shared_dataset(const char *name, char *buf, size_t len);

/* A name read from an index (tensor name, attribute key) as messages show it: control bytes
 * (below 0x20, 0x7f) as \xNN, so that a message stays one line. */
void ckpt_index_printable(const char *s, char *buf, size_t len);

/* ckpt_name_check for a name read from an index: CKPT_EINVAL naming it printably. */
int ckpt_index_check_name(const char *name, const char *what);

/* Checks the index's contents (the rules of formats/SPEC.md): names, dtypes, shapes, sharding
 * descriptors, explicit boxes tiling their tensor exactly, writers inside the world, the group
 * map, checksum slots. Fills the derived fields. CKPT_ECORRUPT naming the table and row. */
int ckpt_index_validate(ckpt_index *ix, const char *path);

/* Writes the index (this library's format version) to an HDF5 file at path (created, truncating). */
int ckpt_index_write(const ckpt_index *ix, const char *path);

/* Decodes an index.h5 held in memory (format version 1 or 2) and validates it; `path` names it
 * in messages. */
int ckpt_index_read_image(const void *image, size_t len, const char *path, ckpt_index **out);

/* Reads the file at path into memory (*image malloc'ed): the index's bytes, read once. */
int ckpt_index_read_bytes(const char *path, unsigned char **image, size_t *len);

/* Reads the file at path into memory and decodes it. */
int ckpt_index_read(const char *path, ckpt_index **out);

#endif
