/* piece.c -- piece (chunk) geometry of stored boxes and their XXH3-64 checksums. */
#include "piece.h"

#include <string.h>

#include <xxhash.h>

void ckpt_pieces_of(int ndim, const int64_t *ext, size_t esize, int64_t piece_bytes, ckpt_pieces *out)
{
    memset(out, 0, sizeof *out);
    if (ndim == 0) {
        out->len = 1;
        out->count = 1;
        out->per_outer = 1;
        return;
    }
    int64_t slab = (int64_t)esize; /* bytes of one step along dim p */
    int p = ndim - 1;
    for (int d = ndim - 1; d > 0; d--) {
        /* can we move p outward to d-1? only if the slab of d-1 (whole dims d..n) fits */
        int64_t next = slab * ext[d];
        if (next > piece_bytes || ext[d] == 0)
            break;
        slab = next;
        p = d - 1;
    }
    int64_t len = piece_bytes / slab;
    if (len < 1)
        len = 1;
    if (len > ext[p])
        len = ext[p];
    out->dim = p;
    out->len = len;
    out->per_outer = len ? (ext[p] + len - 1) / len : 0;
    int64_t outer = 1;
    for (int d = 0; d < p; d++)
        outer *= ext[d];
    out->count = outer * out->per_outer;
}

int ckpt_pieces_from(int ndim, const int64_t *ext, int dim, int64_t len, ckpt_pieces *out)
{
    memset(out, 0, sizeof *out);
    if (ndim == 0) {
        if (dim != 0 || len != 1)
            return -1;
        out->len = out->count = out->per_outer = 1;
        return 0;
    }
    if (dim < 0 || dim >= ndim || len < 1 || len > ext[dim])
        return -1;
    out->dim = dim;
    out->len = len;
    out->per_outer = (ext[dim] + len - 1) / len;
    int64_t outer = 1;
    for (int d = 0; d < dim; d++)
        outer *= ext[d];
    out->count = outer * out->per_outer;
    return 0;
}

void ckpt_piece_box(const ckpt_box *box, const ckpt_pieces *pc, int64_t k, ckpt_box *out)
{
    *out = *box;
    if (box->ndim == 0)
        return;
    int p = pc->dim;
    int64_t outer = k / pc->per_outer, j = k % pc->per_outer;
    for (int d = p - 1; d >= 0; d--) {
        out->off[d] = box->off[d] + outer % box->ext[d];
        out->ext[d] = 1;
        outer /= box->ext[d];
    }
    out->off[p] = box->off[p] + j * pc->len;
    int64_t rem = box->ext[p] - j * pc->len;
    out->ext[p] = rem < pc->len ? rem : pc->len;
}

int ckpt_pieces_foreach(const ckpt_box *box, const ckpt_pieces *pc, const ckpt_box *region,
                        ckpt_piece_fn fn, void *arg)
{
    ckpt_box r;
    if (box->ndim == 0) {
        return fn(0, box, arg);
    }
    if (!ckpt_box_intersect(box, region, &r))
        return 0;
    int p = pc->dim;
    /* relative ranges: dims < p iterate element by element, dim p by pieces */
    int64_t lo[CKPT_MAX_NDIM], hi[CKPT_MAX_NDIM], idx[CKPT_MAX_NDIM];
    for (int d = 0; d < p; d++) {
        lo[d] = r.off[d] - box->off[d];
        hi[d] = lo[d] + r.ext[d];
        idx[d] = lo[d];
    }
    int64_t jlo = (r.off[p] - box->off[p]) / pc->len;
    int64_t jhi = (r.off[p] + r.ext[p] - 1 - box->off[p]) / pc->len;
    for (;;) {
        int64_t outer = 0;
        for (int d = 0; d < p; d++)
            outer = outer * box->ext[d] + idx[d];
        for (int64_t j = jlo; j <= jhi; j++) {
            int64_t k = outer * pc->per_outer + j;
            ckpt_box piece;
            ckpt_piece_box(box, pc, k, &piece);
            int rc = fn(k, &piece, arg);
            if (rc)
                return rc;
        }
        int d = p - 1;
        while (d >= 0) {
            if (++idx[d] < hi[d])
                break;
            idx[d] = lo[d];
            d--;
        }
        if (d < 0)
            break;
    }
    return 0;
}

uint64_t ckpt_piece_checksum(const void *data, size_t len) { return XXH3_64bits(data, len); }
