/* tiling.h -- proof that a set of boxes covers a tensor exactly once (no overlap, no gap), for
 * explicitly listed boxes: the save planner's coverage rule and the index validation of readers.
 *
 * The check is exact and O(n 2^k log n) for n boxes that differ from the whole tensor along k
 * dims: the signed corners of the boxes (a box's indicator's mixed finite difference) must sum to
 * the signed corners of the tensor, which holds if and only if every element is covered exactly
 * once. Beyond CKPT_TILING_MAX_CORNER_DIMS differing dims a sweep (quadratic at worst) decides.
 * Only when the answer is "no" is a witness searched for (an overlapping pair, else a gap). */
#ifndef CKPT_TILING_H
#define CKPT_TILING_H

#include "box.h"

#include <stddef.h>
#include <stdint.h>

#define CKPT_TILING_MAX_CORNER_DIMS 6

typedef enum ckpt_tiling_verdict {
    CKPT_TILING_EXACT = 0,
    CKPT_TILING_OVERLAP = 1, /* boxes a and b overlap */
    CKPT_TILING_GAP = 2,     /* no overlap, but `covered` of `volume` elements are covered */
    CKPT_TILING_NOMEM = -1
} ckpt_tiling_verdict;

typedef struct ckpt_tiling_why {
    int64_t a, b;            /* OVERLAP: the two boxes (a before b in ckpt_box_cmp order) */
    int64_t covered, volume; /* GAP (covered saturates at INT64_MAX) */
} ckpt_tiling_why;

/* Checks n boxes, each already known to lie inside `shape` with every extent > 0. The boxes are
 * read at `boxes`, `stride` bytes apart (so rows of a larger struct can be passed in place). */
ckpt_tiling_verdict ckpt_tiling_check(int ndim, const int64_t *shape, const ckpt_box *boxes, size_t stride,
                                      int64_t n, ckpt_tiling_why *why);

/* Region queries over explicit boxes: boxes sorted by their offset along the dim where the most
 * offsets differ, so a query scans only boxes starting within the region's reach along it. */
typedef struct ckpt_box_finder {
    int dim;          /* the sorted dim (-1: 0-D or no boxes; every box is a candidate) */
    int64_t *order;   /* box indexes, by offset along dim */
    int64_t *starts;  /* their offsets along dim, in that order */
    int64_t max_ext;  /* largest extent along dim */
    int64_t n;
} ckpt_box_finder;

/* Builds the finder for n boxes (read as for ckpt_tiling_check). Returns 0 or -1 (memory). */
int ckpt_box_finder_init(ckpt_box_finder *f, int ndim, const ckpt_box *boxes, size_t stride, int64_t n);
void ckpt_box_finder_free(ckpt_box_finder *f);

/* Calls fn(i) for every box i that intersects region (in order of offset along the sorted dim);
 * stops and returns fn's value when non-zero. */
typedef int (*ckpt_box_finder_fn)(int64_t i, void *arg);
int ckpt_box_finder_query(const ckpt_box_finder *f, const ckpt_box *boxes, size_t stride, const ckpt_box *region,
                          ckpt_box_finder_fn fn, void *arg);

#endif
