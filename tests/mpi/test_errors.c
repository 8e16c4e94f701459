/* test_errors.c -- every bad input gives the same precise error on every rank, leaves nothing
 * behind, and never hangs. Run with 2 or more ranks: mpiexec -n N test_errors SCRATCH_DIR */
#include "pattern.h"

#include <ckpt.h>
#include <hdf5.h>

#include <mpi.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mpi_test.h"

static int rank, nranks;
static char base[4096];

static void path_of(char *buf, const char *name) { snprintf(buf, 4200, "%s/%s", base, name); }

/* Every rank got `want`, and the same status as all others; the message holds `needle`. */
static void expect_everywhere(int rc, int want, const char *needle)
{
    int lo, hi;
    MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rc != want || !strstr(ckpt_errmsg(), needle))
        fail_msg("rank %d: got %s \"%s\", want %s containing \"%s\"", rank, ckpt_status_name(rc), ckpt_errmsg(),
                 ckpt_status_name(want), needle);
    assert_int_equal(lo, hi);
}

/* Nothing named path or path.tmp-* exists in base. */
static void expect_nothing_left(const char *name)
{
    if (rank != 0)
        return;
    DIR *d = opendir(base);
    assert_non_null(d);
    struct dirent *e;
    size_t n = strlen(name);
    while ((e = readdir(d)))
        if (strncmp(e->d_name, name, n) == 0 && (e->d_name[n] == '\0' || e->d_name[n] == '.'))
            fail_msg("'%s' was left behind in %s", e->d_name, base);
    closedir(d);
}

/* A state with tensor "w" f32 [8, 6] Shard(0) over the world, plus attrs. */
static float wbuf[48];
static ckpt_state *good_state(void)
{
    ckpt_state *s;
    int64_t shape[2] = {8, 6}, off[2], ext[2];
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    assert_int_equal(ckpt_shard_box(2, shape, 0, rank, nranks, off, ext), CKPT_OK);
    pattern_fill(0, CKPT_F32, 2, shape, off, ext, wbuf);
    assert_int_equal(ckpt_state_add_shard(s, "w", CKPT_F32, 2, shape, 0, rank, nranks, wbuf), CKPT_OK);
    assert_int_equal(ckpt_state_set_int(s, "step", 7), CKPT_OK);
    return s;
}

static void save_good(const char *name)
{
    char p[4200];
    path_of(p, name);
    ckpt_state *s = good_state();
    int rc = ckpt_save(MPI_COMM_WORLD, p, s, NULL);
    if (rc)
        fprintf(stderr, "rank %d: %s\n", rank, ckpt_errmsg());
    assert_int_equal(rc, CKPT_OK);
    ckpt_state_free(s);
}

static int load_w(const char *name, const char *tensor)
{
    char p[4200];
    path_of(p, name);
    ckpt_state *s;
    float buf[48];
    int64_t shape[2] = {8, 6};
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    /* the whole tensor on every rank: every file is read */
    assert_int_equal(ckpt_state_add_replicated(s, tensor, CKPT_F32, 2, shape, buf), CKPT_OK);
    int rc = ckpt_load(MPI_COMM_WORLD, p, s, NULL);
    ckpt_state_free(s);
    return rc;
}

static void test_shape_mismatch(void **u)
{
    (void)u;
    char p[4200];
    path_of(p, "mismatch");
    ckpt_state *s;
    float buf[64] = {0};
    int64_t shape[2] = {8, rank == 1 ? 7 : 6};
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    assert_int_equal(ckpt_state_add_shard(s, "w", CKPT_F32, 2, shape, 0, rank, nranks, buf), CKPT_OK);
    int rc = ckpt_save(MPI_COMM_WORLD, p, s, NULL);
    expect_everywhere(rc, CKPT_EMISMATCH, "tensor 'w' is f32 [8, 6] on rank 0 but f32 [8, 7] on rank 1");
    expect_nothing_left("mismatch");
    ckpt_state_free(s);
}

static void test_overlap(void **u)
{
    (void)u;
    char p[4200];
    path_of(p, "overlap");
    ckpt_state *s;
    float buf[64] = {0};
    int64_t shape[2] = {8, 6}, off[2], ext[2];
    assert_int_equal(ckpt_shard_box(2, shape, 0, rank, nranks, off, ext), CKPT_OK);
    if (rank == 1) { /* reach one row into rank 0's part */
        off[0] -= 1;
        ext[0] += 1;
    }
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    assert_int_equal(ckpt_state_add_tensor(s, "w", CKPT_F32, 2, shape, 0), CKPT_OK);
    assert_int_equal(ckpt_state_add_box(s, "w", off, ext, buf), CKPT_OK);
    int rc = ckpt_save(MPI_COMM_WORLD, p, s, NULL);
    char want[200];
    int64_t c = (8 + nranks - 1) / nranks;
    snprintf(want, sizeof want, "tensor 'w': box [0:%lld, 0:6] of rank 0 overlaps box [%lld:%lld, 0:6] of rank 1",
             (long long)c, (long long)(c - 1), (long long)(2 * c > 8 ? 8 : 2 * c));
    expect_everywhere(rc, CKPT_ECOVERAGE, want);
    expect_nothing_left("overlap");
    ckpt_state_free(s);
}

static void test_gap(void **u)
{
    (void)u;
    char p[4200];
    path_of(p, "gap");
    ckpt_state *s;
    float buf[64] = {0};
    int64_t shape[2] = {8, 6};
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    assert_int_equal(ckpt_state_add_tensor(s, "w", CKPT_F32, 2, shape, 0), CKPT_OK);
    if (rank != nranks - 1) { /* the last rank forgets its rows */
        int64_t off[2], ext[2];
        assert_int_equal(ckpt_shard_box(2, shape, 0, rank, nranks, off, ext), CKPT_OK);
        assert_int_equal(ckpt_state_add_box(s, "w", off, ext, buf), CKPT_OK);
    }
    int rc = ckpt_save(MPI_COMM_WORLD, p, s, NULL);
    expect_everywhere(rc, CKPT_ECOVERAGE, "tensor 'w' [8, 6]: the boxes of all ranks cover");
    expect_nothing_left("gap");
    ckpt_state_free(s);
}

static void test_local_error_reaches_all(void **u)
{
    (void)u;
    char p[4200];
    path_of(p, "badpiece");
    ckpt_state *s = good_state();
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    if (rank == 1)
        o.piece_bytes = 3; /* only rank 1 is wrong */
    int rc = ckpt_save(MPI_COMM_WORLD, p, s, &o);
    expect_everywhere(rc, CKPT_EINVAL, "rank 1: piece_bytes 3 outside");
    expect_nothing_left("badpiece");
    ckpt_state_free(s);
}

/* Ranks that pass different options (valid each on its own) would wait for each other in
 * different collectives; the save refuses on every rank, naming the option, and leaves nothing. */
static void test_options_disagree(void **u)
{
    (void)u;
    char p[4200], want[256];
    path_of(p, "optsdiffer");
    ckpt_state *s = good_state();
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    if (rank == nranks - 1)
        o.layout = CKPT_LAYOUT_SHARED;
    int rc = ckpt_save(MPI_COMM_WORLD, p, s, &o);
    snprintf(want, sizeof want, "rank %d: ckpt_save: save option layout is shared on this rank but file-per-rank on "
             "rank 0 (every rank must pass the same options)", nranks - 1);
    expect_everywhere(rc, CKPT_EINVAL, want);
    expect_nothing_left("optsdiffer");
    ckpt_save_options_init(&o);
    if (rank == 1)
        o.piece_bytes = 1 << 16;
    rc = ckpt_save(MPI_COMM_WORLD, p, s, &o);
    expect_everywhere(rc, CKPT_EINVAL, "rank 1: ckpt_save: save option piece_bytes is 65536 on this rank but 4194304 on rank 0");
    expect_nothing_left("optsdiffer");
    /* and the path */
    char q[4200];
    path_of(q, rank == 1 ? "optsdiffer-other" : "optsdiffer");
    rc = ckpt_save(MPI_COMM_WORLD, q, s, NULL);
    expect_everywhere(rc, CKPT_EINVAL, "rank 1: ckpt_save: this rank saves to '");
    expect_nothing_left("optsdiffer");
    expect_nothing_left("optsdiffer-other");
    ckpt_state_free(s);
}

static void test_exists(void **u)
{
    (void)u;
    save_good("exists");
    char p[4200];
    path_of(p, "exists");
    ckpt_state *s = good_state();
    int rc = ckpt_save(MPI_COMM_WORLD, p, s, NULL);
    expect_everywhere(rc, CKPT_EEXIST, "already exists");
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.overwrite = 1;
    assert_int_equal(ckpt_save(MPI_COMM_WORLD, p, s, &o), CKPT_OK);
    assert_int_equal(load_w("exists", "w"), CKPT_OK);
    ckpt_state_free(s);
}

static void test_missing_marker(void **u)
{
    (void)u;
    save_good("nomarker");
    char p[4200];
    path_of(p, "nomarker/COMMITTED");
    if (rank == 0)
        assert_int_equal(unlink(p), 0);
    MPI_Barrier(MPI_COMM_WORLD);
    expect_everywhere(load_w("nomarker", "w"), CKPT_EINCOMPLETE, "is incomplete: it has no COMMITTED marker");
}

static void test_wrong_name(void **u)
{
    (void)u;
    save_good("names");
    expect_everywhere(load_w("names", "nope"), CKPT_ENOTFOUND, "tensor 'nope' is not in checkpoint");
}

static void test_no_checkpoint(void **u)
{
    (void)u;
    expect_everywhere(load_w("never-saved", "w"), CKPT_ENOTFOUND, "no checkpoint at");
}

/* Flips one byte of the first chunk of rank 1's first dataset. */
static void flip_byte(const char *file)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, "/boxes/1", H5P_DEFAULT);
    assert_true(d >= 0);
    hsize_t nchunks = 0;
    hid_t sp = H5Dget_space(d);
    assert_true(H5Dget_num_chunks(d, sp, &nchunks) >= 0);
    assert_true(nchunks >= 1);
    haddr_t addr;
    hsize_t size;
    hsize_t coff[2];
    unsigned mask;
    assert_true(H5Dget_chunk_info(d, sp, 0, coff, &mask, &addr, &size) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    FILE *fp = fopen(file, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, (long)addr + 5, SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_equal(fseek(fp, (long)addr + 5, SEEK_SET), 0);
    fputc(c ^ 0x10, fp);
    fclose(fp);
}

static void test_flipped_byte(void **u)
{
    (void)u;
    save_good("flipped");
    char p[4200];
    path_of(p, "flipped/rank-00001.h5");
    if (rank == 0)
        flip_byte(p);
    MPI_Barrier(MPI_COMM_WORLD);
    expect_everywhere(load_w("flipped", "w"), CKPT_ECORRUPT, "checksum mismatch in tensor 'w', box 1 [");
    assert_non_null(strstr(ckpt_errmsg(), "written by rank 1), piece 0 of 1, file '"));
    assert_non_null(strstr(ckpt_errmsg(), "flipped/rank-00001.h5' dataset /boxes/1"));
    /* the same read without verification succeeds (and returns the damaged byte) */
    char q[4200];
    path_of(q, "flipped");
    ckpt_state *s;
    float buf[48];
    int64_t shape[2] = {8, 6};
    ckpt_load_options o;
    ckpt_load_options_init(&o);
    o.verify = 0;
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    assert_int_equal(ckpt_state_add_replicated(s, "w", CKPT_F32, 2, shape, buf), CKPT_OK);
    assert_int_equal(ckpt_load(MPI_COMM_WORLD, q, s, &o), CKPT_OK);
    ckpt_state_free(s);
}

static void test_truncated(void **u)
{
    (void)u;
    save_good("truncated");
    char p[4200];
    path_of(p, "truncated/rank-00001.h5");
    if (rank == 0) {
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(truncate(p, st.st_size / 2), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_everywhere(load_w("truncated", "w"), CKPT_ECORRUPT, "truncated");
    assert_non_null(strstr(ckpt_errmsg(), "truncated/rank-00001.h5"));
}

static void test_missing_file(void **u)
{
    (void)u;
    save_good("missingfile");
    char p[4200];
    path_of(p, "missingfile/rank-00001.h5");
    if (rank == 0)
        assert_int_equal(unlink(p), 0);
    MPI_Barrier(MPI_COMM_WORLD);
    expect_everywhere(load_w("missingfile", "w"), CKPT_ENOTFOUND, "(written by rank 1) is missing");
    assert_non_null(strstr(ckpt_errmsg(), "missingfile/rank-00001.h5"));
}

static void test_shape_mismatch_on_load(void **u)
{
    (void)u;
    save_good("loadshape");
    char p[4200];
    path_of(p, "loadshape");
    ckpt_state *s;
    float buf[64];
    int64_t shape[2] = {8, 8};
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    assert_int_equal(ckpt_state_add_replicated(s, "w", CKPT_F32, 2, shape, buf), CKPT_OK);
    expect_everywhere(ckpt_load(MPI_COMM_WORLD, p, s, NULL), CKPT_EMISMATCH, "has shape [8, 6], the state wants [8, 8]");
    ckpt_state_free(s);
}

static void test_damaged_index(void **u)
{
    (void)u;
    save_good("badindex");
    char p[4200];
    path_of(p, "badindex/index.h5");
    if (rank == 0) {
        FILE *f = fopen(p, "ab");
        assert_non_null(f);
        fputs("junk", f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_everywhere(load_w("badindex", "w"), CKPT_ECORRUPT, "does not match its commit marker");
}

static void test_bad_zstd_level(void **u)
{
    (void)u;
    char p[4200];
    path_of(p, "badlevel");
    ckpt_state *s = good_state();
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.compress = CKPT_COMPRESS_ZSTD;
    o.level = 99;
    expect_everywhere(ckpt_save(MPI_COMM_WORLD, p, s, &o), CKPT_EINVAL, "zstd level 99 is outside");
    expect_nothing_left("badlevel");
    ckpt_state_free(s);
}

static void test_filter_unavailable(void **u)
{
    (void)u;
    char p[4200];
    path_of(p, "zstdonly");
    ckpt_state *s = good_state();
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.compress = CKPT_COMPRESS_ZSTD;
    assert_int_equal(ckpt_save(MPI_COMM_WORLD, p, s, &o), CKPT_OK);
    ckpt_state_free(s);
    if (rank == nranks - 1) /* this rank plays a build without the zstd filter */
        setenv("CKPT_FAULT", "no_zstd", 1);
    int rc = load_w("zstdonly", "w");
    unsetenv("CKPT_FAULT");
    char want[64];
    snprintf(want, sizeof want, "rank %d: ", nranks - 1);
    expect_everywhere(rc, CKPT_EUNSUPPORTED, want);
    if (!strstr(ckpt_errmsg(), "is compressed with HDF5 filter 32015 (") || !strstr(ckpt_errmsg(), "which this build cannot decode"))
        fail_msg("rank %d: %s", rank, ckpt_errmsg());
}

int main(int argc, char **argv)
{
    int st = mpi_test_begin(&argc, &argv, "test_errors", 2, &rank, &nranks, base, sizeof base);
    if (st)
        return st;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_mismatch),  cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_gap),             cmocka_unit_test(test_local_error_reaches_all),
        cmocka_unit_test(test_options_disagree),
        cmocka_unit_test(test_exists),          cmocka_unit_test(test_missing_marker),
        cmocka_unit_test(test_wrong_name),      cmocka_unit_test(test_no_checkpoint),
        cmocka_unit_test(test_flipped_byte),    cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing_file),    cmocka_unit_test(test_shape_mismatch_on_load),
        cmocka_unit_test(test_damaged_index),   cmocka_unit_test(test_bad_zstd_level),
        cmocka_unit_test(test_filter_unavailable),
    };
    int failed = cmocka_run_group_tests_name("errors", tests, NULL, NULL);
    return mpi_test_end(failed);
}
