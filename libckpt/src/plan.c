/* plan.c -- declarations union, regular-sharding recognition, explicit planning, assembly. */
#include "plan.h"
#include "dtype.h"
#include "error.h"
#include "name.h"
#include "piece.h"
#include "tiling.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. declarations ---- */

typedef struct decl {
    const char *name;
    int64_t dtype, ndim;
    int64_t shape[CKPT_MAX_NDIM];
    int64_t rank;
} decl;

static int cmp_name_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void put_decl(ckpt_wire *w, const decl *d)
{
    ckpt_wire_str(w, d->name);
    ckpt_wire_i64(w, d->dtype);
    ckpt_wire_i64(w, d->ndim);
    for (int k = 0; k < d->ndim; k++)
        ckpt_wire_i64(w, d->shape[k]);
    ckpt_wire_i64(w, d->rank);
}

static int get_decl(ckpt_wire *w, decl *d)
{
    d->name = ckpt_wire_get_str(w);
    d->dtype = ckpt_wire_get_i64(w);
    d->ndim = ckpt_wire_get_i64(w);
    if (w->failed || d->ndim < 0 || d->ndim > CKPT_MAX_NDIM || !ckpt_dtype_valid((int)d->dtype) ||
        ckpt_name_check(d->name, "tensor name") != CKPT_OK)
        return -1;
    memset(d->shape, 0, sizeof d->shape);
    for (int k = 0; k < d->ndim; k++)
        if ((d->shape[k] = ckpt_wire_get_i64(w)) < 0)
            return -1;
    d->rank = ckpt_wire_get_i64(w);
    return w->failed ? -1 : 0;
}

void ckpt_plan_encode_decls(const ckpt_state *s, int rank, ckpt_wire *out)
{
    const char **names = malloc(((size_t)s->ntensors + 1) * sizeof *names);
    if (!names) {
        out->failed = 1;
        return;
    }
    for (int i = 0; i < s->ntensors; i++)
        names[i] = s->tensors[i].name;
    qsort(names, (size_t)s->ntensors, sizeof *names, cmp_name_ptr);
    ckpt_wire_i64(out, CKPT_OK);
    ckpt_wire_str(out, "");
    ckpt_wire_i64(out, s->ntensors);
    for (int i = 0; i < s->ntensors; i++) {
        const ckpt_stensor *t = ckpt_state_find(s, names[i]);
        decl d = {t->name, t->dtype, t->ndim, {0}, rank};
        memcpy(d.shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
        put_decl(out, &d);
    }
    free(names);
}

typedef struct decls_view {
    ckpt_wire w;
    int64_t status;
    const char *msg;
    int64_t n, i;
    decl cur;
} decls_view;

static int view_open(decls_view *v, const ckpt_wire *src)
{
    memset(v, 0, sizeof *v);
    ckpt_wire_view(&v->w, src->buf, src->len);
    v->status = ckpt_wire_get_i64(&v->w);
    v->msg = ckpt_wire_get_str(&v->w);
    v->n = ckpt_wire_get_i64(&v->w);
    if (v->w.failed || v->n < 0 || v->status > 0)
        return -1;
    return v->n > 0 ? get_decl(&v->w, &v->cur) : 0;
}

static int view_next(decls_view *v)
{
    v->i++;
    return v->i < v->n ? get_decl(&v->w, &v->cur) : 0;
}

static int same_decl(const decl *a, const decl *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim)
        return 0;
    for (int k = 0; k < a->ndim; k++)
        if (a->shape[k] != b->shape[k])
            return 0;
    return 1;
}

int ckpt_plan_merge_decls(const ckpt_wire *a, const ckpt_wire *b, ckpt_wire *out)
{
    decls_view x, y;
    ckpt_wire_free(out);
    if (view_open(&x, a) != 0 || view_open(&y, b) != 0)
        return ckpt_error(CKPT_ECORRUPT, "declarations received from another rank are malformed");
    int64_t status = x.status ? x.status : y.status;
    char msg[CKPT_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", x.status ? x.msg : y.msg);
    ckpt_wire body = {0};
    int64_t n = 0;
    while (x.i < x.n || y.i < y.n) {
        int c = x.i >= x.n ? 1 : y.i >= y.n ? -1 : strcmp(x.cur.name, y.cur.name);
        int rc;
        if (c < 0) {
            put_decl(&body, &x.cur);
            rc = view_next(&x);
        } else if (c > 0) {
            put_decl(&body, &y.cur);
            rc = view_next(&y);
        } else {
            const decl *lo = x.cur.rank <= y.cur.rank ? &x.cur : &y.cur, *hi = lo == &x.cur ? &y.cur : &x.cur;
            if (!same_decl(lo, hi) && status == CKPT_OK) {
                char s1[256], s2[256];
                status = CKPT_EMISMATCH;
                snprintf(msg, sizeof msg, "tensor '%s' is %s %s on rank %" PRId64 " but %s %s on rank %" PRId64,
                         lo->name, ckpt_dtype_name((ckpt_dtype)lo->dtype),
                         ckpt_shape_str((int)lo->ndim, lo->shape, s1, sizeof s1), lo->rank,
                         ckpt_dtype_name((ckpt_dtype)hi->dtype),
                         ckpt_shape_str((int)hi->ndim, hi->shape, s2, sizeof s2), hi->rank);
            }
            put_decl(&body, lo);
            rc = view_next(&x);
            if (rc == 0)
                rc = view_next(&y);
        }
        if (rc != 0) {
            ckpt_wire_free(&body);
            return ckpt_error(CKPT_ECORRUPT, "declarations received from another rank are malformed");
        }
        n++;
    }
    ckpt_wire_i64(out, status);
    ckpt_wire_str(out, msg);
    ckpt_wire_i64(out, n);
    ckpt_wire_bytes(out, body.buf, body.len);
    ckpt_wire_free(&body);
    return out->failed ? ckpt_error(CKPT_ENOMEM, "out of memory merging declarations") : CKPT_OK;
}

int ckpt_plan_decode_decls(const ckpt_wire *w, ckpt_index *ix)
{
    decls_view v;
    if (view_open(&v, w) != 0)
        return ckpt_error(CKPT_ECORRUPT, "the merged declarations are malformed");
    if (v.status != CKPT_OK)
        return ckpt_error((int)v.status, "%s", v.msg);
    ix->tensors = calloc((size_t)v.n + 1, sizeof *ix->tensors);
    if (!ix->tensors)
        return ckpt_error(CKPT_ENOMEM, "out of memory planning %" PRId64 " tensors", v.n);
    for (; v.i < v.n; view_next(&v)) {
        ckpt_itensor *t = &ix->tensors[ix->ntensors];
        t->name = strdup(v.cur.name);
        if (!t->name)
            return ckpt_error(CKPT_ENOMEM, "out of memory planning tensor '%s'", v.cur.name);
        ix->ntensors++;
        t->dtype = (ckpt_dtype)v.cur.dtype;
        t->ndim = (int)v.cur.ndim;
        memcpy(t->shape, v.cur.shape, sizeof t->shape);
        if (v.w.failed)
            return ckpt_error(CKPT_ECORRUPT, "the merged declarations are malformed");
    }
    return ckpt_index_build_lookup(ix);
}

/* ---- 2. regular shardings ---- */

void ckpt_grid_acc_init(ckpt_grid_acc *acc, int round)
{
    if (round == 1)
        memset(acc->maxext, 0, sizeof acc->maxext);
    if (round == 2) {
        acc->misfit = 0;
        for (int d = 0; d <= CKPT_MAX_NDIM; d++)
            acc->holder[d] = INT64_MAX;
    }
    if (round == 3)
        acc->claimed = 0;
}

void ckpt_grid_round1(ckpt_grid_acc *acc, const ckpt_box *boxes, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        for (int d = 0; d < boxes[i].ndim; d++)
            if (boxes[i].ext[d] > acc->maxext[d])
                acc->maxext[d] = boxes[i].ext[d];
}

void ckpt_grid_propose(const ckpt_itensor *t, const ckpt_grid_acc *acc, ckpt_grid *g)
{
    memset(g, 0, sizeof *g);
    g->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) {
        g->shape[d] = t->shape[d];
        int64_t c = acc->maxext[d] > 0 ? acc->maxext[d] : t->shape[d];
        g->chunk[d] = c < 1 ? 1 : c > t->shape[d] && t->shape[d] > 0 ? t->shape[d] : c;
    }
    ckpt_grid_init(g, INT64_MAX); /* derived fields; the writers come with round 2 */
}

void ckpt_grid_round2(ckpt_grid_acc *acc, const ckpt_grid *g, int rank, const ckpt_box *boxes, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t cell[CKPT_MAX_NDIM], ones = 0;
        if (!ckpt_grid_cell_of(g, &boxes[i], NULL, cell)) {
            acc->misfit = 1;
            continue;
        }
        int unit = -1;
        for (int d = 0; d < g->ndim; d++)
            if (cell[d]) {
                ones += cell[d];
                unit = d;
            }
        if (ones == 0 && rank < acc->holder[0])
            acc->holder[0] = rank;
        if (ones == 1 && rank < acc->holder[1 + unit])
            acc->holder[1 + unit] = rank;
    }
}

int ckpt_grid_writers(ckpt_grid *g, const ckpt_grid_acc *acc, int64_t world)
{
    if (acc->misfit)
        return -1;
    if (g->nboxes == 0) {
        g->writer0 = 0;
        return ckpt_grid_init(g, world);
    }
    if (acc->holder[0] == INT64_MAX)
        return -1;
    g->writer0 = acc->holder[0];
    for (int d = 0; d < g->ndim; d++) {
        g->stride[d] = 0;
        if (g->ncells[d] > 1) {
            if (acc->holder[1 + d] == INT64_MAX)
                return -1;
            g->stride[d] = acc->holder[1 + d] - g->writer0;
        }
    }
    return ckpt_grid_init(g, world);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

void ckpt_grid_round3(ckpt_grid_acc *acc, const ckpt_grid *g, int rank, const ckpt_box *boxes, int64_t n,
                      int64_t *scratch)
{
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t j;
        if (ckpt_grid_cell_of(g, &boxes[i], &j, NULL) && ckpt_grid_writer(g, j) == rank)
            scratch[m++] = j;
    }
    /* a rank holding one cell twice counts it once (it writes it once) */
    qsort(scratch, (size_t)m, sizeof *scratch, cmp_i64);
    for (int64_t i = 0; i < m; i++)
        acc->claimed += i == 0 || scratch[i] != scratch[i - 1];
}

int ckpt_grid_holds(const ckpt_grid *g, const ckpt_grid_acc *acc)
{
    return !acc->misfit && acc->claimed == g->nboxes;
}

/* ---- 3. explicit tensors ---- */

static int cmp_plan_box(const void *a, const void *b)
{
    const ckpt_plan_box *x = a, *y = b;
    if (x->tensor != y->tensor)
        return x->tensor < y->tensor ? -1 : 1;
    int c = ckpt_box_cmp(&x->box, &y->box);
    if (c)
        return c;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

int ckpt_plan_explicit(ckpt_index *ix, ckpt_plan_box *boxes, int64_t n, int64_t *assign)
{
    char a[512], b[512];
    if (n > 0)
        qsort(boxes, (size_t)n, sizeof *boxes, cmp_plan_box);
    int64_t nrows = 0;
    for (int64_t i = 0; i < n; i++)
        nrows += i == 0 || boxes[i].tensor != boxes[i - 1].tensor || !ckpt_box_equal(&boxes[i].box, &boxes[i - 1].box);
    ix->rows = calloc((size_t)nrows + 1, sizeof *ix->rows);
    if (!ix->rows)
        return ckpt_error(CKPT_ENOMEM, "out of memory planning %" PRId64 " boxes", n);
    int64_t bi = 0;
    for (int64_t t = 0; t < ix->ntensors; t++) {
        ckpt_itensor *it = &ix->tensors[t];
        if (it->sharding != CKPT_SHARDING_EXPLICIT)
            continue;
        it->first_row = ix->nrows;
        int64_t start = bi;
        while (bi < n && boxes[bi].tensor < t)
            bi++; /* boxes of tensors that are grids (none are sent) */
        start = bi;
        while (bi < n && boxes[bi].tensor == t)
            bi++;
        for (int64_t i = start; i < bi; i++) {
            if (i > start && ckpt_box_equal(&boxes[i].box, &boxes[i - 1].box)) {
                assign[boxes[i].slot] = -1; /* a replica: the lowest rank writes it */
                continue;
            }
            ckpt_irow *r = &ix->rows[ix->nrows];
            r->box = boxes[i].box;
            r->tensor = (int32_t)t;
            r->writer = boxes[i].rank;
            assign[boxes[i].slot] = ix->nrows - it->first_row;
            ix->nrows++;
        }
        it->nboxes = ix->nrows - it->first_row;
        ckpt_tiling_why why;
        ckpt_irow *rows = &ix->rows[it->first_row];
        ckpt_tiling_verdict v = ckpt_tiling_check(it->ndim, it->shape, &rows[0].box, sizeof *rows, it->nboxes, &why);
        if (v == CKPT_TILING_NOMEM)
            return ckpt_error(CKPT_ENOMEM, "out of memory checking the boxes of tensor '%s'", it->name);
        if (v == CKPT_TILING_OVERLAP)
            return ckpt_error(CKPT_ECOVERAGE, "tensor '%s': box %s of rank %d overlaps box %s of rank %d", it->name,
                              ckpt_box_str(&rows[why.a].box, a, sizeof a), rows[why.a].writer,
                              ckpt_box_str(&rows[why.b].box, b, sizeof b), rows[why.b].writer);
        if (v == CKPT_TILING_GAP)
            return ckpt_error(CKPT_ECOVERAGE,
                              "tensor '%s' %s: the boxes of all ranks cover %" PRId64 " of its %" PRId64
                              " elements (a gap: some part is held by no rank)",
                              it->name, ckpt_shape_str(it->ndim, it->shape, a, sizeof a), why.covered, why.volume);
    }
    return CKPT_OK;
}

/* ---- 4. assembly ---- */

int ckpt_plan_assemble(ckpt_index *ix, const char *path, int have_rows)
{
    int64_t box = 0, piece = 0;
    for (int64_t t = 0; t < ix->ntensors; t++) {
        ckpt_itensor *it = &ix->tensors[t];
        size_t es = ckpt_dtype_size(it->dtype);
        it->first_box = box;
        if (it->sharding == CKPT_SHARDING_GRID)
            it->nboxes = it->grid.nboxes;
        box += it->nboxes;
        it->first_piece = it->piece_stride = 0;
        if (ix->layout == CKPT_LAYOUT_SHARED) {
            it->first_piece = piece;
            if (it->sharding == CKPT_SHARDING_GRID) {
                it->piece_stride = ckpt_grid_max_pieces(&it->grid, es, ix->piece_bytes);
                it->nslots = it->nboxes * it->piece_stride;
            } else if (have_rows) {
                int64_t slot = 0;
                for (int64_t j = 0; j < it->nboxes; j++) {
                    ckpt_irow *r = &ix->rows[it->first_row + j];
                    ckpt_pieces pc;
                    ckpt_pieces_of(it->ndim, r->box.ext, es, ix->piece_bytes, &pc);
                    r->first_piece = slot;
                    slot += pc.count;
                }
                it->nslots = slot;
            }
            piece += it->nslots;
        }
    }
    ix->nboxes = box;
    if (!have_rows)
        return ckpt_index_build_lookup(ix);
    int rc = ckpt_index_validate(ix, path);
    if (rc) {
        char msg[CKPT_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", ckpt_errmsg());
        return ckpt_error(CKPT_ECORRUPT, "internal error: the planned index does not validate: %s", msg);
    }
    return CKPT_OK;
}

void ckpt_plan_compression(ckpt_index *ix, const ckpt_save_options *o)
{
    if (o->compress == CKPT_COMPRESS_ZSTD)
        snprintf(ix->compression, sizeof ix->compression, "zstd:%d%s", o->level, o->shuffle ? "+shuffle" : "");
    else
        snprintf(ix->compression, sizeof ix->compression, "none");
}
