/* safetensors dtypes: names, bit widths (the reference's table), and libckpt's equivalents. */
#include "error.h"
#include "internal.h"

#include <string.h>

static const struct {
    const char *name;
    int bits;
} dtypes[CKPTFMT_ST_DTYPE_COUNT] = {
    [CKPTFMT_ST_BOOL] = {"BOOL", 8},       [CKPTFMT_ST_F4] = {"F4", 4},
    [CKPTFMT_ST_F6_E2M3] = {"F6_E2M3", 6}, [CKPTFMT_ST_F6_E3M2] = {"F6_E3M2", 6},
    [CKPTFMT_ST_U8] = {"U8", 8},           [CKPTFMT_ST_I8] = {"I8", 8},
    [CKPTFMT_ST_F8_E5M2] = {"F8_E5M2", 8}, [CKPTFMT_ST_F8_E4M3] = {"F8_E4M3", 8},
    [CKPTFMT_ST_F8_E8M0] = {"F8_E8M0", 8}, [CKPTFMT_ST_I16] = {"I16", 16},
    [CKPTFMT_ST_U16] = {"U16", 16},        [CKPTFMT_ST_F16] = {"F16", 16},
    [CKPTFMT_ST_BF16] = {"BF16", 16},      [CKPTFMT_ST_I32] = {"I32", 32},
    [CKPTFMT_ST_U32] = {"U32", 32},        [CKPTFMT_ST_F32] = {"F32", 32},
    [CKPTFMT_ST_C64] = {"C64", 64},        [CKPTFMT_ST_F64] = {"F64", 64},
    [CKPTFMT_ST_I64] = {"I64", 64},        [CKPTFMT_ST_U64] = {"U64", 64},
};

const char *ckptfmt_st_dtype_name(ckptfmt_st_dtype d)
{
    return (unsigned)d < CKPTFMT_ST_DTYPE_COUNT ? dtypes[d].name : NULL;
}

int ckptfmt_st_dtype_bits(ckptfmt_st_dtype d)
{
    return (unsigned)d < CKPTFMT_ST_DTYPE_COUNT ? dtypes[d].bits : 0;
}

int ckptfmt_st_dtype_from_name(const char *name, ckptfmt_st_dtype *out)
{
    for (int d = 0; name && d < CKPTFMT_ST_DTYPE_COUNT; d++)
        if (strcmp(name, dtypes[d].name) == 0) {
            *out = (ckptfmt_st_dtype)d;
            return CKPTFMT_OK;
        }
    return CKPTFMT_ENOTFOUND;
}

static const ckptfmt_st_dtype from_ckpt[CKPT_DTYPE_COUNT] = {
    [CKPT_F32] = CKPTFMT_ST_F32, [CKPT_F64] = CKPTFMT_ST_F64, [CKPT_F16] = CKPTFMT_ST_F16,
    [CKPT_BF16] = CKPTFMT_ST_BF16, [CKPT_I8] = CKPTFMT_ST_I8, [CKPT_I16] = CKPTFMT_ST_I16,
    [CKPT_I32] = CKPTFMT_ST_I32, [CKPT_I64] = CKPTFMT_ST_I64, [CKPT_U8] = CKPTFMT_ST_U8,
    [CKPT_BOOL] = CKPTFMT_ST_BOOL,
};

ckptfmt_st_dtype ckptfmt_st_dtype_from_ckpt(ckpt_dtype d)
{
    return (unsigned)d < CKPT_DTYPE_COUNT ? from_ckpt[d] : CKPTFMT_ST_DTYPE_COUNT;
}

int ckptfmt_st_dtype_to_ckpt(ckptfmt_st_dtype d, ckpt_dtype *out)
{
    for (int c = 0; c < CKPT_DTYPE_COUNT; c++)
        if (from_ckpt[c] == d) {
            *out = (ckpt_dtype)c;
            return CKPTFMT_OK;
        }
    return fmt_error(CKPTFMT_EUNSUPPORTED, "safetensors dtype %s has no libckpt equivalent",
                     ckptfmt_st_dtype_name(d) ? ckptfmt_st_dtype_name(d) : "?");
}

uint64_t st_nbytes(ckptfmt_st_dtype d, uint64_t n, int *ok)
{
    uint64_t bits = (uint64_t)ckptfmt_st_dtype_bits(d);
    *ok = 0;
    if (bits == 0 || (n != 0 && n > UINT64_MAX / bits))
        return 0;
    uint64_t total = n * bits;
    if (total % 8 != 0)
        return 0;
    *ok = 1;
    return total / 8;
}
