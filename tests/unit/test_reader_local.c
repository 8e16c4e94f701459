/* test_reader_local.c -- a checkpoint saved and read by one process that never initialises
 * MPI: ckpt_save(MPI_COMM_NULL, ...) writes it, ckpt_reader_* inspects and reads it (whole
 * tensors, random regions, dtype conversion, verification), ckpt_load(MPI_COMM_NULL, ...)
 * loads it into another sharding. Values are compared bit for bit with tests/common/pattern.h.
 * This program must not call MPI_Init. Scratch directory: argv[1]. */
#include "unit.h"

#include "pattern.h"

#include "box.h"

#include <hdf5.h>
#include <mpi.h>

static char dir[4096], ck[4200];

typedef struct tdef {
    const char *name;
    int tid;
    ckpt_dtype dt;
    int ndim;
    int64_t shape[4];
    int nboxes;
    int64_t off[3][4], ext[3][4];
} tdef;

/* The saved tensors, in name order (the order the index lists them). Box ids follow. */
static const tdef T[] = {
    {"d", 3, CKPT_F64, 2, {4, 4}, 2, {{0, 1}, {0, 0}}, {{4, 3}, {4, 1}}},
    {"emb", 1, CKPT_BF16, 3, {9, 5, 3}, 1, {{0, 0, 0}}, {{9, 5, 3}}},
    {"flag", 6, CKPT_BOOL, 1, {5}, 1, {{0}}, {{5}}},
    {"h", 2, CKPT_F16, 1, {10}, 3, {{7}, {0}, {3}}, {{3}, {3}, {4}}},
    {"i16", 11, CKPT_I16, 2, {5, 3}, 1, {{0, 0}}, {{5, 3}}},
    {"i32", 4, CKPT_I32, 3, {6, 2, 3}, 1, {{0, 0, 0}}, {{6, 2, 3}}},
    {"i64", 7, CKPT_I64, 1, {3}, 1, {{0}}, {{3}}},
    {"i8", 10, CKPT_I8, 4, {2, 2, 2, 2}, 1, {{0, 0, 0, 0}}, {{2, 2, 2, 2}}},
    {"s", 8, CKPT_F64, 0, {0}, 1, {{0}}, {{0}}},
    {"u8", 5, CKPT_U8, 1, {17}, 1, {{0}}, {{17}}},
    {"w", 0, CKPT_F32, 2, {13, 7}, 2, {{6, 0}, {0, 0}}, {{7, 7}, {6, 7}}},
    {"z", 9, CKPT_F32, 2, {0, 3}, 0, {{0}}, {{0}}},
};
enum { NT = sizeof T / sizeof T[0] };
static void *mem[NT][3];
static const unsigned char RNG[16] = {1, 2, 3, 0, 255, 254, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0};

static int64_t volume(int nd, const int64_t *ext)
{
    int64_t v = 1;
    for (int d = 0; d < nd; d++)
        v *= ext[d];
    return v;
}

static int find_def(const char *name)
{
    for (int i = 0; i < NT; i++)
        if (strcmp(T[i].name, name) == 0)
            return i;
    fail_msg("no tensor %s", name);
    return -1;
}

/* A state holding every tensor of T, filled with the pattern. */
static ckpt_state *saved_state(void)
{
    ckpt_state *s;
    expect_ok(ckpt_state_create(&s));
    for (int i = 0; i < NT; i++) {
        const tdef *t = &T[i];
        expect_ok(ckpt_state_add_tensor(s, t->name, t->dt, t->ndim, t->shape, 0));
        for (int b = 0; b < t->nboxes; b++) {
            if (!mem[i][b]) {
                mem[i][b] = malloc((size_t)volume(t->ndim, t->ext[b]) * ckpt_dtype_size(t->dt) + 1);
                pattern_fill(t->tid, t->dt, t->ndim, t->shape, t->off[b], t->ext[b], mem[i][b]);
            }
            expect_ok(ckpt_state_add_box(s, t->name, t->off[b], t->ext[b], mem[i][b]));
        }
    }
    expect_ok(ckpt_state_add_box(s, "z", (const int64_t[]){0, 0}, (const int64_t[]){0, 3}, NULL));
    expect_ok(ckpt_state_set_int(s, "step", 42));
    expect_ok(ckpt_state_set_double(s, "lr", 1e-3));
    expect_ok(ckpt_state_set_string(s, "run/name", "run-7 \xe2\x9c\x93"));
    expect_ok(ckpt_state_set_bytes(s, "rng", RNG, sizeof RNG));
    expect_ok(ckpt_state_set_bytes(s, "empty", NULL, 0));
    return s;
}

static ckpt_save_options fast_opts(void)
{
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.fsync = 0;
    o.piece_bytes = 64;
    return o;
}

static int mpi_initialized(void)
{
    int init = -1;
    MPI_Initialized(&init);
    return init;
}

static void test_save_without_mpi(void **st)
{
    (void)st;
    assert_int_equal(mpi_initialized(), 0);
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    assert_int_equal(o.version, CKPT_SAVE_OPTIONS_VERSION);
    assert_int_equal(o.layout, CKPT_LAYOUT_PER_RANK);
    assert_int_equal(o.overwrite, 0);
    assert_int_equal(o.fsync, 1);
    assert_int_equal(o.piece_bytes, 4 << 20);
    o = fast_opts();
    ckpt_state *s = saved_state();
    snprintf(ck, sizeof ck, "%s/ck", dir);
    unit_rmtree(ck);
    expect_ok(ckpt_save(MPI_COMM_NULL, ck, s, &o));
    ckpt_state_free(s);
    assert_int_equal(mpi_initialized(), 0); /* the save did not start MPI */
    struct stat sb;
    char p[4400];
    snprintf(p, sizeof p, "%s/COMMITTED", ck);
    assert_int_equal(stat(p, &sb), 0);
    snprintf(p, sizeof p, "%s/index.h5", ck);
    assert_int_equal(stat(p, &sb), 0);
    snprintf(p, sizeof p, "%s/rank-00000.h5", ck);
    assert_int_equal(stat(p, &sb), 0);
    snprintf(p, sizeof p, "%s/rank-00001.h5", ck);
    assert_int_not_equal(stat(p, &sb), 0);
}

static ckpt_reader *open_ck(void)
{
    ckpt_reader *r = NULL;
    expect_ok(ckpt_reader_open(ck, &r));
    assert_non_null(r);
    return r;
}

static void test_reader_info(void **st)
{
    (void)st;
    ckpt_reader *r = open_ck();
    assert_int_equal(ckpt_reader_format_version(r), CKPT_FORMAT_VERSION);
    assert_string_equal(ckpt_reader_library_version(r), CKPT_VERSION_STRING);
    assert_int_equal(ckpt_reader_world_size(r), 1);
    assert_int_equal(ckpt_reader_layout(r), CKPT_LAYOUT_PER_RANK);
    assert_int_equal(ckpt_reader_num_tensors(r), NT);
    int64_t boxid = 0;
    for (int i = 0; i < NT; i++) {
        const tdef *t = &T[i];
        ckpt_tensor_info ti;
        expect_ok(ckpt_reader_tensor_info(r, i, &ti));
        assert_string_equal(ti.name, t->name);
        assert_int_equal(ti.dtype, t->dt);
        assert_int_equal(ti.ndim, t->ndim);
        for (int d = 0; d < CKPT_MAX_NDIM; d++)
            assert_int_equal(ti.shape[d], d < t->ndim ? t->shape[d] : 0);
        assert_int_equal(ti.nboxes, t->nboxes);
        int64_t raw = volume(t->ndim, t->shape) * (int64_t)ckpt_dtype_size(t->dt);
        assert_int_equal(ti.raw_bytes, raw);
        if (raw)
            assert_true(ti.stored_bytes >= raw); /* uncompressed chunks, edge chunks padded */
        else
            assert_int_equal(ti.stored_bytes, 0);
        int k = -1;
        expect_ok(ckpt_reader_find(r, t->name, &k));
        assert_int_equal(k, i);
        /* boxes are sorted by offset within the tensor */
        for (int64_t j = 0; j < t->nboxes; j++) {
            ckpt_box_info bi;
            expect_ok(ckpt_reader_box_info(r, i, j, &bi));
            assert_int_equal(bi.writer_rank, 0);
            assert_string_equal(bi.file, "rank-00000.h5");
            char ds[32];
            snprintf(ds, sizeof ds, "/boxes/%lld", (long long)boxid++);
            assert_string_equal(bi.dataset, ds);
            assert_true(bi.npieces >= 1);
            if (j > 0) {
                ckpt_box_info prev;
                expect_ok(ckpt_reader_box_info(r, i, j - 1, &prev));
                ckpt_box a, b;
                ckpt_box_set(&a, t->ndim, prev.offset, prev.extent);
                ckpt_box_set(&b, t->ndim, bi.offset, bi.extent);
                assert_int_equal(ckpt_box_cmp(&a, &b), -1);
            }
        }
        char msg[64];
        snprintf(msg, sizeof msg, "box %d of tensor %d out of range", t->nboxes, i);
        expect_err_exact(ckpt_reader_box_info(r, i, t->nboxes, &(ckpt_box_info){0}), CKPT_EINVAL, msg);
    }
    /* w: two row blocks, [6,7] f32 with 64-byte pieces -> 2 rows (56 B) per piece: 3 and 4 */
    ckpt_box_info bi;
    int wi = find_def("w");
    expect_ok(ckpt_reader_box_info(r, wi, 0, &bi));
    assert_int_equal(bi.offset[0], 0);
    assert_int_equal(bi.extent[0], 6);
    assert_int_equal(bi.extent[1], 7);
    assert_int_equal(bi.npieces, 3);
    expect_ok(ckpt_reader_box_info(r, wi, 1, &bi));
    assert_int_equal(bi.offset[0], 6);
    assert_int_equal(bi.extent[0], 7);
    assert_int_equal(bi.npieces, 4);
    /* d: column 0 ([4,1] f64, one piece) sorts before columns 1..3 ([4,3] f64, 2 rows per piece) */
    int di = find_def("d");
    expect_ok(ckpt_reader_box_info(r, di, 0, &bi));
    assert_int_equal(bi.offset[1], 0);
    assert_int_equal(bi.extent[1], 1);
    assert_int_equal(bi.npieces, 1);
    expect_ok(ckpt_reader_box_info(r, di, 1, &bi));
    assert_int_equal(bi.offset[1], 1);
    assert_int_equal(bi.extent[1], 3);
    assert_int_equal(bi.npieces, 2);
    /* emb [9,5,3] bf16: a 30-byte row slab fits twice -> 5 pieces */
    expect_ok(ckpt_reader_box_info(r, find_def("emb"), 0, &bi));
    assert_int_equal(bi.npieces, 5);

    expect_err_exact(ckpt_reader_tensor_info(r, NT, &(ckpt_tensor_info){0}), CKPT_EINVAL, "tensor index 12 out of range");
    expect_err(ckpt_reader_tensor_info(r, -1, &(ckpt_tensor_info){0}), CKPT_EINVAL, "out of range");
    int k;
    char want[4400];
    snprintf(want, sizeof want, "tensor 'nope' is not in checkpoint '%s' (it has 12 tensors)", ck);
    expect_err_exact(ckpt_reader_find(r, "nope", &k), CKPT_ENOTFOUND, want);
    ckpt_reader_close(r);
    ckpt_reader_close(NULL);
}

static void test_reader_attrs(void **st)
{
    (void)st;
    ckpt_reader *r = open_ck();
    const ckpt_state *a = ckpt_reader_attrs(r);
    assert_non_null(a);
    assert_int_equal(ckpt_state_num_attrs(a), 5);
    int64_t i;
    double d;
    const char *s;
    const void *data;
    size_t len;
    expect_ok(ckpt_state_get_int(a, "step", &i));
    assert_int_equal(i, 42);
    expect_ok(ckpt_state_get_double(a, "lr", &d));
    assert_true(d == 1e-3);
    expect_ok(ckpt_state_get_string(a, "run/name", &s));
    assert_string_equal(s, "run-7 \xe2\x9c\x93");
    expect_ok(ckpt_state_get_bytes(a, "rng", &data, &len));
    assert_int_equal(len, sizeof RNG);
    assert_memory_equal(data, RNG, sizeof RNG);
    expect_ok(ckpt_state_get_bytes(a, "empty", &data, &len));
    assert_int_equal(len, 0);
    ckpt_reader_close(r);
}

/* Reads region (off, ext) of tensor i as dtype dt and compares it with the pattern. */
static void check_region(ckpt_reader *r, int i, ckpt_dtype dt, const int64_t *off, const int64_t *ext, int verify)
{
    const tdef *t = &T[i];
    size_t es = ckpt_dtype_size(dt);
    int64_t n = volume(t->ndim, ext);
    unsigned char *got = malloc((size_t)n * es + 16), *want = malloc((size_t)n * es + 1);
    assert_non_null(got);
    memset(got, 0xcd, (size_t)n * es + 16);
    pattern_fill(t->tid, dt, t->ndim, t->shape, off, ext, want);
    int rc = ckpt_reader_read(r, t->name, dt, off, ext, got, verify);
    if (rc != CKPT_OK)
        fail_msg("reading %s as %s: %s", t->name, ckpt_dtype_name(dt), ckpt_errmsg());
    if (memcmp(got, want, (size_t)n * es) != 0) {
        ckpt_box b;
        char s[256];
        ckpt_box_set(&b, t->ndim, off, ext);
        fail_msg("tensor %s region %s as %s (verify %d) differs from the pattern", t->name,
                 ckpt_box_str(&b, s, sizeof s), ckpt_dtype_name(dt), verify);
    }
    for (int k = 0; k < 16; k++)
        assert_int_equal(got[n * (int64_t)es + k], 0xcd); /* nothing written past the region */
    free(got);
    free(want);
}

static void test_read_whole(void **st)
{
    (void)st;
    ckpt_reader *r = open_ck();
    const int64_t zero[4] = {0};
    for (int i = 0; i < NT; i++) {
        if (volume(T[i].ndim, T[i].shape) == 0)
            continue;
        check_region(r, i, T[i].dt, zero, T[i].shape, 1);
        check_region(r, i, T[i].dt, zero, T[i].shape, 0);
    }
    /* the 0-D tensor */
    double v = -1;
    expect_ok(ckpt_reader_read(r, "s", CKPT_F64, NULL, NULL, &v, 1));
    assert_true(v == pattern_value(8, 0));
    ckpt_reader_close(r);
}

static void random_region(unit_rng *rng, const tdef *t, int64_t *off, int64_t *ext)
{
    for (int d = 0; d < t->ndim; d++) {
        int64_t lo = unit_range(rng, 0, t->shape[d] - 1), hi = unit_range(rng, lo + 1, t->shape[d]);
        off[d] = lo;
        ext[d] = hi - lo;
    }
}

static void test_read_random_regions(void **st)
{
    (void)st;
    ckpt_reader *r = open_ck();
    unit_rng rng = {1234};
    for (int i = 0; i < NT; i++) {
        if (T[i].ndim == 0 || volume(T[i].ndim, T[i].shape) == 0)
            continue;
        for (int it = 0; it < 150; it++) {
            int64_t off[4], ext[4];
            random_region(&rng, &T[i], off, ext);
            check_region(r, i, T[i].dt, off, ext, it & 1);
        }
    }
    ckpt_reader_close(r);
}

static void test_read_convert(void **st)
{
    (void)st;
    ckpt_reader *r = open_ck();
    const ckpt_dtype fl[4] = {CKPT_F32, CKPT_F64, CKPT_F16, CKPT_BF16};
    const char *names[4] = {"w", "emb", "h", "d"};
    unit_rng rng = {777};
    const int64_t zero[4] = {0};
    for (int n = 0; n < 4; n++) {
        int i = find_def(names[n]);
        for (int k = 0; k < 4; k++) {
            check_region(r, i, fl[k], zero, T[i].shape, 1); /* the pattern is exact in every float dtype */
            for (int it = 0; it < 40; it++) {
                int64_t off[4], ext[4];
                random_region(&rng, &T[i], off, ext);
                check_region(r, i, fl[k], off, ext, it & 1);
            }
        }
    }
    float f = 0;
    expect_ok(ckpt_reader_read(r, "s", CKPT_F32, NULL, NULL, &f, 1));
    assert_true(f == (float)pattern_value(8, 0));
    uint16_t h = 0;
    expect_ok(ckpt_reader_read(r, "s", CKPT_BF16, NULL, NULL, &h, 0));
    uint16_t hw;
    pattern_elem(8, CKPT_BF16, 0, &hw);
    assert_int_equal(h, hw);
    ckpt_reader_close(r);
}

static void test_read_errors(void **st)
{
    (void)st;
    ckpt_reader *r = open_ck();
    float buf[128];
    const int64_t zero[4] = {0};
    expect_err_exact(ckpt_reader_read(r, "i32", CKPT_F32, zero, T[find_def("i32")].shape, buf, 1), CKPT_EMISMATCH,
                     "tensor 'i32' is stored as i32 and cannot be read as f32");
    expect_err_exact(ckpt_reader_read(r, "w", CKPT_I32, zero, T[find_def("w")].shape, buf, 1), CKPT_EMISMATCH,
                     "tensor 'w' is stored as f32 and cannot be read as i32");
    expect_err_exact(ckpt_reader_read(r, "flag", CKPT_U8, zero, (const int64_t[]){5}, buf, 1), CKPT_EMISMATCH,
                     "tensor 'flag' is stored as bool and cannot be read as u8");
    expect_err_exact(ckpt_reader_read(r, "w", CKPT_F32, zero, (const int64_t[]){14, 7}, buf, 1), CKPT_ECOVERAGE,
                     "tensor 'w': region [0:14, 0:7] lies outside its shape [13, 7]");
    expect_err_exact(ckpt_reader_read(r, "w", CKPT_F32, (const int64_t[]){12, 3}, (const int64_t[]){1, 5}, buf, 1),
                     CKPT_ECOVERAGE, "tensor 'w': region [12:13, 3:8] lies outside its shape [13, 7]");
    expect_err_exact(ckpt_reader_read(r, "w", CKPT_F32, (const int64_t[]){-1, 0}, (const int64_t[]){2, 7}, buf, 1),
                     CKPT_ECOVERAGE, "tensor 'w': region [-1:1, 0:7] lies outside its shape [13, 7]");
    expect_err_exact(ckpt_reader_read(r, "w", CKPT_F32, zero, (const int64_t[]){2, 7}, NULL, 1), CKPT_EINVAL,
                     "tensor 'w': buffer is NULL");
    expect_err_exact(ckpt_reader_read(r, "w", CKPT_F32, NULL, (const int64_t[]){2, 7}, buf, 1), CKPT_EINVAL,
                     "tensor 'w': offset or extent is NULL");
    expect_err(ckpt_reader_read(r, "nope", CKPT_F32, zero, zero, buf, 1), CKPT_ENOTFOUND, "tensor 'nope' is not in");
    expect_err(ckpt_reader_read(NULL, "w", CKPT_F32, zero, zero, buf, 1), CKPT_EINVAL, "reader is NULL");
    /* empty regions succeed without touching the buffer (NULL allowed) */
    expect_ok(ckpt_reader_read(r, "w", CKPT_F32, (const int64_t[]){13, 0}, (const int64_t[]){0, 7}, NULL, 1));
    expect_ok(ckpt_reader_read(r, "z", CKPT_F32, zero, (const int64_t[]){0, 3}, NULL, 1));
    ckpt_reader_close(r);

    /* opening what is not a committed checkpoint */
    char p[4400];
    ckpt_reader *x = (ckpt_reader *)dir;
    snprintf(p, sizeof p, "%s/nothing-here", dir);
    expect_err(ckpt_reader_open(p, &x), CKPT_ENOTFOUND, "no checkpoint at");
    assert_null(x);
    snprintf(p, sizeof p, "%s/half", dir);
    unit_mkdir(p);
    char want[4500];
    snprintf(want, sizeof want, "checkpoint '%s' is incomplete: it has no COMMITTED marker", p);
    expect_err(ckpt_reader_open(p, &x), CKPT_EINCOMPLETE, want);
    expect_err(ckpt_reader_open(p, NULL), CKPT_EINVAL, "out is NULL");
}

static void fill_sentinel(void *p, size_t n) { memset(p, 0xee, n); }

static void test_load_local(void **st)
{
    (void)st;
    assert_int_equal(mpi_initialized(), 0);
    ckpt_state *s;
    expect_ok(ckpt_state_create(&s));
    /* w as f64 in three column blocks (another "world size", all in one state) */
    const int64_t wshape[2] = {13, 7};
    static double w[3][13 * 3];
    int64_t off[3][2], ext[3][2];
    expect_ok(ckpt_state_add_tensor(s, "w", CKPT_F64, 2, wshape, 0));
    for (int k = 0; k < 3; k++) {
        expect_ok(ckpt_shard_box(2, wshape, 1, k, 3, off[k], ext[k]));
        fill_sentinel(w[k], sizeof w[k]);
        expect_ok(ckpt_state_add_box(s, "w", off[k], ext[k], w[k]));
    }
    static float emb[9 * 5 * 3];
    expect_ok(ckpt_state_add_replicated(s, "emb", CKPT_F32, 3, T[find_def("emb")].shape, emb));
    static int32_t i32[36];
    expect_ok(ckpt_state_add_shard(s, "i32", CKPT_I32, 3, T[find_def("i32")].shape, 2, 1, 2, i32));
    static uint16_t sv; /* 0-D f64 loaded as f16 */
    expect_ok(ckpt_state_add_replicated(s, "s", CKPT_F16, 0, NULL, &sv));
    static uint8_t flag[5];
    expect_ok(ckpt_state_add_replicated(s, "flag", CKPT_BOOL, 1, (const int64_t[]){5}, flag));
    expect_ok(ckpt_state_add_tensor(s, "z", CKPT_F32, 2, (const int64_t[]){0, 3}, 0));
    expect_ok(ckpt_state_add_tensor(s, "opt", CKPT_F32, 1, (const int64_t[]){3}, CKPT_TENSOR_OPTIONAL));
    expect_ok(ckpt_state_set_int(s, "old", 1));

    expect_ok(ckpt_load(MPI_COMM_NULL, ck, s, NULL));
    assert_int_equal(mpi_initialized(), 0);

    double want64[13 * 3];
    for (int k = 0; k < 3; k++) {
        pattern_fill(0, CKPT_F64, 2, wshape, off[k], ext[k], want64);
        assert_memory_equal(w[k], want64, (size_t)volume(2, ext[k]) * 8);
    }
    float want32[9 * 5 * 3];
    pattern_fill(1, CKPT_F32, 3, T[find_def("emb")].shape, (const int64_t[]){0, 0, 0}, T[find_def("emb")].shape,
                 want32);
    assert_memory_equal(emb, want32, sizeof emb);
    int32_t wanti[18];
    pattern_fill(4, CKPT_I32, 3, T[find_def("i32")].shape, (const int64_t[]){0, 0, 2}, (const int64_t[]){6, 2, 1},
                 wanti);
    assert_memory_equal(i32, wanti, 12 * sizeof(int32_t));
    uint16_t wants;
    pattern_elem(8, CKPT_F16, 0, &wants);
    assert_int_equal(sv, wants);
    uint8_t wantf[5];
    pattern_fill(6, CKPT_BOOL, 1, (const int64_t[]){5}, (const int64_t[]){0}, (const int64_t[]){5}, wantf);
    assert_memory_equal(flag, wantf, 5);

    int loaded = -1;
    expect_ok(ckpt_state_tensor_loaded(s, "w", &loaded));
    assert_int_equal(loaded, 1);
    expect_ok(ckpt_state_tensor_loaded(s, "z", &loaded));
    assert_int_equal(loaded, 1);
    expect_ok(ckpt_state_tensor_loaded(s, "opt", &loaded));
    assert_int_equal(loaded, 0);
    /* the checkpoint's attributes replaced the state's */
    int64_t step;
    expect_err(ckpt_state_get_int(s, "old", &step), CKPT_ENOTFOUND, "no attribute 'old'");
    expect_ok(ckpt_state_get_int(s, "step", &step));
    assert_int_equal(step, 42);
    assert_int_equal(ckpt_state_num_attrs(s), 5);

    /* MPI_COMM_WORLD without MPI_Init is also a local load */
    for (int k = 0; k < 3; k++)
        fill_sentinel(w[k], sizeof w[k]);
    expect_ok(ckpt_load(MPI_COMM_WORLD, ck, s, NULL));
    pattern_fill(0, CKPT_F64, 2, wshape, off[2], ext[2], want64);
    assert_memory_equal(w[2], want64, (size_t)volume(2, ext[2]) * 8);
    ckpt_state_free(s);
    assert_int_equal(mpi_initialized(), 0);
}

static void test_load_errors(void **st)
{
    (void)st;
    char want[4500];
    static float buf[13 * 8];
    ckpt_state *s;
    expect_ok(ckpt_state_create(&s));
    expect_ok(ckpt_state_add_replicated(s, "ghost", CKPT_F32, 1, (const int64_t[]){2}, buf));
    snprintf(want, sizeof want, "tensor 'ghost' is not in checkpoint '%s' (it has 12 tensors)", ck);
    expect_err_exact(ckpt_load(MPI_COMM_NULL, ck, s, NULL), CKPT_ENOTFOUND, want);
    ckpt_state_free(s);

    /* shape mismatch: nothing is read (the buffers keep their contents) */
    expect_ok(ckpt_state_create(&s));
    static double dbuf[16];
    fill_sentinel(dbuf, sizeof dbuf);
    expect_ok(ckpt_state_add_replicated(s, "d", CKPT_F64, 2, (const int64_t[]){4, 4}, dbuf));
    expect_ok(ckpt_state_add_replicated(s, "w", CKPT_F32, 2, (const int64_t[]){13, 8}, buf));
    snprintf(want, sizeof want, "tensor 'w': checkpoint '%s' has shape [13, 7], the state wants [13, 8]", ck);
    expect_err_exact(ckpt_load(MPI_COMM_NULL, ck, s, NULL), CKPT_EMISMATCH, want);
    for (size_t k = 0; k < sizeof dbuf; k++)
        assert_int_equal(((unsigned char *)dbuf)[k], 0xee);
    ckpt_state_free(s);

    expect_ok(ckpt_state_create(&s));
    expect_ok(ckpt_state_add_replicated(s, "i32", CKPT_F32, 3, T[find_def("i32")].shape, buf));
    expect_err_exact(ckpt_load(MPI_COMM_NULL, ck, s, NULL), CKPT_EMISMATCH,
                     "tensor 'i32' is stored as i32 and cannot be loaded as f32");
    ckpt_load_options lo;
    ckpt_load_options_init(&lo);
    assert_int_equal(lo.version, CKPT_LOAD_OPTIONS_VERSION);
    assert_int_equal(lo.verify, 1);
    lo.version = 99;
    expect_err(ckpt_load(MPI_COMM_NULL, ck, s, &lo), CKPT_EINVAL, "load options version 99");
    snprintf(want, sizeof want, "%s/none", dir);
    expect_err(ckpt_load(MPI_COMM_NULL, want, s, NULL), CKPT_ENOTFOUND, "no checkpoint at");
    expect_err(ckpt_load(MPI_COMM_NULL, ck, NULL, NULL), CKPT_EINVAL, "state is NULL");
    ckpt_state_free(s);
}

/* No temporary directory of a save to <name> is left in dir ("<name>.tmp-*", "<name>.tmp-*.old"),
 * and, unless `may_exist`, nothing named <name> either. */
static void expect_nothing_left(const char *name, int may_exist)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp-", name);
    while ((e = readdir(d)))
        if (strncmp(e->d_name, tmp, strlen(tmp)) == 0 || (!may_exist && strcmp(e->d_name, name) == 0))
            fail_msg("'%s' was left behind in %s", e->d_name, dir);
    closedir(d);
}

static void test_save_errors(void **st)
{
    (void)st;
    ckpt_save_options o = fast_opts();
    ckpt_state *s = saved_state();
    char want[4500], p[4400];
    snprintf(want, sizeof want, "cannot save to '%s': it already exists (overwriting was not asked for)", ck);
    expect_err_exact(ckpt_save(MPI_COMM_NULL, ck, s, &o), CKPT_EEXIST, want);
    /* overwrite swaps in the new checkpoint */
    expect_ok(ckpt_state_set_int(s, "step", 43));
    o.overwrite = 1;
    expect_ok(ckpt_save(MPI_COMM_NULL, ck, s, &o));
    ckpt_reader *r = open_ck();
    int64_t step;
    expect_ok(ckpt_state_get_int(ckpt_reader_attrs(r), "step", &step));
    assert_int_equal(step, 43);
    ckpt_reader_close(r);
    expect_nothing_left("ck", 1);

    snprintf(p, sizeof p, "%s/no-such-dir/ck", dir);
    expect_err(ckpt_save(MPI_COMM_NULL, p, s, &o), CKPT_ENOTFOUND, "parent directory");
    o.piece_bytes = 10;
    expect_err_exact(ckpt_save(MPI_COMM_NULL, ck, s, &o), CKPT_EINVAL, "piece_bytes 10 outside 64..1073741824");
    o = fast_opts();
    o.version = 0;
    expect_err(ckpt_save(MPI_COMM_NULL, ck, s, &o), CKPT_EINVAL, "save options version 0");
    expect_err(ckpt_save(MPI_COMM_NULL, "", s, NULL), CKPT_EINVAL, "path is empty");
    expect_err(ckpt_save(MPI_COMM_NULL, ck, NULL, NULL), CKPT_EINVAL, "state is NULL");
    ckpt_state_free(s);

    /* a gap is found before anything is written, and nothing is left behind */
    expect_ok(ckpt_state_create(&s));
    static float half[3 * 7];
    expect_ok(ckpt_state_add_tensor(s, "w", CKPT_F32, 2, (const int64_t[]){6, 7}, 0));
    expect_ok(ckpt_state_add_box(s, "w", (const int64_t[]){0, 0}, (const int64_t[]){3, 7}, half));
    o = fast_opts();
    snprintf(p, sizeof p, "%s/gap", dir);
    expect_err(ckpt_save(MPI_COMM_NULL, p, s, &o), CKPT_ECOVERAGE, "cover 21 of its 42 elements");
    expect_nothing_left("gap", 0);
    ckpt_state_free(s);
}

/* A second checkpoint: w f32 [13,7] as one box (7 pieces of 2 rows), then damaged. */
static void test_corruption(void **st)
{
    (void)st;
    char p[4400], f[4500], want[4700];
    snprintf(p, sizeof p, "%s/ck2", dir);
    unit_rmtree(p);
    ckpt_state *s;
    expect_ok(ckpt_state_create(&s));
    static float w[13 * 7];
    const int64_t shape[2] = {13, 7}, zero[2] = {0, 0};
    pattern_fill(0, CKPT_F32, 2, shape, zero, shape, w);
    expect_ok(ckpt_state_add_replicated(s, "w", CKPT_F32, 2, shape, w));
    ckpt_save_options o = fast_opts();
    expect_ok(ckpt_save(MPI_COMM_NULL, p, s, &o));

    /* change element (0,0) of the stored dataset behind the library's back */
    snprintf(f, sizeof f, "%s/rank-00000.h5", p);
    hid_t h = H5Fopen(f, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(h >= 0);
    hid_t ds = H5Dopen2(h, "/boxes/0", H5P_DEFAULT);
    assert_true(ds >= 0);
    hid_t fs = H5Dget_space(ds);
    hsize_t start[2] = {0, 0}, count[2] = {1, 1};
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(2, count, NULL);
    float bad = 1000.0f;
    assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &bad) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(ds);
    H5Fclose(h);

    ckpt_reader *r = NULL;
    expect_ok(ckpt_reader_open(p, &r)); /* the index is intact */
    static float got[13 * 7];
    snprintf(want, sizeof want, "checksum mismatch in tensor 'w', box 0 [0:13, 0:7] (written by rank 0), piece 0 of 7, "
             "file '%s' dataset /boxes/0: stored xxh3 ", f);
    expect_err(ckpt_reader_read(r, "w", CKPT_F32, zero, shape, got, 1), CKPT_ECORRUPT, want);
    /* a region that avoids piece 0 (rows 0..1) verifies fine */
    expect_ok(ckpt_reader_read(r, "w", CKPT_F32, (const int64_t[]){2, 0}, (const int64_t[]){11, 7}, got, 1));
    assert_memory_equal(got, w + 14, 11 * 7 * sizeof(float));
    /* without verification the damaged value comes through */
    expect_ok(ckpt_reader_read(r, "w", CKPT_F32, zero, shape, got, 0));
    assert_true(got[0] == 1000.0f);
    assert_memory_equal(got + 1, w + 1, (13 * 7 - 1) * sizeof(float));
    ckpt_reader_close(r);

    ckpt_state_free(s);
    expect_ok(ckpt_state_create(&s));
    expect_ok(ckpt_state_add_replicated(s, "w", CKPT_F32, 2, shape, got));
    expect_err(ckpt_load(MPI_COMM_NULL, p, s, NULL), CKPT_ECORRUPT, "checksum mismatch in tensor 'w'");
    ckpt_load_options lo;
    ckpt_load_options_init(&lo);
    lo.verify = 0;
    expect_ok(ckpt_load(MPI_COMM_NULL, p, s, &lo));
    assert_true(got[0] == 1000.0f);
    ckpt_state_free(s);

    /* a missing data file is named with its writer */
    char moved[4600];
    snprintf(moved, sizeof moved, "%s.moved", f);
    assert_int_equal(rename(f, moved), 0);
    expect_ok(ckpt_reader_open(p, &r));
    snprintf(want, sizeof want, "data file '%s' (written by rank 0) is missing", f);
    expect_err(ckpt_reader_read(r, "w", CKPT_F32, zero, shape, got, 1), CKPT_ENOTFOUND, want);
    ckpt_reader_close(r);
    assert_int_equal(rename(moved, f), 0);

    /* an edited index no longer matches its commit marker */
    snprintf(f, sizeof f, "%s/index.h5", p);
    FILE *fp = fopen(f, "ab");
    assert_non_null(fp);
    fputc(0, fp);
    fclose(fp);
    r = (ckpt_reader *)dir;
    expect_err(ckpt_reader_open(p, &r), CKPT_ECORRUPT, "does not match its commit marker");
    assert_null(r);
    /* no marker at all: incomplete */
    snprintf(f, sizeof f, "%s/COMMITTED", p);
    assert_int_equal(unlink(f), 0);
    expect_err(ckpt_reader_open(p, &r), CKPT_EINCOMPLETE, "has no COMMITTED marker");
}

static int teardown(void **st)
{
    (void)st;
    for (int i = 0; i < NT; i++)
        for (int b = 0; b < 3; b++)
            free(mem[i][b]);
    return 0;
}

int main(int argc, char **argv)
{
    unit_scratch(argc, argv, "unit.reader_local", dir, sizeof dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_without_mpi), /* first: the others read what it saved */
        cmocka_unit_test(test_reader_info),
        cmocka_unit_test(test_reader_attrs),
        cmocka_unit_test(test_read_whole),
        cmocka_unit_test(test_read_random_regions),
        cmocka_unit_test(test_read_convert),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_load_local),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_save_errors),
        cmocka_unit_test(test_corruption),
    };
    int rc = cmocka_run_group_tests_name("unit.reader_local", tests, NULL, teardown);
    if (rc == 0)
        unit_rmtree(dir);
    return rc;
}
