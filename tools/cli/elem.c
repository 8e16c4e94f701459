/* elem.c -- see elem.h. */
#include "elem.h"

#include <math.h>
#include <string.h>

int elem_is_float(ckpt_dtype dtype)
{
    return dtype == CKPT_F32 || dtype == CKPT_F64 || dtype == CKPT_F16 || dtype == CKPT_BF16;
}

static double f16_to_double(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp((double)man, -24); /* zero and subnormals */
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexp((double)(man | 0x400), exp - 25);
    return sign ? -v : v;
}

static double bf16_to_double(uint16_t b)
{
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, sizeof f);
    return (double)f;
}

int64_t elem_to_int(ckpt_dtype dtype, const void *p)
{
    switch (dtype) {
    case CKPT_I8: { int8_t v; memcpy(&v, p, 1); return v; }
    case CKPT_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case CKPT_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case CKPT_I64: { int64_t v; memcpy(&v, p, 8); return v; }
    case CKPT_U8:
    case CKPT_BOOL: { uint8_t v; memcpy(&v, p, 1); return v; }
    default: return 0;
    }
}

double elem_to_double(ckpt_dtype dtype, const void *p)
{
    switch (dtype) {
    case CKPT_F32: { float v; memcpy(&v, p, 4); return (double)v; }
    case CKPT_F64: { double v; memcpy(&v, p, 8); return v; }
    case CKPT_F16: { uint16_t v; memcpy(&v, p, 2); return f16_to_double(v); }
    case CKPT_BF16: { uint16_t v; memcpy(&v, p, 2); return bf16_to_double(v); }
    default: return (double)elem_to_int(dtype, p);
    }
}
