/* shard: Shard(0) layout from ckpt_shard_box, sharded state, unit all-gather / reduce-scatter. */
#include "shard.h"

#include <ckpt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static float *alloc_floats(int64_t n)
{
    size_t bytes = ((size_t)(n > 0 ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void shard_free(shard_model *s)
{
    if (!s)
        return;
    free(s->table);
    free(s->row0);
    free(s->nrows);
    free(s->loc_off);
    free(s->unit_loc_off);
    free(s->unit_loc_numel);
    free(s->unit_counts);
    free(s->unit_displs);
    free(s->params);
    free(s->grads);
    free(s->m);
    free(s->v);
    free(s->staging);
    free(s->recv);
    free(s);
}

shard_model *shard_create(const gpt_config *cfg, int rank, int nranks)
{
    if (gpt_config_check(cfg) != 0 || nranks < 1 || rank < 0 || rank >= nranks)
        return NULL;
    shard_model *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->rank = rank;
    s->nranks = nranks;
    s->n_tensors = gpt_num_tensors(cfg);
    s->n_units = gpt_num_units(cfg);
    size_t nt = (size_t)s->n_tensors, nu = (size_t)s->n_units, nr = (size_t)nranks;
    s->table = calloc(nt, sizeof *s->table);
    s->row0 = calloc(nt, sizeof(int64_t));
    s->nrows = calloc(nt, sizeof(int64_t));
    s->loc_off = calloc(nt, sizeof(int64_t));
    s->unit_loc_off = calloc(nu, sizeof(int64_t));
    s->unit_loc_numel = calloc(nu, sizeof(int64_t));
    s->unit_counts = calloc(nu * nr, sizeof(int));
    s->unit_displs = calloc(nu * nr, sizeof(int));
    if (!s->table || !s->row0 || !s->nrows || !s->loc_off || !s->unit_loc_off || !s->unit_loc_numel ||
        !s->unit_counts || !s->unit_displs)
        goto fail;
    gpt_param_table(cfg, s->table);

    /* this rank's rows of every tensor, and the local packing */
    int64_t off = 0;
    for (int i = 0; i < s->n_tensors; i++) {
        int64_t o[2], e[2];
        if (ckpt_shard_box(s->table[i].ndim, s->table[i].shape, 0, rank, nranks, o, e) != CKPT_OK)
            goto fail;
        s->row0[i] = o[0];
        s->nrows[i] = e[0];
        s->loc_off[i] = off;
        off += e[0] * s->table[i].shape[1];
    }
    s->local_numel = off;

    /* per-unit slices of every rank (for the collectives' counts) */
    int64_t max_recv = 0;
    for (int u = 0; u < s->n_units; u++) {
        int first, count;
        gpt_unit_tensors(cfg, u, &first, &count);
        int64_t numel = gpt_unit_numel(cfg, u);
        if (numel > INT_MAX)
            goto fail;
        if (numel > s->max_unit_numel)
            s->max_unit_numel = numel;
        s->unit_loc_off[u] = s->loc_off[first];
        int64_t displ = 0;
        for (int r = 0; r < nranks; r++) {
            int64_t n = 0;
            for (int i = first; i < first + count; i++) {
                int64_t o[2], e[2];
                ckpt_shard_box(s->table[i].ndim, s->table[i].shape, 0, r, nranks, o, e);
                n += e[0] * s->table[i].shape[1];
            }
            s->unit_counts[(size_t)u * nr + (size_t)r] = (int)n;
            s->unit_displs[(size_t)u * nr + (size_t)r] = (int)displ;
            displ += n;
            if (r == rank)
                s->unit_loc_numel[u] = n;
        }
        if (s->unit_loc_numel[u] > max_recv)
            max_recv = s->unit_loc_numel[u];
    }

    s->params = alloc_floats(s->local_numel);
    s->grads = alloc_floats(s->local_numel);
    s->m = alloc_floats(s->local_numel);
    s->v = alloc_floats(s->local_numel);
    if (nranks > 1) { /* one rank: gathers are copies, reduce-scatters additions, no staging */
        s->staging = alloc_floats(s->max_unit_numel);
        s->recv = alloc_floats(max_recv);
        s->scratch_numel = s->max_unit_numel + max_recv;
    }
    if (!s->params || !s->grads || !s->m || !s->v || (nranks > 1 && (!s->staging || !s->recv)))
        goto fail;
    return s;
fail:
    shard_free(s);
    return NULL;
}

int shard_init_params(shard_model *s, uint64_t seed)
{
    for (int i = 0; i < s->n_tensors; i++) {
        const gpt_param_info *p = &s->table[i];
        int64_t cols = p->shape[1];
        if (gpt_init_param(&s->cfg, p->name, s->row0[i] * cols, s->nrows[i] * cols, shard_local(s, s->params, i),
                           seed) != 0)
            return -1;
    }
    return 0;
}

/* Moves unit u between the rank-major staging order and the unit (tensor-major) layout. The piece of
 * tensor i held by rank r sits in staging at unit_displs[u][r] + (sizes of r's earlier tensors of u)
 * and in the unit buffer at (table[i].offset - table[first].offset) + row0_r * cols.
 * to_unit != 0: staging -> unit buffer; else unit buffer -> staging. */
static void permute(const shard_model *s, int unit, const float *from, float *to, int to_unit)
{
    int first, count;
    gpt_unit_tensors(&s->cfg, unit, &first, &count);
    const int64_t base = s->table[first].offset;
    const size_t nr = (size_t)s->nranks;
    for (int r = 0; r < s->nranks; r++) {
        int64_t so = s->unit_displs[(size_t)unit * nr + (size_t)r];
        for (int i = first; i < first + count; i++) {
            const gpt_param_info *p = &s->table[i];
            int64_t o[2], e[2];
            ckpt_shard_box(p->ndim, p->shape, 0, r, s->nranks, o, e);
            int64_t n = e[0] * p->shape[1];
            int64_t uo = (p->offset - base) + o[0] * p->shape[1];
            if (n > 0)
                memcpy(to + (to_unit ? uo : so), from + (to_unit ? so : uo), sizeof(float) * (size_t)n);
            so += n;
        }
    }
}

int shard_gather_unit(shard_model *s, comm *c, int unit, float *dst)
{
    const size_t nr = (size_t)s->nranks;
    const int *counts = s->unit_counts + (size_t)unit * nr;
    const int *displs = s->unit_displs + (size_t)unit * nr;
    if (s->nranks == 1) { /* the local shard is the unit */
        memcpy(dst, s->params + s->unit_loc_off[unit], sizeof(float) * (size_t)s->unit_loc_numel[unit]);
        return 0;
    }
    if (comm_all_gather(c, s->params + s->unit_loc_off[unit], (int)s->unit_loc_numel[unit], s->staging, counts,
                        displs) != 0)
        return -1;
    permute(s, unit, s->staging, dst, 1);
    return 0;
}

int shard_reduce_scatter_unit(shard_model *s, comm *c, int unit, const float *src, int accumulate)
{
    const size_t nr = (size_t)s->nranks;
    const int64_t n = s->unit_loc_numel[unit];
    float *g = s->grads + s->unit_loc_off[unit];
    if (s->nranks == 1) {
        if (accumulate)
            for (int64_t k = 0; k < n; k++)
                g[k] += src[k];
        else
            memcpy(g, src, sizeof(float) * (size_t)n);
        return 0;
    }
    permute(s, unit, src, s->staging, 0);
    if (comm_reduce_scatter(c, s->staging, s->recv, s->unit_counts + (size_t)unit * nr) != 0)
        return -1;
    if (accumulate)
        for (int64_t k = 0; k < n; k++)
            g[k] += s->recv[k];
    else
        memcpy(g, s->recv, sizeof(float) * (size_t)n);
    return 0;
}

int64_t shard_state_bytes(const shard_model *s)
{
    return 4 * s->local_numel * (int64_t)sizeof(float);
}
