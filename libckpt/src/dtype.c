/* dtype.c -- element types and float conversions (bf16/f16/f32/f64). */
#include "dtype.h"
#include "error.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[CKPT_DTYPE_COUNT] = {
    [CKPT_F32] = {"f32", 4},  [CKPT_F64] = {"f64", 8}, [CKPT_F16] = {"f16", 2},
    [CKPT_BF16] = {"bf16", 2}, [CKPT_I8] = {"i8", 1},  [CKPT_I16] = {"i16", 2},
    [CKPT_I32] = {"i32", 4},  [CKPT_I64] = {"i64", 8}, [CKPT_U8] = {"u8", 1},
    [CKPT_BOOL] = {"bool", 1},
};

int ckpt_dtype_valid(int d) { return d >= 0 && d < CKPT_DTYPE_COUNT; }

size_t ckpt_dtype_size(ckpt_dtype d) { return ckpt_dtype_valid((int)d) ? dtypes[d].size : 0; }

const char *ckpt_dtype_name(ckpt_dtype d) { return ckpt_dtype_valid((int)d) ? dtypes[d].name : NULL; }

int ckpt_dtype_from_name(const char *name, ckpt_dtype *out)
{
    if (name)
        for (int i = 0; i < CKPT_DTYPE_COUNT; i++)
            if (strcmp(name, dtypes[i].name) == 0) {
                *out = (ckpt_dtype)i;
                return CKPT_OK;
            }
    return CKPT_EINVAL;
}

static int is_float(ckpt_dtype d)
{
    return d == CKPT_F32 || d == CKPT_F64 || d == CKPT_F16 || d == CKPT_BF16;
}

int ckpt_dtype_can_cast(ckpt_dtype from, ckpt_dtype to)
{
    if (!ckpt_dtype_valid((int)from) || !ckpt_dtype_valid((int)to))
        return 0;
    return from == to || (is_float(from) && is_float(to));
}

static uint32_t f32_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static float bits_f32(uint32_t x)
{
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t ckpt_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* Inf or NaN; NaN keeps its top payload bits and is quieted */
        return (uint16_t)(sign | (ax > 0x7f800000u ? 0x7e00u | ((ax >> 13) & 0x3ffu) : 0x7c00u));
    if (ax >= 0x477ff000u) /* >= 65520 rounds to Inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below 2^-14: f16 subnormal (units of 2^-24) or zero */
        if (ax < 0x33000000u) /* < 2^-25 (and exactly 2^-25 ties to even 0) */
            return sign;
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* value / 2^-24 = m * 2^(e-126) */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (ax - 0x38000000u) >> 13; /* rebias 127 -> 15 */
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
        r++;
    return (uint16_t)(sign | r);
}

float ckpt_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f)
        return bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        if (m == 0)
            return bits_f32(sign);
        float v = ldexpf((float)m, -24); /* subnormal: exact in f32 */
        return sign ? -v : v;
    }
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t ckpt_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float ckpt_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

float ckpt_f64_to_f32_odd(double d)
{
    float f = (float)d;
    if (isnan(d) || isinf(d) || (double)f == d)
        return f;
    uint32_t x = f32_bits(f);
    if (fabs((double)f) > fabs(d)) /* rounded away from zero: step back toward zero */
        x -= 1;
    return bits_f32(x | 1u);
}

/* One element to f32 (for f64 sources, rounded to odd so the next rounding is correct). */
static float load_f32(ckpt_dtype from, const unsigned char *p)
{
    switch (from) {
    case CKPT_F32: { float f; memcpy(&f, p, 4); return f; }
    case CKPT_F64: { double d; memcpy(&d, p, 8); return ckpt_f64_to_f32_odd(d); }
    case CKPT_F16: { uint16_t h; memcpy(&h, p, 2); return ckpt_f16_to_f32(h); }
    case CKPT_BF16: { uint16_t h; memcpy(&h, p, 2); return ckpt_bf16_to_f32(h); }
    default: return 0.0f;
    }
}

static double load_f64(ckpt_dtype from, const unsigned char *p)
{
    if (from == CKPT_F64) {
        double d;
        memcpy(&d, p, 8);
        return d;
    }
    return (double)load_f32(from, p);
}

void ckpt_convert(ckpt_dtype from, const void *src, ckpt_dtype to, void *dst, size_t n)
{
    const unsigned char *s = src;
    unsigned char *o = dst;
    size_t ss = ckpt_dtype_size(from), ds = ckpt_dtype_size(to);
    if (from == to) {
        memmove(dst, src, n * ss);
        return;
    }
    for (size_t i = 0; i < n; i++, s += ss, o += ds) {
        switch (to) {
        case CKPT_F64: { double d = load_f64(from, s); memcpy(o, &d, 8); break; }
        case CKPT_F32: {
            /* f64 -> f32 is a single rounding: round to nearest, not to odd */
            float f = from == CKPT_F64 ? (float)load_f64(from, s) : load_f32(from, s);
            memcpy(o, &f, 4);
            break;
        }
        case CKPT_F16: { uint16_t h = ckpt_f32_to_f16(load_f32(from, s)); memcpy(o, &h, 2); break; }
        case CKPT_BF16: { uint16_t h = ckpt_f32_to_bf16(load_f32(from, s)); memcpy(o, &h, 2); break; }
        default: break;
        }
    }
}

int ckpt_dtype_convert(ckpt_dtype from, const void *src, ckpt_dtype to, void *dst, size_t n)
{
    if (!ckpt_dtype_can_cast(from, to))
        return ckpt_error(CKPT_EINVAL, "cannot convert %s to %s", ckpt_dtype_name(from) ? ckpt_dtype_name(from) : "?",
                          ckpt_dtype_name(to) ? ckpt_dtype_name(to) : "?");
    if (n && (!src || !dst))
        return ckpt_error(CKPT_EINVAL, "ckpt_dtype_convert: NULL buffer");
    ckpt_convert(from, src, to, dst, n);
    return CKPT_OK;
}
