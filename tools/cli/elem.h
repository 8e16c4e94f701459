/* elem.h -- single elements of a saved dtype, decoded from their stored bytes (little-endian, as
 * the library hands them out): to double for every dtype, to int64 exactly for integer dtypes. */
#ifndef CKPT_TOOLS_ELEM_H
#define CKPT_TOOLS_ELEM_H

#include <ckpt.h>

#include <stdint.h>

/* 1 for f32, f64, f16 and bf16. */
int elem_is_float(ckpt_dtype dtype);
/* The element at p as a double (f16/bf16 decoded exactly; i64 rounded above 2^53). */
double elem_to_double(ckpt_dtype dtype, const void *p);
/* The element at p of an integer dtype (i8..i64, u8, bool) as int64. */
int64_t elem_to_int(ckpt_dtype dtype, const void *p);

#endif
