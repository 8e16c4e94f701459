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

static int float_pair(ckptfmt_ggml_type t, ckpt_dtype *d)
{
    switch (t) {
    case CKPTFMT_GGML_F32: *d = CKPT_F32; return 1;
    case CKPTFMT_GGML_F16: *d = CKPT_F16; return 1;
    case CKPTFMT_GGML_BF16: *d = CKPT_BF16; return 1;
    default: return 0;
    }
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
        out[2 + j] = (unsigned char)(int8_t)roundf(x[j] * id);
}

int ckptfmt_ggml_encode(ckptfmt_ggml_type t, const float *src, uint64_t n, void *dst)
{
    ckpt_dtype d;
    if (float_pair(t, &d)) {
        if (d == CKPT_F32) {
            memmove(dst, src, n * sizeof(float));
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
