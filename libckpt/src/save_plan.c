/* save_plan.c -- the collective planning of a save (plan.h's steps over MPI). Per rank it costs
 * O(tensors + its own boxes), plus log2(N) pairwise merges of declaration lists and three
 * reductions of per-tensor arrays; only the boxes of irregularly sharded tensors travel to
 * rank 0, so a regularly sharded job of any size never gathers its boxes anywhere. */
#include "dtype.h"
#include "gpu.h"
#include "error.h"
#include "plan.h"
#include "save_job.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One of this rank's non-empty boxes, by tensor row of the union. */
typedef struct lbox {
    int64_t tensor;
    int64_t order; /* position in the state, so items keep the caller's order */
    ckpt_box box;
    const ckpt_stensor *st;
    void *data;
} lbox;

static int cmp_lbox(const void *a, const void *b)
{
    const lbox *x = a, *y = b;
    if (x->tensor != y->tensor)
        return x->tensor < y->tensor ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_order(const void *a, const void *b)
{
    const lbox *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The declared tensors' union, sorted by name, on every rank. */
static int plan_decls(ckpt_save_job *j, const ckpt_state *s)
{
    ckpt_wire w = {0};
    ckpt_plan_encode_decls(s, j->c.rank, &w);
    int rc = ckpt_comm_tree_reduce(&j->c, &w, ckpt_plan_merge_decls);
    if (rc == CKPT_OK)
        rc = ckpt_comm_bcast(&j->c, &w);
    if (rc == CKPT_OK)
        rc = ckpt_comm_agree_common(&j->c, ckpt_plan_decode_decls(&w, j->ix));
    ckpt_wire_free(&w);
    return rc;
}

/* The three reductions that recognise regular grids; sets each tensor's sharding. */
static int plan_grids(ckpt_save_job *j, lbox *lb, int64_t nlb)
{
    ckpt_index *ix = j->ix;
    int64_t T = ix->ntensors;
    int rank = j->c.rank;
    int64_t *r = calloc((size_t)(T * CKPT_GRID_ACC_LEN + 1), sizeof *r);
    ckpt_box *boxes = malloc(((size_t)nlb + 1) * sizeof *boxes);
    int64_t *scratch = malloc(((size_t)nlb + 1) * sizeof *scratch);
    int *ok = calloc((size_t)T + 1, sizeof *ok);
    int rc = r && boxes && scratch && ok ? CKPT_OK : ckpt_error(CKPT_ENOMEM, "out of memory planning the save");
    rc = ckpt_comm_agree(&j->c, rc);
    for (int64_t i = 0; rc == CKPT_OK && i < nlb; i++)
        boxes[i] = lb[i].box;
    /* the range of this rank's boxes of tensor t: [first[t], first[t+1]) */
    int64_t *first = rc ? NULL : calloc((size_t)T + 2, sizeof *first);
    if (rc == CKPT_OK && !first)
        rc = ckpt_error(CKPT_ENOMEM, "out of memory planning the save");
    rc = ckpt_comm_agree(&j->c, rc);
    if (rc == CKPT_OK) {
        int64_t k = 0;
        for (int64_t t = 0; t <= T; t++) {
            while (k < nlb && lb[k].tensor < t)
                k++;
            first[t] = k;
        }
        first[T + 1] = nlb;
    }
    ckpt_grid_acc acc;
    /* round 1: largest extents */
    for (int64_t t = 0; rc == CKPT_OK && t < T; t++) {
        ckpt_grid_acc_init(&acc, 1);
        ckpt_grid_round1(&acc, boxes + first[t], first[t + 1] - first[t]);
        memcpy(r + t * CKPT_MAX_NDIM, acc.maxext, sizeof acc.maxext);
    }
    if (rc == CKPT_OK)
        rc = ckpt_comm_allreduce_i64(&j->c, r, T * CKPT_MAX_NDIM, MPI_MAX);
    for (int64_t t = 0; rc == CKPT_OK && t < T; t++) {
        memcpy(acc.maxext, r + t * CKPT_MAX_NDIM, sizeof acc.maxext);
        ckpt_grid_propose(&ix->tensors[t], &acc, &ix->tensors[t].grid);
    }
    /* round 2: every box a cell? who holds cell 0 and the unit cells? (all as minima) */
    const int64_t W2 = CKPT_MAX_NDIM + 2;
    for (int64_t t = 0; rc == CKPT_OK && t < T; t++) {
        ckpt_grid_acc_init(&acc, 2);
        ckpt_grid_round2(&acc, &ix->tensors[t].grid, rank, boxes + first[t], first[t + 1] - first[t]);
        r[t * W2] = 1 - acc.misfit;
        memcpy(r + t * W2 + 1, acc.holder, sizeof acc.holder);
    }
    if (rc == CKPT_OK)
        rc = ckpt_comm_allreduce_i64(&j->c, r, T * W2, MPI_MIN);
    for (int64_t t = 0; rc == CKPT_OK && t < T; t++) {
        acc.misfit = 1 - r[t * W2];
        memcpy(acc.holder, r + t * W2 + 1, sizeof acc.holder);
        ok[t] = ckpt_grid_writers(&ix->tensors[t].grid, &acc, j->c.size) == 0;
    }
    /* round 3: cells held by their writer */
    for (int64_t t = 0; rc == CKPT_OK && t < T; t++) {
        ckpt_grid_acc_init(&acc, 3);
        if (ok[t])
            ckpt_grid_round3(&acc, &ix->tensors[t].grid, rank, boxes + first[t], first[t + 1] - first[t], scratch);
        r[t] = acc.claimed;
    }
    if (rc == CKPT_OK)
        rc = ckpt_comm_allreduce_i64(&j->c, r, T, MPI_SUM);
    for (int64_t t = 0; rc == CKPT_OK && t < T; t++) {
        ckpt_grid_acc_init(&acc, 2);
        acc.claimed = r[t];
        ix->tensors[t].sharding =
            ok[t] && acc.claimed == ix->tensors[t].grid.nboxes ? CKPT_SHARDING_GRID : CKPT_SHARDING_EXPLICIT;
    }
    free(r);
    free(boxes);
    free(scratch);
    free(ok);
    free(first);
    return rc;
}

/* Explicit tensors: their boxes go to rank 0, which plans them; every rank learns the box
 * counts and checksum slots, and each rank which of its boxes it writes (assign[i] for its
 * i-th local box: row ordinal, or -1; slot: relative checksum slot). */
static int plan_explicit(ckpt_save_job *j, const lbox *lb, int64_t nlb, int64_t *assign, int64_t *rslot)
{
    ckpt_index *ix = j->ix;
    int64_t mine = 0, total;
    for (int64_t i = 0; i < nlb; i++) {
        assign[i] = -1;
        mine += ix->tensors[lb[i].tensor].sharding == CKPT_SHARDING_EXPLICIT;
    }
    total = mine;
    int rc = ckpt_comm_allreduce_i64(&j->c, &total, 1, MPI_SUM);
    if (rc)
        return rc;
    int any_explicit = 0;
    for (int64_t t = 0; t < ix->ntensors; t++)
        any_explicit |= ix->tensors[t].sharding == CKPT_SHARDING_EXPLICIT;
    if (!any_explicit) {
        rc = ckpt_plan_assemble(ix, j->path, j->c.rank == 0);
        return ckpt_comm_agree(&j->c, rc);
    }
    ckpt_wire out = {0}, info = {0}, reply = {0};
    unsigned char *all = NULL, *replies = NULL;
    size_t *lens = NULL, *rlens = NULL;
    ckpt_wire_i64(&out, mine);
    for (int64_t i = 0; i < nlb; i++)
        if (ix->tensors[lb[i].tensor].sharding == CKPT_SHARDING_EXPLICIT) {
            ckpt_wire_i64(&out, lb[i].tensor);
            for (int d = 0; d < lb[i].box.ndim; d++) {
                ckpt_wire_i64(&out, lb[i].box.off[d]);
                ckpt_wire_i64(&out, lb[i].box.ext[d]);
            }
        }
    rc = ckpt_comm_agree(&j->c, out.failed ? ckpt_error(CKPT_ENOMEM, "out of memory encoding boxes") : CKPT_OK);
    if (rc == CKPT_OK)
        rc = ckpt_comm_gather(&j->c, &out, &all, &lens);
    if (rc)
        goto done;
    if (j->c.rank == 0) {
        ckpt_plan_box *pb = malloc(((size_t)total + 1) * sizeof *pb);
        int64_t *as = malloc(((size_t)total + 1) * sizeof *as);
        int64_t *roff = calloc((size_t)j->c.size + 1, sizeof *roff);
        rc = pb && as && roff ? CKPT_OK : ckpt_error(CKPT_ENOMEM, "out of memory planning %" PRId64 " boxes", total);
        size_t pos = 0;
        int64_t k = 0;
        for (int r = 0; rc == CKPT_OK && r < j->c.size; r++) {
            ckpt_wire w;
            ckpt_wire_view(&w, all + pos, lens[r]);
            pos += lens[r];
            int64_t n = ckpt_wire_get_i64(&w);
            roff[r] = k;
            for (int64_t i = 0; i < n && !w.failed && k < total; i++, k++) {
                int64_t t = ckpt_wire_get_i64(&w);
                if (t < 0 || t >= ix->ntensors) {
                    w.failed = 1;
                    break;
                }
                memset(&pb[k], 0, sizeof pb[k]);
                pb[k].box.ndim = ix->tensors[t].ndim;
                for (int d = 0; d < pb[k].box.ndim; d++) {
                    pb[k].box.off[d] = ckpt_wire_get_i64(&w);
                    pb[k].box.ext[d] = ckpt_wire_get_i64(&w);
                }
                pb[k].tensor = (int32_t)t;
                pb[k].rank = r;
                pb[k].slot = k;
            }
            if (w.failed || (r == j->c.size - 1 && k != total))
                rc = ckpt_error(CKPT_ECORRUPT, "boxes received from rank %d are malformed", r);
        }
        roff[j->c.size] = total;
        if (rc == CKPT_OK)
            rc = ckpt_plan_explicit(ix, pb, total, as);
        if (rc == CKPT_OK)
            rc = ckpt_plan_assemble(ix, j->path, 1);
        /* what everyone needs of the explicit tensors, and what each rank writes */
        rlens = calloc((size_t)j->c.size, sizeof *rlens);
        if (rc == CKPT_OK && !rlens)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory planning the save");
        for (int64_t t = 0; rc == CKPT_OK && t < ix->ntensors; t++) {
            const ckpt_itensor *it = &ix->tensors[t];
            if (it->sharding != CKPT_SHARDING_EXPLICIT)
                continue;
            int64_t chunk[CKPT_MAX_NDIM] = {0};
            if (ix->layout == CKPT_LAYOUT_SHARED && it->nboxes > 0) {
                ckpt_box *bx = malloc((size_t)it->nboxes * sizeof *bx);
                if (!bx) {
                    rc = ckpt_error(CKPT_ENOMEM, "out of memory planning the shared file");
                    break;
                }
                for (int64_t b = 0; b < it->nboxes; b++)
                    bx[b] = ix->rows[it->first_row + b].box;
                ckpt_shared_chunk(it->ndim, it->shape, ckpt_dtype_size(it->dtype), bx, it->nboxes, NULL,
                                  ix->piece_bytes, chunk);
                free(bx);
            }
            ckpt_wire_i64(&info, t);
            ckpt_wire_i64(&info, it->nboxes);
            ckpt_wire_i64(&info, it->nslots);
            ckpt_wire_bytes(&info, chunk, sizeof chunk);
        }
        /* the slot of each gathered box (pb is sorted now; as[] is indexed by the original slot) */
        int64_t *rel = rc == CKPT_OK ? malloc(((size_t)total + 1) * sizeof *rel) : NULL;
        if (rc == CKPT_OK && !rel)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory planning the save");
        for (int64_t i = 0; rc == CKPT_OK && i < total; i++) {
            int64_t slot = pb[i].slot;
            const ckpt_itensor *it = &ix->tensors[pb[i].tensor];
            rel[slot] = as[slot] >= 0 ? ix->rows[it->first_row + as[slot]].first_piece : 0;
        }
        for (int r = 0; rc == CKPT_OK && r < j->c.size; r++) {
            size_t before = reply.len;
            for (int64_t k2 = roff[r]; k2 < roff[r + 1]; k2++) {
                ckpt_wire_i64(&reply, as[k2]);
                ckpt_wire_i64(&reply, rel[k2]);
            }
            rlens[r] = reply.len - before;
        }
        if (rc == CKPT_OK && (info.failed || reply.failed))
            rc = ckpt_error(CKPT_ENOMEM, "out of memory planning the save");
        free(rel);
        free(pb);
        free(as);
        free(roff);
    }
    if ((rc = ckpt_comm_share_root(&j->c, rc)) != CKPT_OK)
        goto done;
    if ((rc = ckpt_comm_bcast(&j->c, &info)) != CKPT_OK)
        goto done;
    {
        ckpt_wire mine_reply = {0};
        rc = ckpt_comm_scatter(&j->c, reply.buf, rlens, &mine_reply);
        if (rc == CKPT_OK) {
            for (int64_t i = 0; i < nlb; i++)
                if (ix->tensors[lb[i].tensor].sharding == CKPT_SHARDING_EXPLICIT) {
                    assign[i] = ckpt_wire_get_i64(&mine_reply);
                    rslot[i] = ckpt_wire_get_i64(&mine_reply);
                }
            if (j->c.rank != 0) {
                while (info.pos < info.len && !info.failed) {
                    int64_t t = ckpt_wire_get_i64(&info);
                    if (t < 0 || t >= ix->ntensors)
                        break;
                    ix->tensors[t].nboxes = ckpt_wire_get_i64(&info);
                    ix->tensors[t].nslots = ckpt_wire_get_i64(&info);
                    int64_t chunk[CKPT_MAX_NDIM];
                    ckpt_wire_get_bytes(&info, chunk, sizeof chunk);
                    memcpy(ix->tensors[t].grid.chunk, chunk, sizeof chunk); /* the shared file's chunks */
                }
                rc = ckpt_plan_assemble(ix, j->path, 0);
            } else {
                /* rank 0 keeps its own chunk choices the same way as the others */
                while (info.pos < info.len && !info.failed) {
                    int64_t t = ckpt_wire_get_i64(&info);
                    ckpt_wire_get_i64(&info);
                    ckpt_wire_get_i64(&info);
                    int64_t chunk[CKPT_MAX_NDIM];
                    ckpt_wire_get_bytes(&info, chunk, sizeof chunk);
                    if (t >= 0 && t < ix->ntensors)
                        memcpy(ix->tensors[t].grid.chunk, chunk, sizeof chunk);
                }
            }
            if (rc == CKPT_OK && (mine_reply.failed || info.failed))
                rc = ckpt_error(CKPT_ECORRUPT, "cannot decode the save plan");
        }
        ckpt_wire_free(&mine_reply);
        rc = ckpt_comm_agree(&j->c, rc);
    }
done:
    free(all);
    free(lens);
    free(replies);
    free(rlens);
    ckpt_wire_free(&out);
    ckpt_wire_free(&info);
    ckpt_wire_free(&reply);
    return rc;
}

/* This rank's items: the boxes it writes, in the caller's order. */
static int build_items(ckpt_save_job *j, lbox *lb, int64_t nlb, const int64_t *assign, const int64_t *rslot)
{
    ckpt_index *ix = j->ix;
    j->items = calloc((size_t)nlb + 1, sizeof *j->items);
    j->names = calloc((size_t)nlb + 1, sizeof *j->names);
    j->item_tensor = calloc((size_t)nlb + 1, sizeof *j->item_tensor);
    j->item_round = calloc((size_t)nlb + 1, sizeof *j->item_round);
    j->device = calloc((size_t)nlb + 1, sizeof *j->device);
    j->host_copy = calloc((size_t)nlb + 1, sizeof *j->host_copy);
    j->stored = calloc((size_t)ix->ntensors + 1, sizeof *j->stored);
    int *rounds = calloc((size_t)ix->ntensors + 1, sizeof *rounds);
    int64_t *taken = malloc(((size_t)nlb + 1) * sizeof *taken); /* gids written, to drop own duplicates */
    int rc = CKPT_OK;
    if (!j->items || !j->names || !j->item_tensor || !j->item_round || !j->device || !j->host_copy || !j->stored ||
        !rounds || !taken) {
        rc = ckpt_error(CKPT_ENOMEM, "out of memory preparing the write");
        goto out;
    }
    int64_t ntaken = 0, file_slot = 0;
    for (int64_t i = 0; i < nlb; i++) {
        const lbox *l = &lb[i];
        const ckpt_itensor *t = &ix->tensors[l->tensor];
        int64_t jj, slot;
        if (t->sharding == CKPT_SHARDING_GRID) {
            if (!ckpt_grid_cell_of(&t->grid, &l->box, &jj, NULL) || ckpt_grid_writer(&t->grid, jj) != j->c.rank)
                continue;
            slot = t->first_piece + jj * t->piece_stride;
        } else {
            if ((jj = assign[i]) < 0)
                continue;
            slot = t->first_piece + rslot[i];
        }
        int64_t gid = t->first_box + jj, dup = 0;
        for (int64_t k = 0; k < ntaken && !dup; k++) /* only a rank's own repeated box can repeat a gid */
            dup = taken[k] == gid;
        if (dup)
            continue;
        taken[ntaken++] = gid;
        int64_t n = j->nitems;
        ckpt_write_item *it = &j->items[n];
        snprintf(j->names[n], sizeof j->names[n], "/boxes/%" PRId64, gid);
        j->item_tensor[n] = l->tensor;
        j->item_round[n] = rounds[l->tensor]++;
        it->tensor = strdup(t->name); /* an async save outlives the caller's state */
        it->dataset = j->names[n];
        it->dtype = t->dtype;
        it->box = l->box;
        it->data = l->data;
        j->device[n] = ckpt_gpu_is_device(it->data);
        ckpt_pieces_of(t->ndim, it->box.ext, ckpt_dtype_size(t->dtype), ix->piece_bytes, &it->pieces);
        it->first_piece = ix->layout == CKPT_LAYOUT_SHARED ? slot : file_slot;
        file_slot += it->pieces.count;
        it->checksums = calloc((size_t)it->pieces.count + 1, sizeof *it->checksums);
        j->nitems++;
        if (!it->checksums || !it->tensor) {
            rc = ckpt_error(CKPT_ENOMEM, "out of memory preparing the write");
            goto out;
        }
    }
out:
    free(rounds);
    free(taken);
    return rc;
}

/* The shared layout: every dataset, with chunks aligned to the boxes and the most rounds of
 * collective writes any rank needs. */
static int plan_shared(ckpt_save_job *j)
{
    ckpt_index *ix = j->ix;
    int64_t T = ix->ntensors;
    int64_t *rounds = calloc((size_t)T + 1, sizeof *rounds);
    j->shared = calloc((size_t)T + 1, sizeof *j->shared);
    int rc = rounds && j->shared ? CKPT_OK : ckpt_error(CKPT_ENOMEM, "out of memory planning the shared file");
    rc = ckpt_comm_agree(&j->c, rc);
    if (rc) {
        free(rounds);
        return rc;
    }
    for (int64_t i = 0; i < j->nitems; i++)
        rounds[j->item_tensor[i]]++;
    rc = ckpt_comm_allreduce_i64(&j->c, rounds, T, MPI_MAX);
    j->nslots = 0;
    for (int64_t t = 0; rc == CKPT_OK && t < T; t++) {
        const ckpt_itensor *it = &ix->tensors[t];
        ckpt_shared_tensor *st = &j->shared[t];
        st->name = it->name;
        st->dtype = it->dtype;
        st->ndim = it->ndim;
        memcpy(st->shape, it->shape, sizeof st->shape);
        st->rounds = (int)rounds[t];
        /* zero-size and 0-D tensors stay contiguous (chunk 0) */
        if (it->ndim > 0 && it->nboxes > 0) {
            if (it->sharding == CKPT_SHARDING_GRID)
                ckpt_shared_chunk(it->ndim, it->shape, ckpt_dtype_size(it->dtype), NULL, 0, it->grid.chunk,
                                  ix->piece_bytes, st->chunk);
            else
                memcpy(st->chunk, it->grid.chunk, sizeof st->chunk); /* chosen by rank 0 */
        }
        j->nslots += it->nslots;
    }
    j->nshared = T;
    free(rounds);
    return rc;
}

/* The file-per-group layout: this rank's group and its communicator; rank 0 gathers the map. */
static int plan_groups(ckpt_save_job *j)
{
    j->group = MPI_COMM_NULL;
    j->group_id = 0;
    if (j->o.layout != CKPT_LAYOUT_GROUP)
        return CKPT_OK;
    ckpt_index *ix = j->ix;
    int rc = MPI_SUCCESS, rank = j->c.rank;
    if (!j->c.active) {
        ix->groups = calloc(1, sizeof *ix->groups);
        if (!ix->groups)
            return ckpt_error(CKPT_ENOMEM, "out of memory planning groups");
        ix->groups[0] = (ckpt_igroup){0, 1, 0};
        ix->ngroups = 1;
        return CKPT_OK;
    }
    if (j->o.group_size > 0)
        rc = MPI_Comm_split(j->c.comm, rank / j->o.group_size, rank, &j->group);
    else
        rc = MPI_Comm_split_type(j->c.comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &j->group);
    if (rc != MPI_SUCCESS)
        return ckpt_comm_agree(&j->c, ckpt_error(CKPT_EMPI, "cannot split the ranks into file groups"));
    /* groups are numbered in the order of their lowest rank: an exclusive scan of leaders */
    int grank = 0;
    MPI_Comm_rank(j->group, &grank);
    int64_t leader = grank == 0, before = 0;
    rc = MPI_Exscan(&leader, &before, 1, MPI_INT64_T, MPI_SUM, j->c.comm);
    if (rank == 0)
        before = 0;
    if (rc == MPI_SUCCESS)
        rc = MPI_Bcast(&before, 1, MPI_INT64_T, 0, j->group);
    j->group_id = before;
    int64_t *all = rank == 0 ? malloc((size_t)j->c.size * sizeof *all) : NULL;
    if (rc == MPI_SUCCESS)
        rc = MPI_Gather(&j->group_id, 1, MPI_INT64_T, all, 1, MPI_INT64_T, 0, j->c.comm);
    int st = rc == MPI_SUCCESS ? CKPT_OK : ckpt_error(CKPT_EMPI, "cannot exchange the file groups");
    if (st == CKPT_OK && rank == 0) {
        if (!all)
            st = ckpt_error(CKPT_ENOMEM, "out of memory planning groups");
        int64_t runs = 0;
        for (int r = 0; st == CKPT_OK && r < j->c.size; r++)
            runs += r == 0 || all[r] != all[r - 1];
        ix->groups = st == CKPT_OK ? calloc((size_t)runs + 1, sizeof *ix->groups) : NULL;
        if (st == CKPT_OK && !ix->groups)
            st = ckpt_error(CKPT_ENOMEM, "out of memory planning groups");
        for (int r = 0; st == CKPT_OK && r < j->c.size; r++) {
            if (r == 0 || all[r] != all[r - 1])
                ix->groups[ix->ngroups++] = (ckpt_igroup){r, 0, all[r]};
            ix->groups[ix->ngroups - 1].nranks++;
        }
    }
    free(all);
    return ckpt_comm_agree(&j->c, st);
}

int ckpt_save_plan(ckpt_save_job *j, const ckpt_state *s)
{
    int rc = ckpt_index_new(&j->ix);
    rc = ckpt_comm_agree(&j->c, rc);
    if (rc)
        return rc;
    ckpt_index *ix = j->ix;
    ix->layout = j->o.layout;
    ix->world_size = j->c.size;
    ix->piece_bytes = j->o.piece_bytes;
    ckpt_plan_compression(ix, &j->o);
    if ((rc = plan_groups(j)) != CKPT_OK)
        return rc;
    if ((rc = plan_decls(j, s)) != CKPT_OK)
        return rc;
    /* this rank's non-empty boxes, grouped by tensor */
    int64_t nlb = 0;
    for (int i = 0; i < s->ntensors; i++)
        for (int64_t b = 0; b < s->tensors[i].nboxes; b++)
            nlb += ckpt_box_volume(&s->tensors[i].boxes[b].box) > 0;
    lbox *lb = malloc(((size_t)nlb + 1) * sizeof *lb);
    int64_t *assign = malloc(((size_t)nlb + 1) * sizeof *assign), *rslot = calloc((size_t)nlb + 1, sizeof *rslot);
    rc = lb && assign && rslot ? CKPT_OK : ckpt_error(CKPT_ENOMEM, "out of memory planning the save");
    if (rc == CKPT_OK) {
        int64_t k = 0;
        for (int i = 0; i < s->ntensors; i++) {
            const ckpt_stensor *st = &s->tensors[i];
            int64_t t = ckpt_strmap_get(&ix->by_name, st->name);
            for (int64_t b = 0; b < st->nboxes; b++)
                if (ckpt_box_volume(&st->boxes[b].box) > 0) {
                    lb[k] = (lbox){t, k, st->boxes[b].box, st, st->boxes[b].data};
                    k++;
                }
        }
        qsort(lb, (size_t)nlb, sizeof *lb, cmp_lbox);
    }
    rc = ckpt_comm_agree(&j->c, rc);
    if (rc == CKPT_OK)
        rc = plan_grids(j, lb, nlb);
    if (rc == CKPT_OK)
        rc = plan_explicit(j, lb, nlb, assign, rslot);
    if (rc == CKPT_OK) {
        /* back to the caller's order, with each box's assignment */
        int64_t *pa = malloc(((size_t)nlb + 1) * 2 * sizeof *pa);
        if (!pa)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory planning the save");
        for (int64_t i = 0; pa && i < nlb; i++) {
            pa[2 * lb[i].order] = assign[i];
            pa[2 * lb[i].order + 1] = rslot[i];
        }
        if (pa) {
            qsort(lb, (size_t)nlb, sizeof *lb, cmp_order);
            for (int64_t i = 0; i < nlb; i++) {
                assign[i] = pa[2 * i];
                rslot[i] = pa[2 * i + 1];
            }
        }
        free(pa);
        rc = ckpt_comm_agree(&j->c, rc);
    }
    if (rc == CKPT_OK)
        rc = ckpt_comm_agree(&j->c, build_items(j, lb, nlb, assign, rslot));
    if (rc == CKPT_OK && ix->layout == CKPT_LAYOUT_SHARED)
        rc = plan_shared(j);
    free(lb);
    free(assign);
    free(rslot);
    return rc;
}
