/* narrow.c -- see narrow.h. */
#include "narrow.h"

#include <math.h>
#include <string.h>

/* A binary floating format: mbits stored mantissa bits, ebits exponent bits. */
typedef struct ffmt {
    int mbits, ebits;
} ffmt;

static uint32_t narrow_bits(double v, ffmt f)
{
    int bias = (1 << (f.ebits - 1)) - 1, emin = 1 - bias, emax = bias;
    uint32_t sign = signbit(v) ? 1u << (f.mbits + f.ebits) : 0;
    uint32_t expall = ((1u << f.ebits) - 1) << f.mbits;
    if (isnan(v))
        return sign | expall | (1u << (f.mbits - 1)); /* quiet NaN */
    double a = fabs(v);
    if (isinf(a))
        return sign | expall;
    if (a == 0)
        return sign;
    /* the spacing of representable numbers around a: 2^(e - mbits), or the subnormal spacing */
    int e = ilogb(a);
    if (e < emin)
        e = emin;
    if (e > emax + 1)
        return sign | expall; /* far above the largest finite value */
    double q = ldexp(a, f.mbits - e);  /* exact: scaling by a power of two */
    double r = nearbyint(q);           /* the default rounding mode: to nearest, ties to even */
    double x = ldexp(r, e - f.mbits);  /* the rounded value */
    if (x >= ldexp(1.0, emax + 1))
        return sign | expall; /* rounded up past the largest finite value */
    if (x < ldexp(1.0, emin))
        return sign | (uint32_t)r; /* subnormal (r < 2^mbits), or zero */
    int ex = ilogb(x);
    uint32_t man = (uint32_t)(ldexp(x, f.mbits - ex) - ldexp(1.0, f.mbits));
    return sign | ((uint32_t)(ex + bias) << f.mbits) | man;
}

uint16_t narrow_f16(double v) { return (uint16_t)narrow_bits(v, (ffmt){10, 5}); }
uint16_t narrow_bf16(double v) { return (uint16_t)narrow_bits(v, (ffmt){7, 8}); }
uint32_t narrow_f32(double v) { return narrow_bits(v, (ffmt){23, 8}); }

int narrow_store(ckpt_dtype dtype, const double *v, int64_t n, void *out)
{
    unsigned char *o = out;
    switch (dtype) {
    case CKPT_F64:
        memcpy(o, v, (size_t)n * sizeof *v);
        return 0;
    case CKPT_F32:
        for (int64_t i = 0; i < n; i++) {
            uint32_t b = narrow_f32(v[i]);
            memcpy(o + 4 * i, &b, 4);
        }
        return 0;
    case CKPT_F16:
    case CKPT_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t b = dtype == CKPT_F16 ? narrow_f16(v[i]) : narrow_bf16(v[i]);
            memcpy(o + 2 * i, &b, 2);
        }
        return 0;
    default:
        return -1;
    }
}
