/* Unit L+1: final LayerNorm, LM head tied to wte (logits = lnf wte^T, no bias), softmax cross-entropy.
 * wte is passed explicitly because it belongs to unit 0 (see gpt.h, "Tied head"). */
#include "gpt.h"
#include "layers.h"
#include "vexp.h"

#include <math.h>
#include <string.h>

// x (B,T,C) -> lnf (B,T,C) -> logits (B,T,V) [-> probs (B,T,V), losses (B,T), loss]
int gpt_head_forward(const gpt_config *cfg, const float *wte, const gpt_lnf_params *p, gpt_acts *a,
                     const int32_t *targets, double loss_scale_tokens, float *loss)
{
    const int C = cfg->n_embd, V = cfg->vocab, N = a->B * a->T;
    gpt_head_acts *h = &a->head;
    const float *x = gpt_block_input(cfg, a, cfg->n_layer);
    a->has_targets = 0;
    if (loss)
        *loss = 0.0f;
    if (targets) {
        if (!(loss_scale_tokens > 0.0))
            return -1;
        for (int n = 0; n < N; n++)
            if (targets[n] >= V)
                return -1;
    }
    int saved = blas_single_begin();
    layernorm_forward(h->lnf, h->lnf_mean, h->lnf_rstd, x, p->w, p->b, N, C);
    linear_forward(h->logits, NULL, h->lnf, wte, NULL, NULL, N, C, V);
    blas_single_end(saved);
    if (!targets)
        return 0;
    memcpy(a->targets, targets, sizeof(int32_t) * (size_t)N);
    a->has_targets = 1;
    a->loss_scale_tokens = loss_scale_tokens;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *lg = h->logits + (size_t)n * V;
        float *pr = h->probs + (size_t)n * V;
        float mx = lg[0];
        for (int v = 1; v < V; v++)
            mx = lg[v] > mx ? lg[v] : mx;
        float sum = 0.0f;
        for (int v = 0; v < V; v++) {
            float e = gpt_vexpf(lg[v] - mx);
            pr[v] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
        for (int v = 0; v < V; v++)
            pr[v] *= inv;
        int t = targets[n];
        /* -log softmax = log(sum) - (logit - max): no log(0) even when the probability underflows */
        h->losses[n] = t >= 0 ? logf(sum) - (lg[t] - mx) : 0.0f;
    }
    double total = 0.0; /* fixed-order sum: same result for any thread count */
    for (int n = 0; n < N; n++)
        total += h->losses[n];
    if (loss)
        *loss = (float)(total / loss_scale_tokens);
    return 0;
}

// dlogits = (probs - onehot) / scale -> dwte (V,C) +=, dlnf_w, dlnf_b (C) +=, dresid (B,T,C) = dL/dx
int gpt_head_backward(const gpt_config *cfg, const float *wte, const gpt_lnf_params *p, float *dwte,
                      const gpt_lnf_params *g, gpt_acts *a)
{
    const int C = cfg->n_embd, V = cfg->vocab, N = a->B * a->T;
    if (!a->has_targets)
        return -1;
    const gpt_head_acts *h = &a->head;
    const float *x = gpt_block_input(cfg, a, cfg->n_layer);
    float *dlogits = a->ws.dlogits;
    const float inv_scale = (float)(1.0 / a->loss_scale_tokens);
    const int32_t *targets = a->targets;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *pr = h->probs + (size_t)n * V;
        float *dl = dlogits + (size_t)n * V;
        int t = targets[n];
        if (t < 0) {
            memset(dl, 0, sizeof(float) * (size_t)V);
            continue;
        }
        for (int v = 0; v < V; v++)
            dl[v] = pr[v] * inv_scale;
        dl[t] -= inv_scale;
    }
    int saved = blas_single_begin();
    linear_backward(a->ws.dln, NULL, dwte, NULL, dlogits, h->lnf, wte, N, C, V); // -> dlnf (N,C), dwte +=
    layernorm_backward(a->dresid, NULL, g->w, g->b, a->ws.dln, x, p->w, h->lnf_mean, h->lnf_rstd, N, C);
    blas_single_end(saved);
    return 0;
}
