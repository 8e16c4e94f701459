/* plan.c -- validation, replica dedupe and writer assignment for saves. */
#include "plan.h"
#include "dtype.h"
#include "error.h"
#include "io_shared.h"
#include "name.h"
#include "piece.h"
#include "strmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ckpt_plan_rank_file(int rank, char *buf, size_t len) { snprintf(buf, len, "rank-%05d.h5", rank); }

int64_t ckpt_plan_local_boxes(const ckpt_state *s)
{
    int64_t n = 0;
    for (int i = 0; i < s->ntensors; i++)
        for (int64_t j = 0; j < s->tensors[i].nboxes; j++)
            n += ckpt_box_volume(&s->tensors[i].boxes[j].box) > 0;
    return n;
}

void ckpt_plan_encode_state(const ckpt_state *s, ckpt_wire *w)
{
    ckpt_wire_i64(w, s->ntensors);
    for (int i = 0; i < s->ntensors; i++) {
        const ckpt_stensor *t = &s->tensors[i];
        ckpt_wire_str(w, t->name);
        ckpt_wire_i64(w, t->dtype);
        ckpt_wire_i64(w, t->ndim);
        for (int d = 0; d < t->ndim; d++)
            ckpt_wire_i64(w, t->shape[d]);
        int64_t n = 0;
        for (int64_t j = 0; j < t->nboxes; j++)
            n += ckpt_box_volume(&t->boxes[j].box) > 0;
        ckpt_wire_i64(w, n);
        for (int64_t j = 0; j < t->nboxes; j++) {
            const ckpt_box *b = &t->boxes[j].box;
            if (ckpt_box_volume(b) == 0)
                continue;
            for (int d = 0; d < t->ndim; d++) {
                ckpt_wire_i64(w, b->off[d]);
                ckpt_wire_i64(w, b->ext[d]);
            }
        }
    }
}

typedef struct decl {
    const char *name;
    ckpt_dtype dtype;
    int ndim;
    int64_t shape[CKPT_MAX_NDIM];
    int rank; /* first rank that declared it */
} decl;

typedef struct pbox {
    ckpt_box box;
    int32_t tensor; /* index into decls (before sorting by name) */
    int rank;
    int64_t slot; /* position in the global assignment array */
} pbox;

static int cmp_pbox(const void *a, const void *b)
{
    const pbox *x = a, *y = b;
    if (x->tensor != y->tensor)
        return x->tensor < y->tensor ? -1 : 1;
    int c = ckpt_box_cmp(&x->box, &y->box);
    if (c)
        return c;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

typedef struct named {
    const char *name;
    int32_t id;
} named;

static int cmp_named(const void *a, const void *b)
{
    return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

int ckpt_plan_save(const unsigned char *all, const size_t *lens, int nranks, int64_t piece_bytes,
                   ckpt_index *ix, int64_t **assign_out, int64_t **assign_off_out)
{
    int rc = CKPT_OK;
    decl *decls = NULL;
    int64_t ndecls = 0, capdecls = 0;
    pbox *boxes = NULL;
    int64_t nboxes = 0, capboxes = 0;
    ckpt_strmap names = {0};
    int64_t *assign = NULL, *assign_off = calloc((size_t)nranks + 1, sizeof *assign_off);
    int32_t *order = NULL;
    int32_t *new_id = NULL;
    int *file_of_rank = NULL;
    char a[256], b[256];
    if (!assign_off)
        goto oom;

    /* 1. decode every rank's declarations; check that they agree */
    size_t pos = 0;
    for (int r = 0; r < nranks; r++) {
        ckpt_wire w;
        ckpt_wire_view(&w, all + pos, lens[r]);
        pos += lens[r];
        int64_t nt = ckpt_wire_get_i64(&w);
        int64_t sent = 0;
        for (int64_t i = 0; i < nt && !w.failed; i++) {
            decl d = {0};
            d.name = ckpt_wire_get_str(&w);
            d.dtype = (ckpt_dtype)ckpt_wire_get_i64(&w);
            d.ndim = (int)ckpt_wire_get_i64(&w);
            if (w.failed || d.ndim < 0 || d.ndim > CKPT_MAX_NDIM || !ckpt_dtype_valid((int)d.dtype)) {
                w.failed = 1;
                break;
            }
            for (int k = 0; k < d.ndim; k++)
                d.shape[k] = ckpt_wire_get_i64(&w);
            d.rank = r;
            int64_t id = ckpt_strmap_get(&names, d.name);
            if (id < 0) {
                if (ndecls == capdecls) {
                    capdecls = capdecls ? capdecls * 2 : 64;
                    decl *n = realloc(decls, (size_t)capdecls * sizeof *n);
                    if (!n)
                        goto oom;
                    decls = n;
                }
                id = ndecls;
                decls[ndecls++] = d;
                if (ckpt_strmap_put(&names, d.name, id) != 0)
                    goto oom;
            } else {
                const decl *p = &decls[id];
                int same = p->dtype == d.dtype && p->ndim == d.ndim;
                for (int k = 0; same && k < d.ndim; k++)
                    same = p->shape[k] == d.shape[k];
                if (!same) {
                    rc = ckpt_error(CKPT_EMISMATCH, "tensor '%s' is %s %s on rank %d but %s %s on rank %d",
                                    d.name, ckpt_dtype_name(p->dtype), ckpt_shape_str(p->ndim, p->shape, a, sizeof a),
                                    p->rank, ckpt_dtype_name(d.dtype), ckpt_shape_str(d.ndim, d.shape, b, sizeof b), r);
                    goto out;
                }
            }
            int64_t nb = ckpt_wire_get_i64(&w);
            for (int64_t j = 0; j < nb && !w.failed; j++) {
                pbox p;
                memset(&p, 0, sizeof p);
                p.box.ndim = d.ndim;
                for (int k = 0; k < d.ndim; k++) {
                    p.box.off[k] = ckpt_wire_get_i64(&w);
                    p.box.ext[k] = ckpt_wire_get_i64(&w);
                }
                p.tensor = (int32_t)id;
                p.rank = r;
                p.slot = assign_off[r] + sent++;
                if (!ckpt_box_in_shape(&p.box, d.shape)) {
                    rc = ckpt_error(CKPT_ECOVERAGE, "tensor '%s': box %s of rank %d lies outside its shape %s",
                                    d.name, ckpt_box_str(&p.box, a, sizeof a), r,
                                    ckpt_shape_str(d.ndim, d.shape, b, sizeof b));
                    goto out;
                }
                if (nboxes == capboxes) {
                    capboxes = capboxes ? capboxes * 2 : 256;
                    pbox *n = realloc(boxes, (size_t)capboxes * sizeof *n);
                    if (!n)
                        goto oom;
                    boxes = n;
                }
                boxes[nboxes++] = p;
            }
        }
        if (w.failed) {
            rc = ckpt_error(CKPT_ECORRUPT, "declarations received from rank %d are malformed", r);
            goto out;
        }
        assign_off[r + 1] = assign_off[r] + sent;
    }

    /* 2. sort tensors by name; renumber */
    order = malloc((size_t)(ndecls + 1) * sizeof *order);
    new_id = malloc((size_t)(ndecls + 1) * sizeof *new_id);
    assign = malloc((size_t)(assign_off[nranks] + 1) * sizeof *assign);
    named *byname = malloc((size_t)(ndecls + 1) * sizeof *byname);
    if (!order || !new_id || !assign || !byname) {
        free(byname);
        goto oom;
    }
    for (int64_t i = 0; i < ndecls; i++)
        byname[i] = (named){decls[i].name, (int32_t)i};
    if (ndecls > 0)
        qsort(byname, (size_t)ndecls, sizeof *byname, cmp_named);
    for (int64_t i = 0; i < ndecls; i++) {
        order[i] = byname[i].id;
        new_id[order[i]] = (int32_t)i;
    }
    free(byname);
    for (int64_t i = 0; i < nboxes; i++)
        boxes[i].tensor = new_id[boxes[i].tensor];
    if (nboxes > 0)
        qsort(boxes, (size_t)nboxes, sizeof *boxes, cmp_pbox);

    /* 3. per tensor: dedupe replicas, check overlaps and coverage */
    ix->tensors = calloc((size_t)ndecls + 1, sizeof *ix->tensors);
    ix->boxes = calloc((size_t)nboxes + 1, sizeof *ix->boxes);
    file_of_rank = malloc((size_t)nranks * sizeof *file_of_rank);
    if (!ix->tensors || !ix->boxes || !file_of_rank)
        goto oom;
    for (int r = 0; r < nranks; r++)
        file_of_rank[r] = -1;
    int64_t bi = 0;
    for (int64_t t = 0; t < ndecls; t++) {
        const decl *d = &decls[order[t]];
        ckpt_itensor *it = &ix->tensors[t];
        it->name = strdup(d->name);
        if (!it->name)
            goto oom;
        ix->ntensors++;
        it->dtype = d->dtype;
        it->ndim = d->ndim;
        memcpy(it->shape, d->shape, sizeof it->shape);
        it->first_box = ix->nboxes;
        ckpt_box whole;
        ckpt_box_set(&whole, d->ndim, NULL, d->shape);
        int64_t vol = ckpt_box_volume(&whole), covered = 0;
        it->raw_bytes = vol * (int64_t)ckpt_dtype_size(d->dtype);
        int64_t start = bi;
        while (bi < nboxes && boxes[bi].tensor == t)
            bi++;
        /* distinct boxes: first of each run of identical ones writes it */
        int64_t first_distinct = ix->nboxes;
        for (int64_t i = start; i < bi; i++) {
            if (i > start && ckpt_box_equal(&boxes[i].box, &boxes[i - 1].box)) {
                assign[boxes[i].slot] = -1; /* replica */
                continue;
            }
            ckpt_ibox *ib = &ix->boxes[ix->nboxes];
            ib->tensor = (int32_t)t;
            ib->writer = boxes[i].rank;
            ib->box = boxes[i].box;
            assign[boxes[i].slot] = ix->nboxes;
            ix->nboxes++;
            covered += ckpt_box_volume(&boxes[i].box);
        }
        /* overlap: distinct boxes sorted by offset, so a sweep on dim 0 suffices to prune */
        for (int64_t i = first_distinct; i < ix->nboxes; i++) {
            const ckpt_box *x = &ix->boxes[i].box;
            for (int64_t j = i + 1; j < ix->nboxes; j++) {
                const ckpt_box *y = &ix->boxes[j].box;
                if (d->ndim > 0 && y->off[0] >= x->off[0] + x->ext[0])
                    break;
                if (ckpt_box_intersect(x, y, NULL)) {
                    rc = ckpt_error(CKPT_ECOVERAGE, "tensor '%s': box %s of rank %d overlaps box %s of rank %d",
                                    d->name, ckpt_box_str(x, a, sizeof a), ix->boxes[i].writer,
                                    ckpt_box_str(y, b, sizeof b), ix->boxes[j].writer);
                    goto out;
                }
            }
        }
        if (covered != vol) {
            rc = ckpt_error(CKPT_ECOVERAGE,
                            "tensor '%s' %s: the boxes of all ranks cover %lld of its %lld elements (a gap: "
                            "some part is held by no rank)",
                            d->name, ckpt_shape_str(d->ndim, d->shape, a, sizeof a), (long long)covered,
                            (long long)vol);
            goto out;
        }
        it->nboxes = ix->nboxes - it->first_box;
    }

    /* 4. files, datasets and piece layout */
    for (int64_t i = 0; i < ix->nboxes; i++) {
        ckpt_ibox *ib = &ix->boxes[i];
        if (file_of_rank[ib->writer] < 0)
            file_of_rank[ib->writer] = 0; /* mark; numbered below in rank order */
    }
    int nfiles = 0;
    for (int r = 0; r < nranks; r++)
        if (file_of_rank[r] >= 0)
            file_of_rank[r] = nfiles++;
    ix->files = calloc((size_t)nfiles + 1, sizeof *ix->files);
    if (!ix->files)
        goto oom;
    for (int r = 0; r < nranks; r++)
        if (file_of_rank[r] >= 0) {
            char fn[64];
            ckpt_plan_rank_file(r, fn, sizeof fn);
            ix->files[ix->nfiles] = strdup(fn);
            if (!ix->files[ix->nfiles])
                goto oom;
            ix->nfiles++;
        }
    int64_t piece = 0;
    for (int64_t i = 0; i < ix->nboxes; i++) {
        ckpt_ibox *ib = &ix->boxes[i];
        const ckpt_itensor *it = &ix->tensors[ib->tensor];
        ckpt_pieces pc;
        ckpt_pieces_of(it->ndim, ib->box.ext, ckpt_dtype_size(it->dtype), piece_bytes, &pc);
        ib->file = file_of_rank[ib->writer];
        ib->piece_dim = pc.dim;
        ib->piece_len = pc.len;
        ib->first_piece = piece;
        ib->npieces = pc.count;
        piece += pc.count;
        char ds[64];
        snprintf(ds, sizeof ds, "/boxes/%lld", (long long)i);
        ib->dataset = strdup(ds);
        if (!ib->dataset)
            goto oom;
    }
    ix->npieces = piece;
    ix->checksums = calloc((size_t)piece + 1, sizeof *ix->checksums);
    if (!ix->checksums)
        goto oom;
    ix->world_size = nranks;
    ix->piece_bytes = piece_bytes;
    rc = ckpt_index_build_lookup(ix);
    goto out;
oom:
    rc = ckpt_error(CKPT_ENOMEM, "out of memory planning the save");
out:
    ckpt_strmap_free(&names);
    free(decls);
    free(boxes);
    free(order);
    free(new_id);
    free(file_of_rank);
    if (rc) {
        free(assign);
        free(assign_off);
        assign = assign_off = NULL;
    }
    *assign_out = assign;
    *assign_off_out = assign_off;
    return rc;
}

int ckpt_plan_use_shared_file(ckpt_index *ix)
{
    for (int i = 0; i < ix->nfiles; i++)
        free(ix->files[i]);
    ix->nfiles = 0;
    ix->files[0] = strdup(CKPT_SHARED_FILE);
    if (!ix->files[0])
        return ckpt_error(CKPT_ENOMEM, "out of memory planning the save");
    ix->nfiles = 1;
    for (int64_t i = 0; i < ix->nboxes; i++) {
        ckpt_ibox *b = &ix->boxes[i];
        char ds[CKPT_MAX_NAME + 16];
        ckpt_shared_dataset(ix->tensors[b->tensor].name, ds, sizeof ds);
        free(b->dataset);
        b->dataset = strdup(ds);
        b->file = 0;
        if (!b->dataset)
            return ckpt_error(CKPT_ENOMEM, "out of memory planning the save");
    }
    ix->layout = CKPT_LAYOUT_SHARED;
    return CKPT_OK;
}
