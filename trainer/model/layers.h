/* Internal layer kernels of the GPT model (not part of the public API).
 * Shapes in comments: N = B*T rows. Parameter gradients are accumulated (+=); activation gradients are
 * written unless stated otherwise. All kernels are OpenMP-parallel internally and must be called from
 * outside a parallel region, with BLAS set single-threaded (blas_single_begin). */
#ifndef GPT_MODEL_LAYERS_H
#define GPT_MODEL_LAYERS_H

#include <stddef.h>

/* ---- linear.c: y = x W^T + b through cblas_sgemm, rows split over OpenMP threads ---- */

/* Makes OpenBLAS single-threaded for the duration of a model call; returns the previous setting. */
int blas_single_begin(void);
void blas_single_end(int saved);

/* inp (N,IC), w (OC,IC), b (OC) or NULL, resid (N,OC) or NULL -> out (N,OC) = resid + inp w^T + b.
 * If gelu_out is non-NULL it also receives gelu(out) (N,OC). */
void linear_forward(float *out, float *gelu_out, const float *inp, const float *w, const float *b,
                    const float *resid, int N, int IC, int OC);
/* dout (N,OC), inp (N,IC), w (OC,IC) -> dinp (N,IC) = dout w (written), dw (OC,IC) += dout^T inp,
 * db (OC) += colsum(dout) (db may be NULL). If gelu_pre (N,IC) is non-NULL, dinp is additionally
 * multiplied by gelu'(gelu_pre), i.e. dinp becomes the gradient w.r.t. the GELU input. */
void linear_backward(float *dinp, const float *gelu_pre, float *dw, float *db, const float *dout,
                     const float *inp, const float *w, int N, int IC, int OC);

/* ---- gelu.c: tanh-approximation GELU on a row range ---- */
/* x (n) -> y (n) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void gelu_forward_span(float *y, const float *x, long n);
/* d (n) *= gelu'(x) */
void gelu_backward_span(float *d, const float *x, long n);

/* ---- layernorm.c ---- */
/* inp (N,C), w (C), b (C) -> out (N,C), mean (N), rstd (N) */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                       int N, int C);
/* dout (N,C) -> dinp (N,C) = [resid +] dx (resid may be NULL, or alias dinp; dout must not alias dinp),
 * dw (C) +=, db (C) += */
void layernorm_backward(float *dinp, const float *resid, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, const float *mean, const float *rstd, int N, int C);

/* ---- attention.c: causal multi-head self-attention core (no projections) ---- */
/* query/key tile of the block-causal products: tile i only multiplies keys [0, end of tile i) */
#define GPT_ATT_TILE 64
/* qkv (B,T,3C) -> att (B,H,T,T) probabilities, out (B,T,C) */
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int H);
/* dout (B,T,C), qkv (B,T,3C), att (B,H,T,T) -> dqkv (B,T,3C) (written); datt (B,H,T,T) scratch */
void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                        int B, int T, int C, int H);

#endif
