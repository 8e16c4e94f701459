/* grid.c -- regular shardings: cells, their boxes and writers, region queries. */
#include "grid.h"
#include "piece.h"

#include <string.h>

int ckpt_grid_init(ckpt_grid *g, int64_t world)
{
    if (g->ndim < 0 || g->ndim > CKPT_MAX_NDIM || world < 1)
        return -1;
    int64_t n = 1, lo = g->writer0, hi = g->writer0;
    for (int d = 0; d < g->ndim; d++) {
        int64_t s = g->shape[d], c = g->chunk[d];
        if (s < 0 || c < 1 || c > (s > 0 ? s : 1))
            return -1;
        g->ncells[d] = s == 0 ? 0 : (s - 1) / c + 1;
        if (__builtin_mul_overflow(n, g->ncells[d], &n))
            return -1;
    }
    for (int d = g->ndim; d < CKPT_MAX_NDIM; d++) {
        g->ncells[d] = 0;
        g->chunk[d] = 0;
        g->stride[d] = 0;
    }
    g->nboxes = n;
    if (n == 0)
        return 0;
    for (int d = 0; d < g->ndim; d++) {
        int64_t span;
        if (__builtin_mul_overflow(g->ncells[d] - 1, g->stride[d], &span))
            return -1;
        if (span < 0 ? __builtin_add_overflow(lo, span, &lo) : __builtin_add_overflow(hi, span, &hi))
            return -1;
    }
    return lo >= 0 && hi < world ? 0 : -1;
}

/* The cell index vector of ordinal j. */
static void cell_of_ordinal(const ckpt_grid *g, int64_t j, int64_t *cell)
{
    for (int d = g->ndim - 1; d >= 0; d--) {
        cell[d] = j % g->ncells[d];
        j /= g->ncells[d];
    }
}

static void cell_box(const ckpt_grid *g, const int64_t *cell, ckpt_box *out)
{
    memset(out, 0, sizeof *out);
    out->ndim = g->ndim;
    for (int d = 0; d < g->ndim; d++) {
        out->off[d] = cell[d] * g->chunk[d];
        int64_t rest = g->shape[d] - out->off[d];
        out->ext[d] = rest < g->chunk[d] ? rest : g->chunk[d];
    }
}

void ckpt_grid_box(const ckpt_grid *g, int64_t j, ckpt_box *out)
{
    int64_t cell[CKPT_MAX_NDIM];
    cell_of_ordinal(g, j, cell);
    cell_box(g, cell, out);
}

int64_t ckpt_grid_writer(const ckpt_grid *g, int64_t j)
{
    int64_t cell[CKPT_MAX_NDIM], w = g->writer0;
    cell_of_ordinal(g, j, cell);
    for (int d = 0; d < g->ndim; d++)
        w += cell[d] * g->stride[d];
    return w;
}

int ckpt_grid_cell_of(const ckpt_grid *g, const ckpt_box *box, int64_t *j, int64_t *cell)
{
    if (box->ndim != g->ndim || g->nboxes == 0)
        return 0;
    int64_t ord = 0, c[CKPT_MAX_NDIM];
    for (int d = 0; d < g->ndim; d++) {
        int64_t off = box->off[d];
        if (off < 0 || off >= g->shape[d] || off % g->chunk[d] != 0)
            return 0;
        int64_t rest = g->shape[d] - off, want = rest < g->chunk[d] ? rest : g->chunk[d];
        if (box->ext[d] != want)
            return 0;
        c[d] = off / g->chunk[d];
        ord = ord * g->ncells[d] + c[d];
    }
    if (j)
        *j = ord;
    if (cell)
        memcpy(cell, c, sizeof(int64_t) * (size_t)g->ndim);
    return 1;
}

int ckpt_grid_foreach_in(const ckpt_grid *g, const ckpt_box *region, ckpt_grid_fn fn, void *arg)
{
    if (g->nboxes == 0)
        return 0;
    int64_t lo[CKPT_MAX_NDIM], hi[CKPT_MAX_NDIM], cell[CKPT_MAX_NDIM];
    for (int d = 0; d < g->ndim; d++) {
        if (region->ext[d] <= 0)
            return 0;
        lo[d] = region->off[d] / g->chunk[d];
        hi[d] = (region->off[d] + region->ext[d] - 1) / g->chunk[d];
        if (hi[d] >= g->ncells[d])
            hi[d] = g->ncells[d] - 1;
        if (lo[d] > hi[d])
            return 0;
        cell[d] = lo[d];
    }
    for (;;) {
        int64_t j = 0;
        for (int d = 0; d < g->ndim; d++)
            j = j * g->ncells[d] + cell[d];
        ckpt_box b;
        cell_box(g, cell, &b);
        int rc = fn(j, &b, arg);
        if (rc)
            return rc;
        int d = g->ndim - 1;
        while (d >= 0 && cell[d] == hi[d]) {
            cell[d] = lo[d];
            d--;
        }
        if (d < 0)
            return 0;
        cell[d]++;
    }
}

int64_t ckpt_grid_max_pieces(const ckpt_grid *g, size_t esize, int64_t piece_bytes)
{
    if (g->nboxes == 0)
        return 0;
    int64_t best = 0;
    for (unsigned mask = 0; mask < (1u << g->ndim); mask++) {
        int64_t ext[CKPT_MAX_NDIM];
        int skip = 0;
        for (int d = 0; d < g->ndim; d++) {
            int64_t edge = g->shape[d] - (g->ncells[d] - 1) * g->chunk[d];
            ext[d] = (mask >> d) & 1 ? edge : g->chunk[d];
            if ((mask >> d) & 1 && edge == g->chunk[d])
                skip = 1; /* the same shape as without the bit */
        }
        if (skip)
            continue;
        ckpt_pieces pc;
        ckpt_pieces_of(g->ndim, ext, esize, piece_bytes, &pc);
        if (pc.count > best)
            best = pc.count;
    }
    return best;
}
