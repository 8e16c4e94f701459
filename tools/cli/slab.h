/* slab.h -- walks a region of a tensor in slabs of bounded size, so that tools read any tensor
 * with bounded memory. A slab is 1 along the outer dims, up to k rows along one dim d and whole
 * along the dims after d, i.e. a contiguous run of the region's row-major memory (the same cut
 * the library uses for its checksummed pieces, so slabs tend to hold whole pieces). */
#ifndef CKPT_TOOLS_SLAB_H
#define CKPT_TOOLS_SLAB_H

#include <ckpt.h>

#include <stddef.h>
#include <stdint.h>

typedef struct slab_iter {
    int ndim;
    int64_t off[CKPT_MAX_NDIM], ext[CKPT_MAX_NDIM];
    int d;                       /* the dim cut into runs of k rows */
    int64_t k;
    int64_t idx[CKPT_MAX_NDIM];  /* position of the next slab: idx[0..d] */
    int64_t max_elems;           /* elements of the largest slab */
    int done;
} slab_iter;

/* Prepares to walk [off, off+ext) (ndim dims; 0-D is one slab of one element) in slabs of at
 * most max_bytes bytes of elements of elem_bytes each (a slab is never below one element). */
void slab_init(slab_iter *it, int ndim, const int64_t *off, const int64_t *ext, size_t elem_bytes,
               int64_t max_bytes);

/* Next slab into off/ext (ndim entries); 0 when the region is exhausted. */
int slab_next(slab_iter *it, int64_t *off, int64_t *ext);

/* Number of elements of a box (1 for 0-D). */
int64_t box_volume(int ndim, const int64_t *ext);

#endif
