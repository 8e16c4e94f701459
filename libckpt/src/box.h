/* box.h -- N-D boxes (offset + extent into a global array) and copies between them. */
#ifndef CKPT_BOX_H
#define CKPT_BOX_H

#include "ckpt.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ckpt_box {
    int ndim;
    int64_t off[CKPT_MAX_NDIM];
    int64_t ext[CKPT_MAX_NDIM];
} ckpt_box;

/* Builds a box from arrays (ndim entries each). */
void ckpt_box_set(ckpt_box *b, int ndim, const int64_t *off, const int64_t *ext);

/* Elements in the box (1 for a 0-D box; 0 when any extent is 0). */
int64_t ckpt_box_volume(const ckpt_box *b);

/* 1 when a and b have the same ndim, offsets and extents. */
int ckpt_box_equal(const ckpt_box *a, const ckpt_box *b);

/* Intersection of a and b in *out; returns 1 when it has volume > 0, else 0. */
int ckpt_box_intersect(const ckpt_box *a, const ckpt_box *b, ckpt_box *out);

/* 1 when inner lies entirely inside outer. */
int ckpt_box_contains(const ckpt_box *outer, const ckpt_box *inner);

/* 1 when the box lies inside [0, shape) with no negative offset or extent. */
int ckpt_box_in_shape(const ckpt_box *b, const int64_t *shape);

/* Lexicographic order on (offsets, extents), for sorting. */
int ckpt_box_cmp(const ckpt_box *a, const ckpt_box *b);

/* Formats a box as "[0:4, 2:6]" (half-open ranges) into buf; returns buf. */
char *ckpt_box_str(const ckpt_box *b, char *buf, size_t len);

/* Row-major element index of global point p inside box b (p must lie in b). */
int64_t ckpt_box_linear(const ckpt_box *b, const int64_t *p);

/*
 * Copies `region` (inside both boxes) from src, the row-major memory of box
 * src_box in dtype sdt, to dst, the memory of dst_box in dtype ddt, converting
 * where the dtypes differ (ckpt_dtype_can_cast must hold). Contiguous runs are
 * merged so that aligned copies are single memcpy calls.
 */
void ckpt_box_copy(const ckpt_box *region, const ckpt_box *src_box, const void *src,
                   ckpt_dtype sdt, const ckpt_box *dst_box, void *dst, ckpt_dtype ddt);

/* 1 when the region occupies one contiguous byte range of box b's memory. */
int ckpt_box_region_contiguous(const ckpt_box *b, const ckpt_box *region);

#endif
