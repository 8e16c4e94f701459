/* slab.c -- see slab.h. */
#include "slab.h"

#include <string.h>

int64_t box_volume(int ndim, const int64_t *ext)
{
    int64_t v = 1;
    for (int d = 0; d < ndim; d++)
        v *= ext[d];
    return v;
}

void slab_init(slab_iter *it, int ndim, const int64_t *off, const int64_t *ext, size_t elem_bytes,
               int64_t max_bytes)
{
    memset(it, 0, sizeof *it);
    it->ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        it->off[d] = off ? off[d] : 0;
        it->ext[d] = ext[d];
    }
    if (elem_bytes == 0)
        elem_bytes = 1;
    int64_t vol = box_volume(ndim, it->ext);
    if (vol == 0) {
        it->done = 1;
        return;
    }
    if (ndim == 0) {
        it->max_elems = 1;
        return;
    }
    int64_t max_elems = max_bytes / (int64_t)elem_bytes;
    if (max_elems < 1)
        max_elems = 1;
    /* outermost d whose rows (everything after d) fit */
    int64_t inner = 1;
    int d = ndim - 1;
    for (int e = ndim - 1; e >= 0; e--) {
        if (inner > max_elems)
            break;
        d = e;
        if (e > 0 && inner > max_elems / it->ext[e]) {
            inner = max_elems + 1; /* next dim up would not fit even one row */
            continue;
        }
        inner *= it->ext[e];
    }
    /* recompute the row size after d exactly */
    int64_t row = 1;
    for (int e = d + 1; e < ndim; e++)
        row *= it->ext[e];
    int64_t k = max_elems / row;
    if (k < 1)
        k = 1;
    if (k > it->ext[d])
        k = it->ext[d];
    it->d = d;
    it->k = k;
    it->max_elems = k * row;
}

int slab_next(slab_iter *it, int64_t *off, int64_t *ext)
{
    if (it->done)
        return 0;
    int nd = it->ndim;
    if (nd == 0) {
        it->done = 1;
        return 1;
    }
    int d = it->d;
    for (int e = 0; e < nd; e++) {
        if (e < d) {
            off[e] = it->off[e] + it->idx[e];
            ext[e] = 1;
        } else if (e == d) {
            off[e] = it->off[e] + it->idx[e];
            ext[e] = it->ext[e] - it->idx[e] < it->k ? it->ext[e] - it->idx[e] : it->k;
        } else {
            off[e] = it->off[e];
            ext[e] = it->ext[e];
        }
    }
    /* advance: along d by k, carrying into the outer dims */
    it->idx[d] += it->k;
    if (it->idx[d] >= it->ext[d]) {
        it->idx[d] = 0;
        int e = d - 1;
        for (; e >= 0; e--) {
            if (++it->idx[e] < it->ext[e])
                break;
            it->idx[e] = 0;
        }
        if (e < 0)
            it->done = 1;
    }
    return 1;
}
