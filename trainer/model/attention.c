/* Causal multi-head self-attention core (the QKV and output projections live in linear.c).
 *
 * Per (b, h), with Q, K, V the (T, hs) head slices of qkv (row stride 3C), scale = 1/sqrt(hs):
 *   S = scale Q K^T (T,T);  P = softmax over j <= i, 0 above the diagonal;  Y = P V (T,hs)
 * The products are single-threaded sgemm calls on strided views of qkv / out; the OpenMP team splits the
 * B*H independent (b,h) problems. Causality: P is exactly zero above the diagonal, so the products are
 * computed block-triangularly in query tiles of GPT_ATT_TILE rows (tile q only needs keys [0, end of q)),
 * which skips most of the masked half of the work. */
#include "layers.h"
#include "vexp.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* causal softmax of row i of s (length T) in place: s[j] for j <= i, zero for j > i */
static inline void softmax_causal_row(float *restrict s, int i, int T)
{
    float mx = s[0];
    for (int j = 1; j <= i; j++)
        mx = s[j] > mx ? s[j] : mx;
    float sum = 0.0f;
    for (int j = 0; j <= i; j++) {
        float e = gpt_vexpf(s[j] - mx);
        s[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int j = 0; j <= i; j++)
        s[j] *= inv;
    for (int j = i + 1; j < T; j++)
        s[j] = 0.0f;
}

// qkv (B,T,3C) -> att (B,H,T,T), out (B,T,C)
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int H)
{
    const int hs = C / H, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hs;
        const float *k = q + C;
        const float *v = q + 2 * C;
        float *p = att + (size_t)bh * T * T;
        float *y = out + (size_t)b * T * C + (size_t)h * hs;
        for (int i0 = 0; i0 < T; i0 += GPT_ATT_TILE) {
            int i1 = i0 + GPT_ATT_TILE < T ? i0 + GPT_ATT_TILE : T;
            int m = i1 - i0;
            /* S[i0:i1, 0:i1] = scale Q[i0:i1] K[0:i1]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, i1, hs, scale, q + (size_t)i0 * C3, C3, k, C3,
                        0.0f, p + (size_t)i0 * T, T);
            for (int i = i0; i < i1; i++)
                softmax_causal_row(p + (size_t)i * T, i, T);
            /* Y[i0:i1] = P[i0:i1, 0:i1] V[0:i1] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hs, i1, 1.0f, p + (size_t)i0 * T, T, v, C3,
                        0.0f, y + (size_t)i0 * C, C);
        }
    }
}

// dout (B,T,C), qkv (B,T,3C), att (B,H,T,T) -> dqkv (B,T,3C); datt (B,H,T,T) scratch
void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att, int B,
                        int T, int C, int H)
{
    const int hs = C / H, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hs;
        const float *k = q + C;
        const float *v = q + 2 * C;
        float *dq = dqkv + (size_t)b * T * C3 + (size_t)h * hs;
        float *dk = dq + C;
        float *dv = dq + 2 * C;
        const float *p = att + (size_t)bh * T * T;
        float *ds = datt + (size_t)bh * T * T;
        const float *dy = dout + (size_t)b * T * C + (size_t)h * hs;
        for (int i0 = 0; i0 < T; i0 += GPT_ATT_TILE) {
            int i1 = i0 + GPT_ATT_TILE < T ? i0 + GPT_ATT_TILE : T;
            int m = i1 - i0;
            /* dP[i0:i1, 0:i1] = dY[i0:i1] V[0:i1]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, i1, hs, 1.0f, dy + (size_t)i0 * C, C, v, C3, 0.0f,
                        ds + (size_t)i0 * T, T);
            /* dS = scale P (dP - rowsum(P dP)) on j <= i, 0 above (scale folded in here) */
            for (int i = i0; i < i1; i++) {
                const float *pr = p + (size_t)i * T;
                float *dr = ds + (size_t)i * T;
                float dot = 0.0f;
                for (int j = 0; j <= i; j++)
                    dot += pr[j] * dr[j];
                for (int j = 0; j <= i; j++)
                    dr[j] = scale * pr[j] * (dr[j] - dot);
                for (int j = i + 1; j < i1; j++)
                    dr[j] = 0.0f;
            }
            /* dQ[i0:i1] = dS[i0:i1, 0:i1] K[0:i1] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hs, i1, 1.0f, ds + (size_t)i0 * T, T, k, C3, 0.0f,
                        dq + (size_t)i0 * C3, C3);
        }
        /* key tiles j: only query rows i >= j0 see them.
         * dK[j0:j1] = dS[j0:T, j0:j1]^T Q[j0:T];  dV[j0:j1] = P[j0:T, j0:j1]^T dY[j0:T] */
        for (int j0 = 0; j0 < T; j0 += GPT_ATT_TILE) {
            int j1 = j0 + GPT_ATT_TILE < T ? j0 + GPT_ATT_TILE : T;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, j1 - j0, hs, T - j0, 1.0f,
                        ds + (size_t)j0 * T + j0, T, q + (size_t)j0 * C3, C3, 0.0f, dk + (size_t)j0 * C3, C3);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, j1 - j0, hs, T - j0, 1.0f,
                        p + (size_t)j0 * T + j0, T, dy + (size_t)j0 * C, C, 0.0f, dv + (size_t)j0 * C3, C3);
        }
    }
}
