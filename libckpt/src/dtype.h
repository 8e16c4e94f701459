/* dtype.h -- element types: sizes, names and conversions between the floating types. */
#ifndef CKPT_DTYPE_H
#define CKPT_DTYPE_H

#include "ckpt.h"

#include <stddef.h>
#include <stdint.h>

/* 1 when d is a known dtype. */
int ckpt_dtype_valid(int d);

/* Converts n elements from src (dtype from) to dst (dtype to). Requires
 * ckpt_dtype_can_cast(from, to). Rounding is to nearest, ties to even; NaN stays
 * NaN (quieted), +-Inf stays +-Inf, overflow goes to +-Inf. */
void ckpt_convert(ckpt_dtype from, const void *src, ckpt_dtype to, void *dst, size_t n);

/* Scalar conversions, exposed for tests and tools. */
uint16_t ckpt_f32_to_f16(float f);
float ckpt_f16_to_f32(uint16_t h);
uint16_t ckpt_f32_to_bf16(float f);
float ckpt_bf16_to_f32(uint16_t b);
/* f64 -> f32 rounded to odd: a following rounding to f16/bf16 is then correctly rounded. */
float ckpt_f64_to_f32_odd(double d);

#endif
