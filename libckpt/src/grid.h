/* grid.h -- regular shardings: a tensor cut into a grid of equal cells (the last ones along each
 * dim smaller), one saved box per cell, the writer of each cell an affine function of its
 * position. This is what Shard(dim) (ckpt_shard_box), 2-D grids (tensor parallel x FSDP), their
 * replicas (HSDP) and whole/replicated tensors look like, so the index stores one descriptor per
 * tensor instead of one row per box, and every rank finds the saved boxes overlapping a region
 * by arithmetic.
 *
 * Cells: along dim d, cells of `chunk[d]` elements; ncells[d] = ceil(shape[d] / chunk[d]) (all
 * non-empty; a zero-size tensor has no cells). Box j (0 <= j < prod ncells) is the cell whose
 * index vector is j written in mixed radix, dim 0 slowest (row-major cell order). Its writer is
 * writer0 + sum_d cell[d] * stride[d]. */
#ifndef CKPT_GRID_H
#define CKPT_GRID_H

#include "box.h"
#include "ckpt.h"

#include <stdint.h>

typedef struct ckpt_grid {
    int ndim;
    int64_t shape[CKPT_MAX_NDIM];
    int64_t chunk[CKPT_MAX_NDIM];  /* >= 1 */
    int64_t ncells[CKPT_MAX_NDIM]; /* derived */
    int64_t nboxes;                /* derived: prod ncells (1 for 0-D, 0 when any shape[d] is 0) */
    int64_t writer0;
    int64_t stride[CKPT_MAX_NDIM];
} ckpt_grid;

/* Fills the derived fields. Returns 0, or -1 when the description is not a valid grid: ndim out
 * of range, a negative shape, a chunk outside 1..max(shape, 1), a box count that overflows, or a
 * writer outside [0, world) for some cell (checked at the grid's corners: the writer is affine). */
int ckpt_grid_init(ckpt_grid *g, int64_t world);

/* The box of cell j. */
void ckpt_grid_box(const ckpt_grid *g, int64_t j, ckpt_box *out);

/* The writer of cell j. */
int64_t ckpt_grid_writer(const ckpt_grid *g, int64_t j);

/* When `box` is exactly a cell of the grid: 1, with its ordinal in *j (may be NULL) and its
 * cell index vector in cell (may be NULL). Else 0. */
int ckpt_grid_cell_of(const ckpt_grid *g, const ckpt_box *box, int64_t *j, int64_t *cell);

/* Calls fn for every cell that intersects `region` (inside the shape), in increasing j; stops
 * and returns fn's value when non-zero. */
typedef int (*ckpt_grid_fn)(int64_t j, const ckpt_box *box, void *arg);
int ckpt_grid_foreach_in(const ckpt_grid *g, const ckpt_box *region, ckpt_grid_fn fn, void *arg);

/* The largest number of checksum pieces any cell has with this element size and piece size:
 * cells differ only at the far edge of each dim, so at most 2^ndim shapes are tried. */
int64_t ckpt_grid_max_pieces(const ckpt_grid *g, size_t esize, int64_t piece_bytes);

#endif
