/* meta.h -- the global index of a checkpoint (index.h5): tensors, saved boxes, piece
 * checksums, files, attributes. Encoded as HDF5 compound tables; see formats/SPEC.md. */
#ifndef CKPT_META_H
#define CKPT_META_H

#include "box.h"
#include "ckpt.h"
#include "state.h"
#include "strmap.h"

#define CKPT_INDEX_FILE "index.h5"
#define CKPT_COMMIT_FILE "COMMITTED"

typedef struct ckpt_itensor {
    char *name;
    ckpt_dtype dtype;
    int ndim;
    int64_t shape[CKPT_MAX_NDIM];
    int64_t first_box, nboxes; /* boxes[first_box .. +nboxes) */
    int64_t raw_bytes, stored_bytes;
} ckpt_itensor;

typedef struct ckpt_ibox {
    int32_t tensor; /* index into tensors */
    int32_t file;   /* index into files */
    int32_t writer; /* rank that wrote it */
    int32_t piece_dim;
    ckpt_box box;
    int64_t piece_len;
    int64_t first_piece, npieces; /* checksums[first_piece .. +npieces) */
    int64_t stored_bytes;
    char *dataset; /* HDF5 path inside the file */
} ckpt_ibox;

typedef struct ckpt_index {
    int format_version;
    char library_version[32];
    ckpt_layout layout;
    int world_size;
    int64_t piece_bytes;
    char compression[64]; /* "none", or e.g. "zstd:1+shuffle" (informational) */
    char **files;
    int nfiles;
    ckpt_itensor *tensors; /* sorted by name */
    int64_t ntensors;
    ckpt_ibox *boxes; /* grouped by tensor */
    int64_t nboxes;
    uint64_t *checksums;
    int64_t npieces;
    ckpt_state *attrs; /* attributes only */
    ckpt_strmap by_name; /* tensor name -> index (built by ckpt_index_build_lookup) */
} ckpt_index;

/* Allocates an empty index (attrs state created). */
int ckpt_index_new(ckpt_index **out);
void ckpt_index_free(ckpt_index *ix);

/* Writes the index to an HDF5 file at path (created, truncating). */
int ckpt_index_write(const ckpt_index *ix, const char *path);

/* Reads and validates an index written by ckpt_index_write. */
int ckpt_index_read(const char *path, ckpt_index **out);

/* Builds the name lookup; returns CKPT_ECORRUPT on duplicate names. */
int ckpt_index_build_lookup(ckpt_index *ix);


#endif
