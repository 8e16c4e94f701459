/* Cache-blocked matrix transposition (Conv1D [in, out] <-> the trainer's [out, in]). */
#include "ckptfmt.h"
#include "internal.h"

#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86_KERNELS 1
#endif

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
#if HAVE_X86_KERNELS
/* 4-byte elements in 8 x 8 blocks through AVX2 registers (where the CPU has them: chosen at run
 * time) or 4 x 4 blocks through SSE, 1.5-3 times the scalar loop's speed here; tiles as above
 * (64 wide for AVX2), the ragged edges element by element. */
#define EDGES(step)                                                                                    \
    for (; c < c1; c++)                                                                                \
        for (int64_t k = r; k < r + (step); k++)                                                       \
            d[(c - cb) * rows + k] = s[k * cols + c];

__attribute__((target("avx2"))) static void transpose32_avx2(float *restrict d, const float *restrict s, int64_t rows,
                                                              int64_t cols, int64_t cb, int64_t ce)
{
    enum { T = 64 };
    for (int64_t r0 = 0; r0 < rows; r0 += T) {
        int64_t r1 = r0 + T < rows ? r0 + T : rows;
        for (int64_t c0 = cb; c0 < ce; c0 += T) {
            int64_t c1 = c0 + T < ce ? c0 + T : ce, r = r0;
            for (; r + 8 <= r1; r += 8) {
                int64_t c = c0;
                for (; c + 8 <= c1; c += 8) {
                    const float *p = s + r * cols + c;
                    __m256 a0 = _mm256_loadu_ps(p), a1 = _mm256_loadu_ps(p + cols), a2 = _mm256_loadu_ps(p + 2 * cols),
                           a3 = _mm256_loadu_ps(p + 3 * cols), a4 = _mm256_loadu_ps(p + 4 * cols),
                           a5 = _mm256_loadu_ps(p + 5 * cols), a6 = _mm256_loadu_ps(p + 6 * cols),
                           a7 = _mm256_loadu_ps(p + 7 * cols);
                    __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1),
                           t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3),
                           t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5),
                           t6 = _mm256_unpacklo_ps(a6, a7), t7 = _mm256_unpackhi_ps(a6, a7);
                    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
                           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
                           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
                           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
                    float *o = d + (c - cb) * rows + r;
                    _mm256_storeu_ps(o, _mm256_permute2f128_ps(u0, u4, 0x20));
                    _mm256_storeu_ps(o + rows, _mm256_permute2f128_ps(u1, u5, 0x20));
                    _mm256_storeu_ps(o + 2 * rows, _mm256_permute2f128_ps(u2, u6, 0x20));
                    _mm256_storeu_ps(o + 3 * rows, _mm256_permute2f128_ps(u3, u7, 0x20));
                    _mm256_storeu_ps(o + 4 * rows, _mm256_permute2f128_ps(u0, u4, 0x31));
                    _mm256_storeu_ps(o + 5 * rows, _mm256_permute2f128_ps(u1, u5, 0x31));
                    _mm256_storeu_ps(o + 6 * rows, _mm256_permute2f128_ps(u2, u6, 0x31));
                    _mm256_storeu_ps(o + 7 * rows, _mm256_permute2f128_ps(u3, u7, 0x31));
                }
                EDGES(8)
            }
            for (; r < r1; r++)
                for (int64_t c = c0; c < c1; c++)
                    d[(c - cb) * rows + r] = s[r * cols + c];
        }
    }
}

static void transpose32_sse(float *restrict d, const float *restrict s, int64_t rows, int64_t cols, int64_t cb,
                            int64_t ce)
{
    for (int64_t r0 = 0; r0 < rows; r0 += TILE) {
        int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows;
        for (int64_t c0 = cb; c0 < ce; c0 += TILE) {
            int64_t c1 = c0 + TILE < ce ? c0 + TILE : ce, r = r0;
            for (; r + 4 <= r1; r += 4) {
                int64_t c = c0;
                for (; c + 4 <= c1; c += 4) {
                    __m128 a = _mm_loadu_ps(s + r * cols + c), b = _mm_loadu_ps(s + (r + 1) * cols + c);
                    __m128 e = _mm_loadu_ps(s + (r + 2) * cols + c), f = _mm_loadu_ps(s + (r + 3) * cols + c);
                    _MM_TRANSPOSE4_PS(a, b, e, f);
                    _mm_storeu_ps(d + (c - cb) * rows + r, a);
                    _mm_storeu_ps(d + (c + 1 - cb) * rows + r, b);
                    _mm_storeu_ps(d + (c + 2 - cb) * rows + r, e);
                    _mm_storeu_ps(d + (c + 3 - cb) * rows + r, f);
                }
                EDGES(4)
            }
            for (; r < r1; r++)
                for (int64_t c = c0; c < c1; c++)
                    d[(c - cb) * rows + r] = s[r * cols + c];
        }
    }
}

static void transpose32(uint32_t *restrict dst, const uint32_t *restrict src, int64_t rows, int64_t cols, int64_t cb,
                        int64_t ce)
{
    static int avx2 = -1; /* benign race: every thread computes the same value */
    if (avx2 < 0)
        avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    if (avx2)
        transpose32_avx2((float *)dst, (const float *)src, rows, cols, cb, ce);
    else
        transpose32_sse((float *)dst, (const float *)src, rows, cols, cb, ce);
}
#else
DEFINE_TRANSPOSE(transpose32, uint32_t)
#endif
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
