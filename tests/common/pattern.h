/* pattern.h -- deterministic tensor contents for tests: the value of every element is a pure
 * function of (tensor id, dtype, global linear index), chosen to be exact in every dtype. */
#ifndef CKPT_TEST_PATTERN_H
#define CKPT_TEST_PATTERN_H

#include "ckpt.h"

#include <stdint.h>
#include <string.h>

/* Small half-integers: exact in f16, bf16, f32 and f64. */
static inline double pattern_value(int tid, int64_t i) { return (double)(((i * 37 + tid * 11) % 127) - 63) * 0.5; }

/* Writes element (tid, global index i) of dtype d to out. */
static inline void pattern_elem(int tid, ckpt_dtype d, int64_t i, void *out)
{
    double v = pattern_value(tid, i);
    int64_t k = (i * 37 + tid * 11) % 251;
    switch (d) {
    case CKPT_F32: { float f = (float)v; memcpy(out, &f, 4); break; }
    case CKPT_F64: memcpy(out, &v, 8); break;
    case CKPT_F16: {
        /* v is a half-integer in [-31.5, 31.5]: build binary16 by hand */
        uint16_t h = 0;
        if (v != 0) {
            double a = v < 0 ? -v : v;
            int e = 0;
            while (a >= 2) { a /= 2; e++; }
            while (a < 1) { a *= 2; e--; }
            h = (uint16_t)(((e + 15) << 10) | (uint16_t)((a - 1) * 1024));
            if (v < 0) h |= 0x8000;
        }
        memcpy(out, &h, 2);
        break;
    }
    case CKPT_BF16: { float f = (float)v; uint32_t x; memcpy(&x, &f, 4); uint16_t b = (uint16_t)(x >> 16); memcpy(out, &b, 2); break; }
    case CKPT_I8: { int8_t x = (int8_t)(k - 125); memcpy(out, &x, 1); break; }
    case CKPT_I16: { int16_t x = (int16_t)(k * 100 - 12500); memcpy(out, &x, 2); break; }
    case CKPT_I32: { int32_t x = (int32_t)(k * 100000 - 12500000); memcpy(out, &x, 4); break; }
    case CKPT_I64: { int64_t x = k * 10000000000LL - 1250000000000LL + i; memcpy(out, &x, 8); break; }
    case CKPT_U8: { uint8_t x = (uint8_t)k; memcpy(out, &x, 1); break; }
    case CKPT_BOOL: { uint8_t x = (uint8_t)(k & 1); memcpy(out, &x, 1); break; }
    default: break;
    }
}

/* Fills the row-major memory of box [off, off+ext) of a tensor of `shape` with the pattern. */
static inline void pattern_fill(int tid, ckpt_dtype d, int ndim, const int64_t *shape, const int64_t *off,
                                const int64_t *ext, void *buf)
{
    size_t es = ckpt_dtype_size(d);
    int64_t n = 1;
    for (int k = 0; k < ndim; k++)
        n *= ext[k];
    int64_t idx[CKPT_MAX_NDIM] = {0};
    for (int64_t e = 0; e < n; e++) {
        int64_t g = 0;
        for (int k = 0; k < ndim; k++)
            g = g * shape[k] + off[k] + idx[k];
        pattern_elem(tid, d, g, (char *)buf + e * (int64_t)es);
        for (int k = ndim - 1; k >= 0; k--) {
            if (++idx[k] < ext[k])
                break;
            idx[k] = 0;
        }
    }
}

#endif
