/* test_dtype.c -- unit tests of dtype.h and the public ckpt_dtype_* calls: sizes, names,
 * casts, and the float conversions (f32/f64 -> f16/bf16 correctly rounded, exhaustive checks
 * over all 16-bit patterns, NaN/Inf/zero/subnormal handling). The references here compute the
 * exact value of every 16-bit pattern with ldexp and round by comparing exact distances. */
#include "unit.h"

#include "dtype.h"

#include <float.h>
#include <math.h>

/* ---- independent references ---- */

/* Exact value of an IEEE binary16 pattern. */
static double f16_value(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0)
        v = ldexp(m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Exact value of a bfloat16 pattern. */
static double bf16_value(uint16_t b)
{
    int e = (b >> 7) & 0xff, m = b & 0x7f;
    double v;
    if (e == 0)
        v = ldexp(m, -133);
    else if (e == 255)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(128 + m, e - 134);
    return (b & 0x8000) ? -v : v;
}

typedef struct fmt16 {
    double (*value)(uint16_t);
    uint16_t maxfin; /* largest finite positive pattern */
    uint16_t inf;
    double beyond; /* the value one ulp above maxfin (2^16 for f16, 2^128 for bf16) */
} fmt16;

static const fmt16 F16 = {f16_value, 0x7bff, 0x7c00, 65536.0};
static fmt16 BF16; /* beyond = 2^128 set in main */

/* Correctly rounded (nearest, ties to even) 16-bit pattern of a non-NaN double. Distances are
 * exact in double (Sterbenz), see the note in the file header. */
static uint16_t ref_round(const fmt16 *f, double d)
{
    uint16_t sign = signbit(d) ? 0x8000 : 0;
    double a = fabs(d);
    if (isinf(a))
        return sign | f->inf;
    uint16_t k;
    double lo, hi;
    if (a >= f->value(f->maxfin)) {
        k = f->maxfin;
        lo = f->value(k);
        hi = f->beyond;
    } else {
        /* largest k with value(k) <= a: positive patterns are ordered like their values */
        uint16_t l = 0, h = f->maxfin;
        while (l < h) {
            uint16_t mid = (uint16_t)((l + h + 1) / 2);
            if (f->value(mid) <= a)
                l = mid;
            else
                h = (uint16_t)(mid - 1);
        }
        k = l;
        lo = f->value(k);
        hi = f->value((uint16_t)(k + 1));
    }
    double dl = a - lo, dh = hi - a;
    uint16_t r;
    if (dl < dh)
        r = k;
    else if (dl > dh)
        r = (uint16_t)(k + 1);
    else
        r = (k & 1) ? (uint16_t)(k + 1) : k;
    if (r > f->maxfin)
        r = f->inf;
    return sign | r;
}

static int f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
static int bf16_is_nan(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0; }

static uint16_t f64_to_16(ckpt_dtype to, double d)
{
    uint16_t h;
    ckpt_convert(CKPT_F64, &d, to, &h, 1);
    return h;
}

static float f64_to_f32(double d)
{
    float f;
    ckpt_convert(CKPT_F64, &d, CKPT_F32, &f, 1);
    return f;
}

/* ---- names, sizes, casts ---- */

static void test_sizes_names(void **st)
{
    (void)st;
    static const struct {
        ckpt_dtype d;
        size_t size;
        const char *name;
    } want[CKPT_DTYPE_COUNT] = {
        {CKPT_F32, 4, "f32"}, {CKPT_F64, 8, "f64"}, {CKPT_F16, 2, "f16"}, {CKPT_BF16, 2, "bf16"},
        {CKPT_I8, 1, "i8"},   {CKPT_I16, 2, "i16"}, {CKPT_I32, 4, "i32"}, {CKPT_I64, 8, "i64"},
        {CKPT_U8, 1, "u8"},   {CKPT_BOOL, 1, "bool"},
    };
    for (int i = 0; i < CKPT_DTYPE_COUNT; i++) {
        assert_int_equal((int)want[i].d, i);
        assert_int_equal(ckpt_dtype_size(want[i].d), want[i].size);
        assert_string_equal(ckpt_dtype_name(want[i].d), want[i].name);
        assert_int_equal(ckpt_dtype_valid(i), 1);
        ckpt_dtype out = (ckpt_dtype)-1;
        assert_int_equal(ckpt_dtype_from_name(want[i].name, &out), CKPT_OK);
        assert_int_equal(out, want[i].d);
    }
    assert_int_equal(ckpt_dtype_size((ckpt_dtype)CKPT_DTYPE_COUNT), 0);
    assert_int_equal(ckpt_dtype_size((ckpt_dtype)-1), 0);
    assert_null(ckpt_dtype_name((ckpt_dtype)CKPT_DTYPE_COUNT));
    assert_null(ckpt_dtype_name((ckpt_dtype)-1));
    assert_int_equal(ckpt_dtype_valid(CKPT_DTYPE_COUNT), 0);
    assert_int_equal(ckpt_dtype_valid(-1), 0);
}

static void test_from_name_unknown(void **st)
{
    (void)st;
    const char *bad[] = {"float32", "F32", "f", "", "f32 ", " f32", "bf", "bool8", "u16", "int8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ckpt_dtype out = CKPT_I16;
        assert_int_equal(ckpt_dtype_from_name(bad[i], &out), CKPT_EINVAL);
        assert_int_equal(out, CKPT_I16); /* untouched on failure */
    }
    ckpt_dtype out = CKPT_I16;
    assert_int_equal(ckpt_dtype_from_name(NULL, &out), CKPT_EINVAL);
    assert_int_equal(out, CKPT_I16);
}

static int is_float(int d) { return d == CKPT_F32 || d == CKPT_F64 || d == CKPT_F16 || d == CKPT_BF16; }

static void test_can_cast(void **st)
{
    (void)st;
    for (int a = 0; a < CKPT_DTYPE_COUNT; a++)
        for (int b = 0; b < CKPT_DTYPE_COUNT; b++) {
            int want = a == b || (is_float(a) && is_float(b));
            if (ckpt_dtype_can_cast((ckpt_dtype)a, (ckpt_dtype)b) != want)
                fail_msg("can_cast(%s, %s) = %d, want %d", ckpt_dtype_name((ckpt_dtype)a),
                         ckpt_dtype_name((ckpt_dtype)b), !want, want);
        }
    assert_int_equal(ckpt_dtype_can_cast(CKPT_BOOL, CKPT_F32), 0);
    assert_int_equal(ckpt_dtype_can_cast(CKPT_F32, CKPT_BOOL), 0);
    assert_int_equal(ckpt_dtype_can_cast(CKPT_I32, CKPT_I64), 0);
    assert_int_equal(ckpt_dtype_can_cast(CKPT_I8, CKPT_U8), 0);
    assert_int_equal(ckpt_dtype_can_cast(CKPT_I32, CKPT_F32), 0);
    assert_int_equal(ckpt_dtype_can_cast(CKPT_F16, CKPT_BF16), 1);
    assert_int_equal(ckpt_dtype_can_cast((ckpt_dtype)CKPT_DTYPE_COUNT, (ckpt_dtype)CKPT_DTYPE_COUNT), 0);
    assert_int_equal(ckpt_dtype_can_cast((ckpt_dtype)-1, CKPT_F32), 0);
    assert_int_equal(ckpt_dtype_can_cast(CKPT_F32, (ckpt_dtype)99), 0);
}

/* ---- f32 -> f16 ---- */

static void test_f32_to_f16_values(void **st)
{
    (void)st;
    /* exact values */
    assert_int_equal(ckpt_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(ckpt_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(ckpt_f32_to_f16(0.5f), 0x3800);
    assert_int_equal(ckpt_f32_to_f16(1.5f), 0x3e00);
    assert_int_equal(ckpt_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(ckpt_f32_to_f16(-65504.0f), 0xfbff);
    assert_int_equal(ckpt_f32_to_f16(ldexpf(1, -14)), 0x0400); /* smallest normal */
    assert_int_equal(ckpt_f32_to_f16(0.1f), 0x2e66);
    assert_int_equal(ckpt_f32_to_f16(1.0f + ldexpf(1, -10)), 0x3c01);
    /* ties to even */
    assert_int_equal(ckpt_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);     /* 1 + 2^-11 -> 1 */
    assert_int_equal(ckpt_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02); /* -> 1 + 2^-9 */
    assert_int_equal(ckpt_f32_to_f16(1.0f + 5 * ldexpf(1, -11)), 0x3c02); /* 1+5*2^-11 -> 1+2^-9 */
    assert_int_equal(ckpt_f32_to_f16(-(1.0f + ldexpf(1, -11))), 0xbc00);
    /* just off the tie */
    assert_int_equal(ckpt_f32_to_f16(1.0f + ldexpf(1, -11) + ldexpf(1, -23)), 0x3c01);
    assert_int_equal(ckpt_f32_to_f16(nextafterf(1.0f + 3 * ldexpf(1, -11), 0)), 0x3c01);
    /* rounding carries into the exponent */
    assert_int_equal(ckpt_f32_to_f16(2.0f - ldexpf(1, -12)), 0x4000);
    /* overflow */
    assert_int_equal(ckpt_f32_to_f16(65520.0f), 0x7c00); /* the tie above 65504 goes to Inf */
    assert_int_equal(ckpt_f32_to_f16(-65520.0f), 0xfc00);
    assert_int_equal(ckpt_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(ckpt_f32_to_f16(nextafterf(65520.0f, 0)), 0x7bff);
    assert_int_equal(ckpt_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(ckpt_f32_to_f16(FLT_MAX), 0x7c00);
    assert_int_equal(ckpt_f32_to_f16(-FLT_MAX), 0xfc00);
    /* subnormals (units of 2^-24) */
    assert_int_equal(ckpt_f32_to_f16(ldexpf(1, -24)), 0x0001);
    assert_int_equal(ckpt_f32_to_f16(-ldexpf(1, -24)), 0x8001);
    assert_int_equal(ckpt_f32_to_f16(ldexpf(1, -25)), 0x0000);     /* tie to even 0 */
    assert_int_equal(ckpt_f32_to_f16(-ldexpf(1, -25)), 0x8000);    /* ... keeping the sign */
    assert_int_equal(ckpt_f32_to_f16(3 * ldexpf(1, -25)), 0x0002); /* 1.5 units -> 2 */
    assert_int_equal(ckpt_f32_to_f16(5 * ldexpf(1, -25)), 0x0002); /* 2.5 units -> 2 */
    assert_int_equal(ckpt_f32_to_f16(nextafterf(ldexpf(1, -25), 1)), 0x0001);
    assert_int_equal(ckpt_f32_to_f16(ldexpf(1, -26)), 0x0000);
    assert_int_equal(ckpt_f32_to_f16(1023 * ldexpf(1, -24)), 0x03ff); /* largest subnormal */
    assert_int_equal(ckpt_f32_to_f16(1023.5f * ldexpf(1, -24)), 0x0400); /* tie: odd 0x3ff -> 0x400 */
    assert_int_equal(ckpt_f32_to_f16(FLT_MIN), 0x0000);
    assert_int_equal(ckpt_f32_to_f16(ldexpf(1, -149)), 0x0000); /* f32 subnormal */
    /* zeros and infinities */
    assert_int_equal(ckpt_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(ckpt_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(ckpt_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(ckpt_f32_to_f16(-INFINITY), 0xfc00);
}

static void test_f32_to_f16_nan(void **st)
{
    (void)st;
    const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu,
                             0x7f801fffu, 0x7fa00000u, 0xfff00000u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        uint16_t h = ckpt_f32_to_f16(unit_bits_f32(nans[i]));
        if (!f16_is_nan(h))
            fail_msg("f32 NaN 0x%08x -> f16 0x%04x is not a NaN", nans[i], h);
        assert_int_equal(h & 0x8000, (nans[i] >> 16) & 0x8000); /* sign kept */
        assert_int_equal(h & 0x0200, 0x0200);                    /* quiet */
    }
}

/* Every f32 pattern of a random sample, and every f32 near an f16 rounding boundary, rounds
 * as the exact reference says. */
static void test_f32_to_f16_random(void **st)
{
    (void)st;
    unit_rng rng = {2024};
    for (int i = 0; i < 400000; i++) {
        uint32_t x = (uint32_t)unit_next(&rng);
        /* concentrate on the f16 range: exponent 100..143 */
        if (i & 1)
            x = (x & 0x807fffffu) | ((uint32_t)unit_range(&rng, 100, 143) << 23);
        float f = unit_bits_f32(x);
        if (isnan(f))
            continue;
        uint16_t got = ckpt_f32_to_f16(f), want = ref_round(&F16, (double)f);
        if (got != want)
            fail_msg("f32 0x%08x (%.9g) -> f16 0x%04x, want 0x%04x", x, (double)f, got, want);
    }
    /* every midpoint between adjacent f16 values, and its float neighbours */
    for (uint32_t k = 0; k < 0x7bff; k++) {
        double mid = (f16_value((uint16_t)k) + f16_value((uint16_t)(k + 1))) / 2;
        float m = (float)mid; /* exact: needs at most 12 significant bits */
        assert_true((double)m == mid);
        float cands[3] = {m, nextafterf(m, 0), nextafterf(m, INFINITY)};
        for (int c = 0; c < 3; c++) {
            uint16_t got = ckpt_f32_to_f16(cands[c]), want = ref_round(&F16, (double)cands[c]);
            if (got != want)
                fail_msg("f32 %.9g (near f16 tie %u) -> 0x%04x, want 0x%04x", (double)cands[c], k, got, want);
            uint16_t ng = ckpt_f32_to_f16(-cands[c]);
            assert_int_equal(ng, want | 0x8000);
        }
    }
}

/* ---- f16 -> f32 (exhaustive) ---- */

static void test_f16_to_f32_all(void **st)
{
    (void)st;
    int nans = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = ckpt_f16_to_f32(h);
        if (f16_is_nan(h)) {
            if (!isnan(f))
                fail_msg("f16 NaN 0x%04x -> %g", h, (double)f);
            assert_int_equal(!!signbit(f), !!(h & 0x8000));
            nans++;
            continue;
        }
        double want = f16_value(h);
        if ((double)f != want || !!signbit(f) != !!(h & 0x8000))
            fail_msg("f16 0x%04x -> %.9g, want %.9g", h, (double)f, want);
        uint16_t back = ckpt_f32_to_f16(f);
        if (back != h)
            fail_msg("f16 0x%04x -> f32 %.9g -> f16 0x%04x (round trip)", h, (double)f, back);
    }
    assert_int_equal(nans, 2 * 1023);
    assert_true(ckpt_f16_to_f32(0x3c00) == 1.0f);
    assert_true(ckpt_f16_to_f32(0x0001) == ldexpf(1, -24));
    assert_true(ckpt_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(ckpt_f16_to_f32(0xfc00) == -INFINITY);
    assert_int_equal(unit_f32_bits(ckpt_f16_to_f32(0x8000)), 0x80000000u);
}

/* ---- bf16 ---- */

static void test_f32_to_bf16_values(void **st)
{
    (void)st;
    assert_int_equal(ckpt_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(ckpt_f32_to_bf16(-1.0f), 0xbf80);
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x3f808000u)), 0x3f80); /* tie, even down */
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x3f818000u)), 0x3f82); /* tie, odd up */
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0xbf818000u)), 0xbf82);
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x3f808001u)), 0x3f81);
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x3f807fffu)), 0x3f80);
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x3f80ffffu)), 0x3f81);
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x3fffffffu)), 0x4000); /* carry into exponent */
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x7f7fffffu)), 0x7f80); /* overflow to Inf */
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0xff7fffffu)), 0xff80);
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x7f7f8000u)), 0x7f80); /* tie above max -> Inf */
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x7f7f7fffu)), 0x7f7f);
    assert_int_equal(ckpt_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(ckpt_f32_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(ckpt_f32_to_bf16(0.0f), 0x0000);
    assert_int_equal(ckpt_f32_to_bf16(-0.0f), 0x8000);
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x00008000u)), 0x0000); /* subnormal tie */
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x00018000u)), 0x0002);
    assert_int_equal(ckpt_f32_to_bf16(unit_bits_f32(0x00008001u)), 0x0001);
    /* NaN: stays NaN (also when only low payload bits are set), quiet, sign kept */
    const uint32_t nans[] = {0x7f800001u, 0xff800001u, 0x7fc00000u, 0x7fffffffu, 0xffffffffu, 0x7f80ffffu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        uint16_t b = ckpt_f32_to_bf16(unit_bits_f32(nans[i]));
        if (!bf16_is_nan(b))
            fail_msg("f32 NaN 0x%08x -> bf16 0x%04x is not a NaN", nans[i], b);
        assert_int_equal(b & 0x8000, (nans[i] >> 16) & 0x8000);
        assert_int_equal(b & 0x0040, 0x0040);
    }
    /* random f32 patterns against the exact reference */
    unit_rng rng = {77};
    for (int i = 0; i < 400000; i++) {
        uint32_t x = (uint32_t)unit_next(&rng);
        if (i % 3 == 0)
            x = (x & 0xffff0000u) | 0x8000u; /* exact ties */
        float f = unit_bits_f32(x);
        if (isnan(f))
            continue;
        uint16_t got = ckpt_f32_to_bf16(f), want = ref_round(&BF16, (double)f);
        if (got != want)
            fail_msg("f32 0x%08x -> bf16 0x%04x, want 0x%04x", x, got, want);
    }
}

static void test_bf16_to_f32_all(void **st)
{
    (void)st;
    for (uint32_t i = 0; i < 65536; i++) {
        float f = ckpt_bf16_to_f32((uint16_t)i);
        if (unit_f32_bits(f) != i << 16)
            fail_msg("bf16 0x%04x -> f32 0x%08x, want 0x%08x", i, unit_f32_bits(f), i << 16);
        if (!bf16_is_nan((uint16_t)i)) {
            assert_true((double)f == bf16_value((uint16_t)i));
            assert_int_equal(ckpt_f32_to_bf16(f), i); /* round trip */
        }
    }
}

/* ---- f64 -> f32 / f16 / bf16 through ckpt_convert ---- */

static void test_f64_to_f32_rne(void **st)
{
    (void)st;
    /* plain round to nearest even: a single rounding, not round-to-odd */
    assert_int_equal(unit_f32_bits(f64_to_f32(1.0 + ldexp(1, -24))), 0x3f800000u);     /* tie -> even */
    assert_int_equal(unit_f32_bits(f64_to_f32(1.0 + 3 * ldexp(1, -24))), 0x3f800002u); /* tie -> even */
    assert_int_equal(unit_f32_bits(f64_to_f32(1.0 + ldexp(1, -24) + ldexp(1, -50))), 0x3f800001u);
    assert_int_equal(unit_f32_bits(f64_to_f32(1.0 + ldexp(1, -30))), 0x3f800000u);
    assert_int_equal(unit_f32_bits(f64_to_f32(-1.0 - ldexp(1, -30))), 0xbf800000u);
    assert_true(f64_to_f32(0.1) == 0.1f);
    assert_true(f64_to_f32(1e300) == INFINITY);
    assert_true(f64_to_f32(-1e300) == -INFINITY);
    assert_int_equal(unit_f32_bits(f64_to_f32(1e-300)), 0u);
    assert_int_equal(unit_f32_bits(f64_to_f32(-0.0)), 0x80000000u);
    assert_true(isnan(f64_to_f32(NAN)));
    unit_rng rng = {5};
    for (int i = 0; i < 100000; i++) {
        uint64_t x = unit_next(&rng);
        x = (x & 0x800fffffffffffffull) | ((uint64_t)unit_range(&rng, 1023 - 130, 1023 + 130) << 52);
        double d;
        memcpy(&d, &x, 8);
        float want = (float)d; /* the compiler's conversion is IEEE round to nearest even */
        float got = f64_to_f32(d);
        if (unit_f32_bits(got) != unit_f32_bits(want))
            fail_msg("f64 %.17g -> f32 0x%08x, want 0x%08x", d, unit_f32_bits(got), unit_f32_bits(want));
    }
}

static void test_f64_to_f32_odd(void **st)
{
    (void)st;
    assert_int_equal(unit_f32_bits(ckpt_f64_to_f32_odd(1.0)), 0x3f800000u); /* exact stays */
    assert_int_equal(unit_f32_bits(ckpt_f64_to_f32_odd(1.0 + ldexp(1, -30))), 0x3f800001u);
    assert_int_equal(unit_f32_bits(ckpt_f64_to_f32_odd(1.0 + ldexp(1, -24))), 0x3f800001u);
    assert_int_equal(unit_f32_bits(ckpt_f64_to_f32_odd(1.0 + ldexp(1, -22) + ldexp(1, -40))), 0x3f800003u);
    assert_int_equal(unit_f32_bits(ckpt_f64_to_f32_odd(1.0 - ldexp(1, -40))), 0x3f7fffffu);
    assert_int_equal(unit_f32_bits(ckpt_f64_to_f32_odd(-(1.0 + ldexp(1, -30)))), 0xbf800001u);
    assert_int_equal(unit_f32_bits(ckpt_f64_to_f32_odd(1e300)), 0x7f7fffffu);
    assert_int_equal(unit_f32_bits(ckpt_f64_to_f32_odd(-1e300)), 0xff7fffffu);
    assert_int_equal(unit_f32_bits(ckpt_f64_to_f32_odd(1e-300)), 0x00000001u);
    assert_int_equal(unit_f32_bits(ckpt_f64_to_f32_odd(-1e-300)), 0x80000001u);
    assert_true(ckpt_f64_to_f32_odd(INFINITY) == INFINITY);
    assert_true(isnan(ckpt_f64_to_f32_odd(NAN)));
}

static void test_f64_to_f16_correct_rounding(void **st)
{
    (void)st;
    const double u = ldexp(1, -11); /* half an f16 ulp at 1.0 */
    /* just above the tie 1 + 2^-11 rounds up; f64 -> f32 -> f16 would round to 1.0 */
    assert_int_equal(f64_to_16(CKPT_F16, 1.0 + u + ldexp(1, -40)), 0x3c01);
    assert_int_equal(ckpt_f32_to_f16((float)(1.0 + u + ldexp(1, -40))), 0x3c00); /* the naive path */
    assert_int_equal(f64_to_16(CKPT_F16, 1.0 + u), 0x3c00);
    assert_int_equal(f64_to_16(CKPT_F16, 1.0 + u - ldexp(1, -40)), 0x3c00);
    /* just below the tie 1 + 3*2^-11 rounds down; the naive path rounds up to 1 + 2^-9 */
    assert_int_equal(f64_to_16(CKPT_F16, 1.0 + 3 * u - ldexp(1, -40)), 0x3c01);
    assert_int_equal(ckpt_f32_to_f16((float)(1.0 + 3 * u - ldexp(1, -40))), 0x3c02); /* the naive path */
    assert_int_equal(f64_to_16(CKPT_F16, 1.0 + 3 * u), 0x3c02);
    /* just below the overflow tie: f32 rounds 65520 - 2^-30 up to 65520, which would be Inf */
    assert_int_equal(f64_to_16(CKPT_F16, 65520.0 - ldexp(1, -30)), 0x7bff);
    assert_int_equal(f64_to_16(CKPT_F16, 65520.0), 0x7c00);
    assert_int_equal(f64_to_16(CKPT_F16, -65520.0 + ldexp(1, -30)), 0xfbff);
    /* just above the subnormal tie 2^-25: f32 rounds it to 2^-25, which ties to 0 */
    assert_int_equal(f64_to_16(CKPT_F16, ldexp(1, -25) + ldexp(1, -60)), 0x0001);
    assert_int_equal(f64_to_16(CKPT_F16, ldexp(1, -25)), 0x0000);
    assert_int_equal(f64_to_16(CKPT_F16, 3 * ldexp(1, -25) - ldexp(1, -70)), 0x0001);
    assert_int_equal(f64_to_16(CKPT_F16, 1e300), 0x7c00);
    assert_int_equal(f64_to_16(CKPT_F16, -1e300), 0xfc00);
    assert_int_equal(f64_to_16(CKPT_F16, 1e-300), 0x0000);
    assert_int_equal(f64_to_16(CKPT_F16, -1e-300), 0x8000);
    assert_int_equal(f64_to_16(CKPT_F16, -0.0), 0x8000);
    assert_int_equal(f64_to_16(CKPT_F16, INFINITY), 0x7c00);
    assert_int_equal(f64_to_16(CKPT_F16, -INFINITY), 0xfc00);
    uint16_t n = f64_to_16(CKPT_F16, -NAN);
    assert_true(f16_is_nan(n));
    assert_int_equal(n & 0x8000, 0x8000);
    assert_true(f16_is_nan(f64_to_16(CKPT_F16, NAN)));
}

static void test_f64_to_bf16_correct_rounding(void **st)
{
    (void)st;
    const double u = ldexp(1, -8); /* half a bf16 ulp at 1.0 */
    assert_int_equal(f64_to_16(CKPT_BF16, 1.0 + u + ldexp(1, -40)), 0x3f81);
    assert_int_equal(ckpt_f32_to_bf16((float)(1.0 + u + ldexp(1, -40))), 0x3f80); /* the naive path */
    assert_int_equal(f64_to_16(CKPT_BF16, 1.0 + u), 0x3f80);
    assert_int_equal(f64_to_16(CKPT_BF16, 1.0 + 3 * u - ldexp(1, -40)), 0x3f81);
    assert_int_equal(ckpt_f32_to_bf16((float)(1.0 + 3 * u - ldexp(1, -40))), 0x3f82); /* naive */
    assert_int_equal(f64_to_16(CKPT_BF16, 1.0 + 3 * u), 0x3f82);
    assert_int_equal(f64_to_16(CKPT_BF16, -(1.0 + u + ldexp(1, -40))), 0xbf81);
    /* overflow: the bf16 max is (2 - 2^-7) * 2^127; the tie above it is (2 - 2^-8) * 2^127 */
    assert_int_equal(f64_to_16(CKPT_BF16, ldexp(2 - ldexp(1, -8), 127) - ldexp(1, 90)), 0x7f7f);
    assert_int_equal(f64_to_16(CKPT_BF16, ldexp(2 - ldexp(1, -8), 127)), 0x7f80);
    assert_int_equal(f64_to_16(CKPT_BF16, 1e39), 0x7f80); /* beyond f32 range */
    assert_int_equal(f64_to_16(CKPT_BF16, -1e300), 0xff80);
    /* bf16 subnormals (units of 2^-133) */
    assert_int_equal(f64_to_16(CKPT_BF16, ldexp(1, -133)), 0x0001);
    assert_int_equal(f64_to_16(CKPT_BF16, ldexp(1, -134)), 0x0000);
    assert_int_equal(f64_to_16(CKPT_BF16, ldexp(1, -134) + ldexp(1, -160)), 0x0001);
    assert_int_equal(f64_to_16(CKPT_BF16, 1e-300), 0x0000);
    assert_int_equal(f64_to_16(CKPT_BF16, -0.0), 0x8000);
    assert_true(bf16_is_nan(f64_to_16(CKPT_BF16, NAN)));
    assert_int_equal(f64_to_16(CKPT_BF16, -NAN) & 0x8000, 0x8000);
}

/* Random doubles on and around every kind of rounding boundary, against the exact reference. */
static void near_ties(const fmt16 *f, ckpt_dtype dt, uint64_t seed)
{
    unit_rng rng = {seed};
    for (int i = 0; i < 300000; i++) {
        uint16_t k = (uint16_t)unit_range(&rng, 0, f->maxfin);
        double lo = f->value(k), hi = k == f->maxfin ? f->beyond : f->value((uint16_t)(k + 1));
        double mid = lo + (hi - lo) / 2, d;
        switch (i % 5) {
        case 0: d = mid; break;
        case 1: d = nextafter(mid, INFINITY); break;
        case 2: d = nextafter(mid, 0); break;
        case 3: d = mid + (hi - lo) * ldexp((double)unit_range(&rng, -1000, 1000), -(int)unit_range(&rng, 12, 45)); break;
        default: d = lo + (hi - lo) * ((double)(unit_next(&rng) >> 11) * ldexp(1, -53)); break;
        }
        if (unit_next(&rng) & 1)
            d = -d;
        uint16_t got = f64_to_16(dt, d), want = ref_round(f, d);
        if (got != want)
            fail_msg("f64 %.17g (0x%016llx) -> %s 0x%04x, want 0x%04x", d, (unsigned long long)unit_f64_bits(d),
                     ckpt_dtype_name(dt), got, want);
    }
}

static void test_f64_to_f16_random(void **st)
{
    (void)st;
    near_ties(&F16, CKPT_F16, 11);
}

static void test_f64_to_bf16_random(void **st)
{
    (void)st;
    near_ties(&BF16, CKPT_BF16, 12);
}

/* ---- conversions between 16-bit formats (exhaustive) ---- */

static void test_16_to_16_all(void **st)
{
    (void)st;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i, out;
        ckpt_convert(CKPT_F16, &h, CKPT_BF16, &out, 1);
        if (f16_is_nan(h))
            assert_true(bf16_is_nan(out));
        else if (out != ref_round(&BF16, f16_value(h)))
            fail_msg("f16 0x%04x -> bf16 0x%04x, want 0x%04x", h, out, ref_round(&BF16, f16_value(h)));
        ckpt_convert(CKPT_BF16, &h, CKPT_F16, &out, 1);
        if (bf16_is_nan(h))
            assert_true(f16_is_nan(out));
        else if (out != ref_round(&F16, bf16_value(h)))
            fail_msg("bf16 0x%04x -> f16 0x%04x, want 0x%04x", h, out, ref_round(&F16, bf16_value(h)));
        double d;
        ckpt_convert(CKPT_F16, &h, CKPT_F64, &d, 1);
        if (f16_is_nan(h))
            assert_true(isnan(d));
        else
            assert_int_equal(unit_f64_bits(d), unit_f64_bits(f16_value(h)));
        ckpt_convert(CKPT_BF16, &h, CKPT_F64, &d, 1);
        if (bf16_is_nan(h))
            assert_true(isnan(d));
        else
            assert_int_equal(unit_f64_bits(d), unit_f64_bits(bf16_value(h)));
    }
}

/* ---- ckpt_convert across all float pairs ---- */

static void pack(ckpt_dtype dt, double v, void *out)
{
    switch (dt) {
    case CKPT_F64: memcpy(out, &v, 8); break;
    case CKPT_F32: { float f = (float)v; memcpy(out, &f, 4); break; }
    case CKPT_F16: { uint16_t h = ref_round(&F16, v); memcpy(out, &h, 2); break; }
    case CKPT_BF16: { uint16_t h = ref_round(&BF16, v); memcpy(out, &h, 2); break; }
    default: fail();
    }
}

static double unpack(ckpt_dtype dt, const void *p)
{
    switch (dt) {
    case CKPT_F64: { double d; memcpy(&d, p, 8); return d; }
    case CKPT_F32: { float f; memcpy(&f, p, 4); return f; }
    case CKPT_F16: { uint16_t h; memcpy(&h, p, 2); return f16_value(h); }
    case CKPT_BF16: { uint16_t h; memcpy(&h, p, 2); return bf16_value(h); }
    default: fail();
    }
    return 0;
}

static void test_convert_all_pairs(void **st)
{
    (void)st;
    /* exactly representable in every float dtype */
    const double vals[] = {0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.25, 1.5, 100.0, -0.125, 31.5, -31.5, 256.0,
                           0.375, 0x1p-8, -0x1p-14, 0x1p-24, 3.0 * 0x1p-10, 1024.0, -4096.0, INFINITY, -INFINITY};
    enum { N = sizeof vals / sizeof vals[0] };
    const ckpt_dtype fl[4] = {CKPT_F32, CKPT_F64, CKPT_F16, CKPT_BF16};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            unsigned char src[N * 8], dst[N * 8 + 8];
            size_t ss = ckpt_dtype_size(fl[a]), ds = ckpt_dtype_size(fl[b]);
            for (int i = 0; i < N; i++)
                pack(fl[a], vals[i], src + i * ss);
            memset(dst, 0x5a, sizeof dst);
            ckpt_convert(fl[a], src, fl[b], dst, N); /* all at once: strides of both dtypes */
            for (int i = 0; i < N; i++) {
                double got = unpack(fl[b], dst + i * ds);
                if (unit_f64_bits(got) != unit_f64_bits(vals[i]))
                    fail_msg("%s -> %s: %g became %g", ckpt_dtype_name(fl[a]), ckpt_dtype_name(fl[b]), vals[i], got);
            }
            assert_int_equal(dst[N * ds], 0x5a); /* nothing written past n elements */
            /* NaN stays NaN, sign kept */
            unsigned char nan_src[8], nan_dst[8];
            if (fl[a] == CKPT_F16 || fl[a] == CKPT_BF16) {
                uint16_t h = fl[a] == CKPT_F16 ? 0xfe00 : 0xffc0;
                memcpy(nan_src, &h, 2);
            } else {
                pack(fl[a], -NAN, nan_src);
            }
            ckpt_convert(fl[a], nan_src, fl[b], nan_dst, 1);
            int is_nan;
            if (fl[b] == CKPT_F16 || fl[b] == CKPT_BF16) {
                uint16_t h;
                memcpy(&h, nan_dst, 2);
                is_nan = fl[b] == CKPT_F16 ? f16_is_nan(h) : bf16_is_nan(h);
            } else {
                is_nan = isnan(unpack(fl[b], nan_dst));
            }
            if (!is_nan)
                fail_msg("%s NaN -> %s is not NaN", ckpt_dtype_name(fl[a]), ckpt_dtype_name(fl[b]));
            assert_int_equal(nan_dst[ds - 1] & 0x80, 0x80); /* sign bit (little-endian top byte) */
        }
    /* inexact: 0.1 from every float dtype to every narrower one */
    uint16_t h;
    float f = 0.1f;
    ckpt_convert(CKPT_F32, &f, CKPT_F16, &h, 1);
    assert_int_equal(h, 0x2e66);
    ckpt_convert(CKPT_F32, &f, CKPT_BF16, &h, 1);
    assert_int_equal(h, 0x3dcd);
    uint16_t x = 0x2e66; /* f16 0.0999755859375 */
    ckpt_convert(CKPT_F16, &x, CKPT_BF16, &h, 1);
    assert_int_equal(h, 0x3dcd);
    x = 0x3dcd; /* bf16 0.10009765625 */
    ckpt_convert(CKPT_BF16, &x, CKPT_F16, &h, 1);
    assert_int_equal(h, 0x2e68);
    double d = 0.1;
    ckpt_convert(CKPT_F64, &d, CKPT_F16, &h, 1);
    assert_int_equal(h, 0x2e66);
    ckpt_convert(CKPT_F64, &d, CKPT_BF16, &h, 1);
    assert_int_equal(h, 0x3dcd);
}

static void test_convert_same_dtype_and_empty(void **st)
{
    (void)st;
    int32_t a[5] = {1, -2, 3, INT32_MIN, INT32_MAX}, b[5] = {0};
    ckpt_convert(CKPT_I32, a, CKPT_I32, b, 5);
    assert_memory_equal(a, b, sizeof a);
    uint8_t bo[3] = {0, 1, 1}, bo2[3] = {9, 9, 9};
    ckpt_convert(CKPT_BOOL, bo, CKPT_BOOL, bo2, 3);
    assert_memory_equal(bo, bo2, 3);
    uint32_t nanbits = 0x7f800001u, out = 0; /* same dtype: bits copied as they are */
    ckpt_convert(CKPT_F32, &nanbits, CKPT_F32, &out, 1);
    assert_int_equal(out, 0x7f800001u);
    double dd[2] = {1.0, 2.0};
    float ff[2] = {-1.0f, -1.0f};
    ckpt_convert(CKPT_F64, dd, CKPT_F32, ff, 0); /* n = 0 writes nothing */
    assert_true(ff[0] == -1.0f && ff[1] == -1.0f);
}

static void test_f32_to_f64_exact(void **st)
{
    (void)st;
    unit_rng rng = {99};
    for (int i = 0; i < 200000; i++) {
        float f = unit_bits_f32((uint32_t)unit_next(&rng));
        double d;
        ckpt_convert(CKPT_F32, &f, CKPT_F64, &d, 1);
        if (isnan(f))
            assert_true(isnan(d));
        else
            assert_int_equal(unit_f64_bits(d), unit_f64_bits((double)f));
    }
}

int main(void)
{
    BF16 = (fmt16){bf16_value, 0x7f7f, 0x7f80, ldexp(1, 128)};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_names),
        cmocka_unit_test(test_from_name_unknown),
        cmocka_unit_test(test_can_cast),
        cmocka_unit_test(test_f32_to_f16_values),
        cmocka_unit_test(test_f32_to_f16_nan),
        cmocka_unit_test(test_f32_to_f16_random),
        cmocka_unit_test(test_f16_to_f32_all),
        cmocka_unit_test(test_f32_to_bf16_values),
        cmocka_unit_test(test_bf16_to_f32_all),
        cmocka_unit_test(test_f64_to_f32_rne),
        cmocka_unit_test(test_f64_to_f32_odd),
        cmocka_unit_test(test_f64_to_f16_correct_rounding),
        cmocka_unit_test(test_f64_to_bf16_correct_rounding),
        cmocka_unit_test(test_f64_to_f16_random),
        cmocka_unit_test(test_f64_to_bf16_random),
        cmocka_unit_test(test_16_to_16_all),
        cmocka_unit_test(test_convert_all_pairs),
        cmocka_unit_test(test_convert_same_dtype_and_empty),
        cmocka_unit_test(test_f32_to_f64_exact),
    };
    return cmocka_run_group_tests_name("unit.dtype", tests, NULL, NULL);
}
