/* GGUF: the writer's bytes against the format by hand, round trips of every value and tensor
 * type, q8_0 and f16 bit for bit against ggml's reference (vectors from llama.cpp's gguf-py
 * quantizer), the byte tokens, every malformed class refused with its status and message, and the
 * checkpoint export (keys, tensors, data, errors, nothing left behind). */
#include "ckptfmt.h"
#include "convert_test.h"

#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char scratch[2048];

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", scratch, name);
    unlink(buf);
}

#define assert_msg_has(sub)                                                                                  \
    do {                                                                                                     \
        if (!strstr(ckptfmt_errmsg(), (sub)))                                                                \
            fail_msg("message '%s' lacks '%s'", ckptfmt_errmsg(), (sub));                                    \
    } while (0)

/* -- a little-endian byte builder for hand-made files */
typedef struct bb {
    unsigned char b[8192];
    size_t n;
} bb;

static void bb_raw(bb *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof b->b);
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void bb_le(bb *b, uint64_t v, int size)
{
    for (int k = 0; k < size; k++) {
        unsigned char c = (unsigned char)(v >> (8 * k));
        bb_raw(b, &c, 1);
    }
}
static void bb_str(bb *b, const char *s)
{
    bb_le(b, strlen(s), 8);
    bb_raw(b, s, strlen(s));
}
static void bb_pad(bb *b, size_t a)
{
    while (b->n % a)
        bb_le(b, 0, 1);
}
/* header: magic, version, counts */
static void bb_head(bb *b, uint32_t version, uint64_t nt, uint64_t nkv)
{
    b->n = 0;
    bb_raw(b, "GGUF", 4);
    bb_le(b, version, 4);
    bb_le(b, nt, 8);
    bb_le(b, nkv, 8);
}
static void bb_kv_u32(bb *b, const char *key, uint32_t v)
{
    bb_str(b, key);
    bb_le(b, CKPTFMT_GGUF_UINT32, 4);
    bb_le(b, v, 4);
}
static void bb_tensor(bb *b, const char *name, int n_dims, const uint64_t *ne, uint32_t type, uint64_t off)
{
    bb_str(b, name);
    bb_le(b, (uint64_t)n_dims, 4);
    for (int k = 0; k < n_dims; k++)
        bb_le(b, ne[k], 8);
    bb_le(b, type, 4);
    bb_le(b, off, 8);
}

/* The smallest useful file, byte by byte as gguf.md lays it out. */
static void test_header_bytes(void **state)
{
    (void)state;
    char p[4096];
    path_in(p, sizeof p, "tiny.gguf");
    ckptfmt_gguf_writer *w;
    assert_int_equal(ckptfmt_gguf_writer_create(&w), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_set_string(w, "a", "x"), CKPTFMT_OK);
    uint64_t ne[1] = {2};
    assert_int_equal(ckptfmt_gguf_writer_add_tensor(w, "t", CKPTFMT_GGML_F32, 1, ne), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_begin(w, p), CKPTFMT_OK);
    float v[2] = {1.0f, -2.0f};
    assert_int_equal(ckptfmt_gguf_writer_write(w, v, sizeof v), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_finish(w, 0), CKPTFMT_OK);
    uint64_t fsize = ckptfmt_gguf_writer_file_size(w);
    ckptfmt_gguf_writer_free(w);

    bb e;
    bb_head(&e, 3, 1, 2);
    bb_kv_u32(&e, "general.alignment", 32);
    bb_str(&e, "a");
    bb_le(&e, CKPTFMT_GGUF_STRING, 4);
    bb_str(&e, "x");
    bb_tensor(&e, "t", 1, ne, CKPTFMT_GGML_F32, 0);
    bb_pad(&e, 32);
    bb_raw(&e, "\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
    bb_pad(&e, 32);
    size_t n;
    unsigned char *got = slurp(p, &n);
    assert_int_equal(n, e.n);
    assert_int_equal(fsize, e.n);
    assert_memory_equal(got, e.b, e.n);
    free(got);
    /* an existing file is never replaced */
    assert_int_equal(ckptfmt_gguf_writer_create(&w), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_begin(w, p), CKPTFMT_EEXIST);
    ckptfmt_gguf_writer_free(w);
    got = slurp(p, &n);
    assert_int_equal(n, e.n);
    free(got);
}

static const float q8_input[128] = {
    /* block 0: j - 16 */
    -16, -15, -14, -13, -12, -11, -10, -9, -8, -7, -6, -5, -4, -3, -2, -1,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    /* block 1: d = 1, halves round away from zero */
    127, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, -1.5f, 126.5f, 0, 0.25f, 0.5f, 0.75f, 1, 1.25f, 1.5f, 1.75f,
    2, 2.25f, 2.5f, 2.75f, 3, 3.25f, 3.5f, 3.75f, 4, 4.25f, 4.5f, 4.75f, 5, 5.25f, 5.5f, 5.75f,
    /* block 2: zeros (d = 0) */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* block 3: float32(sin(j)) * float32(3.7) */
    0.0f, 3.113442897796631f, 3.3644003868103027f, 0.5221440196037292f, -2.8001692295074463f,
    -3.5480198860168457f, -1.0338373184204102f, 2.4308505058288574f, 3.660625457763672f, 1.5248383283615112f,
    -2.012877941131592f, -3.6999638080596924f, -1.9853198528289795f, 1.5546181201934814f, 3.6652474403381348f,
    2.4060652256011963f, -1.0652424097061157f, -3.5571706295013428f, -2.7786529064178467f, 0.5545456409454346f,
    3.3778975009918213f, 3.095625877380371f, -0.03274984657764435f, -3.1310155391693115f, -3.350640058517456f,
    -0.489701509475708f, 2.8214662075042725f, 3.538591146469116f, 1.0023514032363892f, -2.4554452896118164f,
    -3.655717134475708f, -1.4949393272399902f};

/* What llama.cpp's gguf-py (gguf.quants.quantize, Q8_0) makes of q8_input. */
static const uint16_t q8_scale[4] = {0x3008, 0x3c00, 0x0000, 0x2775};
static const int8_t q8_q[4][32] = {
    {-127, -119, -111, -103, -95, -87, -79, -71, -64, -56, -48, -40, -32, -24, -16, -8,
     0, 8, 16, 24, 32, 40, 48, 56, 64, 71, 79, 87, 95, 103, 111, 119},
    {127, 3, -3, 1, -1, 2, -2, 127, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6},
    {0},
    {0, 107, 115, 18, -96, -122, -35, 83, 126, 52, -69, -127, -68, 53, 126, 83,
     -37, -122, -95, 19, 116, 106, -1, -107, -115, -17, 97, 121, 34, -84, -125, -51}};

static void test_q8_0(void **state)
{
    (void)state;
    uint64_t nb;
    assert_int_equal(ckptfmt_ggml_nbytes(CKPTFMT_GGML_Q8_0, 128, &nb), CKPTFMT_OK);
    assert_int_equal(nb, 4 * 34);
    unsigned char q[4 * 34];
    assert_int_equal(ckptfmt_ggml_encode(CKPTFMT_GGML_Q8_0, q8_input, 128, q), CKPTFMT_OK);
    for (int b = 0; b < 4; b++) {
        assert_int_equal(q[34 * b] | q[34 * b + 1] << 8, q8_scale[b]);
        assert_memory_equal(q + 34 * b + 2, q8_q[b], 32);
    }
    float back[128];
    assert_int_equal(ckptfmt_ggml_decode(CKPTFMT_GGML_Q8_0, q, 128, back), CKPTFMT_OK);
    assert_true(back[0] == -127 * 0.1259765625f); /* f16 0x3008 */
    assert_true(back[32 + 1] == 3.0f && back[32 + 2] == -3.0f && back[64] == 0.0f);
    /* the format's bound on random data: |x - q d16| <= d/2 + 127 |d - d16| <= (1/2 + 127/2048) d */
    float x[4096], y[4096];
    unsigned char buf[4096 / 32 * 34];
    uint64_t r = 42;
    for (int i = 0; i < 4096; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5) * (i % 7 + 1);
    }
    assert_int_equal(ckptfmt_ggml_encode(CKPTFMT_GGML_Q8_0, x, 4096, buf), CKPTFMT_OK);
    assert_int_equal(ckptfmt_ggml_decode(CKPTFMT_GGML_Q8_0, buf, 4096, y), CKPTFMT_OK);
    for (int b = 0; b < 4096 / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[32 * b + j]));
        double bound = (0.5 + 127.0 / 2048) * amax / 127 * (1 + 1e-6);
        for (int j = 0; j < 32; j++)
            assert_true(fabs((double)x[32 * b + j] - y[32 * b + j]) <= bound);
    }
    /* the scales and quants of random blocks of every magnitude as roundf gives them */
    for (int b = 0; b < 4096 / 32; b++) {
        float scale = ldexpf(1.0f, b % 60 - 30);
        for (int j = 0; j < 32; j++)
            x[32 * b + j] *= scale;
    }
    assert_int_equal(ckptfmt_ggml_encode(CKPTFMT_GGML_Q8_0, x, 4096, buf), CKPTFMT_OK);
    for (int b = 0; b < 4096 / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[32 * b + j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < 32; j++)
            assert_int_equal((int8_t)buf[34 * b + 2 + j], (int)roundf(x[32 * b + j] * id));
    }
    /* a block of subnormals (1/d is infinite) and NaN: defined values */
    float tiny[32] = {0x1p-140f, -0x1p-149f, NAN};
    assert_int_equal(ckptfmt_ggml_encode(CKPTFMT_GGML_Q8_0, tiny, 32, buf), CKPTFMT_OK);
    assert_int_equal((int8_t)buf[2], 127);  /* x * inf, clamped */
    assert_int_equal((int8_t)buf[3], -127);
    assert_int_equal((int8_t)buf[4], 0);    /* NaN */
    assert_int_equal((int8_t)buf[5], 0);    /* 0 * inf */
    /* not whole blocks */
    assert_int_equal(ckptfmt_ggml_encode(CKPTFMT_GGML_Q8_0, x, 33, buf), CKPTFMT_EINVAL);
    assert_int_equal(ckptfmt_ggml_nbytes(CKPTFMT_GGML_Q8_0, 33, &nb), CKPTFMT_EMALFORMED);
    assert_int_equal(ckptfmt_ggml_encode(CKPTFMT_GGML_Q4_K, x, 256, buf), CKPTFMT_EUNSUPPORTED);
}

static void test_f16_bf16(void **state)
{
    (void)state;
    /* round to nearest even, overflow to inf, subnormals (numpy's float16 of the same values) */
    const float v[8] = {1 + 0x1p-11f, 1 + 3 * 0x1p-11f, 65519.0f, 65520.0f, 1e-8f, -0.0f, 3.1415927f, 6.1e-5f};
    const uint16_t want[8] = {0x3c00, 0x3c02, 0x7bff, 0x7c00, 0x0000, 0x8000, 0x4248, 0x03ff};
    uint16_t h[8];
    assert_int_equal(ckptfmt_ggml_encode(CKPTFMT_GGML_F16, v, 8, h), CKPTFMT_OK);
    assert_memory_equal(h, want, sizeof want);
    float back[8];
    assert_int_equal(ckptfmt_ggml_decode(CKPTFMT_GGML_F16, h, 8, back), CKPTFMT_OK);
    assert_true(back[0] == 1.0f && back[3] == INFINITY && back[7] == 1023 * 0x1p-24f);
    /* every class of f32 (random bit patterns: NaNs, infinities, subnormals, ties) the same as
     * libckpt's scalar round to nearest even, whichever path the encoder takes */
    static uint32_t bits[1 << 16];
    static uint16_t fast[1 << 16], slow[1 << 16];
    uint64_t r = 7;
    for (int i = 0; i < (1 << 16); i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        bits[i] = (uint32_t)(r >> 32);
        if (i % 4 == 1) /* exactly between two halves, or near the f16 range's edges */
            bits[i] = (bits[i] & 0x807fe000u) | 0x00001000u | (uint32_t)(0x66 + i % 0x29) << 23; /* 2^-25 .. 2^15 */
    }
    assert_int_equal(ckptfmt_ggml_encode(CKPTFMT_GGML_F16, (const float *)bits, 1 << 16, fast), CKPTFMT_OK);
    assert_int_equal(ckpt_dtype_convert(CKPT_F32, bits, CKPT_F16, slow, 1 << 16), CKPT_OK);
    assert_memory_equal(fast, slow, sizeof fast);
    const float bv[3] = {1 + 0x1p-8f, 1 + 3 * 0x1p-8f, -2.0f};
    const uint16_t bwant[3] = {0x3f80, 0x3f82, 0xc000};
    assert_int_equal(ckptfmt_ggml_encode(CKPTFMT_GGML_BF16, bv, 3, h), CKPTFMT_OK);
    assert_memory_equal(h, bwant, sizeof bwant);
}

static void test_types(void **state)
{
    (void)state;
    const char *name;
    int block, bytes;
    assert_int_equal(ckptfmt_ggml_type_info(CKPTFMT_GGML_Q8_0, &name, &block, &bytes), CKPTFMT_OK);
    assert_string_equal(name, "Q8_0");
    assert_int_equal(block, 32);
    assert_int_equal(bytes, 34);
    assert_int_equal(ckptfmt_ggml_type_info(CKPTFMT_GGML_Q6_K, &name, &block, &bytes), CKPTFMT_OK);
    assert_int_equal(block, 256);
    assert_int_equal(bytes, 210);
    assert_int_equal(ckptfmt_ggml_type_info(4, NULL, NULL, NULL), CKPTFMT_EINVAL);
    assert_int_equal(ckptfmt_ggml_type_info(36, NULL, NULL, NULL), CKPTFMT_EINVAL);
    ckptfmt_ggml_type t;
    assert_int_equal(ckptfmt_ggml_type_from_name("q8_0", &t), CKPTFMT_OK);
    assert_int_equal(t, CKPTFMT_GGML_Q8_0);
    assert_int_equal(ckptfmt_ggml_type_from_name("f16", &t), CKPTFMT_OK);
    assert_int_equal(t, CKPTFMT_GGML_F16);
    assert_int_equal(ckptfmt_ggml_type_from_name("q9", &t), CKPTFMT_ENOTFOUND);
    assert_string_equal(ckptfmt_gguf_type_name(CKPTFMT_GGUF_FLOAT64), "FLOAT64");
    assert_int_equal(ckptfmt_gguf_type_size(CKPTFMT_GGUF_INT16), 2);
    assert_int_equal(ckptfmt_gguf_type_size(CKPTFMT_GGUF_STRING), 0);
    assert_null(ckptfmt_gguf_type_name(13));
}

static void test_byte_tokens(void **state)
{
    (void)state;
    assert_string_equal(ckptfmt_gguf_byte_token('A'), "A");
    assert_string_equal(ckptfmt_gguf_byte_token('!'), "!");
    assert_string_equal(ckptfmt_gguf_byte_token(' '), "\xC4\xA0");  /* U+0120 Ġ */
    assert_string_equal(ckptfmt_gguf_byte_token('\n'), "\xC4\x8A"); /* U+010A Ċ */
    assert_string_equal(ckptfmt_gguf_byte_token(0), "\xC4\x80");    /* U+0100 Ā */
    assert_string_equal(ckptfmt_gguf_byte_token(0x7F), "\xC4\xA1"); /* U+0121 ġ */
    assert_string_equal(ckptfmt_gguf_byte_token(0xAD), "\xC5\x83"); /* U+0143 Ń */
    assert_string_equal(ckptfmt_gguf_byte_token(0xE9), "\xC3\xA9"); /* é stands for itself */
    assert_null(ckptfmt_gguf_byte_token(256));
    for (int a = 0; a < 256; a++)
        for (int b = a + 1; b < 256; b++)
            assert_string_not_equal(ckptfmt_gguf_byte_token(a), ckptfmt_gguf_byte_token(b));
}

/* Every value type, tensors of several types, alignment 64: written, then read back. */
static void test_roundtrip(void **state)
{
    (void)state;
    char p[4096];
    path_in(p, sizeof p, "all.gguf");
    ckptfmt_gguf_writer *w;
    assert_int_equal(ckptfmt_gguf_writer_create(&w), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_set_alignment(w, 64), CKPTFMT_OK);
    const ckptfmt_gguf_value sv[] = {
        {.type = CKPTFMT_GGUF_UINT8, .u = 255},      {.type = CKPTFMT_GGUF_INT8, .i = -128},
        {.type = CKPTFMT_GGUF_UINT16, .u = 65535},   {.type = CKPTFMT_GGUF_INT16, .i = -32768},
        {.type = CKPTFMT_GGUF_UINT32, .u = 4000000000u}, {.type = CKPTFMT_GGUF_INT32, .i = -2000000000},
        {.type = CKPTFMT_GGUF_FLOAT32, .f = 1e-5},   {.type = CKPTFMT_GGUF_BOOL, .b = 1},
        {.type = CKPTFMT_GGUF_UINT64, .u = UINT64_MAX}, {.type = CKPTFMT_GGUF_INT64, .i = INT64_MIN},
        {.type = CKPTFMT_GGUF_FLOAT64, .f = 3.141592653589793}};
    const int nsv = (int)(sizeof sv / sizeof sv[0]);
    for (int k = 0; k < nsv; k++) {
        char key[32];
        snprintf(key, sizeof key, "s.%d", k);
        assert_int_equal(ckptfmt_gguf_writer_set(w, key, sv[k]), CKPTFMT_OK);
    }
    assert_int_equal(ckptfmt_gguf_writer_set_string(w, "str", "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_set_string(w, "empty", ""), CKPTFMT_OK);
    const int16_t a16[3] = {-1, 2, -32768};
    const double af64[2] = {0.5, -1e300};
    const uint8_t abool[3] = {1, 0, 1};
    const char *strs[3] = {"a", "", "\xC4\xA0x"};
    assert_int_equal(ckptfmt_gguf_writer_set_array(w, "a.i16", CKPTFMT_GGUF_INT16, 3, a16), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_set_array(w, "a.f64", CKPTFMT_GGUF_FLOAT64, 2, af64), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_set_array(w, "a.bool", CKPTFMT_GGUF_BOOL, 3, abool), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_set_array(w, "a.none", CKPTFMT_GGUF_UINT32, 0, NULL), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_set_string_array(w, "a.str", 3, strs), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_set_string_array(w, "a.nostr", 0, NULL), CKPTFMT_OK);
    struct {
        const char *name;
        ckptfmt_ggml_type type;
        int n_dims;
        uint64_t ne[4];
    } ts[] = {{"f32", CKPTFMT_GGML_F32, 2, {3, 2}},
              {"f16", CKPTFMT_GGML_F16, 1, {5}},
              {"bf16", CKPTFMT_GGML_BF16, 3, {2, 2, 2}},
              {"q8", CKPTFMT_GGML_Q8_0, 2, {64, 2}},
              {"i8", CKPTFMT_GGML_I8, 4, {7, 1, 1, 1}}};
    const int nts = 5;
    unsigned char data[5][256];
    uint64_t nbytes[5];
    for (int k = 0; k < nts; k++) {
        assert_int_equal(ckptfmt_gguf_writer_add_tensor(w, ts[k].name, ts[k].type, ts[k].n_dims, ts[k].ne), CKPTFMT_OK);
        uint64_t n = 1;
        for (int d = 0; d < ts[k].n_dims; d++)
            n *= ts[k].ne[d];
        assert_int_equal(ckptfmt_ggml_nbytes(ts[k].type, n, &nbytes[k]), CKPTFMT_OK);
        for (uint64_t i = 0; i < nbytes[k]; i++)
            data[k][i] = (unsigned char)(i * 7 + (uint64_t)k * 31 + 1);
    }
    assert_int_equal(ckptfmt_gguf_writer_begin(w, p), CKPTFMT_OK);
    /* the data in odd-sized calls spanning tensors */
    unsigned char all[2048];
    size_t total = 0;
    for (int k = 0; k < nts; k++) {
        memcpy(all + total, data[k], nbytes[k]);
        total += nbytes[k];
    }
    for (size_t at = 0; at < total; at += 13)
        assert_int_equal(ckptfmt_gguf_writer_write(w, all + at, total - at < 13 ? total - at : 13), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_write(w, all, 1), CKPTFMT_EINVAL);
    assert_msg_has("beyond the last tensor");
    assert_int_equal(ckptfmt_gguf_writer_finish(w, 1), CKPTFMT_OK);
    ckptfmt_gguf_writer_free(w);

    ckptfmt_gguf_file *f;
    assert_int_equal(ckptfmt_gguf_open(p, &f), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_version(f), 3);
    assert_int_equal(ckptfmt_gguf_alignment(f), 64);
    assert_int_equal(ckptfmt_gguf_data_offset(f) % 64, 0);
    assert_int_equal(ckptfmt_gguf_file_size(f) % 64, 0);
    assert_int_equal(ckptfmt_gguf_num_kv(f), 1 + nsv + 8);
    ckptfmt_gguf_kv kv;
    ckptfmt_gguf_value v;
    int i;
    assert_int_equal(ckptfmt_gguf_kv_info(f, 0, &kv), CKPTFMT_OK);
    assert_string_equal(kv.key, "general.alignment");
    for (int k = 0; k < nsv; k++) {
        char key[32];
        snprintf(key, sizeof key, "s.%d", k);
        assert_int_equal(ckptfmt_gguf_find_key(f, key, &i), CKPTFMT_OK);
        assert_int_equal(ckptfmt_gguf_kv_scalar(f, i, &v), CKPTFMT_OK);
        assert_int_equal(v.type, sv[k].type);
        switch (v.type) {
        case CKPTFMT_GGUF_FLOAT32: assert_true(v.f == (double)(float)sv[k].f); break;
        case CKPTFMT_GGUF_FLOAT64: assert_true(v.f == sv[k].f); break;
        case CKPTFMT_GGUF_BOOL: assert_int_equal(v.b, sv[k].b); break;
        case CKPTFMT_GGUF_INT8: case CKPTFMT_GGUF_INT16: case CKPTFMT_GGUF_INT32: case CKPTFMT_GGUF_INT64:
            assert_true(v.i == sv[k].i);
            break;
        default: assert_true(v.u == sv[k].u);
        }
    }
    const char *s;
    uint64_t len;
    assert_int_equal(ckptfmt_gguf_find_key(f, "str", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_string(f, i, &s, &len), CKPTFMT_OK);
    assert_int_equal(len, strlen("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"));
    assert_memory_equal(s, "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80", len);
    assert_int_equal(ckptfmt_gguf_kv_scalar(f, i, &v), CKPTFMT_EINVAL);
    assert_int_equal(ckptfmt_gguf_find_key(f, "a.i16", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_info(f, i, &kv), CKPTFMT_OK);
    assert_int_equal(kv.type, CKPTFMT_GGUF_ARRAY);
    assert_int_equal(kv.array_type, CKPTFMT_GGUF_INT16);
    assert_int_equal(kv.array_len, 3);
    for (int j = 0; j < 3; j++) {
        assert_int_equal(ckptfmt_gguf_kv_array_scalar(f, i, (uint64_t)j, &v), CKPTFMT_OK);
        assert_int_equal(v.i, a16[j]);
    }
    assert_int_equal(ckptfmt_gguf_kv_array_scalar(f, i, 3, &v), CKPTFMT_EINVAL);
    assert_int_equal(ckptfmt_gguf_find_key(f, "a.f64", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_array_scalar(f, i, 1, &v), CKPTFMT_OK);
    assert_true(v.f == -1e300);
    assert_int_equal(ckptfmt_gguf_find_key(f, "a.bool", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_array_scalar(f, i, 2, &v), CKPTFMT_OK);
    assert_int_equal(v.b, 1);
    assert_int_equal(ckptfmt_gguf_find_key(f, "a.none", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_info(f, i, &kv), CKPTFMT_OK);
    assert_int_equal(kv.array_len, 0);
    assert_int_equal(kv.array_type, CKPTFMT_GGUF_UINT32);
    assert_int_equal(ckptfmt_gguf_find_key(f, "a.str", &i), CKPTFMT_OK);
    for (int j = 2; j >= 0; j--) { /* backwards: the cursor restarts */
        assert_int_equal(ckptfmt_gguf_kv_array_string(f, i, (uint64_t)j, &s, &len), CKPTFMT_OK);
        assert_int_equal(len, strlen(strs[j]));
        assert_memory_equal(s, strs[j], len);
    }
    assert_int_equal(ckptfmt_gguf_find_key(f, "a.nostr", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_info(f, i, &kv), CKPTFMT_OK);
    assert_int_equal(kv.array_type, CKPTFMT_GGUF_STRING);
    assert_int_equal(kv.array_len, 0);
    assert_int_equal(ckptfmt_gguf_find_key(f, "nope", &i), CKPTFMT_ENOTFOUND);

    assert_int_equal(ckptfmt_gguf_num_tensors(f), nts);
    uint64_t off = 0;
    for (int k = 0; k < nts; k++) {
        ckptfmt_gguf_tensor t;
        assert_int_equal(ckptfmt_gguf_tensor_info(f, k, &t), CKPTFMT_OK);
        assert_string_equal(t.name, ts[k].name);
        assert_int_equal(t.type, ts[k].type);
        assert_int_equal(t.n_dims, ts[k].n_dims);
        for (int d = 0; d < 4; d++)
            assert_int_equal(t.ne[d], d < ts[k].n_dims ? ts[k].ne[d] : 1);
        assert_int_equal(t.offset, off);
        assert_int_equal(t.nbytes, nbytes[k]);
        off += (nbytes[k] + 63) / 64 * 64;
        assert_memory_equal(ckptfmt_gguf_tensor_data(f, k), data[k], nbytes[k]);
        assert_int_equal(ckptfmt_gguf_find_tensor(f, ts[k].name, &i), CKPTFMT_OK);
        assert_int_equal(i, k);
    }
    assert_int_equal(ckptfmt_gguf_file_size(f), ckptfmt_gguf_data_offset(f) + off);
    ckptfmt_gguf_close(f);
}

static void test_writer_errors(void **state)
{
    (void)state;
    char p[4096];
    path_in(p, sizeof p, "err.gguf");
    ckptfmt_gguf_writer *w;
    assert_int_equal(ckptfmt_gguf_writer_create(&w), CKPTFMT_OK);
    ckptfmt_gguf_value u8 = {.type = CKPTFMT_GGUF_UINT8, .u = 256};
    assert_int_equal(ckptfmt_gguf_writer_set(w, "x", u8), CKPTFMT_EINVAL);
    assert_msg_has("does not fit UINT8");
    ckptfmt_gguf_value i8 = {.type = CKPTFMT_GGUF_INT8, .i = 128};
    assert_int_equal(ckptfmt_gguf_writer_set(w, "x", i8), CKPTFMT_EINVAL);
    ckptfmt_gguf_value b2 = {.type = CKPTFMT_GGUF_BOOL, .b = 2};
    assert_int_equal(ckptfmt_gguf_writer_set(w, "x", b2), CKPTFMT_EINVAL);
    ckptfmt_gguf_value str = {.type = CKPTFMT_GGUF_STRING};
    assert_int_equal(ckptfmt_gguf_writer_set(w, "x", str), CKPTFMT_EINVAL);
    assert_int_equal(ckptfmt_gguf_writer_set_string(w, "", "v"), CKPTFMT_EINVAL);
    assert_msg_has("outside 1..65535");
    assert_int_equal(ckptfmt_gguf_writer_set_string(w, "k\x01", "v"), CKPTFMT_EINVAL);
    assert_msg_has("not printable ASCII");
    assert_int_equal(ckptfmt_gguf_writer_set_string(w, "k", "\xC0\x80"), CKPTFMT_EINVAL);
    assert_msg_has("not valid UTF-8");
    assert_int_equal(ckptfmt_gguf_writer_set_string(w, "k", "v"), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_set_string(w, "k", "w"), CKPTFMT_EINVAL);
    assert_msg_has("set twice");
    ckptfmt_gguf_value a = {.type = CKPTFMT_GGUF_UINT32, .u = 32};
    assert_int_equal(ckptfmt_gguf_writer_set(w, "general.alignment", a), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_set_alignment(w, 48), CKPTFMT_EINVAL);
    const uint8_t bad_bool[2] = {0, 3};
    assert_int_equal(ckptfmt_gguf_writer_set_array(w, "bb", CKPTFMT_GGUF_BOOL, 2, bad_bool), CKPTFMT_EINVAL);
    assert_int_equal(ckptfmt_gguf_writer_set_array(w, "nest", CKPTFMT_GGUF_ARRAY, 0, NULL), CKPTFMT_EINVAL);
    const char *bad_strs[2] = {"ok", "\xFF"};
    assert_int_equal(ckptfmt_gguf_writer_set_string_array(w, "ss", 2, bad_strs), CKPTFMT_EINVAL);
    assert_msg_has("element 1");
    uint64_t ne[2] = {33, 2};
    assert_int_equal(ckptfmt_gguf_writer_add_tensor(w, "q", CKPTFMT_GGML_Q8_0, 2, ne), CKPTFMT_EINVAL);
    assert_msg_has("not a multiple of the Q8_0 block (32)");
    char longname[65];
    memset(longname, 'n', 64);
    longname[64] = 0;
    assert_int_equal(ckptfmt_gguf_writer_add_tensor(w, longname, CKPTFMT_GGML_F32, 2, ne), CKPTFMT_EINVAL);
    ne[0] = 0;
    assert_int_equal(ckptfmt_gguf_writer_add_tensor(w, "z", CKPTFMT_GGML_F32, 2, ne), CKPTFMT_EINVAL);
    ne[0] = 4;
    assert_int_equal(ckptfmt_gguf_writer_add_tensor(w, "z", CKPTFMT_GGML_F32, 5, ne), CKPTFMT_EINVAL);
    assert_int_equal(ckptfmt_gguf_writer_add_tensor(w, "z", 5, 2, ne), CKPTFMT_EINVAL);
    assert_int_equal(ckptfmt_gguf_writer_add_tensor(w, "z", CKPTFMT_GGML_F32, 2, ne), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_add_tensor(w, "z", CKPTFMT_GGML_F32, 2, ne), CKPTFMT_EINVAL);
    assert_msg_has("declared twice");
    /* general.alignment is the writer's */
    assert_int_equal(ckptfmt_gguf_writer_begin(w, p), CKPTFMT_EINVAL);
    ckptfmt_gguf_writer_free(w);

    assert_int_equal(ckptfmt_gguf_writer_create(&w), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_add_tensor(w, "z", CKPTFMT_GGML_F32, 2, ne), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_begin(w, p), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_set_string(w, "late", "v"), CKPTFMT_EINVAL);
    assert_msg_has("already written");
    float v[3] = {1, 2, 3};
    assert_int_equal(ckptfmt_gguf_writer_write(w, v, sizeof v), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_writer_finish(w, 0), CKPTFMT_EINVAL);
    assert_msg_has("tensor 'z' has 12 of its 32 bytes");
    ckptfmt_gguf_writer_free(w); /* unfinished: removed */
    assert_int_equal(access(p, F_OK), -1);
}

/* A valid base for the malformed cases: 2 KVs (alignment, a string), 2 F32 tensors [8]. */
static void base_file(bb *b)
{
    uint64_t ne[1] = {8};
    bb_head(b, 3, 2, 2);
    bb_kv_u32(b, "general.alignment", 32);
    bb_str(b, "name");
    bb_le(b, CKPTFMT_GGUF_STRING, 4);
    bb_str(b, "m");
    bb_tensor(b, "a", 1, ne, CKPTFMT_GGML_F32, 0);
    bb_tensor(b, "b", 1, ne, CKPTFMT_GGML_F32, 32);
    bb_pad(b, 32);
    for (int k = 0; k < 64; k++)
        bb_le(b, (uint64_t)k, 1);
}

static void expect(const bb *b, int status, const char *msg)
{
    ckptfmt_gguf_file *f = (ckptfmt_gguf_file *)0x1;
    int s = ckptfmt_gguf_open_memory(b->b, b->n, "m.gguf", &f);
    if (s != status)
        fail_msg("status %s, expected %s (%s)", ckptfmt_status_name(s), ckptfmt_status_name(status), ckptfmt_errmsg());
    if (s == CKPTFMT_OK) {
        ckptfmt_gguf_close(f);
        return;
    }
    assert_null(f);
    assert_msg_has("m.gguf");
    assert_msg_has(msg);
}

static void test_malformed(void **state)
{
    (void)state;
    bb b;
    base_file(&b);
    expect(&b, CKPTFMT_OK, "");
    const bb base = b;
    uint64_t ne8[1] = {8};

    b.n = 10;
    expect(&b, CKPTFMT_EMALFORMED, "shorter than the 24-byte GGUF header");
    b = base;
    b.b[0] = 'X';
    expect(&b, CKPTFMT_EMALFORMED, "bad magic");
    b = base;
    b.b[4] = 1;
    expect(&b, CKPTFMT_EUNSUPPORTED, "GGUF version 1");
    b = base; /* version 2 has the same layout */
    b.b[4] = 2;
    expect(&b, CKPTFMT_OK, "");
    /* counts that cannot fit */
    bb_head(&b, 3, 2, 1000000);
    expect(&b, CKPTFMT_EMALFORMED, "kv_count 1000000 cannot fit");
    bb_head(&b, 3, UINT64_MAX, 0);
    expect(&b, CKPTFMT_EUNSUPPORTED, "tensor_count 18446744073709551615");
    /* truncated anywhere: a clear error, never a read past the end */
    for (size_t cut = 24; cut < base.n - 64; cut++) {
        b = base;
        b.n = cut;
        ckptfmt_gguf_file *f;
        assert_int_equal(ckptfmt_gguf_open_memory(b.b, b.n, "m.gguf", &f), CKPTFMT_EMALFORMED);
    }
    b = base;
    b.n -= 1;
    expect(&b, CKPTFMT_EMALFORMED, "tensor 'b': data [32, +32) reach past the end");

    bb_head(&b, 3, 0, 1);
    bb_str(&b, "");
    bb_le(&b, CKPTFMT_GGUF_UINT32, 4);
    bb_le(&b, 0, 8);
    expect(&b, CKPTFMT_EMALFORMED, "key length 0");
    bb_head(&b, 3, 0, 1);
    bb_str(&b, "k\x7f");
    bb_le(&b, CKPTFMT_GGUF_UINT8, 4);
    bb_le(&b, 1, 1);
    expect(&b, CKPTFMT_EMALFORMED, "byte 0x7f is not printable ASCII");
    bb_head(&b, 3, 0, 2);
    bb_kv_u32(&b, "k", 1);
    bb_kv_u32(&b, "k", 2);
    expect(&b, CKPTFMT_EMALFORMED, "key 'k' appears twice");
    bb_head(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_le(&b, 13, 4);
    bb_le(&b, 0, 8);
    expect(&b, CKPTFMT_EMALFORMED, "key 'k': unknown value type 13");
    bb_head(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_le(&b, CKPTFMT_GGUF_ARRAY, 4);
    bb_le(&b, CKPTFMT_GGUF_ARRAY, 4);
    bb_le(&b, 0, 8);
    expect(&b, CKPTFMT_EUNSUPPORTED, "key 'k': nested arrays");
    bb_head(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_le(&b, CKPTFMT_GGUF_ARRAY, 4);
    bb_le(&b, 20, 4);
    bb_le(&b, 0, 8);
    expect(&b, CKPTFMT_EMALFORMED, "key 'k': unknown array element type 20");
    bb_head(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_le(&b, CKPTFMT_GGUF_ARRAY, 4);
    bb_le(&b, CKPTFMT_GGUF_UINT64, 4);
    bb_le(&b, UINT64_MAX / 4, 8);
    expect(&b, CKPTFMT_EMALFORMED, "elements of UINT64 reach past the end");
    bb_head(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_le(&b, CKPTFMT_GGUF_ARRAY, 4);
    bb_le(&b, CKPTFMT_GGUF_STRING, 4);
    bb_le(&b, 1000, 8);
    expect(&b, CKPTFMT_EMALFORMED, "1000 strings cannot fit");
    bb_head(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_le(&b, CKPTFMT_GGUF_ARRAY, 4);
    bb_le(&b, CKPTFMT_GGUF_BOOL, 4);
    bb_le(&b, 2, 8);
    bb_le(&b, 1, 1);
    bb_le(&b, 7, 1);
    expect(&b, CKPTFMT_EMALFORMED, "BOOL element 1 is 7");
    bb_head(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_le(&b, CKPTFMT_GGUF_BOOL, 4);
    bb_le(&b, 2, 1);
    expect(&b, CKPTFMT_EMALFORMED, "a BOOL is 0 or 1");
    bb_head(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_le(&b, CKPTFMT_GGUF_STRING, 4);
    bb_le(&b, 1u << 30, 8);
    expect(&b, CKPTFMT_EMALFORMED, "length 1073741824 reaches past the end");
    bb_head(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_le(&b, CKPTFMT_GGUF_STRING, 4);
    bb_str(&b, "\xED\xA0\x80"); /* a surrogate */
    expect(&b, CKPTFMT_EMALFORMED, "not valid UTF-8");
    bb_head(&b, 3, 0, 1);
    bb_str(&b, "general.alignment");
    bb_le(&b, CKPTFMT_GGUF_UINT64, 4);
    bb_le(&b, 32, 8);
    expect(&b, CKPTFMT_EMALFORMED, "general.alignment is UINT64, not UINT32");
    bb_head(&b, 3, 0, 1);
    bb_kv_u32(&b, "general.alignment", 24);
    expect(&b, CKPTFMT_EMALFORMED, "general.alignment 24 is not a power of two");

    /* tensor infos */
    struct {
        const char *name;
        int n_dims;
        uint64_t ne[5];
        uint32_t type;
        uint64_t off;
        int status;
        const char *msg;
    } tc[] = {
        {"", 1, {8}, 0, 0, CKPTFMT_EMALFORMED, "name length 0"},
        {"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", 1, {8}, 0, 0, CKPTFMT_EMALFORMED,
         "name length 65"},
        {"t", 0, {8}, 0, 0, CKPTFMT_EMALFORMED, "n_dims 0"},
        {"t", 5, {8, 1, 1, 1, 1}, 0, 0, CKPTFMT_EMALFORMED, "n_dims 5"},
        {"t", 2, {8, 0}, 0, 0, CKPTFMT_EMALFORMED, "ne[1] = 0"},
        {"t", 2, {1ull << 40, 1ull << 40}, 0, 0, CKPTFMT_EMALFORMED, "ne[1] = 1099511627776"},
        {"t", 1, {8}, 4, 0, CKPTFMT_EMALFORMED, "unknown ggml type 4"},
        {"t", 1, {8}, 99, 0, CKPTFMT_EMALFORMED, "unknown ggml type 99"},
        {"t", 1, {8}, CKPTFMT_GGML_Q8_0, 0, CKPTFMT_EMALFORMED, "ne[0] = 8 is not a multiple of the Q8_0 block"},
        {"t", 1, {8}, 0, 16, CKPTFMT_EMALFORMED, "offset 16 at byte"},
        {"t", 1, {8}, 0, 1ull << 62, CKPTFMT_EMALFORMED, "reach past the end"},
        {"t", 2, {1ull << 31, 1ull << 31}, CKPTFMT_GGML_F64, 0, CKPTFMT_EMALFORMED, "elements of F64 overflow 64 bits"},
        {"t", 2, {1ull << 31, 1ull << 20}, CKPTFMT_GGML_F32, 0, CKPTFMT_EMALFORMED, "data [0, +9007199254740992) reach"},
        {"t", 1, {8}, 0, 0, CKPTFMT_OK, ""},
    };
    for (size_t k = 0; k < sizeof tc / sizeof tc[0]; k++) {
        bb_head(&b, 3, 1, 0);
        bb_tensor(&b, tc[k].name, tc[k].n_dims, tc[k].ne, tc[k].type, tc[k].off);
        bb_pad(&b, 32);
        for (int j = 0; j < 32; j++)
            bb_le(&b, 0, 1);
        expect(&b, tc[k].status, tc[k].msg);
    }
    /* duplicate names, overlap, data start past the end */
    bb_head(&b, 3, 2, 0);
    bb_tensor(&b, "t", 1, ne8, 0, 0);
    bb_tensor(&b, "t", 1, ne8, 0, 32);
    bb_pad(&b, 32);
    for (int j = 0; j < 64; j++)
        bb_le(&b, 0, 1);
    expect(&b, CKPTFMT_EMALFORMED, "tensor 't' appears twice");
    uint64_t ne16[1] = {16};
    bb_head(&b, 3, 2, 0);
    bb_tensor(&b, "t", 1, ne16, 0, 32);
    bb_tensor(&b, "u", 1, ne8, 0, 64);
    bb_pad(&b, 32);
    for (int j = 0; j < 128; j++)
        bb_le(&b, 0, 1);
    expect(&b, CKPTFMT_EMALFORMED, "tensors 't' [32, +64) and 'u' [64, ...) overlap");
    bb_head(&b, 3, 1, 0);
    bb_tensor(&b, "t", 1, ne8, 0, 0);
    expect(&b, CKPTFMT_EMALFORMED, "starts past the end of the file");
    /* files that do not exist or are not regular */
    ckptfmt_gguf_file *f;
    char p[4096];
    path_in(p, sizeof p, "absent.gguf");
    assert_int_equal(ckptfmt_gguf_open(p, &f), CKPTFMT_ENOTFOUND);
    assert_int_equal(ckptfmt_gguf_open(scratch, &f), CKPTFMT_EIO);
    assert_msg_has("not a regular file");
    path_in(p, sizeof p, "empty.gguf");
    fclose(fopen(p, "wb"));
    assert_int_equal(ckptfmt_gguf_open(p, &f), CKPTFMT_EMALFORMED);
    assert_msg_has("0 bytes, shorter than");
}

/* -- export: a shard-train-shaped checkpoint written by the library's offline writer */

#define L 2
#define C 32
#define T 16
#define V 256

static float value_of(int tensor, int64_t i) { return (float)sin(0.37 * (double)i + tensor) * (0.05f + 0.01f * tensor); }

/* The checkpoint shard-train would write with 3 ranks (Shard(0), file-per-rank): every tensor of
 * the map for a vocabulary of `vocab`, except `skip`; the attribute config/max_seq says max_seq. */
static void make_ckpt(const char *path, int vocab, int max_seq, const char *skip)
{
    ckptfmt_gpt2_config cfg = {L, 2, C, T, vocab, CKPTFMT_GPT2_LN_EPS, 0, 0};
    ckpt_writer *w;
    assert_int_equal(ckpt_writer_open(path, 3, NULL, &w), CKPT_OK);
    int n = ckptfmt_gpt2_num_tensors(&cfg);
    for (int i = 0; i < n; i++) {
        ckptfmt_gpt2_tensor t;
        assert_int_equal(ckptfmt_gpt2_tensor_info(&cfg, i, &t), CKPTFMT_OK);
        if (skip && !strcmp(skip, t.name[CKPTFMT_NAMES_TRAINER]))
            continue;
        assert_int_equal(ckpt_writer_add_tensor(w, t.name[CKPTFMT_NAMES_TRAINER], CKPT_F32, t.ndim, t.shape), CKPT_OK);
        for (int r = 0; r < 3; r++) {
            int64_t off[2], ext[2];
            assert_int_equal(ckpt_shard_box(t.ndim, t.shape, 0, r, 3, off, ext), CKPT_OK);
            if (ext[0] > 0)
                assert_int_equal(ckpt_writer_add_box(w, t.name[CKPTFMT_NAMES_TRAINER], off, ext, r), CKPT_OK);
        }
    }
    ckpt_state *a;
    assert_int_equal(ckpt_state_create(&a), CKPT_OK);
    ckpt_state_set_int(a, "config/n_layer", L);
    ckpt_state_set_int(a, "config/n_head", 2);
    ckpt_state_set_int(a, "config/n_embd", C);
    ckpt_state_set_int(a, "config/max_seq", max_seq);
    ckpt_state_set_int(a, "config/vocab", vocab);
    ckpt_state_set_int(a, "step", 123);
    assert_int_equal(ckpt_writer_set_attrs(w, a), CKPT_OK);
    ckpt_state_free(a);
    for (int i = 0; i < n; i++) {
        ckptfmt_gpt2_tensor t;
        ckptfmt_gpt2_tensor_info(&cfg, i, &t);
        const char *name = t.name[CKPTFMT_NAMES_TRAINER];
        if (skip && !strcmp(skip, name))
            continue;
        int64_t nb, cols = t.ndim == 2 ? t.shape[1] : 1;
        assert_int_equal(ckpt_writer_num_boxes(w, name, &nb), CKPT_OK);
        for (int64_t j = 0; j < nb; j++) {
            int64_t np, off[2], ext[2];
            assert_int_equal(ckpt_writer_box_piece(w, name, j, -1, off, ext, &np), CKPT_OK);
            for (int64_t k = 0; k < np; k++) {
                assert_int_equal(ckpt_writer_box_piece(w, name, j, k, off, ext, &np), CKPT_OK);
                int64_t r0 = off[0], rows = ext[0], c0 = t.ndim == 2 ? off[1] : 0, cw = t.ndim == 2 ? ext[1] : 1;
                float *buf = malloc(sizeof(float) * (size_t)(rows * cw));
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t c = 0; c < cw; c++)
                        buf[r * cw + c] = value_of(i, (r0 + r) * cols + c0 + c);
                assert_int_equal(ckpt_writer_write(w, name, off, ext, buf), CKPT_OK);
                free(buf);
            }
        }
    }
    assert_int_equal(ckpt_writer_commit(w), CKPT_OK);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void kv_u32(const ckptfmt_gguf_file *f, const char *key, uint64_t want)
{
    int i;
    ckptfmt_gguf_value v;
    if (ckptfmt_gguf_find_key(f, key, &i) != CKPTFMT_OK)
        fail_msg("no key %s", key);
    assert_int_equal(ckptfmt_gguf_kv_scalar(f, i, &v), CKPTFMT_OK);
    assert_int_equal(v.type, CKPTFMT_GGUF_UINT32);
    assert_int_equal(v.u, want);
}

static void kv_str(const ckptfmt_gguf_file *f, const char *key, const char *want)
{
    int i;
    const char *s;
    uint64_t len;
    if (ckptfmt_gguf_find_key(f, key, &i) != CKPTFMT_OK)
        fail_msg("no key %s", key);
    assert_int_equal(ckptfmt_gguf_kv_string(f, i, &s, &len), CKPTFMT_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(s, want, len);
}

static void check_export(const char *path, const char *ckpt, ckptfmt_ggml_type type)
{
    ckptfmt_gguf_file *f;
    assert_int_equal(ckptfmt_gguf_open(path, &f), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_version(f), 3);
    assert_int_equal(ckptfmt_gguf_alignment(f), 32);
    kv_str(f, "general.architecture", "gpt2");
    kv_str(f, "general.name", "shard-train GPT-2 step 123");
    kv_u32(f, "general.file_type", type == CKPTFMT_GGML_F32 ? 0 : type == CKPTFMT_GGML_F16 ? 1 : 7);
    kv_u32(f, "general.quantization_version", 2);
    kv_u32(f, "gpt2.context_length", T);
    kv_u32(f, "gpt2.embedding_length", C);
    kv_u32(f, "gpt2.block_count", L);
    kv_u32(f, "gpt2.feed_forward_length", 4 * C);
    kv_u32(f, "gpt2.attention.head_count", 2);
    kv_str(f, "tokenizer.ggml.model", "gpt2");
    kv_str(f, "tokenizer.ggml.pre", "gpt-2");
    kv_u32(f, "tokenizer.ggml.bos_token_id", 0);
    kv_u32(f, "tokenizer.ggml.eos_token_id", 0);
    kv_str(f, "ckpt.source", ckpt);
    int i;
    ckptfmt_gguf_value v;
    ckptfmt_gguf_kv kv;
    assert_int_equal(ckptfmt_gguf_find_key(f, "gpt2.attention.layer_norm_epsilon", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_scalar(f, i, &v), CKPTFMT_OK);
    assert_int_equal(v.type, CKPTFMT_GGUF_FLOAT32);
    assert_true(v.f == (double)1e-5f);
    assert_int_equal(ckptfmt_gguf_find_key(f, "tokenizer.ggml.add_bos_token", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_scalar(f, i, &v), CKPTFMT_OK);
    assert_int_equal(v.type, CKPTFMT_GGUF_BOOL);
    assert_int_equal(v.b, 0);
    assert_int_equal(ckptfmt_gguf_find_key(f, "ckpt.step", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_scalar(f, i, &v), CKPTFMT_OK);
    assert_int_equal(v.i, 123);
    assert_int_equal(ckptfmt_gguf_find_key(f, "tokenizer.ggml.tokens", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_info(f, i, &kv), CKPTFMT_OK);
    assert_int_equal(kv.array_type, CKPTFMT_GGUF_STRING);
    assert_int_equal(kv.array_len, 256);
    for (int b = 0; b < 256; b++) {
        const char *s;
        uint64_t len;
        assert_int_equal(ckptfmt_gguf_kv_array_string(f, i, (uint64_t)b, &s, &len), CKPTFMT_OK);
        assert_int_equal(len, strlen(ckptfmt_gguf_byte_token(b)));
        assert_memory_equal(s, ckptfmt_gguf_byte_token(b), len);
    }
    assert_int_equal(ckptfmt_gguf_find_key(f, "tokenizer.ggml.token_type", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_info(f, i, &kv), CKPTFMT_OK);
    assert_int_equal(kv.array_type, CKPTFMT_GGUF_INT32);
    assert_int_equal(kv.array_len, 256);
    for (int b = 0; b < 256; b++) {
        assert_int_equal(ckptfmt_gguf_kv_array_scalar(f, i, (uint64_t)b, &v), CKPTFMT_OK);
        assert_int_equal(v.i, 1);
    }
    assert_int_equal(ckptfmt_gguf_find_key(f, "tokenizer.ggml.merges", &i), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gguf_kv_info(f, i, &kv), CKPTFMT_OK);
    assert_int_equal(kv.array_type, CKPTFMT_GGUF_STRING);
    assert_int_equal(kv.array_len, 0);
    assert_int_equal(ckptfmt_gguf_num_kv(f), 22);

    /* tensors: the map's + output.weight, GGUF names, ggml dims, types, data */
    ckptfmt_gpt2_config cfg = {L, 2, C, T, V, CKPTFMT_GPT2_LN_EPS, 0, 0};
    int n = ckptfmt_gpt2_num_tensors(&cfg);
    assert_int_equal(ckptfmt_gguf_num_tensors(f), n + 1);
    float *src = malloc(sizeof(float) * V * C), *dec = malloc(sizeof(float) * V * C);
    unsigned char *enc = malloc(sizeof(float) * V * C);
    for (int m = 0; m <= n; m++) {
        ckptfmt_gpt2_tensor t;
        ckptfmt_gpt2_tensor_info(&cfg, m == n ? 0 : m, &t);
        const char *name = m == n ? "output.weight" : t.name[CKPTFMT_NAMES_GGUF];
        ckptfmt_gguf_tensor g;
        if (ckptfmt_gguf_find_tensor(f, name, &i) != CKPTFMT_OK)
            fail_msg("no tensor %s", name);
        assert_int_equal(ckptfmt_gguf_tensor_info(f, i, &g), CKPTFMT_OK);
        assert_int_equal(g.n_dims, t.ndim);
        assert_int_equal(g.ne[0], t.shape[t.ndim - 1]);
        assert_int_equal(g.ne[1], t.ndim == 2 ? (uint64_t)t.shape[0] : 1);
        ckptfmt_ggml_type want = t.ndim == 1 || !strcmp(name, "position_embd.weight") ? CKPTFMT_GGML_F32 : type;
        assert_int_equal(g.type, want);
        uint64_t numel = g.ne[0] * g.ne[1], nb;
        for (uint64_t e = 0; e < numel; e++)
            src[e] = value_of(m == n ? 0 : m, (int64_t)e);
        assert_int_equal(ckptfmt_ggml_encode(want, src, numel, enc), CKPTFMT_OK);
        assert_int_equal(ckptfmt_ggml_nbytes(want, numel, &nb), CKPTFMT_OK);
        assert_int_equal(g.nbytes, nb);
        assert_memory_equal(ckptfmt_gguf_tensor_data(f, i), enc, nb);
        if (want == CKPTFMT_GGML_F32) /* the checkpoint's bytes themselves */
            assert_memory_equal(ckptfmt_gguf_tensor_data(f, i), src, numel * 4);
        assert_int_equal(ckptfmt_ggml_decode(want, ckptfmt_gguf_tensor_data(f, i), numel, dec), CKPTFMT_OK);
        /* within the format's error bound for values of amplitude a (value_of) */
        double a = 0.05 + 0.01 * (m == n ? 0 : m);
        double bound = want == CKPTFMT_GGML_Q8_0 ? (0.5 + 127.0 / 2048) * a / 127 * (1 + 1e-6)
                       : want == CKPTFMT_GGML_F16 ? fmax(a * 0x1p-11, 0x1p-24) : 0;
        for (uint64_t e = 0; e < numel; e++)
            assert_true(fabs((double)dec[e] - src[e]) <= bound);
    }
    free(src);
    free(dec);
    free(enc);
    ckptfmt_gguf_close(f);
}

static void test_export(void **state)
{
    (void)state;
    char ck[4096], out[4096], dir[2200];
    snprintf(dir, sizeof dir, "%s/export", scratch);
    mkdir(dir, 0755);
    snprintf(ck, sizeof ck, "%s/ckpt", scratch);
    if (access(ck, F_OK) != 0)
        make_ckpt(ck, V, T, NULL);
    const ckptfmt_ggml_type types[3] = {CKPTFMT_GGML_F32, CKPTFMT_GGML_F16, CKPTFMT_GGML_Q8_0};
    for (int k = 0; k < 3; k++) {
        snprintf(out, sizeof out, "%s/m%d.gguf", dir, k);
        unlink(out);
        ckptfmt_gguf_options o;
        ckptfmt_gguf_options_init(&o);
        o.type = types[k];
        o.buffer_bytes = 1000; /* many buffer refills inside a tensor */
        ckptfmt_gguf_result res;
        assert_int_equal(ckptfmt_export_gguf(ck, out, &o, &res), CKPTFMT_OK);
        assert_int_equal(res.tensors, 4 + 12 * L + 1);
        assert_int_equal(res.n_type[0], k == 0 ? 29 : 19);
        assert_int_equal(res.step, 123);
        struct stat st;
        assert_int_equal(stat(out, &st), 0);
        assert_int_equal(st.st_size, res.file_bytes);
        check_export(out, ck, types[k]);
    }
    assert_int_equal(count_entries(dir), 3); /* no temporary left */

    /* errors: nothing written, nothing left */
    ckptfmt_gguf_options o;
    ckptfmt_gguf_options_init(&o);
    snprintf(out, sizeof out, "%s/m0.gguf", dir);
    assert_int_equal(ckptfmt_export_gguf(ck, out, &o, NULL), CKPTFMT_EEXIST);
    assert_msg_has("already exists");
    o.type = CKPTFMT_GGML_Q4_0;
    snprintf(out, sizeof out, "%s/x.gguf", dir);
    assert_int_equal(ckptfmt_export_gguf(ck, out, &o, NULL), CKPTFMT_EINVAL);
    o.type = CKPTFMT_GGML_F32;
    o.version = 99;
    assert_int_equal(ckptfmt_export_gguf(ck, out, &o, NULL), CKPTFMT_EINVAL);
    assert_int_equal(ckptfmt_export_gguf(dir, out, NULL, NULL), CKPTFMT_ENOTFOUND);
    char ck2[4096];
    snprintf(ck2, sizeof ck2, "%s/ckpt-nolnf", scratch);
    if (access(ck2, F_OK) != 0)
        make_ckpt(ck2, V, T, "model/lnf.b");
    assert_int_equal(ckptfmt_export_gguf(ck2, out, NULL, NULL), CKPTFMT_EMALFORMED);
    assert_msg_has("has no tensor 'model/lnf.b'");
    snprintf(ck2, sizeof ck2, "%s/ckpt-v300", scratch);
    if (access(ck2, F_OK) != 0)
        make_ckpt(ck2, 300, T, NULL);
    assert_int_equal(ckptfmt_export_gguf(ck2, out, NULL, NULL), CKPTFMT_EUNSUPPORTED);
    assert_msg_has("vocabulary of 300 tokens");
    snprintf(ck2, sizeof ck2, "%s/ckpt-t20", scratch);
    if (access(ck2, F_OK) != 0)
        make_ckpt(ck2, V, 20, NULL);
    assert_int_equal(ckptfmt_export_gguf(ck2, out, NULL, NULL), CKPTFMT_EMALFORMED);
    assert_msg_has("tensor 'model/wpe' does not have the shape its config/ attributes give");
    assert_int_equal(count_entries(dir), 3);
}

/* An empty directory `sub` of the scratch for an export to m.gguf in it, of the shared test
 * checkpoint (made on first use). */
static void export_paths(const char *sub, char ck[4096], char out[4096], char dir[2200])
{
    snprintf(dir, 2200, "%s/%s", scratch, sub);
    mkdir(dir, 0755);
    snprintf(ck, 4096, "%s/ckpt", scratch);
    if (access(ck, F_OK) != 0)
        make_ckpt(ck, V, T, NULL);
    snprintf(out, 4096, "%s/m.gguf", dir);
    unlink(out);
}

static int stop_at_third(void *user, int64_t done, int64_t total, const char *tensor)
{
    (void)tensor;
    int *calls = user;
    assert_true(done > 0 && done <= total);
    return ++*calls == 3;
}

static void test_export_interrupt(void **state)
{
    (void)state;
    char ck[4096], out[4096], dir[2200];
    export_paths("export-int", ck, out, dir);
    ckptfmt_gguf_options o;
    ckptfmt_gguf_options_init(&o);
    int calls = 0;
    o.progress = stop_at_third;
    o.progress_user = &calls;
    assert_int_equal(ckptfmt_export_gguf(ck, out, &o, NULL), CKPTFMT_EINTERRUPTED);
    assert_int_equal(calls, 3);
    assert_int_equal(count_entries(dir), 0);
}

/* A write that fails in the writer thread (the file-size limit, as a full disk would) is the
 * export's error, naming the file, with nothing left behind. */
static void test_export_write_failure(void **state)
{
    (void)state;
    char ck[4096], out[4096], dir[2200];
    export_paths("export-full", ck, out, dir);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 << 10; /* past the header, inside the tensors */
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ckptfmt_gguf_options o;
    ckptfmt_gguf_options_init(&o);
    o.buffer_bytes = 4096; /* many chunks through the queue */
    int s = ckptfmt_export_gguf(ck, out, &o, NULL);
    char msg[4096];
    snprintf(msg, sizeof msg, "%s", ckptfmt_errmsg());
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, was);
    assert_int_equal(s, CKPTFMT_EIO);
    if (!strstr(msg, "/model.gguf: write: File too large") || !strstr(msg, dir))
        fail_msg("message '%s'", msg);
    assert_int_equal(count_entries(dir), 0);
}

int main(int argc, char **argv)
{
    snprintf(scratch, sizeof scratch, "%s", argc > 1 ? argv[1] : "/tmp/convert-gguf");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        return 1;
    mkdir(scratch, 0755);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_bytes), cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_f16_bf16),     cmocka_unit_test(test_types),
        cmocka_unit_test(test_byte_tokens),  cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_writer_errors), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_export),       cmocka_unit_test(test_export_interrupt),
        cmocka_unit_test(test_export_write_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
