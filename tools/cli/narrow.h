/* narrow.h -- doubles to the floating dtypes of a checkpoint (f64, f32, f16, bf16), rounding to
 * nearest, ties to even, in one step (no double rounding through f32): overflow gives an
 * infinity, tiny values subnormals or a signed zero, NaN a quiet NaN of the same sign. For
 * tools that compute values (averages) and write them in the tensor's dtype. */
#ifndef CKPT_TOOLS_NARROW_H
#define CKPT_TOOLS_NARROW_H

#include <ckpt.h>

#include <stdint.h>

/* The bits of v as an IEEE binary16 / a bfloat16 / a binary32. */
uint16_t narrow_f16(double v);
uint16_t narrow_bf16(double v);
uint32_t narrow_f32(double v);

/* Stores v[0..n) as dtype (f64, f32, f16 or bf16; little-endian like the library's buffers) at
 * out. Returns 0, or -1 for another dtype. */
int narrow_store(ckpt_dtype dtype, const double *v, int64_t n, void *out);

#endif
