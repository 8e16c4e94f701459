/* test_manager_local.c -- the checkpoint manager in one process that never initialises MPI
 * (MPI_COMM_NULL): directory names, the retention rule on its own (every policy combination,
 * ties, protection), saves with retention, latest, list, cleanup, the save policy, and the
 * preemption flag without MPI. This program must not call MPI_Init. Scratch directory: argv[1]. */
#include "pattern.h"

#include "manager.h"

#include <ckpt.h>

#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit.h"

static char dir[4096];

/* ---- names ------------------------------------------------------------------------------- */

static void test_parse_name(void **u)
{
    (void)u;
    int64_t s = -1;
    int t = -1;
    assert_int_equal(ckpt_manager_parse_name("step-00000012", &s, &t), 1);
    assert_true(s == 12 && t == 0);
    assert_int_equal(ckpt_manager_parse_name("step-00000000", &s, &t), 1);
    assert_true(s == 0 && t == 0);
    assert_int_equal(ckpt_manager_parse_name("step-123456789", &s, &t), 1);
    assert_true(s == 123456789 && t == 0);
    assert_int_equal(ckpt_manager_parse_name("step-9223372036854775807", &s, &t), 1);
    assert_true(s == INT64_MAX);
    assert_int_equal(ckpt_manager_parse_name("step-00000012.tmp-0123456789abcdef", &s, &t), 1);
    assert_true(s == 12 && t == 1);
    assert_int_equal(ckpt_manager_parse_name("step-00000012.tmp-0123456789abcdef.old", &s, &t), 1);
    assert_true(s == 12 && t == 2); /* the displaced copy of an interrupted overwrite */
    assert_int_equal(ckpt_manager_parse_name("step-00000012.tmp-del-0123456789abcdef", &s, &t), 1);
    assert_true(t == 1);
    assert_int_equal(ckpt_manager_parse_name("step-00000012.tmp-a.b.old", &s, &t), 1);
    assert_true(t == 1); /* a dot in the nonce: not ours, plain debris */
    const char *no[] = {"step-12", "step-0000012", "step-012345678", "step-00000012x", "step-00000012.tmp",
                        "step-00000012.old", "Step-00000012", "step--0000012", "step-9223372036854775808",
                        "step-", "", "checkpoint-00000012", "step-0000001a"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (ckpt_manager_parse_name(no[i], &s, &t))
            fail_msg("'%s' was taken for a step directory", no[i]);
}

/* ---- the retention rule ------------------------------------------------------------------ */

static const double LOSS[11] = {0, 9, 4, 0, 1, 8, 2, 6, 3, 5, 7};

/* Entries of steps 1..n (step 3 without metric); returns the kept steps as " a b c". */
static void select_steps(int n, int keep_last, int64_t keep_every, int keep_best, ckpt_best_mode mode, int64_t protect,
                         char *out, size_t len)
{
    ckpt_manager_entry e[16];
    int keep[16];
    memset(e, 0, sizeof e);
    /* in reverse order: the rule must not depend on it */
    for (int i = 0; i < n; i++) {
        int64_t step = n - i;
        e[i].step = step;
        e[i].state = CKPT_ENTRY_COMMITTED;
        e[i].has_metric = step != 3;
        e[i].metric = LOSS[step];
    }
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.keep_last = keep_last;
    o.keep_every = keep_every;
    o.keep_best = keep_best;
    o.best_metric = "loss";
    o.best_mode = mode;
    ckpt_manager_select(&o, e, n, protect, keep);
    out[0] = '\0';
    for (int64_t step = 1; step <= n; step++)
        for (int i = 0; i < n; i++)
            if (e[i].step == step && keep[i])
                snprintf(out + strlen(out), len - strlen(out), " %lld", (long long)step);
}

static void test_select_policies(void **u)
{
    (void)u;
    char got[256];
    select_steps(10, 3, 0, 0, CKPT_BEST_MIN, -1, got, sizeof got);
    assert_string_equal(got, " 8 9 10");
    select_steps(10, 2, 4, 0, CKPT_BEST_MIN, -1, got, sizeof got);
    assert_string_equal(got, " 4 8 9 10");
    select_steps(10, 2, 0, 2, CKPT_BEST_MIN, -1, got, sizeof got);
    assert_string_equal(got, " 4 6 9 10");
    select_steps(10, 2, 0, 2, CKPT_BEST_MAX, -1, got, sizeof got);
    assert_string_equal(got, " 1 5 9 10");
    select_steps(10, 2, 3, 2, CKPT_BEST_MIN, -1, got, sizeof got);
    assert_string_equal(got, " 3 4 6 9 10");
    select_steps(10, 1, 0, 0, CKPT_BEST_MIN, -1, got, sizeof got);
    assert_string_equal(got, " 10");
    select_steps(10, 0, 0, 1, CKPT_BEST_MIN, -1, got, sizeof got);
    assert_string_equal(got, " 1 2 3 4 5 6 7 8 9 10");
    select_steps(5, 2, 0, 2, CKPT_BEST_MIN, -1, got, sizeof got);
    assert_string_equal(got, " 2 4 5");
    /* the protected step (the one just saved) survives */
    select_steps(10, 1, 0, 0, CKPT_BEST_MIN, 6, got, sizeof got);
    assert_string_equal(got, " 6 10");
    /* keep_best larger than the candidates: all with a metric */
    select_steps(4, 1, 0, 9, CKPT_BEST_MAX, -1, got, sizeof got);
    assert_string_equal(got, " 1 2 4");
}

static void test_select_states_and_ties(void **u)
{
    (void)u;
    ckpt_manager_entry e[6];
    int keep[6];
    memset(e, 0, sizeof e);
    /* steps 1..6: 1, 2, 4 committed with equal metrics; 3 corrupt; 5 incomplete; 6 temporary */
    ckpt_entry_state st[6] = {CKPT_ENTRY_COMMITTED, CKPT_ENTRY_COMMITTED, CKPT_ENTRY_CORRUPT,
                              CKPT_ENTRY_COMMITTED, CKPT_ENTRY_INCOMPLETE, CKPT_ENTRY_TEMPORARY};
    for (int i = 0; i < 6; i++) {
        e[i].step = i + 1;
        e[i].state = st[i];
        e[i].has_metric = 1;
        e[i].metric = 1.0;
    }
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.keep_last = 1;
    o.keep_best = 1;
    o.best_metric = "loss";
    ckpt_manager_select(&o, e, 6, -1, keep);
    /* newest committed is 4; the tie among 1, 2, 4 goes to the newer step, so 4 again: 1 and 2
     * go; nothing that is not committed is ever dropped */
    int want[6] = {0, 0, 1, 1, 1, 1};
    for (int i = 0; i < 6; i++)
        if (keep[i] != want[i])
            fail_msg("step %d: keep %d, want %d", i + 1, keep[i], want[i]);
    o.keep_best = 2;
    ckpt_manager_select(&o, e, 6, -1, keep);
    assert_int_equal(keep[0], 0);
    assert_int_equal(keep[1], 1);
    /* nothing committed: nothing dropped */
    for (int i = 0; i < 6; i++)
        e[i].state = CKPT_ENTRY_INCOMPLETE;
    ckpt_manager_select(&o, e, 6, -1, keep);
    for (int i = 0; i < 6; i++)
        assert_int_equal(keep[i], 1);
    ckpt_manager_select(&o, e, 0, -1, keep);
}

/* ---- a manager without MPI --------------------------------------------------------------- */

static ckpt_state *make_state(int64_t step, float *buf)
{
    ckpt_state *s;
    int64_t shape[1] = {33}, off[1] = {0};
    pattern_fill((int)step, CKPT_F32, 1, shape, off, shape, buf);
    expect_ok(ckpt_state_create(&s));
    expect_ok(ckpt_state_add_replicated(s, "v", CKPT_F32, 1, shape, buf));
    expect_ok(ckpt_state_set_double(s, "acc", (double)(step % 4)));
    return s;
}

static int nwarn;
static void count_warn(const char *msg, void *user)
{
    (void)msg;
    (*(int *)user)++;
}

static void test_local_manager(void **u)
{
    (void)u;
    char root[4200], path[4300], p[4400];
    snprintf(root, sizeof root, "%s/local/", dir);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.keep_last = 2;
    o.keep_best = 1;
    o.best_metric = "acc";
    o.best_mode = CKPT_BEST_MAX;
    o.save_every_steps = 3;
    ckpt_manager *m = NULL;
    expect_ok(ckpt_manager_open(MPI_COMM_NULL, root, &o, &m));
    float buf[33];
    for (int64_t step = 1; step <= 12; step++) {
        int save = -1;
        expect_ok(ckpt_manager_should_save(m, step, &save));
        assert_int_equal(save, step % 3 == 0);
        if (save) {
            ckpt_state *s = make_state(step, buf);
            expect_ok(ckpt_manager_save(m, step, s, NULL));
            ckpt_state_free(s);
        }
    }
    /* saved 3 6 9 12 with acc 3 2 1 0: last two 9 12, best (max) 3 */
    ckpt_manager_entry *e = NULL;
    int n = 0;
    expect_ok(ckpt_manager_list(m, &e, &n));
    assert_int_equal(n, 3);
    assert_true(e[0].step == 3 && e[1].step == 9 && e[2].step == 12);
    assert_true(e[0].has_metric && e[0].metric == 3.0);
    free(e);

    int64_t step = -1;
    expect_ok(ckpt_manager_latest(m, &step, path, sizeof path));
    assert_true(step == 12);
    snprintf(p, sizeof p, "%s/local/step-00000012", dir);
    assert_string_equal(path, p); /* the trailing '/' of the root is gone */
    float got[33], want[33];
    int64_t shape[1] = {33}, off[1] = {0};
    pattern_fill(12, CKPT_F32, 1, shape, off, shape, want);
    ckpt_state *s;
    expect_ok(ckpt_state_create(&s));
    expect_ok(ckpt_state_add_replicated(s, "v", CKPT_F32, 1, shape, got));
    expect_ok(ckpt_load(MPI_COMM_NULL, path, s, NULL));
    assert_memory_equal(got, want, sizeof want);
    ckpt_state_free(s);

    /* debris and an incomplete newest step; default warnings go to stderr */
    snprintf(p, sizeof p, "%s/local/step-00000013.tmp-00000000000000aa", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/local/step-00000014", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    expect_ok(ckpt_manager_latest(m, &step, NULL, 0));
    assert_true(step == 12);
    int removed = -1;
    expect_ok(ckpt_manager_clean_incomplete(m, &removed));
    assert_int_equal(removed, 2);
    expect_ok(ckpt_manager_list(m, &e, &n));
    assert_int_equal(n, 3);
    free(e);
    ckpt_manager_close(m);

    /* a warning callback instead of stderr */
    ckpt_manager_options_init(&o);
    nwarn = 0;
    o.warn = count_warn;
    o.warn_user = &nwarn;
    expect_ok(ckpt_manager_open(MPI_COMM_NULL, root, &o, &m));
    assert_int_equal(mkdir(p, 0755), 0);
    expect_ok(ckpt_manager_latest(m, &step, NULL, 0));
    assert_int_equal(nwarn, 1);
    expect_ok(ckpt_manager_clean_incomplete(m, NULL));
    expect_ok(ckpt_manager_apply_retention(m, NULL)); /* keep all */
    expect_ok(ckpt_manager_list(m, &e, &n));
    assert_int_equal(n, 3);
    free(e);
    ckpt_manager_close(m);
}

static void test_preempt_without_mpi(void **u)
{
    (void)u;
    expect_ok(ckpt_preempt_install());
    ckpt_preempt_clear();
    int req = -1;
    expect_ok(ckpt_preempt_requested(MPI_COMM_WORLD, &req)); /* MPI not initialised: local */
    assert_int_equal(req, 0);
    assert_int_equal(raise(SIGUSR1), 0);
    expect_ok(ckpt_preempt_requested(MPI_COMM_WORLD, &req));
    assert_int_equal(req, 1);
    ckpt_preempt_clear();
    assert_int_equal(raise(SIGTERM), 0); /* still alive */
    expect_ok(ckpt_preempt_requested(MPI_COMM_NULL, &req));
    assert_int_equal(req, 1);
    ckpt_preempt_clear();
    assert_int_equal(ckpt_preempt_requested(MPI_COMM_NULL, NULL), CKPT_EINVAL);
    assert_non_null(strstr(ckpt_errmsg(), "requested is NULL"));
    assert_int_equal(CKPT_EXIT_REQUEUE, 75);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_manager_local SCRATCH_DIR\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot prepare %s\n", dir);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_name),
        cmocka_unit_test(test_select_policies),
        cmocka_unit_test(test_select_states_and_ties),
        cmocka_unit_test(test_local_manager),
        cmocka_unit_test(test_preempt_without_mpi),
    };
    return cmocka_run_group_tests_name("manager_local", tests, NULL, NULL);
}
