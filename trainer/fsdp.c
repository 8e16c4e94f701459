/* fsdp: unit-by-unit gather -> compute -> (reduce-scatter) over the sharded GPT. */
#include "fsdp.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *alloc_floats(int64_t n)
{
    size_t bytes = ((size_t)(n > 0 ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

fsdp *fsdp_create(shard_model *s, comm *c, int max_B, int T)
{
    fsdp *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->s = s;
    f->c = c;
    f->cfg = s->cfg;
    f->max_B = max_B;
    f->T = T;
    int64_t max_other = 0;
    for (int u = 1; u < s->n_units; u++) {
        int64_t n = gpt_unit_numel(&s->cfg, u);
        max_other = n > max_other ? n : max_other;
    }
    int64_t n0 = gpt_unit_numel(&s->cfg, 0);
    f->unit_buf = alloc_floats(max_other);
    f->unit_grad = alloc_floats(max_other);
    f->embed_buf = alloc_floats(n0);
    f->embed_grad = alloc_floats(n0);
    if (max_B > 0)
        f->acts = gpt_acts_create(&s->cfg, max_B, T);
    if (!f->unit_buf || !f->unit_grad || !f->embed_buf || !f->embed_grad || (max_B > 0 && !f->acts)) {
        fsdp_free(f);
        return NULL;
    }
    return f;
}

void fsdp_free(fsdp *f)
{
    if (!f)
        return;
    gpt_acts_free(f->acts);
    free(f->unit_buf);
    free(f->unit_grad);
    free(f->embed_buf);
    free(f->embed_grad);
    free(f);
}

/* Forward through every unit. targets may be NULL (logits only). compute == 0: gathers only. When the
 * model refuses the batch (bad shape or token) the remaining collectives still run, without compute,
 * and -2 is returned at the end, so no rank is left waiting. */
static int forward(fsdp *f, const int32_t *tokens, const int32_t *targets, int B, int T, double scale, int compute)
{
    const gpt_config *cfg = &f->cfg;
    const int L = cfg->n_layer;
    int refused = 0;
    gpt_embed_params ep;
    gpt_block_params bp;
    gpt_lnf_params lp;
    if (shard_gather_unit(f->s, f->c, 0, f->embed_buf) != 0)
        return -1;
    double t0 = now_s();
    gpt_embed_view(cfg, f->embed_buf, &ep);
    if (compute && gpt_embed_forward(cfg, &ep, f->acts, tokens, B, T) != 0)
        refused = 1;
    f->compute_s += now_s() - t0;
    for (int l = 0; l < L; l++) {
        if (shard_gather_unit(f->s, f->c, 1 + l, f->unit_buf) != 0)
            return -1;
        t0 = now_s();
        gpt_block_view(cfg, f->unit_buf, &bp);
        if (compute && !refused)
            gpt_block_forward(cfg, &bp, f->acts, l);
        f->compute_s += now_s() - t0;
    }
    if (shard_gather_unit(f->s, f->c, L + 1, f->unit_buf) != 0)
        return -1;
    t0 = now_s();
    gpt_lnf_view(cfg, f->unit_buf, &lp);
    if (compute && !refused && gpt_head_forward(cfg, f->embed_buf, &lp, f->acts, targets, scale, NULL) != 0)
        refused = 1;
    f->compute_s += now_s() - t0;
    return refused ? -2 : 0;
}

static double sum_losses(const fsdp *f, int B)
{
    double s = 0.0;
    const float *l = f->acts->head.losses;
    for (int n = 0; n < B * f->T; n++)
        s += l[n];
    return s;
}

int fsdp_forward_backward(fsdp *f, const int32_t *tokens, const int32_t *targets, int B, double global_tokens,
                          double *loss_sum)
{
    const gpt_config *cfg = &f->cfg;
    const int L = cfg->n_layer;
    int rc = forward(f, tokens, targets, B, f->T, global_tokens, B > 0);
    if (rc == -1)
        return rc;
    const int compute = B > 0 && rc == 0; /* after a refusal: collectives only */
    if (compute)
        *loss_sum += sum_losses(f, B);

    double t0 = now_s();
    gpt_embed_params eg;
    gpt_block_params bp, bg;
    gpt_lnf_params lp, lg;
    memset(f->embed_grad, 0, sizeof(float) * (size_t)gpt_unit_numel(cfg, 0));
    memset(f->unit_grad, 0, sizeof(float) * (size_t)gpt_unit_numel(cfg, L + 1));
    gpt_embed_view(cfg, f->embed_grad, &eg);
    gpt_lnf_view(cfg, f->unit_buf, &lp);
    gpt_lnf_view(cfg, f->unit_grad, &lg);
    if (compute)
        gpt_head_backward(cfg, f->embed_buf, &lp, eg.wte, &lg, f->acts);
    f->compute_s += now_s() - t0;
    if (shard_reduce_scatter_unit(f->s, f->c, L + 1, f->unit_grad, 1) != 0)
        return -1;
    for (int l = L - 1; l >= 0; l--) {
        if (shard_gather_unit(f->s, f->c, 1 + l, f->unit_buf) != 0)
            return -1;
        t0 = now_s();
        memset(f->unit_grad, 0, sizeof(float) * (size_t)gpt_unit_numel(cfg, 1 + l));
        gpt_block_view(cfg, f->unit_buf, &bp);
        gpt_block_view(cfg, f->unit_grad, &bg);
        if (compute)
            gpt_block_backward(cfg, &bp, &bg, f->acts, l);
        f->compute_s += now_s() - t0;
        if (shard_reduce_scatter_unit(f->s, f->c, 1 + l, f->unit_grad, 1) != 0)
            return -1;
    }
    t0 = now_s();
    if (compute)
        gpt_embed_backward(cfg, &eg, f->acts);
    f->compute_s += now_s() - t0;
    if (shard_reduce_scatter_unit(f->s, f->c, 0, f->embed_grad, 1) != 0)
        return -1;
    return rc;
}

int fsdp_forward_loss(fsdp *f, const int32_t *tokens, const int32_t *targets, int B, double *loss_sum)
{
    int rc = forward(f, tokens, targets, B, f->T, 1.0, B > 0);
    if (rc == 0 && B > 0)
        *loss_sum += sum_losses(f, B);
    return rc;
}

int fsdp_last_logits(fsdp *f, const int32_t *tokens, int T, int compute, float *logits)
{
    int rc = forward(f, tokens, NULL, 1, T, 1.0, compute);
    if (rc == 0 && compute) {
        const int V = f->cfg.vocab;
        memcpy(logits, f->acts->head.logits + (size_t)(T - 1) * V, sizeof(float) * (size_t)V);
    }
    return rc;
}

int64_t fsdp_gathered_bytes(const fsdp *f)
{
    int64_t max_other = 0;
    for (int u = 1; u < f->s->n_units; u++) {
        int64_t n = gpt_unit_numel(&f->cfg, u);
        max_other = n > max_other ? n : max_other;
    }
    int64_t floats = 2 * max_other + 2 * gpt_unit_numel(&f->cfg, 0) + f->s->scratch_numel;
    return floats * (int64_t)sizeof(float);
}

int64_t fsdp_activation_bytes(const fsdp *f)
{
    return f->acts ? (int64_t)(f->acts->mem_floats_ * sizeof(float)) : 0;
}
