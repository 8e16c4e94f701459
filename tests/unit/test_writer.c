/* test_writer.c -- one process writes the checkpoint N ranks would have written; no MPI_Init. */
#include "pattern.h"
#include "unit.h"

#include <ckpt.h>
#include <hdf5.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[4096];

static void path_of(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", dir, name); }

/* Writes "w" f32 [30, 7] as 3 ranks' Shard(0) boxes plus a replicated "b" [7], piece by piece. */
static void write_sharded(const char *name, ckpt_layout layout, ckpt_compress comp)
{
    char p[4200];
    path_of(p, sizeof p, name);
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.piece_bytes = 64; /* 2 rows of 7 floats per piece */
    o.layout = layout;
    o.compress = comp;
    ckpt_writer *w;
    int64_t shape[2] = {30, 7}, bshape[1] = {7}, zero[1] = {0};
    expect_ok(ckpt_writer_open(p, 3, &o, &w));
    expect_ok(ckpt_writer_add_tensor(w, "w", CKPT_F32, 2, shape));
    expect_ok(ckpt_writer_add_tensor(w, "b", CKPT_F32, 1, bshape));
    int64_t eshape[2] = {0, 4}; /* zero-size: no boxes, but the shared layout still has its dataset */
    expect_ok(ckpt_writer_add_tensor(w, "e", CKPT_F32, 2, eshape));
    for (int r = 0; r < 3; r++) {
        int64_t off[2], ext[2];
        expect_ok(ckpt_shard_box(2, shape, 0, r, 3, off, ext));
        expect_ok(ckpt_writer_add_box(w, "w", off, ext, r));
        expect_ok(ckpt_writer_add_box(w, "b", zero, bshape, r)); /* replicas: written once */
    }
    ckpt_state *a;
    expect_ok(ckpt_state_create(&a));
    expect_ok(ckpt_state_set_int(a, "step", 42));
    expect_ok(ckpt_writer_set_attrs(w, a));
    ckpt_state_free(a);
    int64_t np = 0;
    expect_ok(ckpt_writer_box_piece(w, "b", 0, -1, NULL, NULL, &np));
    assert_int_equal(np, 1);
    float buf[256];
    for (int64_t j = 0; j < 3; j++) {
        expect_ok(ckpt_writer_box_piece(w, "w", j, -1, NULL, NULL, &np));
        assert_int_equal(np, 5); /* 10 rows per box, 2 rows per piece */
        for (int64_t k = 0; k < np; k++) {
            int64_t off[2], ext[2];
            expect_ok(ckpt_writer_box_piece(w, "w", j, k, off, ext, NULL));
            pattern_fill(1, CKPT_F32, 2, shape, off, ext, buf);
            expect_ok(ckpt_writer_write(w, "w", off, ext, buf));
        }
    }
    pattern_fill(2, CKPT_F32, 1, bshape, zero, bshape, buf);
    expect_ok(ckpt_writer_write(w, "b", zero, bshape, buf));
    /* declarations are closed once data is written */
    expect_err(ckpt_writer_add_tensor(w, "late", CKPT_F32, 1, bshape), CKPT_EINVAL, "declarations are closed");
    expect_ok(ckpt_writer_commit(w));
}

static void check_written(const char *name, int world, const char *layout)
{
    char p[4200];
    path_of(p, sizeof p, name);
    ckpt_reader *r;
    expect_ok(ckpt_reader_open(p, &r));
    assert_int_equal(ckpt_reader_world_size(r), world);
    assert_string_equal(ckpt_layout_name(ckpt_reader_layout(r)), layout);
    int i;
    expect_ok(ckpt_reader_find(r, "b", &i));
    ckpt_tensor_info ti;
    expect_ok(ckpt_reader_tensor_info(r, i, &ti));
    assert_int_equal(ti.nboxes, 1);
    float got[210], want[210];
    int64_t shape[2] = {30, 7}, zero[2] = {0, 0};
    expect_ok(ckpt_reader_read(r, "w", CKPT_F32, zero, shape, got, 1));
    pattern_fill(1, CKPT_F32, 2, shape, zero, shape, want);
    assert_memory_equal(got, want, sizeof got);
    int64_t step = 0;
    expect_ok(ckpt_state_get_int(ckpt_reader_attrs(r), "step", &step));
    assert_int_equal(step, 42);
    ckpt_reader_close(r);
}

static void test_per_rank(void **u)
{
    (void)u;
    write_sharded("pr", CKPT_LAYOUT_PER_RANK, CKPT_COMPRESS_NONE);
    check_written("pr", 3, "file-per-rank");
    char p[4200];
    struct stat st;
    path_of(p, sizeof p, "pr/rank-00002.h5");
    assert_int_equal(stat(p, &st), 0);
}

static void test_shared_zstd(void **u)
{
    (void)u;
    write_sharded("sh", CKPT_LAYOUT_SHARED, CKPT_COMPRESS_ZSTD);
    check_written("sh", 3, "shared");
    char p[4200];
    path_of(p, sizeof p, "sh/data.h5");
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Lexists(f, "/tensors/e", H5P_DEFAULT) > 0);
    hid_t d = H5Dopen2(f, "/tensors/e", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2];
    assert_int_equal(H5Sget_simple_extent_dims(sp, dims, NULL), 2);
    assert_int_equal(dims[0], 0);
    assert_int_equal(dims[1], 4);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
}

static void test_errors(void **u)
{
    (void)u;
    char p[4200];
    path_of(p, sizeof p, "bad");
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.piece_bytes = 64;
    ckpt_writer *w;
    int64_t shape[2] = {8, 7}, off[2] = {0, 0}, ext[2] = {8, 7}, half[2] = {4, 7};
    float buf[64] = {0};
    expect_err(ckpt_writer_open(p, 0, &o, &w), CKPT_EINVAL, "world size 0 is below 1");
    expect_ok(ckpt_writer_open(p, 2, &o, &w));
    expect_ok(ckpt_writer_add_tensor(w, "w", CKPT_F32, 2, shape));
    expect_err(ckpt_writer_add_box(w, "w", off, ext, 2), CKPT_EINVAL, "rank 2 outside 0..1");
    expect_err(ckpt_writer_add_box(w, "nope", off, ext, 0), CKPT_ENOTFOUND, "tensor 'nope' was not declared");
    expect_ok(ckpt_writer_add_box(w, "w", off, half, 0));
    int64_t off1[2] = {4, 0};
    expect_ok(ckpt_writer_add_box(w, "w", off1, half, 1));
    int64_t one[2] = {1, 7};
    expect_err(ckpt_writer_write(w, "w", off, one, buf), CKPT_EINVAL, "does not consist of whole pieces");
    int64_t two[2] = {2, 7};
    expect_ok(ckpt_writer_write(w, "w", off, two, buf));
    expect_err(ckpt_writer_write(w, "w", off, two, buf), CKPT_EINVAL, "written twice");
    expect_err(ckpt_writer_write(w, "w", off, ext, buf), CKPT_EINVAL, "lies in no single declared box");
    expect_err(ckpt_writer_commit(w), CKPT_ECOVERAGE, "tensor 'w': piece 1 of box [0:4, 0:7] was never written");
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0); /* nothing committed, debris removed */
    /* a gap in the declared boxes is found by the planner */
    expect_ok(ckpt_writer_open(p, 2, &o, &w));
    expect_ok(ckpt_writer_add_tensor(w, "w", CKPT_F32, 2, shape));
    expect_ok(ckpt_writer_add_box(w, "w", off, half, 0));
    expect_err(ckpt_writer_commit(w), CKPT_ECOVERAGE, "cover 28 of its 56 elements");
}

/* The shared layout needs no MPI: one process writes data.h5 through the POSIX driver. */
static void test_shared_save_without_mpi(void **u)
{
    (void)u;
    char p[4200];
    path_of(p, sizeof p, "nompi-shared");
    int64_t shape[2] = {30, 7}, zero[2] = {0, 0};
    float data[210], back[210];
    pattern_fill(1, CKPT_F32, 2, shape, zero, shape, data);
    ckpt_state *s;
    expect_ok(ckpt_state_create(&s));
    expect_ok(ckpt_state_add_replicated(s, "w", CKPT_F32, 2, shape, data));
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.layout = CKPT_LAYOUT_SHARED;
    o.compress = CKPT_COMPRESS_ZSTD;
    expect_ok(ckpt_save(MPI_COMM_NULL, p, s, &o));
    ckpt_state_free(s);
    expect_ok(ckpt_state_create(&s));
    expect_ok(ckpt_state_add_replicated(s, "w", CKPT_F32, 2, shape, back));
    expect_ok(ckpt_load(MPI_COMM_NULL, p, s, NULL));
    assert_memory_equal(data, back, sizeof data);
    ckpt_state_free(s);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    snprintf(dir, sizeof dir, "%s", argv[1]);
    unit_rmtree(dir);
    mkdir(dir, 0755);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_per_rank), cmocka_unit_test(test_shared_zstd),
                                       cmocka_unit_test(test_errors), cmocka_unit_test(test_shared_save_without_mpi)};
    int rc = cmocka_run_group_tests_name("unit.writer", tests, NULL, NULL);
    if (rc == 0)
        unit_rmtree(dir);
    return rc;
}
