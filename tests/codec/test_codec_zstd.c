/*
 * test_codec_zstd.c -- the zstd HDF5 filter (codec_zstd.c): levels, dcpl setup, byte shuffle,
 * HDF5 round trips, self-compressed chunks written with H5Dwrite_chunk, and corrupt input.
 *
 * Also a helper for test_plugin_h5py.py (no CMocka):
 *   test_codec_zstd --write-fixture FILE      writes the datasets the Python test knows
 *   test_codec_zstd --verify-h5py-file FILE   checks the datasets h5py wrote through the plugin
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>
#include <zstd.h>

#include "codec_zstd.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void tmp_path(char *out, size_t cap, const char *tag)
{
    const char *dir = getenv("CKPT_TEST_TMP");
    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    snprintf(out, cap, "%s/codec_zstd_%ld_%s.h5", dir, (long)getpid(), tag);
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Weight-like f32 data: roughly N(0, 0.02) (sum of 4 uniforms, rescaled). */
static void fill_weights_f32(float *v, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        double acc = 0;
        for (int k = 0; k < 4; k++)
            acc += (double)(rng_next(&s) >> 11) * (1.0 / 9007199254740992.0) - 0.5;
        v[i] = (float)(acc * 0.02 * 1.7320508);
    }
}

/* bf16 bits of f32 values, round to nearest even. */
static void f32_to_bf16(uint16_t *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &in[i], 4);
        u += 0x7FFFu + ((u >> 16) & 1u);
        out[i] = (uint16_t)(u >> 16);
    }
}

/* The fixture values the Python test recomputes with numpy (exact in float32 / uint16). */
static float fixture_f32(size_t i)
{
    return (float)((long)((i * 7919u) % 8191u) - 4095) * 0.015625f;
}
static uint16_t fixture_u16(size_t i)
{
    return (uint16_t)(((uint64_t)i * 40503u) ^ ((uint64_t)i >> 3));
}

/* Creates file `path` (truncating) with one chunked dataset `name`. Returns 0 or -1. */
static int write_dataset(const char *path, const char *name, hid_t type, int rank, const hsize_t *dims,
                         const hsize_t *chunk, int level, int shuffle, const void *data)
{
    int rc = -1;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (f < 0 || sp < 0 || dcpl < 0)
        goto out;
    if (H5Pset_chunk(dcpl, rank, chunk) < 0 || ckpt_codec_set_dcpl(dcpl, level, shuffle) != 0)
        goto out;
    hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0)
        goto out;
    if (H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0)
        rc = 0;
    H5Dclose(d);
out:
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (sp >= 0)
        H5Sclose(sp);
    if (f >= 0 && H5Fclose(f) < 0)
        rc = -1;
    return rc;
}

/* Reads dataset `name` of `path` into buf (nbytes). Returns H5Dread's status (or -1). Prints no
 * HDF5 error stack when quiet. */
static herr_t read_dataset(const char *path, const char *name, hid_t type, void *buf, int quiet)
{
    herr_t st = -1;
    H5E_auto2_t fn = NULL;
    void *fd = NULL;
    if (quiet) {
        H5Eget_auto2(H5E_DEFAULT, &fn, &fd);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
        hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
        if (d >= 0) {
            st = H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
            H5Dclose(d);
        }
        H5Fclose(f);
    }
    if (quiet)
        H5Eset_auto2(H5E_DEFAULT, fn, fd);
    return st;
}

/* Full (padded) chunk `ci` of a 2-D row-major array into out (zeros outside the array). */
static void extract_chunk_2d(void *out, const void *data, size_t esz, const hsize_t *dims,
                             const hsize_t *chunk, const hsize_t *origin)
{
    unsigned char *o = out;
    const unsigned char *d = data;
    memset(o, 0, (size_t)(chunk[0] * chunk[1]) * esz);
    for (hsize_t r = 0; r < chunk[0] && origin[0] + r < dims[0]; r++) {
        hsize_t cols = chunk[1];
        if (origin[1] + cols > dims[1])
            cols = dims[1] - origin[1];
        memcpy(o + (size_t)(r * chunk[1]) * esz, d + (size_t)((origin[0] + r) * dims[1] + origin[1]) * esz,
               (size_t)cols * esz);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Levels, registration, dcpl                                                                   */
/* ------------------------------------------------------------------------------------------ */

static void test_levels(void **state)
{
    (void)state;
    assert_true(ckpt_codec_zstd_level_valid(0));
    assert_true(ckpt_codec_zstd_level_valid(1));
    assert_true(ckpt_codec_zstd_level_valid(3));
    assert_true(ckpt_codec_zstd_level_valid(-1));
    assert_true(ckpt_codec_zstd_level_valid(-5));
    assert_true(ckpt_codec_zstd_level_valid(ZSTD_maxCLevel()));
    assert_true(ckpt_codec_zstd_level_valid(ZSTD_minCLevel()));
    assert_false(ckpt_codec_zstd_level_valid(ZSTD_maxCLevel() + 1));
    assert_false(ckpt_codec_zstd_level_valid(ZSTD_minCLevel() - 1));
    assert_false(ckpt_codec_zstd_level_valid(INT_MAX));
    assert_false(ckpt_codec_zstd_level_valid(INT_MIN));

    const int lv[] = { 0, 1, 3, 22, -1, -5, -131072, INT_MAX, INT_MIN };
    for (size_t i = 0; i < sizeof lv / sizeof lv[0]; i++) {
        unsigned int cd = ckpt_codec_zstd_level_to_cd(lv[i]);
        assert_int_equal(ckpt_codec_zstd_level_from_cd(1, &cd), lv[i]);
    }
    assert_int_equal(ckpt_codec_zstd_level_to_cd(-1), 0xFFFFFFFFu);
    assert_int_equal(ckpt_codec_zstd_level_to_cd(-5), 0xFFFFFFFBu);
    assert_int_equal(ckpt_codec_zstd_level_from_cd(0, NULL), 3);
}

static void *register_thread(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)ckpt_codec_zstd_register();
}

static void test_register(void **state)
{
    (void)state;
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, register_thread, NULL), 0);
    for (int i = 0; i < 8; i++) {
        void *r = NULL;
        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_int_equal((int)(intptr_t)r, 0);
    }
    assert_int_equal(ckpt_codec_zstd_register(), 0);
    assert_true(H5Zfilter_avail(CKPT_FILTER_ZSTD) > 0);
    unsigned int cfg = 0;
    assert_true(H5Zget_filter_info(CKPT_FILTER_ZSTD, &cfg) >= 0);
    assert_true(cfg & H5Z_FILTER_CONFIG_ENCODE_ENABLED);
    assert_true(cfg & H5Z_FILTER_CONFIG_DECODE_ENABLED);
}

static void test_set_dcpl(void **state)
{
    (void)state;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(dcpl >= 0);
    /* Invalid levels are rejected and add nothing (not even the shuffle). */
    assert_int_equal(ckpt_codec_set_dcpl(dcpl, ZSTD_maxCLevel() + 1, 1), -1);
    assert_int_equal(ckpt_codec_set_dcpl(dcpl, ZSTD_minCLevel() - 1, 1), -1);
    assert_int_equal(ckpt_codec_set_dcpl(dcpl, INT_MIN, 0), -1);
    assert_int_equal(H5Pget_nfilters(dcpl), 0);
    /* Not a dataset creation list. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    assert_int_equal(ckpt_codec_set_dcpl(fapl, 3, 1), -1);
    assert_int_equal(ckpt_codec_set_dcpl(H5I_INVALID_HID, 3, 1), -1);
    H5Pclose(fapl);

    assert_int_equal(ckpt_codec_set_dcpl(dcpl, -7, 1), 0);
    assert_int_equal(H5Pget_nfilters(dcpl), 2);
    unsigned int flags = 0, cd[4] = { 0 };
    size_t ncd = 4;
    assert_int_equal(H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL), H5Z_FILTER_SHUFFLE);
    ncd = 4;
    assert_int_equal(H5Pget_filter2(dcpl, 1, &flags, &ncd, cd, 0, NULL, NULL), CKPT_FILTER_ZSTD);
    assert_int_equal(flags & H5Z_FLAG_OPTIONAL, 0); /* mandatory */
    assert_int_equal(ncd, 1);
    assert_int_equal(cd[0], ckpt_codec_zstd_level_to_cd(-7));
    H5Pclose(dcpl);

    /* A list that already shuffles gets no second shuffle. */
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(H5Pset_shuffle(dcpl) >= 0);
    assert_int_equal(ckpt_codec_set_dcpl(dcpl, 1, 1), 0);
    assert_int_equal(H5Pget_nfilters(dcpl), 2);
    H5Pclose(dcpl);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_int_equal(ckpt_codec_set_dcpl(dcpl, 0, 0), 0);
    assert_int_equal(H5Pget_nfilters(dcpl), 1);
    H5Pclose(dcpl);
}

/* ------------------------------------------------------------------------------------------ */
/* Shuffle                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void test_shuffle_layout(void **state)
{
    (void)state;
    unsigned char src[11], dst[11], back[11];
    for (int i = 0; i < 11; i++)
        src[i] = (unsigned char)i;
    /* 3 elements of 3 bytes + 2 trailing bytes left as they are. */
    const unsigned char want[11] = { 0, 3, 6, 1, 4, 7, 2, 5, 8, 9, 10 };
    ckpt_codec_shuffle(dst, src, 11, 3);
    assert_memory_equal(dst, want, 11);
    ckpt_codec_unshuffle(back, dst, 11, 3);
    assert_memory_equal(back, src, 11);
    /* Element size 2 and 4 (the fast paths) with a remainder. */
    const unsigned char want2[7] = { 0, 2, 4, 1, 3, 5, 6 };
    ckpt_codec_shuffle(dst, src, 7, 2);
    assert_memory_equal(dst, want2, 7);
    const unsigned char want4[10] = { 0, 4, 1, 5, 2, 6, 3, 7, 8, 9 };
    ckpt_codec_shuffle(dst, src, 10, 4);
    assert_memory_equal(dst, want4, 10);
    /* One element or element size 1: unchanged. */
    ckpt_codec_shuffle(dst, src, 5, 4);
    assert_memory_equal(dst, src, 5);
    ckpt_codec_shuffle(dst, src, 11, 1);
    assert_memory_equal(dst, src, 11);

    unsigned char a[300], b[300], c[300];
    uint64_t s = 1;
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = (unsigned char)rng_next(&s);
    for (size_t es = 0; es <= 17; es++)
        for (size_t n = 0; n <= sizeof a; n += 7) {
            ckpt_codec_shuffle(b, a, n, es);
            ckpt_codec_unshuffle(c, b, n, es);
            assert_memory_equal(c, a, n);
        }
}

/* Our shuffle equals HDF5's shuffle filter: the raw chunk (H5Dread_chunk) of a shuffle-only
 * dataset is ckpt_codec_shuffle of the chunk's data, for element sizes 2, 4, 8. */
static void test_shuffle_matches_hdf5(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "shuf");
    const hid_t types[3] = { H5T_NATIVE_UINT16, H5T_NATIVE_FLOAT, H5T_NATIVE_DOUBLE };
    const size_t n = 1000;
    unsigned char *data = malloc(n * 8), *raw = malloc(n * 8), *want = malloc(n * 8);
    assert_non_null(data);
    assert_non_null(raw);
    assert_non_null(want);
    uint64_t s = 7;
    for (size_t i = 0; i < n * 8; i++)
        data[i] = (unsigned char)rng_next(&s);
    for (int t = 0; t < 3; t++) {
        size_t esz = H5Tget_size(types[t]);
        hsize_t dims[1] = { n }, chunk[1] = { n };
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hid_t sp = H5Screate_simple(1, dims, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        assert_true(H5Pset_chunk(dcpl, 1, chunk) >= 0);
        assert_true(H5Pset_shuffle(dcpl) >= 0);
        hid_t d = H5Dcreate2(f, "d", types[t], sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        assert_true(d >= 0);
        /* Random bit patterns; memory and file types are the same, so no conversion touches them. */
        assert_true(H5Dwrite(d, types[t], H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
        H5Dclose(d);
        H5Pclose(dcpl);
        H5Sclose(sp);
        H5Fclose(f);

        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        d = H5Dopen2(f, "d", H5P_DEFAULT);
        hsize_t off[1] = { 0 };
        uint32_t mask = 0xFFFFFFFFu;
        hsize_t csz = 0;
        assert_true(H5Dget_chunk_storage_size(d, off, &csz) >= 0);
        assert_int_equal(csz, n * esz);
        assert_true(H5Dread_chunk(d, H5P_DEFAULT, off, &mask, raw) >= 0);
        assert_int_equal(mask, 0);
        unsigned char *mem = malloc(n * esz);
        assert_non_null(mem);
        assert_true(H5Dread(d, types[t], H5S_ALL, H5S_ALL, H5P_DEFAULT, mem) >= 0);
        assert_memory_equal(mem, data, n * esz);
        ckpt_codec_shuffle(want, mem, n * esz, esz);
        assert_memory_equal(raw, want, n * esz);
        free(mem);
        H5Dclose(d);
        H5Fclose(f);
    }
    unlink(path);
    free(data);
    free(raw);
    free(want);
}

/* ------------------------------------------------------------------------------------------ */
/* HDF5 round trips                                                                             */
/* ------------------------------------------------------------------------------------------ */

static void check_pipeline(const char *path, const char *name, int level, int shuffle)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(d);
    int nf = H5Pget_nfilters(dcpl);
    assert_int_equal(nf, shuffle ? 2 : 1);
    unsigned int flags = 0, cd[4] = { 0 };
    size_t ncd = 4;
    if (shuffle)
        assert_int_equal(H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL), H5Z_FILTER_SHUFFLE);
    ncd = 4;
    assert_int_equal(H5Pget_filter2(dcpl, (unsigned)nf - 1, &flags, &ncd, cd, 0, NULL, NULL), CKPT_FILTER_ZSTD);
    assert_int_equal(flags & H5Z_FLAG_OPTIONAL, 0);
    assert_int_equal(ncd, 1);
    assert_int_equal(ckpt_codec_zstd_level_from_cd(ncd, cd), level);
    H5Pclose(dcpl);
    H5Dclose(d);
    H5Fclose(f);
}

static void test_roundtrip_levels(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "rt");
    const hsize_t dims[2] = { 257, 300 }, chunk[2] = { 64, 50 };
    const size_t n = 257 * 300;
    float *f = malloc(n * 4), *fr = malloc(n * 4);
    uint16_t *h = malloc(n * 2), *hr = malloc(n * 2);
    assert_non_null(f);
    assert_non_null(fr);
    assert_non_null(h);
    assert_non_null(hr);
    fill_weights_f32(f, n, 42);
    f32_to_bf16(h, f, n);
    const int levels[] = { ZSTD_minCLevel(), -5, -1, 0, 1, 3, 9, 19 };
    for (size_t li = 0; li < sizeof levels / sizeof levels[0]; li++)
        for (int sh = 0; sh <= 1; sh++) {
            assert_int_equal(write_dataset(path, "w", H5T_NATIVE_FLOAT, 2, dims, chunk, levels[li], sh, f), 0);
            memset(fr, 0xAB, n * 4);
            assert_true(read_dataset(path, "w", H5T_NATIVE_FLOAT, fr, 0) >= 0);
            assert_memory_equal(fr, f, n * 4);
            check_pipeline(path, "w", levels[li], sh);

            assert_int_equal(write_dataset(path, "b", H5T_NATIVE_UINT16, 2, dims, chunk, levels[li], sh, h), 0);
            memset(hr, 0xAB, n * 2);
            assert_true(read_dataset(path, "b", H5T_NATIVE_UINT16, hr, 0) >= 0);
            assert_memory_equal(hr, h, n * 2);
            check_pipeline(path, "b", levels[li], sh);
        }
    unlink(path);
    free(f);
    free(fr);
    free(h);
    free(hr);
}

/* A dataset whose zstd filter has no cd_values compresses at level 3 and reads back. */
static void test_default_level_no_cd_values(void **state)
{
    (void)state;
    assert_int_equal(ckpt_codec_zstd_register(), 0);
    char path[512];
    tmp_path(path, sizeof path, "nocd");
    const size_t n = 20000;
    float *v = malloc(n * 4), *r = malloc(n * 4);
    assert_non_null(v);
    assert_non_null(r);
    fill_weights_f32(v, n, 3);
    hsize_t dims[1] = { n }, chunk[1] = { 4096 };
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(H5Pset_chunk(dcpl, 1, chunk) >= 0);
    assert_true(H5Pset_filter(dcpl, CKPT_FILTER_ZSTD, H5Z_FLAG_MANDATORY, 0, NULL) >= 0);
    hid_t d = H5Dcreate2(f, "d", H5T_NATIVE_FLOAT, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
    assert_true(read_dataset(path, "d", H5T_NATIVE_FLOAT, r, 0) >= 0);
    assert_memory_equal(r, v, n * 4);

    /* The stored chunk 0 is exactly compress_chunk(level 3, no shuffle). */
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    d = H5Dopen2(f, "d", H5P_DEFAULT);
    hsize_t off[1] = { 0 }, csz = 0;
    assert_true(H5Dget_chunk_storage_size(d, off, &csz) >= 0);
    unsigned char *raw = malloc(csz);
    size_t cap = ckpt_codec_zstd_chunk_bound(4096 * 4);
    unsigned char *mine = malloc(cap);
    assert_non_null(raw);
    assert_non_null(mine);
    uint32_t mask = 1;
    assert_true(H5Dread_chunk(d, H5P_DEFAULT, off, &mask, raw) >= 0);
    size_t m = ckpt_codec_zstd_compress_chunk(NULL, 3, 0, v, 4096 * 4, mine, cap);
    assert_int_equal(m, csz);
    assert_memory_equal(mine, raw, m);
    H5Dclose(d);
    H5Fclose(f);

    /* The filter called directly with no cd_values: level 3, and the frame records its size. */
    void *buf = malloc(4096 * 4);
    assert_non_null(buf);
    memcpy(buf, v, 4096 * 4);
    size_t bsz = 4096 * 4;
    size_t out = ckpt_codec_zstd_filter(0, 0, NULL, 4096 * 4, &bsz, &buf);
    assert_int_equal(out, m);
    assert_true(bsz >= out);
    assert_memory_equal(buf, mine, m);
    assert_int_equal(ZSTD_getFrameContentSize(buf, out), 4096 * 4);
    out = ckpt_codec_zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, out, &bsz, &buf);
    assert_int_equal(out, 4096 * 4);
    assert_memory_equal(buf, v, out);
    free(buf);
    free(raw);
    free(mine);
    free(v);
    free(r);
    unlink(path);
}

/* ------------------------------------------------------------------------------------------ */
/* Self-compressed chunks (compress_chunk + H5Dwrite_chunk)                                     */
/* ------------------------------------------------------------------------------------------ */

static void direct_case(const char *path, hid_t type, int level, int shuffle, int use_ctx)
{
    const hsize_t dims[2] = { 130, 70 }, chunk[2] = { 64, 32 };
    const size_t n = 130 * 70;
    const size_t esz = H5Tget_size(type);
    const size_t cbytes = (size_t)(chunk[0] * chunk[1]) * esz;
    float *wf = malloc(n * 4);
    unsigned char *data = malloc(n * esz), *back = malloc(n * esz);
    unsigned char *cin = malloc(cbytes), *craw = malloc(ckpt_codec_zstd_chunk_bound(cbytes));
    unsigned char *cbuf = malloc(ckpt_codec_zstd_chunk_bound(cbytes)), *cdec = malloc(cbytes);
    assert_true(wf && data && back && cin && craw && cbuf && cdec);
    fill_weights_f32(wf, n, 99);
    if (esz == 2)
        f32_to_bf16((uint16_t *)(void *)data, wf, n);
    else
        memcpy(data, wf, n * 4);
    ckpt_zstd_ctx *ctx = use_ctx ? ckpt_codec_zstd_ctx_new() : NULL;
    if (use_ctx)
        assert_non_null(ctx);

    /* "p": written through the HDF5 pipeline; "s": self-compressed chunks. */
    assert_int_equal(write_dataset(path, "p", type, 2, dims, chunk, level, shuffle, data), 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(H5Pset_chunk(dcpl, 2, chunk) >= 0);
    assert_int_equal(ckpt_codec_set_dcpl(dcpl, level, shuffle), 0);
    hid_t d = H5Dcreate2(f, "s", type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    size_t cap = ckpt_codec_zstd_chunk_bound(cbytes);
    for (hsize_t r0 = 0; r0 < dims[0]; r0 += chunk[0])
        for (hsize_t c0 = 0; c0 < dims[1]; c0 += chunk[1]) {
            hsize_t org[2] = { r0, c0 };
            extract_chunk_2d(cin, data, esz, dims, chunk, org);
            size_t m = ckpt_codec_zstd_compress_chunk(ctx, level, shuffle ? esz : 0, cin, cbytes, cbuf, cap);
            assert_true(m > 0);
            assert_true(H5Dwrite_chunk(d, H5P_DEFAULT, 0, org, m, cbuf) >= 0);
        }
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);

    /* Through the normal read pipeline: bit-exact. */
    memset(back, 0xCD, n * esz);
    assert_true(read_dataset(path, "s", type, back, 0) >= 0);
    assert_memory_equal(back, data, n * esz);

    /* Chunk for chunk identical bytes to what the pipeline stored; decompress_chunk inverts. */
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dp = H5Dopen2(f, "p", H5P_DEFAULT), ds = H5Dopen2(f, "s", H5P_DEFAULT);
    for (hsize_t r0 = 0; r0 < dims[0]; r0 += chunk[0])
        for (hsize_t c0 = 0; c0 < dims[1]; c0 += chunk[1]) {
            hsize_t org[2] = { r0, c0 }, sp_sz = 0, ss_sz = 0;
            uint32_t mp = 1, ms = 1;
            assert_true(H5Dget_chunk_storage_size(dp, org, &sp_sz) >= 0);
            assert_true(H5Dget_chunk_storage_size(ds, org, &ss_sz) >= 0);
            assert_int_equal(sp_sz, ss_sz);
            assert_true(H5Dread_chunk(dp, H5P_DEFAULT, org, &mp, craw) >= 0);
            assert_true(H5Dread_chunk(ds, H5P_DEFAULT, org, &ms, cbuf) >= 0);
            assert_int_equal(mp, 0);
            assert_int_equal(ms, 0);
            assert_memory_equal(craw, cbuf, (size_t)sp_sz);
            extract_chunk_2d(cin, data, esz, dims, chunk, org);
            memset(cdec, 0xEE, cbytes);
            assert_int_equal(ckpt_codec_zstd_decompress_chunk(ctx, shuffle ? esz : 0, craw, (size_t)sp_sz,
                                                              cdec, cbytes),
                             cbytes);
            assert_memory_equal(cdec, cin, cbytes);
        }
    H5Dclose(dp);
    H5Dclose(ds);
    H5Fclose(f);
    ckpt_codec_zstd_ctx_free(ctx);
    free(wf);
    free(data);
    free(back);
    free(cin);
    free(craw);
    free(cbuf);
    free(cdec);
}

static void test_direct_chunk_write(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "direct");
    direct_case(path, H5T_NATIVE_FLOAT, 3, 1, 1);
    direct_case(path, H5T_NATIVE_FLOAT, -1, 0, 0);
    direct_case(path, H5T_NATIVE_UINT16, 1, 1, 0);
    direct_case(path, H5T_NATIVE_UINT16, 0, 0, 1);
    direct_case(path, H5T_NATIVE_FLOAT, -3, 1, 1);
    unlink(path);
}

static void test_chunk_helper_errors(void **state)
{
    (void)state;
    unsigned char src[4096], dst[8192], small[16], back[4096];
    uint64_t s = 5;
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (unsigned char)rng_next(&s); /* incompressible: output > input */
    assert_int_equal(ckpt_codec_zstd_compress_chunk(NULL, 3, 0, src, sizeof src, small, sizeof small), 0);
    assert_int_equal(ckpt_codec_zstd_compress_chunk(NULL, ZSTD_maxCLevel() + 1, 0, src, sizeof src, dst,
                                                    sizeof dst),
                     0);
    assert_int_equal(ckpt_codec_zstd_compress_chunk(NULL, 3, 0, src, 0, dst, sizeof dst), 0);
    assert_int_equal(ckpt_codec_zstd_compress_chunk(NULL, 3, 0, NULL, 10, dst, sizeof dst), 0);
    assert_true(ckpt_codec_zstd_chunk_bound(sizeof src) <= sizeof dst);
    assert_int_equal(ckpt_codec_zstd_chunk_bound((size_t)0x100000000ull), 0);
    size_t m = ckpt_codec_zstd_compress_chunk(NULL, 3, 4, src, sizeof src, dst, sizeof dst);
    assert_true(m > sizeof src);
    /* Output too small, wrong input, truncated input. */
    assert_int_equal(ckpt_codec_zstd_decompress_chunk(NULL, 4, dst, m, back, sizeof back - 1), 0);
    assert_int_equal(ckpt_codec_zstd_decompress_chunk(NULL, 4, src, sizeof src, back, sizeof back), 0);
    assert_int_equal(ckpt_codec_zstd_decompress_chunk(NULL, 4, dst, m - 1, back, sizeof back), 0);
    assert_int_equal(ckpt_codec_zstd_decompress_chunk(NULL, 4, dst, 0, back, sizeof back), 0);
    assert_int_equal(ckpt_codec_zstd_decompress_chunk(NULL, 4, dst, m, back, sizeof back), sizeof back);
    assert_memory_equal(back, src, sizeof back);

    /* Incompressible data through the filter: stored larger than the input, read back. */
    void *buf = malloc(sizeof src);
    assert_non_null(buf);
    memcpy(buf, src, sizeof src);
    size_t bsz = sizeof src;
    unsigned int cd = ckpt_codec_zstd_level_to_cd(-1);
    size_t out = ckpt_codec_zstd_filter(0, 1, &cd, sizeof src, &bsz, &buf);
    assert_true(out > sizeof src);
    out = ckpt_codec_zstd_filter(H5Z_FLAG_REVERSE, 1, &cd, out, &bsz, &buf);
    assert_int_equal(out, sizeof src);
    assert_memory_equal(buf, src, sizeof src);
    free(buf);
}

/* ------------------------------------------------------------------------------------------ */
/* Corrupt input                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* Runs the decompressing filter on a copy of (p, n); returns its result and checks the buffer
 * contract: on failure *buf and *buf_size are untouched; on success the output is in *out. */
static size_t run_reverse(const void *p, size_t n, unsigned char **out)
{
    size_t alloc = n ? n : 1;
    void *buf = malloc(alloc);
    assert_non_null(buf);
    if (n)
        memcpy(buf, p, n);
    void *orig = buf;
    size_t bsz = alloc;
    size_t r = ckpt_codec_zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, n, &bsz, &buf);
    if (r == 0) {
        assert_ptr_equal(buf, orig);
        assert_int_equal(bsz, alloc);
        free(buf);
        *out = NULL;
    } else {
        assert_true(bsz >= r);
        *out = buf;
    }
    return r;
}

/* Hand-made frame: magic, descriptor, [window byte], FCS field, one raw block of `len` bytes. */
static size_t make_frame(unsigned char *f, int fcs_bytes, unsigned long long fcs, const unsigned char *data,
                         size_t len)
{
    size_t k = 0;
    f[k++] = 0x28;
    f[k++] = 0xB5;
    f[k++] = 0x2F;
    f[k++] = 0xFD;
    if (fcs_bytes == 0) {
        f[k++] = 0x00; /* no FCS, not single segment */
        f[k++] = 0x00; /* window 1 KiB */
    } else {
        int code = fcs_bytes == 1 ? 0 : fcs_bytes == 2 ? 1 : fcs_bytes == 4 ? 2 : 3;
        f[k++] = (unsigned char)((code << 6) | 0x20); /* single segment */
        unsigned long long v = fcs_bytes == 2 ? fcs - 256 : fcs;
        for (int i = 0; i < fcs_bytes; i++)
            f[k++] = (unsigned char)(v >> (8 * i));
    }
    unsigned int bh = (unsigned int)(len << 3) | 1u; /* last block, raw */
    f[k++] = (unsigned char)bh;
    f[k++] = (unsigned char)(bh >> 8);
    f[k++] = (unsigned char)(bh >> 16);
    memcpy(f + k, data, len);
    return k + len;
}

static void test_filter_bad_input(void **state)
{
    (void)state;
    unsigned char *out = NULL;
    const unsigned char payload[5] = { 'h', 'e', 'l', 'l', 'o' };
    unsigned char fr[64], two[128];

    /* Sanity: the hand-made frame is valid. */
    size_t n = make_frame(fr, 1, 5, payload, 5);
    assert_int_equal(run_reverse(fr, n, &out), 5);
    assert_memory_equal(out, payload, 5);
    free(out);
    /* No content size in the header: decoded by streaming. */
    n = make_frame(fr, 0, 0, payload, 5);
    assert_int_equal(ZSTD_getFrameContentSize(fr, n), ZSTD_CONTENTSIZE_UNKNOWN);
    assert_int_equal(run_reverse(fr, n, &out), 5);
    assert_memory_equal(out, payload, 5);
    free(out);
    /* Two frames (one without size) and a skippable frame: concatenated content. */
    size_t a = make_frame(two, 4, 5, payload, 5);
    const unsigned char skip[12] = { 0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0, 1, 2, 3, 4 };
    memcpy(two + a, skip, sizeof skip);
    a += sizeof skip;
    a += make_frame(two + a, 0, 0, payload, 5);
    assert_int_equal(run_reverse(two, a, &out), 10);
    assert_memory_equal(out, payload, 5);
    assert_memory_equal(out + 5, payload, 5);
    free(out);
    a = make_frame(two, 8, 5, payload, 5);
    a += make_frame(two + a, 2, 300, payload, 0); /* second frame claims 300 bytes, holds 0 */
    assert_int_equal(run_reverse(two, a, &out), 0);

    /* Wrong content sizes. */
    n = make_frame(fr, 8, 6, payload, 5);
    assert_int_equal(run_reverse(fr, n, &out), 0);
    n = make_frame(fr, 8, 4, payload, 5);
    assert_int_equal(run_reverse(fr, n, &out), 0);
    n = make_frame(fr, 8, 1ull << 40, payload, 5); /* beyond any chunk: refused before malloc */
    assert_int_equal(run_reverse(fr, n, &out), 0);
    n = make_frame(fr, 8, 0xFFFFFFFFFFFFFFF0ull, payload, 5);
    assert_int_equal(run_reverse(fr, n, &out), 0);
    n = make_frame(fr, 1, 0, payload, 0); /* empty content: 0 is the filter's failure value */
    assert_int_equal(run_reverse(fr, n, &out), 0);

    /* Garbage, empty, truncated, trailing bytes. */
    assert_int_equal(run_reverse("not a zstd frame", 16, &out), 0);
    assert_int_equal(run_reverse("", 0, &out), 0);
    n = make_frame(fr, 1, 5, payload, 5);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(run_reverse(fr, cut, &out), 0);
    n = make_frame(fr, 0, 0, payload, 5);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(run_reverse(fr, cut, &out), 0);
    n = make_frame(fr, 1, 5, payload, 5);
    fr[n] = 0x42;
    assert_int_equal(run_reverse(fr, n + 1, &out), 0);

    /* A real compressed chunk, every prefix and many single-byte corruptions: no crash; when the
     * filter succeeds the size is still the recorded one. */
    const size_t nbytes = 8192;
    float *v = malloc(nbytes);
    unsigned char *c = malloc(ckpt_codec_zstd_chunk_bound(nbytes));
    assert_non_null(v);
    assert_non_null(c);
    fill_weights_f32(v, nbytes / 4, 11);
    size_t m = ckpt_codec_zstd_compress_chunk(NULL, 3, 4, v, nbytes, c, ckpt_codec_zstd_chunk_bound(nbytes));
    assert_true(m > 0);
    for (size_t cut = 0; cut < m; cut += 13)
        assert_int_equal(run_reverse(c, cut, &out), 0);
    uint64_t s = 77;
    for (int it = 0; it < 400; it++) {
        size_t pos = (size_t)(rng_next(&s) % m);
        unsigned char old = c[pos];
        c[pos] ^= (unsigned char)(1u + rng_next(&s) % 255u);
        size_t r = run_reverse(c, m, &out);
        if (r != 0) {
            assert_int_equal(r, nbytes);
            free(out);
        }
        c[pos] = old;
    }
    free(v);
    free(c);

    /* NULL buffers. */
    size_t bsz = 0;
    void *nb = NULL;
    assert_int_equal(ckpt_codec_zstd_filter(H5Z_FLAG_REVERSE, 0, NULL, 5, &bsz, &nb), 0);
    assert_int_equal(ckpt_codec_zstd_filter(0, 0, NULL, 5, &bsz, &nb), 0);
    assert_int_equal(ckpt_codec_zstd_filter(0, 0, NULL, 5, NULL, NULL), 0);
}

/* Location of the frame content size field of a frame, or -1 (see RFC 8878 3.1.1.1). */
static int fcs_field(const unsigned char *f, size_t n, size_t *off, size_t *len)
{
    if (n < 6)
        return -1;
    unsigned d = f[4];
    unsigned code = d >> 6, single = (d >> 5) & 1u, did = d & 3u;
    static const size_t did_len[4] = { 0, 1, 2, 4 };
    *off = 5 + (single ? 0 : 1) + did_len[did];
    *len = code == 0 ? (single ? 1 : 0) : ((size_t)1 << code);
    return *len == 0 || *off + *len > n ? -1 : 0;
}

enum corruption { CORRUPT_MAGIC, CORRUPT_FCS_UP, CORRUPT_FCS_DOWN, CORRUPT_MIDDLE, CORRUPT_TAIL_ZERO };

/* Writes a compressed dataset, damages chunk 1 in the file at the address H5Dget_chunk_info
 * reports, and reads it back: must fail (or, for damage zstd cannot always detect, must not
 * crash and must not return the original data silently as a different size). */
static void corrupt_case(enum corruption how, int must_fail)
{
    char path[512];
    char tag[32];
    snprintf(tag, sizeof tag, "corrupt%d", (int)how);
    tmp_path(path, sizeof path, tag);
    const size_t n = 65536;
    const hsize_t dims[1] = { n }, chunk[1] = { 16384 };
    float *v = malloc(n * 4), *r = malloc(n * 4);
    assert_non_null(v);
    assert_non_null(r);
    fill_weights_f32(v, n, 1234);
    assert_int_equal(write_dataset(path, "d", H5T_NATIVE_FLOAT, 1, dims, chunk, 3, 1, v), 0);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "d", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t nchunks = 0;
    assert_true(H5Dget_num_chunks(d, sp, &nchunks) >= 0);
    assert_int_equal(nchunks, 4);
    hsize_t coff[1] = { 0 }, csize = 0;
    haddr_t addr = HADDR_UNDEF;
    unsigned fmask = 1;
    assert_true(H5Dget_chunk_info(d, sp, 1, coff, &fmask, &addr, &csize) >= 0);
    assert_int_equal(coff[0], 16384);
    assert_int_equal(fmask, 0);
    assert_true(addr != HADDR_UNDEF && csize > 16);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);

    unsigned char *c = malloc((size_t)csize);
    assert_non_null(c);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, c, (size_t)csize, (off_t)addr), (ssize_t)csize);
    /* It is our frame: the header records the chunk size. */
    assert_int_equal(ZSTD_getFrameContentSize(c, (size_t)csize), 16384 * 4);
    size_t off = 0, len = 0;
    switch (how) {
    case CORRUPT_MAGIC:
        c[0] ^= 0xFF;
        break;
    case CORRUPT_FCS_UP:
    case CORRUPT_FCS_DOWN: {
        assert_int_equal(fcs_field(c, (size_t)csize, &off, &len), 0);
        /* +1 / -1 on the little-endian field (the 2-byte form stores size - 256: same effect). */
        for (size_t i = 0; i < len; i++) {
            if (how == CORRUPT_FCS_UP) {
                if (++c[off + i] != 0)
                    break;
            } else {
                if (c[off + i]-- != 0)
                    break;
            }
        }
        assert_true(ZSTD_getFrameContentSize(c, (size_t)csize) ==
                    (unsigned long long)(how == CORRUPT_FCS_UP ? 16384 * 4 + 1 : 16384 * 4 - 1));
        break;
    }
    case CORRUPT_MIDDLE:
        for (size_t i = 0; i < 8; i++)
            c[(size_t)csize / 2 + i] ^= 0x5A;
        break;
    case CORRUPT_TAIL_ZERO:
        memset(c + (size_t)csize / 3, 0, (size_t)csize - (size_t)csize / 3);
        break;
    }
    assert_int_equal(pwrite(fd, c, (size_t)csize, (off_t)addr), (ssize_t)csize);
    assert_int_equal(close(fd), 0);

    memset(r, 0, n * 4);
    herr_t st = read_dataset(path, "d", H5T_NATIVE_FLOAT, r, 1);
    if (must_fail)
        assert_true(st < 0);
    else if (st >= 0)
        /* Undetected damage inside the entropy-coded data is possible without a checksum, but
         * the untouched chunks must still be right. */
        assert_memory_equal(r, v, 16384 * 4);
    /* The undamaged chunk 0 alone still reads (error confined to the damaged chunk). */
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    d = H5Dopen2(f, "d", H5P_DEFAULT);
    hid_t fsp = H5Dget_space(d);
    hsize_t start[1] = { 0 }, cnt[1] = { 16384 };
    assert_true(H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0);
    hid_t msp = H5Screate_simple(1, cnt, NULL);
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, r) >= 0);
    assert_memory_equal(r, v, 16384 * 4);
    H5Sclose(msp);
    H5Sclose(fsp);
    H5Dclose(d);
    H5Fclose(f);
    unlink(path);
    free(c);
    free(v);
    free(r);
}

static void test_corrupt_chunk_in_file(void **state)
{
    (void)state;
    corrupt_case(CORRUPT_MAGIC, 1);
    corrupt_case(CORRUPT_FCS_UP, 1);
    corrupt_case(CORRUPT_FCS_DOWN, 1);
    corrupt_case(CORRUPT_TAIL_ZERO, 1);
    corrupt_case(CORRUPT_MIDDLE, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Fixture for the Python/h5py/h5dump test                                                      */
/* ------------------------------------------------------------------------------------------ */

#define FX_F32_R 300
#define FX_F32_C 257
#define FX_U16_N 100003
#define FX_U16_R 123
#define FX_U16_C 457
#define FX_DIR_R 130
#define FX_DIR_C 70

static int fx_dataset(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims,
                      const hsize_t *chunk, int level, int shuffle, const void *data)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int rc = -1;
    if (sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 && ckpt_codec_set_dcpl(dcpl, level, shuffle) == 0) {
        hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (d >= 0) {
            if (H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0)
                rc = 0;
            H5Dclose(d);
        }
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (sp >= 0)
        H5Sclose(sp);
    if (rc != 0)
        fprintf(stderr, "fixture: cannot write %s\n", name);
    return rc;
}

static int write_fixture(const char *path)
{
    int rc = 0;
    float *f = malloc(sizeof(float) * FX_F32_R * FX_F32_C);
    uint16_t *u = malloc(sizeof(uint16_t) * FX_U16_N);
    float *dir = malloc(sizeof(float) * FX_DIR_R * FX_DIR_C);
    float small[10];
    if (f == NULL || u == NULL || dir == NULL)
        return 1;
    for (size_t i = 0; i < (size_t)FX_F32_R * FX_F32_C; i++)
        f[i] = fixture_f32(i);
    for (size_t i = 0; i < FX_U16_N; i++)
        u[i] = fixture_u16(i);
    for (size_t i = 0; i < (size_t)FX_DIR_R * FX_DIR_C; i++)
        dir[i] = fixture_f32(i + 17);
    for (int i = 0; i < 10; i++)
        small[i] = (float)i * 0.5f - 2.0f;

    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0)
        return 1;
    const hsize_t d1[2] = { FX_F32_R, FX_F32_C }, c1[2] = { 64, 64 };
    rc |= fx_dataset(file, "f32_shuffle_l3", H5T_NATIVE_FLOAT, 2, d1, c1, 3, 1, f);
    rc |= fx_dataset(file, "f32_l19", H5T_NATIVE_FLOAT, 2, d1, c1, 19, 0, f);
    const hsize_t d2[1] = { FX_U16_N }, c2[1] = { 8192 };
    rc |= fx_dataset(file, "bf16_l-1", H5T_NATIVE_UINT16, 1, d2, c2, -1, 0, u);
    const hsize_t d3[2] = { FX_U16_R, FX_U16_C }, c3[2] = { 50, 100 };
    rc |= fx_dataset(file, "bf16_shuffle_l0", H5T_NATIVE_UINT16, 2, d3, c3, 0, 1, u);
    const hsize_t d4[1] = { 10 }, c4[1] = { 4 };
    rc |= fx_dataset(file, "f32_small", H5T_NATIVE_FLOAT, 1, d4, c4, 3, 1, small);

    /* Self-compressed chunks written with H5Dwrite_chunk (shuffle + level -5). */
    const hsize_t d5[2] = { FX_DIR_R, FX_DIR_C }, c5[2] = { 64, 32 };
    hid_t sp = H5Screate_simple(2, d5, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t ds = -1;
    if (H5Pset_chunk(dcpl, 2, c5) >= 0 && ckpt_codec_set_dcpl(dcpl, -5, 1) == 0)
        ds = H5Dcreate2(file, "f32_direct_l-5", H5T_NATIVE_FLOAT, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (ds < 0) {
        rc = 1;
    } else {
        size_t cb = 64 * 32 * 4, cap = ckpt_codec_zstd_chunk_bound(cb);
        unsigned char *in = malloc(cb), *out = malloc(cap);
        ckpt_zstd_ctx *ctx = ckpt_codec_zstd_ctx_new();
        for (hsize_t r0 = 0; r0 < d5[0] && in && out && ctx; r0 += c5[0])
            for (hsize_t k0 = 0; k0 < d5[1]; k0 += c5[1]) {
                hsize_t org[2] = { r0, k0 };
                extract_chunk_2d(in, dir, 4, d5, c5, org);
                size_t m = ckpt_codec_zstd_compress_chunk(ctx, -5, 4, in, cb, out, cap);
                if (m == 0 || H5Dwrite_chunk(ds, H5P_DEFAULT, 0, org, m, out) < 0)
                    rc = 1;
            }
        if (in == NULL || out == NULL || ctx == NULL)
            rc = 1;
        ckpt_codec_zstd_ctx_free(ctx);
        free(in);
        free(out);
        H5Dclose(ds);
    }
    H5Pclose(dcpl);
    H5Sclose(sp);
    if (H5Fclose(file) < 0)
        rc = 1;
    free(f);
    free(u);
    free(dir);
    return rc ? 1 : 0;
}

/* Reads the datasets h5py wrote with compression=32015 and compares them to the fixture values. */
static int verify_h5py_file(const char *path)
{
    int bad = 0;
    size_t nf = (size_t)FX_F32_R * FX_F32_C;
    float *f = malloc(nf * 4);
    uint16_t *u = malloc(FX_U16_N * 2);
    if (f == NULL || u == NULL)
        return 1;
    const char *fnames[2] = { "h5py_f32_shuffle_l5", "h5py_f32_l-1" };
    for (int k = 0; k < 2; k++) {
        if (read_dataset(path, fnames[k], H5T_NATIVE_FLOAT, f, 0) < 0) {
            fprintf(stderr, "verify: cannot read %s\n", fnames[k]);
            bad = 1;
            continue;
        }
        for (size_t i = 0; i < nf; i++)
            if (memcmp(&f[i], &(float){ fixture_f32(i) }, 4) != 0) {
                fprintf(stderr, "verify: %s[%zu] differs\n", fnames[k], i);
                bad = 1;
                break;
            }
    }
    if (read_dataset(path, "h5py_u16_shuffle_l1", H5T_NATIVE_UINT16, u, 0) < 0) {
        fprintf(stderr, "verify: cannot read h5py_u16_shuffle_l1\n");
        bad = 1;
    } else {
        for (size_t i = 0; i < FX_U16_N; i++)
            if (u[i] != fixture_u16(i)) {
                fprintf(stderr, "verify: h5py_u16_shuffle_l1[%zu] differs\n", i);
                bad = 1;
                break;
            }
    }
    /* The filter h5py recorded is 32015 with the level in cd_values[0]. */
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = file >= 0 ? H5Dopen2(file, "h5py_f32_l-1", H5P_DEFAULT) : -1;
    if (d >= 0) {
        hid_t dcpl = H5Dget_create_plist(d);
        unsigned int flags = 0, cd[4] = { 0 };
        size_t ncd = 4;
        unsigned int cfg = 0;
        if (H5Pget_filter_by_id2(dcpl, CKPT_FILTER_ZSTD, &flags, &ncd, cd, 0, NULL, &cfg) < 0 ||
            ckpt_codec_zstd_level_from_cd(ncd, cd) != -1) {
            fprintf(stderr, "verify: h5py_f32_l-1 has no zstd filter with level -1\n");
            bad = 1;
        }
        H5Pclose(dcpl);
        H5Dclose(d);
    } else {
        bad = 1;
    }
    if (file >= 0)
        H5Fclose(file);
    free(f);
    free(u);
    if (!bad)
        printf("verify: %s OK\n", path);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-fixture") == 0) {
        if (ckpt_codec_zstd_register() != 0)
            return 1;
        return write_fixture(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "--verify-h5py-file") == 0) {
        if (ckpt_codec_zstd_register() != 0)
            return 1;
        return verify_h5py_file(argv[2]);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_register),
        cmocka_unit_test(test_set_dcpl),
        cmocka_unit_test(test_shuffle_layout),
        cmocka_unit_test(test_shuffle_matches_hdf5),
        cmocka_unit_test(test_roundtrip_levels),
        cmocka_unit_test(test_default_level_no_cd_values),
        cmocka_unit_test(test_direct_chunk_write),
        cmocka_unit_test(test_chunk_helper_errors),
        cmocka_unit_test(test_filter_bad_input),
        cmocka_unit_test(test_corrupt_chunk_in_file),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    H5close();
    return rc;
}
