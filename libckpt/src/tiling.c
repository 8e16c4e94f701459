/* tiling.c -- exact-cover proof for explicit boxes (signed corners), witnesses, region finder. */
#include "tiling.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BOX(boxes, stride, i) ((const ckpt_box *)((const char *)(boxes) + (size_t)(i) * (stride)))

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

/* ---- the corner sum ---- */

/* qsort has no context argument in C11: the comparators read these, and sorts run one at a time */
static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_k; /* key length of cmp_corner */

static int cmp_corner(const void *x, const void *y)
{
    const int64_t *a = x, *b = y;
    for (int d = 0; d < g_k; d++)
        if (a[d] != b[d])
            return a[d] < b[d] ? -1 : 1;
    return 0;
}

/* 1 exact, 0 not, -1 memory. dims[0..k) are the dims where some box differs from the shape. */
static int corners_match(const int64_t *shape, const ckpt_box *boxes, size_t stride, int64_t n, const int *dims,
                         int k)
{
    int64_t ncorner = (int64_t)1 << k, total;
    size_t rec = (size_t)k + 1; /* k coordinates, then the sign */
    if (__builtin_mul_overflow(n, ncorner, &total) || total > (INT64_MAX / 8) / (int64_t)rec)
        return -1;
    int64_t *e = malloc((size_t)total * rec * sizeof *e);
    if (!e)
        return -1;
    int64_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        const ckpt_box *b = BOX(boxes, stride, i);
        for (int64_t s = 0; s < ncorner; s++, w++) {
            int64_t *p = e + (size_t)w * rec;
            int par = 0;
            for (int q = 0; q < k; q++) {
                int up = (int)((s >> q) & 1);
                p[q] = b->off[dims[q]] + (up ? b->ext[dims[q]] : 0);
                par ^= up;
            }
            p[k] = par ? -1 : 1;
        }
    }
    pthread_mutex_lock(&sort_mu);
    g_k = k;
    qsort(e, (size_t)total, rec * sizeof *e, cmp_corner);
    /* merge equal points; the nonzero sums must be exactly the tensor's own corners */
    int64_t found = 0;
    int ok = 1;
    for (int64_t i = 0; i < total && ok;) {
        int64_t j = i, sum = 0;
        while (j < total && cmp_corner(e + (size_t)i * rec, e + (size_t)j * rec) == 0)
            sum += e[(size_t)j++ * rec + (size_t)k];
        if (sum != 0) {
            const int64_t *p = e + (size_t)i * rec;
            int par = 0;
            for (int q = 0; q < k && ok; q++) {
                if (p[q] == shape[dims[q]])
                    par ^= 1;
                else if (p[q] != 0)
                    ok = 0;
            }
            if (ok && sum != (par ? -1 : 1))
                ok = 0;
            found++;
        }
        i = j;
    }
    pthread_mutex_unlock(&sort_mu);
    free(e);
    return ok && found == ncorner;
}

/* ---- witnesses ---- */

static const ckpt_box *g_boxes;
static size_t g_stride;
static int g_dim;

static int cmp_by_dim(const void *x, const void *y)
{
    const ckpt_box *a = BOX(g_boxes, g_stride, *(const int64_t *)x), *b = BOX(g_boxes, g_stride, *(const int64_t *)y);
    if (a->off[g_dim] != b->off[g_dim])
        return a->off[g_dim] < b->off[g_dim] ? -1 : 1;
    int c = ckpt_box_cmp(a, b);
    if (c)
        return c;
    return *(const int64_t *)x < *(const int64_t *)y ? -1 : 1;
}

static int64_t *sorted_by(int dim, const ckpt_box *boxes, size_t stride, int64_t n)
{
    int64_t *ord = malloc(((size_t)n + 1) * sizeof *ord);
    if (!ord)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        ord[i] = i;
    pthread_mutex_lock(&sort_mu);
    g_boxes = boxes;
    g_stride = stride;
    g_dim = dim;
    qsort(ord, (size_t)n, sizeof *ord, cmp_by_dim);
    pthread_mutex_unlock(&sort_mu);
    return ord;
}

/* The dim along which the most boxes start at distinct offsets (the best one to sweep along). */
static int sweep_dim(int ndim, const ckpt_box *boxes, size_t stride, int64_t n)
{
    int best = 0;
    int64_t best_count = -1;
    int64_t *v = malloc(((size_t)n + 1) * sizeof *v);
    for (int d = 0; v && d < ndim; d++) {
        for (int64_t i = 0; i < n; i++)
            v[i] = BOX(boxes, stride, i)->off[d];
        pthread_mutex_lock(&sort_mu);
        g_k = 1;
        qsort(v, (size_t)n, sizeof *v, cmp_corner);
        pthread_mutex_unlock(&sort_mu);
        int64_t distinct = n > 0;
        for (int64_t i = 1; i < n; i++)
            distinct += v[i] != v[i - 1];
        if (distinct > best_count) {
            best_count = distinct;
            best = d;
        }
    }
    free(v);
    return best;
}

/* First overlapping pair along a sweep; 1 found, 0 none, -1 memory. */
static int find_overlap(int ndim, const ckpt_box *boxes, size_t stride, int64_t n, int64_t *a, int64_t *b)
{
    if (ndim == 0) {
        if (n > 1) {
            *a = 0;
            *b = 1;
            return 1;
        }
        return 0;
    }
    int dim = sweep_dim(ndim, boxes, stride, n);
    int64_t *ord = sorted_by(dim, boxes, stride, n);
    if (!ord)
        return -1;
    int found = 0;
    for (int64_t i = 0; i < n && !found; i++) {
        const ckpt_box *x = BOX(boxes, stride, ord[i]);
        for (int64_t j = i + 1; j < n; j++) {
            const ckpt_box *y = BOX(boxes, stride, ord[j]);
            if (y->off[dim] >= x->off[dim] + x->ext[dim])
                break;
            if (ckpt_box_intersect(x, y, NULL)) {
                int xy = ckpt_box_cmp(x, y) <= 0;
                *a = xy ? ord[i] : ord[j];
                *b = xy ? ord[j] : ord[i];
                found = 1;
                break;
            }
        }
    }
    free(ord);
    return found;
}

ckpt_tiling_verdict ckpt_tiling_check(int ndim, const int64_t *shape, const ckpt_box *boxes, size_t stride,
                                      int64_t n, ckpt_tiling_why *why)
{
    memset(why, 0, sizeof *why);
    int64_t volume = 1, covered = 0;
    for (int d = 0; d < ndim; d++)
        volume = __builtin_mul_overflow(volume, shape[d], &volume) ? INT64_MAX : volume;
    int dims[CKPT_MAX_NDIM], k = 0;
    for (int d = 0; d < ndim; d++) {
        int differs = 0;
        for (int64_t i = 0; i < n && !differs; i++)
            differs = BOX(boxes, stride, i)->off[d] != 0 || BOX(boxes, stride, i)->ext[d] != shape[d];
        if (differs)
            dims[k++] = d;
    }
    for (int64_t i = 0; i < n; i++)
        covered = sat_add(covered, ckpt_box_volume(BOX(boxes, stride, i)));
    int exact;
    if (volume == 0)
        exact = n == 0;
    else if (k == 0)
        exact = n == 1; /* every box is the whole tensor */
    else if (k <= CKPT_TILING_MAX_CORNER_DIMS) {
        exact = corners_match(shape, boxes, stride, n, dims, k);
        if (exact < 0)
            return CKPT_TILING_NOMEM;
    } else {
        /* no two overlap and the volumes add up: then every element is covered once */
        int64_t a, b;
        int r = find_overlap(ndim, boxes, stride, n, &a, &b);
        if (r < 0)
            return CKPT_TILING_NOMEM;
        exact = !r && covered == volume;
    }
    if (exact)
        return CKPT_TILING_EXACT;
    int r = find_overlap(ndim, boxes, stride, n, &why->a, &why->b);
    if (r < 0)
        return CKPT_TILING_NOMEM;
    if (r)
        return CKPT_TILING_OVERLAP;
    why->covered = covered;
    why->volume = volume;
    return CKPT_TILING_GAP;
}

/* ---- region finder ---- */

int ckpt_box_finder_init(ckpt_box_finder *f, int ndim, const ckpt_box *boxes, size_t stride, int64_t n)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->dim = -1;
    if (ndim == 0 || n == 0)
        return 0;
    f->dim = sweep_dim(ndim, boxes, stride, n);
    f->order = sorted_by(f->dim, boxes, stride, n);
    f->starts = malloc(((size_t)n + 1) * sizeof *f->starts);
    if (!f->order || !f->starts) {
        ckpt_box_finder_free(f);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        const ckpt_box *b = BOX(boxes, stride, f->order[i]);
        f->starts[i] = b->off[f->dim];
        if (b->ext[f->dim] > f->max_ext)
            f->max_ext = b->ext[f->dim];
    }
    return 0;
}

void ckpt_box_finder_free(ckpt_box_finder *f)
{
    free(f->order);
    free(f->starts);
    memset(f, 0, sizeof *f);
}

int ckpt_box_finder_query(const ckpt_box_finder *f, const ckpt_box *boxes, size_t stride, const ckpt_box *region,
                          ckpt_box_finder_fn fn, void *arg)
{
    if (f->dim < 0) {
        for (int64_t i = 0; i < f->n; i++)
            if (region->ndim == 0 || ckpt_box_intersect(BOX(boxes, stride, i), region, NULL)) {
                int rc = fn(i, arg);
                if (rc)
                    return rc;
            }
        return 0;
    }
    /* boxes starting before region.off - max_ext + 1 end before the region along dim */
    int64_t from = region->off[f->dim] - f->max_ext + 1, to = region->off[f->dim] + region->ext[f->dim];
    int64_t lo = 0, hi = f->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (f->starts[mid] < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int64_t i = lo; i < f->n && f->starts[i] < to; i++)
        if (ckpt_box_intersect(BOX(boxes, stride, f->order[i]), region, NULL)) {
            int rc = fn(f->order[i], arg);
            if (rc)
                return rc;
        }
    return 0;
}
