/* test_async.c -- asynchronous saves: staging lets the caller modify its tensors at once, a
 * small staging budget streams, one save at a time, background and commit errors reach every
 * rank at wait, test() polls. mpiexec -n N test_async SCRATCH_DIR */
#include "pattern.h"

#include <ckpt.h>

#include <mpi.h>
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

#define NT 3
static const char *names[NT] = {"w", "big", "s"};
static const int64_t shapes[NT][2] = {{8, 6}, {300, 70}, {5, 1}};
static float *bufs[NT];
static int64_t offs[NT][2], exts[NT][2];

static ckpt_state *make_state(void)
{
    ckpt_state *s;
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    for (int i = 0; i < NT; i++) {
        assert_int_equal(ckpt_shard_box(2, shapes[i], 0, rank, nranks, offs[i], exts[i]), CKPT_OK);
        free(bufs[i]);
        bufs[i] = malloc((size_t)(exts[i][0] * exts[i][1]) * sizeof(float) + 4);
        pattern_fill(i, CKPT_F32, 2, shapes[i], offs[i], exts[i], bufs[i]);
        assert_int_equal(ckpt_state_add_tensor(s, names[i], CKPT_F32, 2, shapes[i], 0), CKPT_OK);
        assert_int_equal(ckpt_state_add_box(s, names[i], offs[i], exts[i], bufs[i]), CKPT_OK);
    }
    assert_int_equal(ckpt_state_set_int(s, "step", 5), CKPT_OK);
    return s;
}

static void scribble(void)
{
    for (int i = 0; i < NT; i++)
        memset(bufs[i], 0x7f, (size_t)(exts[i][0] * exts[i][1]) * sizeof(float));
}

/* Loads the whole of every tensor on every rank and compares with the pattern. */
static void check_saved(const char *name)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", base, name);
    ckpt_state *s;
    float *got[NT];
    int64_t zero[2] = {0, 0};
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    for (int i = 0; i < NT; i++) {
        got[i] = malloc((size_t)(shapes[i][0] * shapes[i][1]) * sizeof(float));
        assert_int_equal(ckpt_state_add_tensor(s, names[i], CKPT_F32, 2, shapes[i], 0), CKPT_OK);
        assert_int_equal(ckpt_state_add_box(s, names[i], zero, shapes[i], got[i]), CKPT_OK);
    }
    int rc = ckpt_load(MPI_COMM_WORLD, p, s, NULL);
    if (rc)
        fprintf(stderr, "rank %d: %s\n", rank, ckpt_errmsg());
    assert_int_equal(rc, CKPT_OK);
    for (int i = 0; i < NT; i++) {
        size_t n = (size_t)(shapes[i][0] * shapes[i][1]);
        float *want = malloc(n * sizeof(float));
        pattern_fill(i, CKPT_F32, 2, shapes[i], zero, shapes[i], want);
        assert_memory_equal(want, got[i], n * sizeof(float));
        free(want);
        free(got[i]);
    }
    ckpt_state_free(s);
}

static int exists(const char *name)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", base, name);
    return stat(p, &st) == 0;
}

static void save_async(ckpt_saver *sv, const char *name, ckpt_layout layout)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", base, name);
    ckpt_state *s = make_state();
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.piece_bytes = 4096;
    o.layout = layout;
    int rc = ckpt_saver_save(sv, p, s, &o);
    if (rc)
        fprintf(stderr, "rank %d: %s\n", rank, ckpt_errmsg());
    assert_int_equal(rc, CKPT_OK);
    ckpt_state_free(s);
    scribble(); /* the save must not depend on these buffers any more */
}

static void test_staged(void **u)
{
    (void)u;
    ckpt_saver *sv;
    assert_int_equal(ckpt_saver_create(MPI_COMM_WORLD, NULL, &sv), CKPT_OK);
    save_async(sv, "staged", CKPT_LAYOUT_PER_RANK);
    const char *inflight = NULL;
    assert_int_equal(ckpt_saver_in_flight(sv, &inflight), 1);
    assert_non_null(strstr(inflight, "/staged"));
    assert_int_equal(ckpt_saver_wait(sv), CKPT_OK);
    assert_int_equal(ckpt_saver_in_flight(sv, NULL), 0);
    assert_int_equal(ckpt_saver_wait(sv), CKPT_OK); /* nothing in flight */
    check_saved("staged");
    /* shared layout: written during the call, committed at wait */
    save_async(sv, "staged-shared", CKPT_LAYOUT_SHARED);
    assert_int_equal(ckpt_saver_wait(sv), CKPT_OK);
    check_saved("staged-shared");
    ckpt_saver_free(sv);
}

static void test_streaming_budget(void **u)
{
    (void)u;
    ckpt_saver_options so;
    ckpt_saver_options_init(&so);
    so.staging_bytes = 5000; /* smaller than each rank's rows of "big": streamed from memory */
    ckpt_saver *sv;
    assert_int_equal(ckpt_saver_create(MPI_COMM_WORLD, &so, &sv), CKPT_OK);
    /* with a budget smaller than a box, that box is written before the call returns, so the
     * buffers may still be scribbled on afterwards */
    save_async(sv, "streamed", CKPT_LAYOUT_PER_RANK);
    int done = 0;
    for (int spin = 0; spin < 6000 && !done; spin++) { /* up to a minute */
        assert_int_equal(ckpt_saver_test(sv, &done), CKPT_OK);
        if (!done)
            usleep(10000);
    }
    assert_int_equal(done, 1);
    assert_true(exists("streamed/COMMITTED"));
    check_saved("streamed");
    ckpt_saver_free(sv);
}

static void test_one_at_a_time(void **u)
{
    (void)u;
    ckpt_saver *sv;
    assert_int_equal(ckpt_saver_create(MPI_COMM_WORLD, NULL, &sv), CKPT_OK);
    save_async(sv, "first", CKPT_LAYOUT_PER_RANK);
    save_async(sv, "second", CKPT_LAYOUT_PER_RANK); /* commits "first" before starting */
    assert_true(exists("first/COMMITTED"));
    assert_int_equal(ckpt_saver_wait(sv), CKPT_OK);
    check_saved("first");
    check_saved("second");
    ckpt_saver_free(sv);
}

static void test_background_error(void **u)
{
    (void)u;
    ckpt_saver *sv;
    assert_int_equal(ckpt_saver_create(MPI_COMM_WORLD, NULL, &sv), CKPT_OK);
    if (rank == nranks - 1)
        setenv("CKPT_FAULT", "io_write", 1);
    save_async(sv, "diskfull", CKPT_LAYOUT_PER_RANK); /* returns OK: the failure is in the background */
    int rc = ckpt_saver_wait(sv);
    unsetenv("CKPT_FAULT");
    char want[64];
    snprintf(want, sizeof want, "rank %d: ", nranks - 1);
    if (rc != CKPT_EIO || !strstr(ckpt_errmsg(), want) || !strstr(ckpt_errmsg(), "injected I/O error"))
        fail_msg("rank %d: got %s '%s'", rank, ckpt_status_name(rc), ckpt_errmsg());
    MPI_Barrier(MPI_COMM_WORLD);
    assert_false(exists("diskfull"));
    ckpt_saver_free(sv);
}

static void test_commit_error(void **u)
{
    (void)u;
    ckpt_saver *sv;
    assert_int_equal(ckpt_saver_create(MPI_COMM_WORLD, NULL, &sv), CKPT_OK);
    if (rank == 0)
        setenv("CKPT_FAULT", "commit", 1);
    save_async(sv, "nocommit", CKPT_LAYOUT_PER_RANK);
    int rc = ckpt_saver_wait(sv);
    unsetenv("CKPT_FAULT");
    if (rc != CKPT_EIO || !strstr(ckpt_errmsg(), "injected fault before committing"))
        fail_msg("rank %d: got %s '%s'", rank, ckpt_status_name(rc), ckpt_errmsg());
    MPI_Barrier(MPI_COMM_WORLD);
    assert_false(exists("nocommit"));
    ckpt_saver_free(sv);
}

static void test_free_abandons(void **u)
{
    (void)u;
    ckpt_saver *sv;
    assert_int_equal(ckpt_saver_create(MPI_COMM_WORLD, NULL, &sv), CKPT_OK);
    save_async(sv, "abandoned", CKPT_LAYOUT_PER_RANK);
    ckpt_saver_free(sv); /* no wait: never committed, debris removed */
    MPI_Barrier(MPI_COMM_WORLD);
    assert_false(exists("abandoned"));
}

int main(int argc, char **argv)
{
    int st = mpi_test_begin(&argc, &argv, "test_async", 1, &rank, &nranks, base, sizeof base);
    if (st)
        return st;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_staged),           cmocka_unit_test(test_streaming_budget),
        cmocka_unit_test(test_one_at_a_time),    cmocka_unit_test(test_background_error),
        cmocka_unit_test(test_commit_error),     cmocka_unit_test(test_free_abandons),
    };
    int failed = cmocka_run_group_tests_name("async", tests, NULL, NULL);
    for (int i = 0; i < NT; i++)
        free(bufs[i]);
    return mpi_test_end(failed);
}
