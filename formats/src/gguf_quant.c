/* Tensor data encodings of ggml: f32, f16, bf16 (round to nearest even, through libckpt's
 * conversion) and q8_0 (ggml's reference block quantisation, bit for bit). */
#include "ckptfmt.h"
#include "error.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* GGUF is little-endian and ckpt_dtype_convert works in host order. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF codecs assume a little-endian host"
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
/* f32 -> f16 with the F16C instruction (round to nearest even, like ckpt_dtype_convert, bit for
 * bit: NaNs quieted keeping their top payload bits, overflow to Inf, subnormals rounded) -- some
 * 20 times faster than the scalar conversion. n must be a multiple of 8. */
__attribute__((target("avx,f16c"))) static void f16c_encode(const float *src, uint64_t n, uint16_t *dst)
{
    for (uint64_t i = 0; i < n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
}

/* CPUID leaf 1: ECX bit 29 F16C; AVX (bit 28) with its registers enabled by the OS. */
static int have_f16c(void)
{
    static _Atomic int cached = -1; /* threads may race to fill it, with the same value */
    int v = cached;
    if (v < 0) {
        unsigned a, b, c, d;
        v = __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1) && __builtin_cpu_supports("avx");
        cached = v;
    }
    return v;
}
#define HAVE_F16C_PATH 1
#endif

/* f32 -> f16, the bulk through F16C where the CPU has it. */
static void encode_f16(const float *src, uint64_t n, uint16_t *dst)
{
    uint64_t done = 0;
#ifdef HAVE_F16C_PATH
    if (have_f16c()) {
        done = n / 8 * 8;
        f16c_encode(src, done, dst);
    }
#endif
    ckpt_dtype_convert(CKPT_F32, src + done, CKPT_F16, dst + done, (size_t)(n - done));
}

static int float_pair(ckptfmt_ggml_type t, ckpt_dtype *d)
{
    switch (t) {
    case CKPTFMT_GGML_F32: *d = CKPT_F32; return 1;
    case CKPTFMT_GGML_F16: *d = CKPT_F16; return 1;
    case CKPTFMT_GGML_BF16: *d = CKPT_BF16; return 1;
    default: return 0;
    }
}

/* roundf (half away from zero) for |v| <= 127, inline: truncation and the exact remainder. Out
 * of range (an infinite 1/d of a block of subnormals) clamps, NaN gives 0: defined where a cast
 * of roundf's result would not be. */
static inline int round_away(float v)
{
    if (!(v == v))
        return 0;
    v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
    int q = (int)v;
    float f = v - (float)q;
    return q + (f >= 0.5f) - (f <= -0.5f);
}

/* One q8_0 block: d = amax / 127 in f32, q = roundf(x * (1/d)); the f16 of d is what is stored
 * (and what dequantisation multiplies by). */
static void q8_0_block(const float *x, unsigned char *out)
{
    float amax = 0.0f;
    for (int j = 0; j < CKPTFMT_Q8_0_BLOCK; j++) {
        float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint16_t d16;
    ckpt_dtype_convert(CKPT_F32, &d, CKPT_F16, &d16, 1);
    out[0] = (unsigned char)(d16 & 0xff);
    out[1] = (unsigned char)(d16 >> 8);
    for (int j = 0; j < CKPTFMT_Q8_0_BLOCK; j++)
        out[2 + j] = (unsigned char)(int8_t)round_away(x[j] * id);
}

int ckptfmt_ggml_encode(ckptfmt_ggml_type t, const float *src, uint64_t n, void *dst)
{
    ckpt_dtype d;
    if (float_pair(t, &d)) {
        if (d == CKPT_F32) {
            memmove(dst, src, n * sizeof(float));
            return CKPTFMT_OK;
        }
        if (d == CKPT_F16) {
            encode_f16(src, n, dst);
            return CKPTFMT_OK;
        }
        return ckpt_dtype_convert(CKPT_F32, src, d, dst, n) == CKPT_OK
                   ? CKPTFMT_OK
                   : fmt_error(CKPTFMT_EINVAL, "cannot convert f32 to %s", ckpt_dtype_name(d));
    }
    if (t != CKPTFMT_GGML_Q8_0)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "encoding to ggml type %d is not implemented", (int)t);
    if (n % CKPTFMT_Q8_0_BLOCK)
        return fmt_error(CKPTFMT_EINVAL, "%llu elements are not a whole number of q8_0 blocks",
                         (unsigned long long)n);
    unsigned char *o = dst;
    for (uint64_t b = 0; b < n / CKPTFMT_Q8_0_BLOCK; b++)
        q8_0_block(src + b * CKPTFMT_Q8_0_BLOCK, o + b * CKPTFMT_Q8_0_BYTES);
    return CKPTFMT_OK;
}

int ckptfmt_ggml_decode(ckptfmt_ggml_type t, const void *src, uint64_t n, float *dst)
{
    ckpt_dtype d;
    if (float_pair(t, &d)) {
        if (d == CKPT_F32) {
            memmove(dst, src, n * sizeof(float));
            return CKPTFMT_OK;
        }
        return ckpt_dtype_convert(d, src, CKPT_F32, dst, n) == CKPT_OK
                   ? CKPTFMT_OK
                   : fmt_error(CKPTFMT_EINVAL, "cannot convert %s to f32", ckpt_dtype_name(d));
    }
    if (t != CKPTFMT_GGML_Q8_0)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "decoding ggml type %d is not implemented", (int)t);
    if (n % CKPTFMT_Q8_0_BLOCK)
        return fmt_error(CKPTFMT_EINVAL, "%llu elements are not a whole number of q8_0 blocks",
                         (unsigned long long)n);
    const unsigned char *p = src;
    for (uint64_t b = 0; b < n / CKPTFMT_Q8_0_BLOCK; b++, p += CKPTFMT_Q8_0_BYTES) {
        uint16_t d16 = (uint16_t)(p[0] | p[1] << 8);
        float scale;
        ckpt_dtype_convert(CKPT_F16, &d16, CKPT_F32, &scale, 1);
        for (int j = 0; j < CKPTFMT_Q8_0_BLOCK; j++)
            dst[b * CKPTFMT_Q8_0_BLOCK + j] = (float)(int8_t)p[2 + j] * scale;
    }
    return CKPTFMT_OK;
}
