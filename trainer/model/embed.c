/* Unit 0: token + learned position embedding. */
#include "gpt.h"

#include <omp.h>
#include <string.h>

// tokens (B,T) -> embed_out (B,T,C) = wte[tok] + wpe[t]
int gpt_embed_forward(const gpt_config *cfg, const gpt_embed_params *p, gpt_acts *a, const int32_t *tokens,
                      int B, int T)
{
    const int C = cfg->n_embd, V = cfg->vocab;
    if (B < 1 || T < 1 || B > a->max_B || T > a->max_T || T > cfg->max_seq)
        return -1;
    const int N = B * T;
    for (int n = 0; n < N; n++)
        if (tokens[n] < 0 || tokens[n] >= V)
            return -1;
    a->B = B;
    a->T = T;
    a->has_targets = 0;
    memcpy(a->tokens, tokens, sizeof(int32_t) * (size_t)N);
    const float *wte = p->wte, *wpe = p->wpe;
    float *out = a->embed_out;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *te = wte + (size_t)tokens[n] * C;
        const float *pe = wpe + (size_t)(n % T) * C;
        float *o = out + (size_t)n * C;
        for (int i = 0; i < C; i++)
            o[i] = te[i] + pe[i];
    }
    return 0;
}

// dresid (B,T,C) -> dwte (V,C) +=, dwpe (Tmax,C) +=
void gpt_embed_backward(const gpt_config *cfg, const gpt_embed_params *g, const gpt_acts *a)
{
    const int C = cfg->n_embd, B = a->B, T = a->T;
    const int N = B * T;
    const int32_t *tok = a->tokens;
    const float *d = a->dresid;
    float *dwte = g->wte, *dwpe = g->wpe;
    /* scatter-add: channels split over threads (chunks of 16) so no two threads touch the same element;
     * rows are added in token order by one thread (deterministic) */
    int nchunk = (C + 15) / 16;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < nchunk; ch++) {
        int c0 = ch * 16, c1 = c0 + 16 < C ? c0 + 16 : C;
        for (int n = 0; n < N; n++) {
            const float *dr = d + (size_t)n * C;
            float *te = dwte + (size_t)tok[n] * C;
            float *pe = dwpe + (size_t)(n % T) * C;
            for (int i = c0; i < c1; i++) {
                te[i] += dr[i];
                pe[i] += dr[i];
            }
        }
    }
}
