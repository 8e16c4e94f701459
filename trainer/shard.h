/* shard: per-parameter Shard(0) storage of the GPT parameters, gradients and AdamW moments, and the
 * unit-level all-gather / reduce-scatter between that storage and full (gathered) unit buffers.
 *
 * Layout
 *  - Every parameter tensor P of the model table (gpt_param_table order), global shape (R, K) (K == 1
 *    for 1-D tensors), is split along dim 0: rank r of N holds rows [row0, row0 + nrows) with
 *    (row0, nrows) = ckpt_shard_box(ndim, shape, dim 0, r, N): chunks of ceil(R/N) rows, the last ones
 *    smaller or EMPTY (N > R is allowed). The same function builds the checkpoint boxes, so storage and
 *    checkpoint agree by construction.
 *  - The local shard of P is nrows*K contiguous floats (row-major rows are contiguous) at
 *    params + loc_off[P]; all local shards are packed in table order. grads, m and v use the same
 *    layout. A unit's local shards are therefore one contiguous slice of the local buffers:
 *    [unit_loc_off[u], unit_loc_off[u] + unit_loc_numel[u]).
 *  - A gathered unit buffer holds the unit's full tensors packed in table order (the layout the
 *    gpt_*_view functions expect).
 *
 * Collectives (all ranks, same order)
 *  - shard_gather_unit: one all-gather of every rank's unit slice into a rank-major staging buffer,
 *    then a local permutation into the unit (tensor-major) layout.
 *  - shard_reduce_scatter_unit: the reverse permutation of a full unit gradient buffer into rank-major
 *    order, one reduce-scatter (sum), the received slice added to (or stored in) the local grads. */
#ifndef TRAINER_SHARD_H
#define TRAINER_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "comm.h"
#include "gpt.h"

typedef struct shard_model {
    gpt_config cfg;
    int rank, nranks;
    int n_tensors, n_units;
    gpt_param_info *table;   /* [n_tensors] */
    int64_t *row0, *nrows;   /* [n_tensors] this rank's rows of each tensor */
    int64_t *loc_off;        /* [n_tensors] element offset of the local shard in params/grads/m/v */
    int64_t local_numel;     /* elements this rank holds (sum of shard sizes) */
    int64_t *unit_loc_off;   /* [n_units] */
    int64_t *unit_loc_numel; /* [n_units] */
    int *unit_counts;        /* [n_units * nranks] elements rank r holds of unit u */
    int *unit_displs;        /* [n_units * nranks] offset of rank r's slice in the staging buffer */
    int64_t max_unit_numel;  /* largest unit */

    /* sharded state (local_numel floats each, 64-byte aligned) */
    float *params, *grads, *m, *v;

    /* scratch (NULL with one rank) */
    float *staging;        /* max_unit_numel: rank-major gather / scatter order */
    float *recv;           /* max over units of this rank's slice: reduce-scatter result */
    int64_t scratch_numel; /* floats in staging + recv */
} shard_model;

/* Builds the layout for (cfg, rank of nranks) and allocates the sharded state (zeroed). NULL on
 * failure (bad config, allocation, or a unit over INT_MAX elements). */
shard_model *shard_create(const gpt_config *cfg, int rank, int nranks);
void shard_free(shard_model *s);

/* Fills the local parameter shards with gpt_init_param(seed): identical values to a single-process
 * model at any N. */
int shard_init_params(shard_model *s, uint64_t seed);

/* All-gathers unit u into dst (gpt_unit_numel(u) floats, unit layout). Collective. 0 or -1. */
int shard_gather_unit(shard_model *s, comm *c, int unit, float *dst);
/* Reduce-scatters (sum over ranks) the full unit gradient buffer src (unit layout) and adds the
 * result to this rank's grads (accumulate != 0) or stores it (accumulate == 0). Collective. 0 or -1.
 * src is left unchanged. */
int shard_reduce_scatter_unit(shard_model *s, comm *c, int unit, const float *src, int accumulate);

/* Pointer to the local shard of tensor i inside one of the state buffers (params, grads, m, v). */
static inline float *shard_local(const shard_model *s, float *buf, int i)
{
    return buf + s->loc_off[i];
}

/* Bytes of the sharded state on this rank: params + grads + m + v. */
int64_t shard_state_bytes(const shard_model *s);

#endif /* TRAINER_SHARD_H */
