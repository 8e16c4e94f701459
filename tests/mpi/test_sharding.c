/* test_sharding.c -- regular and irregular shardings in one checkpoint (index format 2).
 *
 *   mpiexec -n 4 test_sharding save DIR   every kind of sharding below, then checks how the
 *                                          index stores each (grid descriptor or explicit rows)
 *   mpiexec -n M test_sharding load DIR   loads them row-sharded over M ranks (and whole) and
 *                                          compares every byte
 *
 * The save needs 4 ranks. Tensors (f32, pattern.h contents):
 *   shard     Shard(0) of [10, 3]                       -> grid, writers 0..3
 *   grid2d    [6, 8] in 2 x 2 blocks, rank = 2 * row + col -> grid, strides (2, 1)
 *   hsdp      [8, 2], Shard(0) over ranks {0,1} replicated on {2,3}  -> grid, writers 0, 1
 *   repl      [5] on every rank                        -> grid of one cell, writer 0
 *   reversed  Shard(0) of [8] in reverse rank order    -> grid, stride -1
 *   irregular rows 0:1, 1:5, 5:6, 6:12 of [12, 2]       -> explicit
 *   shifted   rows 0:3, 3:7, 7:9, 9:12 of [12]: a Shard(0) with rank 1's box moved one row
 *                                                      -> explicit (it only looks regular)
 *   blocks    [4, 4]: two 2x2 blocks (ranks 0, 1), nothing on rank 2, a 2x4 strip (rank 3) -> explicit */
#include "pattern.h"

#include <ckpt.h>

#include "meta.h"
#include "reader.h"

#include <mpi.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int rank, nranks;
static const char *dir;

typedef struct tdef {
    const char *name;
    int ndim;
    int64_t shape[2];
    ckpt_sharding want;
} tdef;

static const tdef T[] = {
    {"shard", 2, {10, 3}, CKPT_SHARDING_GRID},      {"grid2d", 2, {6, 8}, CKPT_SHARDING_GRID},
    {"hsdp", 2, {8, 2}, CKPT_SHARDING_GRID},        {"repl", 1, {5}, CKPT_SHARDING_GRID},
    {"reversed", 1, {8}, CKPT_SHARDING_GRID},       {"irregular", 2, {12, 2}, CKPT_SHARDING_EXPLICIT},
    {"shifted", 1, {12}, CKPT_SHARDING_EXPLICIT},   {"blocks", 2, {4, 4}, CKPT_SHARDING_EXPLICIT},
};
#define NT ((int)(sizeof T / sizeof T[0]))

/* The boxes rank r holds of tensor i at save time (at most 2). */
static int save_boxes(int i, int r, int64_t off[][2], int64_t ext[][2])
{
    const tdef *t = &T[i];
    switch (i) {
    case 0: ckpt_shard_box(2, t->shape, 0, r, 4, off[0], ext[0]); return 1;
    case 1: off[0][0] = 3 * (r / 2), off[0][1] = 4 * (r % 2), ext[0][0] = 3, ext[0][1] = 4; return 1;
    case 2: ckpt_shard_box(2, t->shape, 0, r % 2, 2, off[0], ext[0]); return 1;
    case 3: off[0][0] = 0, ext[0][0] = 5; return 1;
    case 4: ckpt_shard_box(1, t->shape, 0, 3 - r, 4, off[0], ext[0]); return 1;
    case 5: {
        static const int64_t o[4] = {0, 1, 5, 6}, e[4] = {1, 4, 1, 6};
        off[0][0] = o[r], off[0][1] = 0, ext[0][0] = e[r], ext[0][1] = 2;
        return 1;
    }
    case 6: {
        static const int64_t o[4] = {0, 3, 7, 9}, e[4] = {3, 4, 2, 3};
        off[0][0] = o[r], ext[0][0] = e[r];
        return 1;
    }
    default: /* [0:2, 0:2] on rank 0, [0:2, 2:4] on rank 1, nothing on rank 2, [2:4, 0:4] on rank 3 */
        if (r == 2)
            return 0;
        off[0][0] = r == 3 ? 2 : 0, off[0][1] = r == 1 ? 2 : 0;
        ext[0][0] = 2, ext[0][1] = r == 3 ? 4 : 2;
        return 1;
    }
}

static void test_save(void **unused)
{
    (void)unused;
    assert_int_equal(nranks, 4);
    if (rank == 0) { /* a fresh directory every run */
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    ckpt_state *s;
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    void *mem[NT][2] = {{0}};
    for (int i = 0; i < NT; i++) {
        const tdef *t = &T[i];
        int64_t off[2][2], ext[2][2];
        int n = save_boxes(i, rank, off, ext);
        assert_int_equal(ckpt_state_add_tensor(s, t->name, CKPT_F32, t->ndim, t->shape, 0), CKPT_OK);
        for (int b = 0; b < n; b++) {
            int64_t v = 1;
            for (int d = 0; d < t->ndim; d++)
                v *= ext[b][d];
            mem[i][b] = malloc((size_t)v * 4 + 4);
            pattern_fill(i, CKPT_F32, t->ndim, t->shape, off[b], ext[b], mem[i][b]);
            assert_int_equal(ckpt_state_add_box(s, t->name, off[b], ext[b], mem[i][b]), CKPT_OK);
        }
    }
    int rc = ckpt_save(MPI_COMM_WORLD, dir, s, NULL);
    if (rc)
        fprintf(stderr, "rank %d: %s\n", rank, ckpt_errmsg());
    assert_int_equal(rc, CKPT_OK);
    /* how the index holds each */
    ckpt_reader *r;
    assert_int_equal(ckpt_reader_open(dir, &r), CKPT_OK);
    const ckpt_index *ix = ckpt_reader_index(r);
    for (int i = 0; i < NT; i++) {
        int ti;
        assert_int_equal(ckpt_reader_find(r, T[i].name, &ti), CKPT_OK);
        const ckpt_itensor *t = &ix->tensors[ti];
        if (t->sharding != T[i].want)
            fail_msg("tensor '%s' is stored %s, expected %s", T[i].name,
                     t->sharding == CKPT_SHARDING_GRID ? "as a grid" : "explicitly",
                     T[i].want == CKPT_SHARDING_GRID ? "a grid" : "explicit rows");
    }
    int ti;
    assert_int_equal(ckpt_reader_find(r, "grid2d", &ti), CKPT_OK);
    assert_int_equal(ix->tensors[ti].grid.stride[0], 2);
    assert_int_equal(ix->tensors[ti].grid.stride[1], 1);
    assert_int_equal(ckpt_reader_find(r, "reversed", &ti), CKPT_OK);
    assert_int_equal(ix->tensors[ti].grid.writer0, 3);
    assert_int_equal(ix->tensors[ti].grid.stride[0], -1);
    assert_int_equal(ckpt_reader_find(r, "hsdp", &ti), CKPT_OK);
    assert_int_equal(ix->tensors[ti].nboxes, 2);
    assert_int_equal(ix->nrows, 4 + 4 + 3);
    ckpt_reader_close(r);
    ckpt_state_free(s);
    for (int i = 0; i < NT; i++)
        for (int b = 0; b < 2; b++)
            free(mem[i][b]);
}

static void load_and_check(int whole)
{
    ckpt_state *s;
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    void *mem[NT];
    int64_t offs[NT][2], exts[NT][2];
    for (int i = 0; i < NT; i++) {
        const tdef *t = &T[i];
        if (whole) {
            memset(offs[i], 0, sizeof offs[i]);
            memcpy(exts[i], t->shape, sizeof exts[i]);
        } else {
            ckpt_shard_box(t->ndim, t->shape, t->ndim - 1, rank, nranks, offs[i], exts[i]); /* by columns */
        }
        int64_t v = 1;
        for (int d = 0; d < t->ndim; d++)
            v *= exts[i][d];
        mem[i] = malloc((size_t)v * 4 + 4);
        memset(mem[i], 0xA5, (size_t)v * 4);
        assert_int_equal(ckpt_state_add_tensor(s, t->name, CKPT_F32, t->ndim, t->shape, 0), CKPT_OK);
        assert_int_equal(ckpt_state_add_box(s, t->name, offs[i], exts[i], mem[i]), CKPT_OK);
    }
    int rc = ckpt_load(MPI_COMM_WORLD, dir, s, NULL);
    if (rc)
        fprintf(stderr, "rank %d: %s\n", rank, ckpt_errmsg());
    assert_int_equal(rc, CKPT_OK);
    for (int i = 0; i < NT; i++) {
        const tdef *t = &T[i];
        int64_t v = 1;
        for (int d = 0; d < t->ndim; d++)
            v *= exts[i][d];
        float *want = malloc((size_t)v * 4 + 4);
        pattern_fill(i, CKPT_F32, t->ndim, t->shape, offs[i], exts[i], want);
        if (memcmp(want, mem[i], (size_t)v * 4) != 0)
            fail_msg("rank %d of %d: tensor '%s' differs", rank, nranks, t->name);
        free(want);
        free(mem[i]);
    }
    ckpt_state_free(s);
}

static void test_load_columns(void **unused)
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
    if (argc < 3 || (strcmp(argv[1], "save") && strcmp(argv[1], "load"))) {
        fprintf(stderr, "usage: test_sharding save|load DIR\n");
        MPI_Finalize();
        return 2;
    }
    dir = argv[2];
    int rc;
    if (!strcmp(argv[1], "save")) {
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_save)};
        rc = cmocka_run_group_tests(tests, NULL, NULL);
    } else {
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_load_columns), cmocka_unit_test(test_load_whole)};
        rc = cmocka_run_group_tests(tests, NULL, NULL);
    }
    MPI_Finalize();
    return rc;
}
