/* GGUF value types and ggml tensor types: names, sizes, block geometry (the numbering and block
 * sizes of ggml.h / gguf.md). */
#include "ckptfmt.h"
#include "error.h"

#include <stdio.h>
#include <strings.h>

static const char *const value_names[CKPTFMT_GGUF_TYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};
static const unsigned char value_sizes[CKPTFMT_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *ckptfmt_gguf_type_name(ckptfmt_gguf_type t)
{
    return (unsigned)t < CKPTFMT_GGUF_TYPE_COUNT ? value_names[t] : NULL;
}

size_t ckptfmt_gguf_type_size(ckptfmt_gguf_type t)
{
    return (unsigned)t < CKPTFMT_GGUF_TYPE_COUNT ? value_sizes[t] : 0;
}

typedef struct ggml_row {
    const char *name;
    int block, bytes; /* elements and bytes per block; 0: not a type (removed numbers) */
} ggml_row;

#define QK_K 256
static const ggml_row ggml_types[CKPTFMT_GGML_TYPE_COUNT] = {
    [CKPTFMT_GGML_F32] = {"F32", 1, 4},
    [CKPTFMT_GGML_F16] = {"F16", 1, 2},
    [CKPTFMT_GGML_Q4_0] = {"Q4_0", 32, 2 + 16},
    [CKPTFMT_GGML_Q4_1] = {"Q4_1", 32, 2 + 2 + 16},
    [CKPTFMT_GGML_Q5_0] = {"Q5_0", 32, 2 + 4 + 16},
    [CKPTFMT_GGML_Q5_1] = {"Q5_1", 32, 2 + 2 + 4 + 16},
    [CKPTFMT_GGML_Q8_0] = {"Q8_0", CKPTFMT_Q8_0_BLOCK, CKPTFMT_Q8_0_BYTES},
    [CKPTFMT_GGML_Q8_1] = {"Q8_1", 32, 4 + 4 + 32},
    [CKPTFMT_GGML_Q2_K] = {"Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4},
    [CKPTFMT_GGML_Q3_K] = {"Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12},
    [CKPTFMT_GGML_Q4_K] = {"Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12},
    [CKPTFMT_GGML_Q5_K] = {"Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12},
    [CKPTFMT_GGML_Q6_K] = {"Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16},
    [CKPTFMT_GGML_Q8_K] = {"Q8_K", QK_K, 4 + QK_K + QK_K / 8},
    [CKPTFMT_GGML_IQ2_XXS] = {"IQ2_XXS", QK_K, 2 + QK_K / 4},
    [CKPTFMT_GGML_IQ2_XS] = {"IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32},
    [CKPTFMT_GGML_IQ3_XXS] = {"IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8},
    [CKPTFMT_GGML_IQ1_S] = {"IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16},
    [CKPTFMT_GGML_IQ4_NL] = {"IQ4_NL", 32, 2 + 16},
    [CKPTFMT_GGML_IQ3_S] = {"IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4},
    [CKPTFMT_GGML_IQ2_S] = {"IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16},
    [CKPTFMT_GGML_IQ4_XS] = {"IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64},
    [CKPTFMT_GGML_I8] = {"I8", 1, 1},
    [CKPTFMT_GGML_I16] = {"I16", 1, 2},
    [CKPTFMT_GGML_I32] = {"I32", 1, 4},
    [CKPTFMT_GGML_I64] = {"I64", 1, 8},
    [CKPTFMT_GGML_F64] = {"F64", 1, 8},
    [CKPTFMT_GGML_IQ1_M] = {"IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32},
    [CKPTFMT_GGML_BF16] = {"BF16", 1, 2},
    [CKPTFMT_GGML_Q4_0_4_4] = {"Q4_0_4_4", 32, 2 + 16},
    [CKPTFMT_GGML_Q4_0_4_8] = {"Q4_0_4_8", 32, 2 + 16},
    [CKPTFMT_GGML_Q4_0_8_8] = {"Q4_0_8_8", 32, 2 + 16},
    [CKPTFMT_GGML_TQ1_0] = {"TQ1_0", QK_K, 2 + 4 * 13},
    [CKPTFMT_GGML_TQ2_0] = {"TQ2_0", QK_K, 2 + 64},
};

int ckptfmt_ggml_type_info(ckptfmt_ggml_type t, const char **name, int *block, int *block_bytes)
{
    if ((unsigned)t >= CKPTFMT_GGML_TYPE_COUNT || ggml_types[t].block == 0)
        return fmt_error(CKPTFMT_EINVAL, "ggml type %d does not exist", (int)t);
    if (name)
        *name = ggml_types[t].name;
    if (block)
        *block = ggml_types[t].block;
    if (block_bytes)
        *block_bytes = ggml_types[t].bytes;
    return CKPTFMT_OK;
}

int ckptfmt_ggml_type_from_name(const char *name, ckptfmt_ggml_type *out)
{
    for (int t = 0; name && t < CKPTFMT_GGML_TYPE_COUNT; t++)
        if (ggml_types[t].block && strcasecmp(name, ggml_types[t].name) == 0) {
            *out = (ckptfmt_ggml_type)t;
            return CKPTFMT_OK;
        }
    return fmt_error(CKPTFMT_ENOTFOUND, "unknown ggml type '%s'", name ? name : "(null)");
}

int ckptfmt_ggml_nbytes(ckptfmt_ggml_type t, uint64_t n, uint64_t *bytes)
{
    int block, bb;
    int s = ckptfmt_ggml_type_info(t, NULL, &block, &bb);
    if (s != CKPTFMT_OK)
        return s;
    if (n % (uint64_t)block)
        return fmt_error(CKPTFMT_EMALFORMED, "%llu elements are not a whole number of %s blocks of %d",
                         (unsigned long long)n, ggml_types[t].name, block);
    uint64_t blocks = n / (uint64_t)block;
    if (blocks > UINT64_MAX / (uint64_t)bb)
        return fmt_error(CKPTFMT_EMALFORMED, "%llu elements of %s overflow 64 bits", (unsigned long long)n,
                         ggml_types[t].name);
    *bytes = blocks * (uint64_t)bb;
    return CKPTFMT_OK;
}
