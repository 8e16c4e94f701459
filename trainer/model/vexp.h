/* Vectorisable single-precision exp (internal). libm's expf/tanhf are scalar calls unless the whole
 * file is built with -ffast-math; this inline version is plain arithmetic that GCC vectorises inside
 * loops. Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6 polynomial for e^r
 * (the classic Cephes expf minimax coefficients), scaled by 2^n through the exponent bits.
 * Accuracy ~1-2 ulp on [-87, 88]; inputs are clamped to that range (exp(-87) ~ 1.6e-38, no denormals,
 * no infinities), which is all softmax, cross-entropy and tanh need. A NaN input gives NaN: the
 * arithmetic runs on a clamped copy (NaN maps to -87, so the float->int conversion and the shift are
 * always defined behaviour) and the NaN is selected back at the end. */
#ifndef GPT_MODEL_VEXP_H
#define GPT_MODEL_VEXP_H

#include <stdint.h>
#include <string.h>

static inline float gpt_vexpf(float x)
{
    /* written so that NaN fails the first test: xc is always finite, in [-87, 88] */
    float xc = x > -87.0f ? x : -87.0f;
    xc = xc < 88.0f ? xc : 88.0f;
    /* n = round(xc / ln2): adding 1.5 * 2^23 pushes the fraction bits out (round to nearest even) */
    const float shifter = 12582912.0f;
    float n = xc * 1.44269504088896341f + shifter;
    n -= shifter;
    float r = xc - n * 0.693359375f; /* ln2 split: hi part exact in 9 bits */
    r = r - n * -2.12194440e-4f;     /* lo part */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23; /* n in [-126, 127]: a normal power of two */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x == x ? p * scale : x; /* NaN in, NaN out */
}

#endif
