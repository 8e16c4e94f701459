/* test_reshard.c -- save with N ranks, load with M ranks, for any N and M.
 *
 *   mpiexec -n N test_reshard save DIR [shared|group|groupK] [zstd]
 *                                          writes the catalog below, sharded over N ranks, in the
 *                                          file-per-rank (default), shared or file-per-group layout
 *                                          (one file per node, or per K ranks), optionally
 *                                          zstd-compressed. The catalog must not change: the
 *                                          committed version-1 fixtures were written from it.
 *   mpiexec -n M test_reshard load DIR     loads it under two other shardings and compares
 *                                           every byte with the expected global tensor
 *
 * The catalog covers 0-D to 4-D tensors, uneven splits along different dims, replicated
 * tensors, enumerated (block) boxes, every dtype, a zero-size tensor, multi-piece boxes and
 * dtype conversion on load. Every rank checks its own boxes; a CMocka test per phase. */
#include "pattern.h"

#include <ckpt.h>

#include <mpi.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

enum kind { SHARD, REPL, BLOCKS };

typedef struct entry {
    const char *name;
    ckpt_dtype dtype;
    int ndim;
    int64_t shape[4];
    enum kind save_kind;
    int save_dim;
    enum kind load_kind;
    int load_dim;
} entry;

static const entry catalog[] = {
    {"scalar", CKPT_F64, 0, {0}, REPL, 0, REPL, 0},
    {"vec", CKPT_F32, 1, {13}, SHARD, 0, SHARD, 0},
    {"mat", CKPT_F32, 2, {7, 5}, SHARD, 1, SHARD, 0},
    {"cube", CKPT_BF16, 3, {5, 3, 4}, SHARD, 0, SHARD, 2},
    {"t4", CKPT_F16, 4, {3, 2, 5, 2}, SHARD, 2, SHARD, 0},
    {"rep", CKPT_F64, 2, {3, 3}, REPL, 0, SHARD, 1},
    {"empty", CKPT_F32, 2, {0, 4}, SHARD, 0, SHARD, 1},
    {"blocks", CKPT_I32, 2, {6, 9}, BLOCKS, 0, SHARD, 1},
    {"big", CKPT_F32, 2, {300, 70}, SHARD, 0, SHARD, 1},
    {"dt/f32", CKPT_F32, 2, {6, 3}, SHARD, 0, SHARD, 1},
    {"dt/f64", CKPT_F64, 2, {6, 3}, SHARD, 0, SHARD, 1},
    {"dt/f16", CKPT_F16, 2, {6, 3}, SHARD, 0, SHARD, 1},
    {"dt/bf16", CKPT_BF16, 2, {6, 3}, SHARD, 0, SHARD, 1},
    {"dt/i8", CKPT_I8, 2, {6, 3}, SHARD, 0, SHARD, 1},
    {"dt/i16", CKPT_I16, 2, {6, 3}, SHARD, 0, SHARD, 1},
    {"dt/i32", CKPT_I32, 2, {6, 3}, SHARD, 0, SHARD, 1},
    {"dt/i64", CKPT_I64, 2, {6, 3}, SHARD, 0, SHARD, 1},
    {"dt/u8", CKPT_U8, 2, {6, 3}, SHARD, 0, SHARD, 1},
    {"dt/bool", CKPT_BOOL, 2, {6, 3}, SHARD, 0, SHARD, 1},
};
#define NCAT ((int)(sizeof catalog / sizeof catalog[0]))

static int rank, nranks;
static const char *dir;
static int use_shared, use_zstd, use_group = -1; /* group: -1 off, 0 per node, K every K ranks */

/* Boxes of `e` this rank holds under kind/dim; returns how many (at most 8). */
static int boxes_of(const entry *e, enum kind kind, int dim, int64_t off[][4], int64_t ext[][4])
{
    if (kind == REPL || e->ndim == 0) {
        for (int d = 0; d < e->ndim; d++) {
            off[0][d] = 0;
            ext[0][d] = e->shape[d];
        }
        return 1;
    }
    if (kind == SHARD) {
        assert_int_equal(ckpt_shard_box(e->ndim, e->shape, dim, rank, nranks, off[0], ext[0]), CKPT_OK);
        return 1;
    }
    /* BLOCKS: a 2x3 grid of blocks dealt round-robin, so ranks hold 0, 1 or several */
    int n = 0;
    for (int b = 0; b < 6; b++) {
        if (b % nranks != rank)
            continue;
        int bi = b / 3, bj = b % 3;
        off[n][0] = bi * 3;
        ext[n][0] = 3;
        off[n][1] = bj * 3;
        ext[n][1] = 3;
        n++;
    }
    return n;
}

static size_t box_bytes(const entry *e, const int64_t *ext, ckpt_dtype d)
{
    int64_t n = 1;
    for (int k = 0; k < e->ndim; k++)
        n *= ext[k];
    return (size_t)n * ckpt_dtype_size(d);
}

typedef struct held {
    void *data[NCAT][8];
    int64_t off[NCAT][8][4], ext[NCAT][8][4];
    int nb[NCAT];
} held;

static void free_held(held *h)
{
    for (int i = 0; i < NCAT; i++)
        for (int j = 0; j < h->nb[i]; j++)
            free(h->data[i][j]);
}

static void test_save(void **unused)
{
    (void)unused;
    ckpt_state *s;
    held *h = calloc(1, sizeof *h);
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    for (int i = 0; i < NCAT; i++) {
        const entry *e = &catalog[i];
        assert_int_equal(ckpt_state_add_tensor(s, e->name, e->dtype, e->ndim, e->shape, 0), CKPT_OK);
        h->nb[i] = boxes_of(e, e->save_kind, e->save_dim, h->off[i], h->ext[i]);
        for (int j = 0; j < h->nb[i]; j++) {
            h->data[i][j] = malloc(box_bytes(e, h->ext[i][j], e->dtype) + 1);
            pattern_fill(i, e->dtype, e->ndim, e->shape, h->off[i][j], h->ext[i][j], h->data[i][j]);
            assert_int_equal(ckpt_state_add_box(s, e->name, h->off[i][j], h->ext[i][j], h->data[i][j]), CKPT_OK);
        }
    }
    assert_int_equal(ckpt_state_set_int(s, "step", 1234), CKPT_OK);
    assert_int_equal(ckpt_state_set_double(s, "lr", 3e-4), CKPT_OK);
    assert_int_equal(ckpt_state_set_string(s, "config/model", "gpt tiny"), CKPT_OK);
    unsigned char rng[40];
    for (int i = 0; i < 40; i++)
        rng[i] = (unsigned char)(i * 7);
    assert_int_equal(ckpt_state_set_bytes(s, "rng", rng, sizeof rng), CKPT_OK);
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.piece_bytes = 1000; /* many pieces, partial pieces on every reshard */
    o.layout = use_shared ? CKPT_LAYOUT_SHARED : use_group >= 0 ? CKPT_LAYOUT_GROUP : CKPT_LAYOUT_PER_RANK;
    if (use_group >= 0)
        o.group_size = use_group;
    if (use_zstd) {
        o.compress = CKPT_COMPRESS_ZSTD;
        o.level = 3;
        o.threads = 2;
    }
    int rc = ckpt_save(MPI_COMM_WORLD, dir, s, &o);
    if (rc)
        fprintf(stderr, "rank %d: save: %s\n", rank, ckpt_errmsg());
    assert_int_equal(rc, CKPT_OK);
    ckpt_state_free(s);
    free_held(h);
    free(h);
}

/* Loads every catalog tensor under `which` sharding (0: the load_kind of the catalog, 1: the
 * whole tensor on every rank), optionally as dtype `as`, and compares. */
static void load_and_check(int whole)
{
    ckpt_state *s;
    held *h = calloc(1, sizeof *h);
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    for (int i = 0; i < NCAT; i++) {
        const entry *e = &catalog[i];
        assert_int_equal(ckpt_state_add_tensor(s, e->name, e->dtype, e->ndim, e->shape, 0), CKPT_OK);
        h->nb[i] = boxes_of(e, whole ? REPL : e->load_kind, e->load_dim, h->off[i], h->ext[i]);
        for (int j = 0; j < h->nb[i]; j++) {
            size_t n = box_bytes(e, h->ext[i][j], e->dtype);
            h->data[i][j] = malloc(n + 1);
            memset(h->data[i][j], 0xA5, n);
            assert_int_equal(ckpt_state_add_box(s, e->name, h->off[i][j], h->ext[i][j], h->data[i][j]), CKPT_OK);
        }
    }
    /* conversions: the f32 tensor read as f64 and bf16, the bf16 one as f32 */
    double conv64[18];
    uint16_t conv16[18];
    float conv32[18];
    int64_t zero[2] = {0, 0}, full[2] = {6, 3};
    assert_int_equal(ckpt_state_add_tensor(s, "dt/f32", CKPT_F64, 2, full, 0), CKPT_EMISMATCH);
    ckpt_state *c;
    assert_int_equal(ckpt_state_create(&c), CKPT_OK);
    assert_int_equal(ckpt_state_add_tensor(c, "dt/f32", CKPT_F64, 2, full, 0), CKPT_OK);
    assert_int_equal(ckpt_state_add_box(c, "dt/f32", zero, full, conv64), CKPT_OK);
    assert_int_equal(ckpt_state_add_tensor(c, "dt/f16", CKPT_BF16, 2, full, 0), CKPT_OK);
    assert_int_equal(ckpt_state_add_box(c, "dt/f16", zero, full, conv16), CKPT_OK);
    assert_int_equal(ckpt_state_add_tensor(c, "dt/bf16", CKPT_F32, 2, full, 0), CKPT_OK);
    assert_int_equal(ckpt_state_add_box(c, "dt/bf16", zero, full, conv32), CKPT_OK);
    int64_t missing_shape[1] = {3};
    assert_int_equal(ckpt_state_add_tensor(c, "not/there", CKPT_F32, 1, missing_shape, CKPT_TENSOR_OPTIONAL), CKPT_OK);

    int rc = ckpt_load(MPI_COMM_WORLD, dir, s, NULL);
    if (rc)
        fprintf(stderr, "rank %d: load: %s\n", rank, ckpt_errmsg());
    int rc2 = ckpt_load(MPI_COMM_WORLD, dir, c, NULL);
    if (rc2)
        fprintf(stderr, "rank %d: load conversions: %s\n", rank, ckpt_errmsg());
    assert_int_equal(rc, CKPT_OK);
    assert_int_equal(rc2, CKPT_OK);

    for (int i = 0; i < NCAT; i++) {
        const entry *e = &catalog[i];
        for (int j = 0; j < h->nb[i]; j++) {
            size_t n = box_bytes(e, h->ext[i][j], e->dtype);
            void *want = malloc(n + 1);
            pattern_fill(i, e->dtype, e->ndim, e->shape, h->off[i][j], h->ext[i][j], want);
            if (memcmp(want, h->data[i][j], n) != 0)
                fail_msg("rank %d of %d: tensor '%s' box %d differs from the expected bytes", rank, nranks, e->name, j);
            free(want);
        }
    }
    /* conversions are exact for these values */
    for (int k = 0; k < 18; k++) {
        double v9 = pattern_value(9, k), v11 = pattern_value(11, k), v12 = pattern_value(12, k);
        assert_true(conv64[k] == v9);
        float f = (float)v11;
        uint32_t x;
        memcpy(&x, &f, 4);
        assert_int_equal(conv16[k], (uint16_t)(x >> 16));
        assert_true(conv32[k] == (float)v12);
    }
    int loaded = -1;
    assert_int_equal(ckpt_state_tensor_loaded(c, "not/there", &loaded), CKPT_OK);
    assert_int_equal(loaded, 0);
    assert_int_equal(ckpt_state_tensor_loaded(c, "dt/f32", &loaded), CKPT_OK);
    assert_int_equal(loaded, 1);
    int64_t step = 0;
    double lr = 0;
    const char *model = NULL;
    const void *rng = NULL;
    size_t rlen = 0;
    assert_int_equal(ckpt_state_get_int(s, "step", &step), CKPT_OK);
    assert_int_equal(step, 1234);
    assert_int_equal(ckpt_state_get_double(s, "lr", &lr), CKPT_OK);
    assert_true(lr == 3e-4);
    assert_int_equal(ckpt_state_get_string(s, "config/model", &model), CKPT_OK);
    assert_string_equal(model, "gpt tiny");
    assert_int_equal(ckpt_state_get_bytes(s, "rng", &rng, &rlen), CKPT_OK);
    assert_int_equal(rlen, 40);
    assert_int_equal(((const unsigned char *)rng)[39], (39 * 7) & 0xff);
    ckpt_state_free(c);
    ckpt_state_free(s);
    free_held(h);
    free(h);
}

static void test_load_resharded(void **unused)
{
    (void)unused;
    load_and_check(0);
}

static void test_load_whole(void **unused)
{
    (void)unused;
    load_and_check(1);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    for (int i = 3; i < argc; i++) {
        use_shared |= strcmp(argv[i], "shared") == 0;
        use_zstd |= strcmp(argv[i], "zstd") == 0;
        if (strncmp(argv[i], "group", 5) == 0)
            use_group = atoi(argv[i] + 5);
    }
    if (argc < 3 || (strcmp(argv[1], "save") && strcmp(argv[1], "load"))) {
        fprintf(stderr, "usage: test_reshard save|load DIR [shared] [zstd]\n");
        MPI_Finalize();
        return 2;
    }
    dir = argv[2];
    int failed;
    if (strcmp(argv[1], "save") == 0) {
        if (rank == 0) {
            char cmd[8600];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            if (system(cmd) != 0)
                fprintf(stderr, "cannot clear %s\n", dir);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_save)};
        failed = cmocka_run_group_tests_name("reshard_save", tests, NULL, NULL);
    } else {
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_load_resharded), cmocka_unit_test(test_load_whole)};
        failed = cmocka_run_group_tests_name("reshard_load", tests, NULL, NULL);
    }
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any ? 1 : 0;
}
