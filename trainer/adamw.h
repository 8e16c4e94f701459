/* adamw: sharded AdamW with decoupled weight decay, the learning-rate schedule, and global gradient-norm
 * clipping.
 *
 *  - Every rank updates only its own shard (params, grads, m, v of shard.h); the update is elementwise,
 *    so the result does not depend on the world size.
 *  - Weight decay is decoupled (Loshchilov & Hutter): p -= lr * wd * p, applied to matrices only
 *    (gpt_param_info.is_matrix: the 2-D weights and the embeddings); biases and LayerNorm parameters are
 *    not decayed.
 *  - Schedule (step s = 0-based index of the step being taken, S = total steps, W = warmup steps):
 *      s <  W: lr_max * (s + 1) / W                             (linear warmup)
 *      s >= W: lr_min + (lr_max - lr_min) * (1 + cos(pi * p)) / 2, p = min(1, (s - W) / max(1, S - W))
 *  - Clipping: the global L2 norm of the gradient is sqrt(sum over ranks of the sum of squares of the
 *    local shard) (one all-reduce); when it exceeds clip > 0 every gradient is scaled by clip / norm. */
#ifndef TRAINER_ADAMW_H
#define TRAINER_ADAMW_H

#include <stdint.h>

#include "comm.h"
#include "shard.h"

typedef struct adamw_config {
    double lr_max, lr_min;  /* peak and floor of the schedule */
    int64_t warmup_steps;   /* W */
    int64_t total_steps;    /* S */
    double beta1, beta2, eps;
    double weight_decay;    /* decoupled, matrices only */
    double grad_clip;       /* max global grad norm; <= 0: no clipping */
} adamw_config;

/* Defaults: beta1 0.9, beta2 0.95, eps 1e-8, weight decay 0.1, clip 1.0, lr 1e-3, floor lr/10. */
void adamw_config_default(adamw_config *cfg);

/* Learning rate of 0-based step s. */
double adamw_lr(const adamw_config *cfg, int64_t step);

/* Global gradient L2 norm over every rank's shard (collective). Returns 0 or -1 (comm failure). */
int adamw_grad_norm(shard_model *s, comm *c, double *norm);

/* One AdamW update of the local shard at 1-based Adam step t with learning rate lr; the gradients are
 * first multiplied by grad_scale (the clipping factor, 1.0 for none). Local, no communication. */
void adamw_update(shard_model *s, const adamw_config *cfg, int64_t t, double lr, double grad_scale);

/* The clipping factor for a gradient of norm `norm` under cfg (1.0 when no clipping applies). */
double adamw_clip_scale(const adamw_config *cfg, double norm);

#endif /* TRAINER_ADAMW_H */
