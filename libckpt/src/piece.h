/* piece.h -- the checksummed pieces of a stored box (= its HDF5 chunks).
 *
 * A box of extents e[0..n) with element size s is cut along one "piece dim" p:
 * a piece spans 1 along every dim before p, `len` along p, and whole along every
 * dim after p. p is the outermost dim whose inner slab (prod e[p+1..n) * s) fits
 * in piece_bytes, and len = min(e[p], piece_bytes / slab) (at least 1). Pieces are
 * therefore contiguous in the box's row-major memory and are numbered in that
 * memory order. A 0-D box is one piece. */
#ifndef CKPT_PIECE_H
#define CKPT_PIECE_H

#include "box.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ckpt_pieces {
    int dim;        /* piece dim p (0 for 0-D boxes) */
    int64_t len;    /* rows of dim p per piece */
    int64_t count;  /* number of pieces */
    int64_t per_outer; /* pieces per step of the dims before p: ceil(e[p] / len) */
} ckpt_pieces;

/* Computes the piece geometry of a box with extents ext (ndim dims). */
void ckpt_pieces_of(int ndim, const int64_t *ext, size_t esize, int64_t piece_bytes, ckpt_pieces *out);

/* Rebuilds the geometry from a stored (dim, len) pair; returns 0 when consistent with ext. */
int ckpt_pieces_from(int ndim, const int64_t *ext, int dim, int64_t len, ckpt_pieces *out);

/* The region of piece k, in coordinates of `box` (global offsets). */
void ckpt_piece_box(const ckpt_box *box, const ckpt_pieces *pc, int64_t k, ckpt_box *out);

/* Calls fn for each piece of `box` that intersects `region` (global coordinates), in
 * increasing order; stops and returns fn's value when it is non-zero. */
typedef int (*ckpt_piece_fn)(int64_t k, const ckpt_box *piece, void *arg);
int ckpt_pieces_foreach(const ckpt_box *box, const ckpt_pieces *pc, const ckpt_box *region,
                        ckpt_piece_fn fn, void *arg);

/* XXH3-64 of a piece's bytes: the checksum stored in the index. */
uint64_t ckpt_piece_checksum(const void *data, size_t len);

#endif
