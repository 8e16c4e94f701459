/* Cache-blocked matrix transposition (Conv1D [in, out] <-> the trainer's [out, in]). */
#include "ckptfmt.h"
#include "internal.h"

#include <string.h>

/* Tiles of TILE x TILE elements: one tile of source rows and one of destination rows stay in L1. */
#define TILE 32

/* dst[(c - cb) * rows + r] = src[r * cols + c] for the columns c of [cb, ce) */
#define DEFINE_TRANSPOSE(fn, type)                                                                     \
    static void fn(type *restrict dst, const type *restrict src, int64_t rows, int64_t cols, int64_t cb, \
                   int64_t ce)                                                                         \
    {                                                                                                  \
        for (int64_t r0 = 0; r0 < rows; r0 += TILE) {                                                  \
            int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows;                                          \
            for (int64_t c0 = cb; c0 < ce; c0 += TILE) {                                               \
                int64_t c1 = c0 + TILE < ce ? c0 + TILE : ce;                                          \
                for (int64_t c = c0; c < c1; c++)                                                      \
                    for (int64_t r = r0; r < r1; r++)                                                  \
                        dst[(c - cb) * rows + r] = src[r * cols + c];                                  \
            }                                                                                          \
        }                                                                                              \
    }

DEFINE_TRANSPOSE(transpose8, uint8_t)
DEFINE_TRANSPOSE(transpose16, uint16_t)
DEFINE_TRANSPOSE(transpose32, uint32_t)
DEFINE_TRANSPOSE(transpose64, uint64_t)

void transpose_band(void *dst, const void *src, int64_t rows, int64_t cols, int64_t c0, int64_t c1,
                    size_t elem_size)
{
    if (rows <= 0 || c1 <= c0)
        return;
    if (cols == 1) {
        memcpy(dst, src, (size_t)rows * elem_size);
        return;
    }
    switch (elem_size) {
    case 1: transpose8(dst, src, rows, cols, c0, c1); break;
    case 2: transpose16(dst, src, rows, cols, c0, c1); break;
    case 4: transpose32(dst, src, rows, cols, c0, c1); break;
    case 8: transpose64(dst, src, rows, cols, c0, c1); break;
    default: break;
    }
}

void ckptfmt_transpose(void *dst, const void *src, int64_t rows, int64_t cols, size_t elem_size)
{
    transpose_band(dst, src, rows, cols, 0, cols, elem_size);
}
