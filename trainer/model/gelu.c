/* GELU, tanh approximation: gelu(x) = 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi).
 * tanh(u) = 1 - 2 / (1 + e^{2u}) through the vectorisable exp, so the loops below compile to SIMD code.
 * These run on a slab of rows inside the caller's OpenMP region (see linear.c). */
#include "layers.h"
#include "vexp.h"

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

static inline float tanh_fast(float u)
{
    return 1.0f - 2.0f / (1.0f + gpt_vexpf(2.0f * u));
}

// x (n) -> y (n)
void gelu_forward_span(float *restrict y, const float *restrict x, long n)
{
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float t = tanh_fast(GELU_K * (v + GELU_A * v * v * v));
        y[i] = 0.5f * v * (1.0f + t);
    }
}

// d (n) *= gelu'(x): 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3a x^2)
void gelu_backward_span(float *restrict d, const float *restrict x, long n)
{
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float t = tanh_fast(GELU_K * (v + GELU_A * v * v * v));
        float g = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_A * v * v);
        d[i] *= g;
    }
}
