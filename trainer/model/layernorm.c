/* LayerNorm over the last dimension, eps = 1e-5 (GPT-2). */
#include "layers.h"

#include <math.h>
#include <omp.h>

#define LN_EPS 1e-5f

// inp (N,C), w (C), b (C) -> out (N,C), mean (N), rstd (N)
void layernorm_forward(float *restrict out, float *restrict mean, float *restrict rstd, const float *restrict inp,
                       const float *restrict w, const float *restrict b, int N, int C)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float s = 0.0f;
        for (int i = 0; i < C; i++)
            s += x[i];
        float m = s / (float)C;
        float v = 0.0f;
        for (int i = 0; i < C; i++) {
            float d = x[i] - m;
            v += d * d;
        }
        float rs = 1.0f / sqrtf(v / (float)C + LN_EPS);
        for (int i = 0; i < C; i++)
            o[i] = (x[i] - m) * rs * w[i] + b[i];
        mean[n] = m;
        rstd[n] = rs;
    }
}

/* dout (N,C), inp (N,C) -> dinp (N,C) = [resid +] rstd (dnorm - mean(dnorm) - xhat mean(dnorm xhat)),
 * dnorm = dout w, xhat = (x - mean) rstd; dw (C) += sum_n dout xhat, db (C) += sum_n dout.
 * resid may alias dinp (elementwise), dout must not. */
void layernorm_backward(float *dinp, const float *resid, float *restrict dw, float *restrict db,
                        const float *restrict dout, const float *restrict inp, const float *restrict w,
                        const float *restrict mean, const float *restrict rstd, int N, int C)
{
#pragma omp parallel
    {
        /* input gradient: rows split over threads */
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C;
            const float *dy = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            const float *rr = resid ? resid + (size_t)n * C : NULL;
            float m = mean[n], rs = rstd[n];
            float s1 = 0.0f, s2 = 0.0f;
            for (int i = 0; i < C; i++) {
                float dn = dy[i] * w[i];
                s1 += dn;
                s2 += dn * (x[i] - m) * rs;
            }
            s1 /= (float)C;
            s2 /= (float)C;
            if (rr) {
                for (int i = 0; i < C; i++)
                    dx[i] = rr[i] + rs * (dy[i] * w[i] - s1 - (x[i] - m) * rs * s2);
            } else {
                for (int i = 0; i < C; i++)
                    dx[i] = rs * (dy[i] * w[i] - s1 - (x[i] - m) * rs * s2);
            }
        }
        /* parameter gradients: columns split over threads in chunks of 16, each column reduced over all
         * rows in order by one thread (deterministic, independent of the thread count) */
        int nchunk = (C + 15) / 16;
#pragma omp for schedule(static)
        for (int ch = 0; ch < nchunk; ch++) {
            int c0 = ch * 16, c1 = c0 + 16 < C ? c0 + 16 : C;
            float aw[16] = {0}, ab[16] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C;
                const float *dy = dout + (size_t)n * C;
                float m = mean[n], rs = rstd[n];
                for (int i = c0; i < c1; i++) {
                    aw[i - c0] += dy[i] * (x[i] - m) * rs;
                    ab[i - c0] += dy[i];
                }
            }
            for (int i = c0; i < c1; i++) {
                dw[i] += aw[i - c0];
                db[i] += ab[i - c0];
            }
        }
    }
}
