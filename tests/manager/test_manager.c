/* test_manager.c -- the checkpoint manager on several ranks: retention under each policy
 * combination (exact surviving steps), latest skipping incomplete and corrupt checkpoints with
 * warnings, cleanup of incomplete directories and debris, replacing a broken step directory,
 * the save policy (steps, seconds), and preemption agreement. Every collective outcome is
 * checked to be identical on every rank.
 * Run: mpiexec -n 2 test_manager SCRATCH_DIR */
#include "pattern.h"

#include <ckpt.h>

#include <mpi.h>
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mpi_test.h"

static int rank, nranks;
static char base[4096];

/* ---- helpers ---------------------------------------------------------------------------- */

/* Warnings the manager gave on this rank (rank 0 only gets any), newline separated. */
static char warnings[65536];
static void on_warn(const char *msg, void *user)
{
    (void)user;
    size_t n = strlen(warnings);
    snprintf(warnings + n, sizeof warnings - n, "%s\n", msg);
}

static void root_of(char *buf, const char *name) { snprintf(buf, 4200, "%s/%s", base, name); }

static void rm_rf(const char *path)
{
    if (rank == 0) {
        char cmd[8600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", path);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* rc is `want` on every rank, and the same everywhere; the message holds `needle`. */
static void expect_everywhere(int rc, int want, const char *needle)
{
    int lo, hi;
    MPI_Allreduce(&rc, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&rc, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rc != want || (needle && !strstr(ckpt_errmsg(), needle)))
        fail_msg("rank %d: got %s \"%s\", want %s containing \"%s\"", rank, ckpt_status_name(rc), ckpt_errmsg(),
                 ckpt_status_name(want), needle ? needle : "");
    assert_int_equal(lo, hi);
}

static void expect_ok(int rc) { expect_everywhere(rc, CKPT_OK, NULL); }

/* The same int64 on every rank. */
static void expect_same(int64_t v)
{
    int64_t lo, hi;
    MPI_Allreduce(&v, &lo, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&v, &hi, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    assert_true(lo == hi);
}

/* Metric kinds of a saved step. */
enum { M_NONE, M_DOUBLE, M_INT, M_NAN };

/* Tensor "w" f32 [8, 6] Shard(0), contents from the step; attributes step and (maybe) loss. */
static float wbuf[48];
static ckpt_state *make_state(int64_t step, int kind, double metric)
{
    ckpt_state *s;
    int64_t shape[2] = {8, 6}, off[2], ext[2];
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    assert_int_equal(ckpt_shard_box(2, shape, 0, rank, nranks, off, ext), CKPT_OK);
    pattern_fill((int)step, CKPT_F32, 2, shape, off, ext, wbuf);
    assert_int_equal(ckpt_state_add_shard(s, "w", CKPT_F32, 2, shape, 0, rank, nranks, wbuf), CKPT_OK);
    assert_int_equal(ckpt_state_set_int(s, "step", step), CKPT_OK);
    if (kind == M_DOUBLE)
        assert_int_equal(ckpt_state_set_double(s, "loss", metric), CKPT_OK);
    else if (kind == M_INT)
        assert_int_equal(ckpt_state_set_int(s, "loss", (int64_t)metric), CKPT_OK);
    else if (kind == M_NAN)
        assert_int_equal(ckpt_state_set_double(s, "loss", NAN), CKPT_OK);
    return s;
}

static void save_step(ckpt_manager *m, int64_t step, int kind, double metric)
{
    ckpt_state *s = make_state(step, kind, metric);
    expect_ok(ckpt_manager_save(m, step, s, NULL));
    ckpt_state_free(s);
}

/* Loads the whole of "w" from path and compares it bit for bit with step's pattern. */
static void expect_contents(const char *path, int64_t step)
{
    float got[48], want[48];
    int64_t shape[2] = {8, 6}, off[2] = {0, 0};
    pattern_fill((int)step, CKPT_F32, 2, shape, off, shape, want);
    ckpt_state *s;
    assert_int_equal(ckpt_state_create(&s), CKPT_OK);
    assert_int_equal(ckpt_state_add_replicated(s, "w", CKPT_F32, 2, shape, got), CKPT_OK);
    expect_ok(ckpt_load(MPI_COMM_WORLD, path, s, NULL));
    int64_t st = -1;
    assert_int_equal(ckpt_state_get_int(s, "step", &st), CKPT_OK);
    assert_true(st == step);
    assert_memory_equal(got, want, sizeof want);
    ckpt_state_free(s);
}

/* The committed steps under the manager's root, as every rank sees them, equal `want`. */
static void expect_committed(ckpt_manager *m, const int64_t *want, int nwant)
{
    ckpt_manager_entry *e = NULL;
    int n = 0;
    expect_ok(ckpt_manager_list(m, &e, &n));
    char got[1024] = "", exp[1024] = "";
    int ncommitted = 0;
    for (int i = 0; i < n; i++)
        if (e[i].state == CKPT_ENTRY_COMMITTED) {
            snprintf(got + strlen(got), sizeof got - strlen(got), " %lld", (long long)e[i].step);
            ncommitted++;
        }
    for (int i = 0; i < nwant; i++)
        snprintf(exp + strlen(exp), sizeof exp - strlen(exp), " %lld", (long long)want[i]);
    free(e);
    if (strcmp(got, exp) != 0)
        fail_msg("rank %d: committed steps [%s ] , want [%s ]", rank, got, exp);
    assert_int_equal(ncommitted, nwant);
    MPI_Barrier(MPI_COMM_WORLD);
}

static ckpt_manager *open_mgr(const char *root, ckpt_manager_options *o)
{
    ckpt_manager *m = NULL;
    o->warn = on_warn;
    expect_ok(ckpt_manager_open(MPI_COMM_WORLD, root, o, &m));
    assert_non_null(m);
    return m;
}

/* ---- retention -------------------------------------------------------------------------- */

/* The metric of steps 1..10 (step 3 has none). */
static const double LOSS[11] = {0, 9, 4, 0, 1, 8, 2, 6, 3, 5, 7};
static int loss_kind(int64_t step) { return step == 3 ? M_NONE : M_DOUBLE; }

/* Saves steps 1..10 under a fresh root with the given retention and checks the survivors. */
static void run_policy(const char *name, int keep_last, int64_t keep_every, int keep_best, ckpt_best_mode mode,
                       const int64_t *want, int nwant)
{
    char root[4200];
    root_of(root, name);
    rm_rf(root);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.keep_last = keep_last;
    o.keep_every = keep_every;
    o.keep_best = keep_best;
    o.best_metric = keep_best ? "loss" : NULL;
    o.best_mode = mode;
    ckpt_manager *m = open_mgr(root, &o);
    for (int64_t s = 1; s <= 10; s++)
        save_step(m, s, loss_kind(s), LOSS[s]);
    expect_committed(m, want, nwant);
    /* retention again changes nothing */
    int removed = -1;
    expect_ok(ckpt_manager_apply_retention(m, &removed));
    expect_same(removed);
    assert_int_equal(removed, 0);
    expect_committed(m, want, nwant);
    ckpt_manager_close(m);
}

static void test_keep_last(void **u)
{
    (void)u;
    const int64_t want[] = {8, 9, 10};
    run_policy("keep-last", 3, 0, 0, CKPT_BEST_MIN, want, 3);
}

static void test_keep_last_every(void **u)
{
    (void)u;
    const int64_t want[] = {4, 8, 9, 10};
    run_policy("keep-every", 2, 4, 0, CKPT_BEST_MIN, want, 4);
}

static void test_keep_last_best_min(void **u)
{
    (void)u;
    /* losses 9 4 - 1 8 2 6 3 5 7: the two lowest are steps 4 (1) and 6 (2) */
    const int64_t want[] = {4, 6, 9, 10};
    run_policy("keep-best-min", 2, 0, 2, CKPT_BEST_MIN, want, 4);
}

static void test_keep_last_best_max(void **u)
{
    (void)u;
    /* the two highest are steps 1 (9) and 5 (8) */
    const int64_t want[] = {1, 5, 9, 10};
    run_policy("keep-best-max", 2, 0, 2, CKPT_BEST_MAX, want, 4);
}

static void test_keep_all_three(void **u)
{
    (void)u;
    /* last 2: 9 10; every 3rd: 3 6 9; best 2 (min): 4 6 */
    const int64_t want[] = {3, 4, 6, 9, 10};
    run_policy("keep-all-three", 2, 3, 2, CKPT_BEST_MIN, want, 5);
}

static void test_keep_all(void **u)
{
    (void)u;
    /* keep_last 0 keeps everything, whatever the other rules say */
    const int64_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    run_policy("keep-all", 0, 0, 1, CKPT_BEST_MIN, want, 10);
}

static void test_keep_last_one(void **u)
{
    (void)u;
    char root[4200];
    root_of(root, "keep-one");
    rm_rf(root);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.keep_last = 1;
    ckpt_manager *m = open_mgr(root, &o);
    for (int64_t s = 1; s <= 5; s++) {
        save_step(m, s * 100, M_NONE, 0);
        int64_t want = s * 100;
        expect_committed(m, &want, 1);
    }
    int64_t step = -1;
    char path[4200];
    expect_ok(ckpt_manager_latest(m, &step, path, sizeof path));
    assert_true(step == 500);
    expect_contents(path, 500);
    ckpt_manager_close(m);
}

/* While saves go on, the best-so-far set changes: check the survivors midway as well. */
static void test_best_midway(void **u)
{
    (void)u;
    char root[4200];
    root_of(root, "best-midway");
    rm_rf(root);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.keep_last = 2;
    o.keep_best = 2;
    o.best_metric = "loss";
    ckpt_manager *m = open_mgr(root, &o);
    for (int64_t s = 1; s <= 5; s++)
        save_step(m, s, loss_kind(s), LOSS[s]);
    /* losses 9 4 - 1 8: last 2 = 4 5, best 2 = 4 (1), 2 (4) */
    const int64_t want[] = {2, 4, 5};
    expect_committed(m, want, 3);
    ckpt_manager_close(m);
}

/* Missing and NaN metrics never count as best; an int attribute counts. */
static void test_best_lacking_metric(void **u)
{
    (void)u;
    char root[4200];
    root_of(root, "best-lacking");
    rm_rf(root);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.keep_last = 1;
    o.keep_best = 2;
    o.best_metric = "loss";
    o.best_mode = CKPT_BEST_MAX;
    ckpt_manager *m = open_mgr(root, &o);
    save_step(m, 1, M_NAN, 0);
    save_step(m, 2, M_NONE, 0);
    save_step(m, 3, M_DOUBLE, 5.0);
    save_step(m, 4, M_INT, 7);
    save_step(m, 5, M_NONE, 0);
    save_step(m, 6, M_NONE, 0);
    const int64_t want[] = {3, 4, 6};
    expect_committed(m, want, 3);
    ckpt_manager_entry *e = NULL;
    int n = 0;
    expect_ok(ckpt_manager_list(m, &e, &n));
    assert_int_equal(n, 3);
    assert_true(e[0].has_metric && e[0].metric == 5.0);
    assert_true(e[1].has_metric && e[1].metric == 7.0);
    assert_false(e[2].has_metric);
    assert_true(e[0].bytes > 0);
    free(e);
    ckpt_manager_close(m);
}

/* Retention never deletes the newest committed checkpoint, even when newer step directories
 * exist that are corrupt, and never touches those. */
static void test_retention_keeps_newest_committed(void **u)
{
    (void)u;
    char root[4200], p[4300];
    root_of(root, "newest-committed");
    rm_rf(root);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    ckpt_manager *m = open_mgr(root, &o);
    for (int64_t s = 1; s <= 3; s++)
        save_step(m, s, M_NONE, 0);
    ckpt_manager_close(m);
    if (rank == 0) { /* step 3 becomes corrupt */
        snprintf(p, sizeof p, "%s/step-00000003/index.h5", root);
        FILE *f = fopen(p, "ab");
        assert_non_null(f);
        fputs("junk", f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    o.keep_last = 1;
    m = open_mgr(root, &o);
    int removed = -1;
    expect_ok(ckpt_manager_apply_retention(m, &removed));
    expect_same(removed);
    assert_int_equal(removed, 1);
    const int64_t want[] = {2};
    expect_committed(m, want, 1);
    snprintf(p, sizeof p, "%s/step-00000003", root);
    struct stat st;
    assert_int_equal(stat(p, &st), 0); /* the corrupt one is left alone */
    ckpt_manager_close(m);
}

/* A run resumed from an older step: the step just saved survives keep_last 1 next to a newer one. */
static void test_retention_protects_last_saved(void **u)
{
    (void)u;
    char root[4200];
    root_of(root, "protect");
    rm_rf(root);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    ckpt_manager *m = open_mgr(root, &o);
    save_step(m, 5, M_NONE, 0);
    save_step(m, 10, M_NONE, 0);
    ckpt_manager_close(m);
    o.keep_last = 1;
    m = open_mgr(root, &o);
    save_step(m, 6, M_NONE, 0);
    const int64_t want[] = {6, 10};
    expect_committed(m, want, 2);
    ckpt_manager_close(m);
}

/* ---- latest, incomplete, corrupt, cleanup ------------------------------------------------ */

static void test_latest_skips_broken(void **u)
{
    (void)u;
    char root[4200], p[4400];
    root_of(root, "latest");
    rm_rf(root);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    ckpt_manager *m = open_mgr(root, &o);
    for (int64_t s = 1; s <= 3; s++)
        save_step(m, s, M_NONE, 0);
    if (rank == 0) {
        snprintf(p, sizeof p, "%s/step-00000003/COMMITTED", root); /* as if the save never finished */
        assert_int_equal(unlink(p), 0);
        snprintf(p, sizeof p, "%s/step-00000002/index.h5", root); /* damaged after the commit */
        FILE *f = fopen(p, "r+b");
        assert_non_null(f);
        fseek(f, 100, SEEK_SET);
        fputc(0x5a, f);
        fclose(f);
        snprintf(p, sizeof p, "%s/step-00000004.tmp-0123456789abcdef", root); /* debris of a killed save */
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof p, "%s/step-00000004.tmp-0123456789abcdef/rank-00000.h5", root);
        FILE *g = fopen(p, "wb");
        assert_non_null(g);
        fputs("partial", g);
        fclose(g);
        snprintf(p, sizeof p, "%s/notes.txt", root); /* not ours: never touched */
        g = fopen(p, "w");
        assert_non_null(g);
        fclose(g);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    warnings[0] = '\0';
    int64_t step = -1;
    char path[4200], want_path[4300];
    expect_ok(ckpt_manager_latest(m, &step, path, sizeof path));
    expect_same(step);
    assert_true(step == 1);
    snprintf(want_path, sizeof want_path, "%s/step-00000001", root);
    assert_string_equal(path, want_path);
    if (rank == 0) {
        if (!strstr(warnings, "skipping step 3 (incomplete)") || !strstr(warnings, "step-00000003") ||
            !strstr(warnings, "no COMMITTED marker") || !strstr(warnings, "skipping step 2 (corrupt)") ||
            !strstr(warnings, "step-00000002/index.h5' does not match its commit marker") ||
            !strstr(warnings, "step-00000004.tmp-0123456789abcdef' is the temporary directory of a save of step 4"))
            fail_msg("warnings were:\n%s", warnings);
    } else {
        assert_string_equal(warnings, ""); /* only rank 0 scans */
    }
    expect_contents(path, 1);

    /* the list, from any rank */
    ckpt_manager_entry *e = NULL;
    int n = 0;
    expect_ok(ckpt_manager_list(m, &e, &n));
    assert_int_equal(n, 4);
    assert_true(e[0].step == 1 && e[0].state == CKPT_ENTRY_COMMITTED && e[0].status == CKPT_OK && e[0].bytes > 0);
    assert_true(e[1].step == 2 && e[1].state == CKPT_ENTRY_CORRUPT && e[1].status == CKPT_ECORRUPT);
    assert_true(e[2].step == 3 && e[2].state == CKPT_ENTRY_INCOMPLETE && e[2].status == CKPT_EINCOMPLETE);
    assert_true(e[3].step == 4 && e[3].state == CKPT_ENTRY_TEMPORARY && e[3].bytes == 7);
    assert_string_equal(e[3].name, "step-00000004.tmp-0123456789abcdef");
    free(e);
    MPI_Barrier(MPI_COMM_WORLD);

    /* cleanup: the incomplete directory and the debris go; the corrupt one stays */
    int removed = -1;
    expect_ok(ckpt_manager_clean_incomplete(m, &removed));
    expect_same(removed);
    assert_int_equal(removed, 2);
    DIR *d = opendir(root);
    assert_non_null(d);
    struct dirent *de;
    int seen = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        /* the manager's lock lives as long as the manager */
        if (strcmp(de->d_name, "step-00000001") && strcmp(de->d_name, "step-00000002") && strcmp(de->d_name, "notes.txt") &&
            strcmp(de->d_name, "ckpt-manager.lock"))
            fail_msg("'%s' is still in %s", de->d_name, root);
        seen++;
    }
    closedir(d);
    assert_int_equal(seen, 4);
    MPI_Barrier(MPI_COMM_WORLD);
    expect_ok(ckpt_manager_clean_incomplete(m, &removed));
    assert_int_equal(removed, 0);

    /* saving step 2 again replaces the corrupt directory, with a warning */
    warnings[0] = '\0';
    save_step(m, 2, M_NONE, 0);
    if (rank == 0 && !strstr(warnings, "replacing the corrupt directory of step 2"))
        fail_msg("warnings were:\n%s", warnings);
    expect_ok(ckpt_manager_latest(m, &step, path, sizeof path));
    assert_true(step == 2);
    expect_contents(path, 2);
    save_step(m, 3, M_NONE, 0);
    expect_ok(ckpt_manager_latest(m, &step, NULL, 0));
    assert_true(step == 3);
    /* a committed step is not replaced unless asked */
    ckpt_state *s = make_state(3, M_NONE, 0);
    expect_everywhere(ckpt_manager_save(m, 3, s, NULL), CKPT_EEXIST, "step-00000003': it already exists");
    ckpt_save_options so;
    ckpt_save_options_init(&so);
    so.overwrite = 1;
    expect_ok(ckpt_manager_save(m, 3, s, &so));
    ckpt_state_free(s);
    ckpt_manager_close(m);
}

/* Saving over an incomplete directory of the same step (a rerun after a crash). */
static void test_save_replaces_incomplete(void **u)
{
    (void)u;
    char root[4200], p[4400];
    root_of(root, "replace-incomplete");
    rm_rf(root);
    if (rank == 0) {
        snprintf(p, sizeof p, "%s/step-00000007", root);
        assert_int_equal(mkdir(root, 0755), 0);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    ckpt_manager *m = open_mgr(root, &o);
    int64_t step = -1;
    expect_everywhere(ckpt_manager_latest(m, &step, NULL, 0), CKPT_ENOTFOUND,
                      "(1 step directory skipped: incomplete, corrupt or unreadable)");
    warnings[0] = '\0';
    save_step(m, 7, M_NONE, 0);
    if (rank == 0 && !strstr(warnings, "replacing the incomplete directory of step 7"))
        fail_msg("warnings were:\n%s", warnings);
    expect_ok(ckpt_manager_latest(m, &step, p, sizeof p));
    assert_true(step == 7);
    expect_contents(p, 7);
    ckpt_manager_close(m);
}

static void test_latest_empty(void **u)
{
    (void)u;
    char root[4200], want[4400];
    root_of(root, "empty/nested/root/");
    rm_rf(root);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    ckpt_manager *m = open_mgr(root, &o); /* creates the parents too */
    int64_t step = 42;
    snprintf(want, sizeof want, "no committed checkpoint under '%s/empty/nested/root'", base);
    expect_everywhere(ckpt_manager_latest(m, &step, NULL, 0), CKPT_ENOTFOUND, want);
    assert_true(step == 42); /* untouched on failure */
    ckpt_manager_entry *e = (ckpt_manager_entry *)&step;
    int n = -1;
    expect_ok(ckpt_manager_list(m, &e, &n));
    assert_int_equal(n, 0);
    assert_null(e);
    ckpt_manager_close(m);
}

/* ---- arguments --------------------------------------------------------------------------- */

static void test_bad_options(void **u)
{
    (void)u;
    char root[4200], file[4300];
    root_of(root, "bad");
    rm_rf(root);
    ckpt_manager *m = (ckpt_manager *)&m;
    ckpt_manager_options o;

    ckpt_manager_options_init(&o);
    o.keep_last = rank == 1 ? -1 : 2; /* one rank's mistake reaches every rank */
    expect_everywhere(ckpt_manager_open(MPI_COMM_WORLD, root, &o, &m), CKPT_EINVAL, "rank 1: checkpoint manager of '");
    assert_null(m);
    assert_non_null(strstr(ckpt_errmsg(), "keep_last is -1"));

    ckpt_manager_options_init(&o);
    o.keep_best = 2;
    expect_everywhere(ckpt_manager_open(MPI_COMM_WORLD, root, &o, &m), CKPT_EINVAL, "keep_best is 2 but best_metric is not set");
    ckpt_manager_options_init(&o);
    o.version = 0;
    expect_everywhere(ckpt_manager_open(MPI_COMM_WORLD, root, &o, &m), CKPT_EINVAL, "options version 0");
    ckpt_manager_options_init(&o);
    o.best_mode = (ckpt_best_mode)7;
    expect_everywhere(ckpt_manager_open(MPI_COMM_WORLD, root, &o, &m), CKPT_EINVAL, "best_mode is 7");
    ckpt_manager_options_init(&o);
    o.save_every_secs = -1;
    expect_everywhere(ckpt_manager_open(MPI_COMM_WORLD, root, &o, &m), CKPT_EINVAL, "save_every_secs is -1");
    ckpt_manager_options_init(&o);
    o.best_metric = "a//b";
    expect_everywhere(ckpt_manager_open(MPI_COMM_WORLD, root, &o, &m), CKPT_EINVAL, "best_metric");
    expect_everywhere(ckpt_manager_open(MPI_COMM_WORLD, "", NULL, &m), CKPT_EINVAL, "checkpoint root is empty");

    /* a root below a regular file */
    if (rank == 0) {
        assert_int_equal(mkdir(root, 0755), 0);
        snprintf(file, sizeof file, "%s/file", root);
        FILE *f = fopen(file, "w");
        assert_non_null(f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    snprintf(file, sizeof file, "%s/file/ckpt", root);
    expect_everywhere(ckpt_manager_open(MPI_COMM_WORLD, file, NULL, &m), CKPT_EIO, "cannot create checkpoint root '");
    assert_non_null(strstr(ckpt_errmsg(), "/file/ckpt"));
    snprintf(file, sizeof file, "%s/file", root);
    expect_everywhere(ckpt_manager_open(MPI_COMM_WORLD, file, NULL, &m), CKPT_EEXIST, "is not a directory");

    /* bad calls on an open manager */
    ckpt_manager_options_init(&o);
    m = open_mgr(root, &o);
    char small[8];
    assert_int_equal(ckpt_manager_step_path(m, -1, file, sizeof file), CKPT_EINVAL);
    assert_non_null(strstr(ckpt_errmsg(), "step -1 is negative"));
    assert_int_equal(ckpt_manager_step_path(m, 3, small, sizeof small), CKPT_EINVAL);
    assert_non_null(strstr(ckpt_errmsg(), "the path of step 3 under '"));
    assert_int_equal(ckpt_manager_step_path(m, 123456789012LL, file, sizeof file), CKPT_OK);
    assert_non_null(strstr(file, "/step-123456789012"));
    ckpt_state *s = make_state(1, M_NONE, 0);
    expect_everywhere(ckpt_manager_save(m, rank == 0 ? 1 : -1, s, NULL), CKPT_EINVAL, "rank 1: step -1 is negative");
    expect_everywhere(ckpt_manager_save(m, 1, rank == 0 ? s : NULL, NULL), CKPT_EINVAL, "state is NULL (step 1");
    ckpt_save_options so;
    memset(&so, 0, sizeof so);
    expect_everywhere(ckpt_manager_save(m, 1, s, &so), CKPT_EINVAL, "save options version 0");
    int save = 0;
    expect_everywhere(ckpt_manager_should_save(m, -5, &save), CKPT_EINVAL, "step -5 is negative");
    expect_everywhere(ckpt_manager_should_save(m, 5, rank == 1 ? NULL : &save), CKPT_EINVAL, "rank 1: ckpt_manager_should_save: save is NULL");
    ckpt_state_free(s);
    ckpt_manager_close(m);
    ckpt_manager_close(NULL);
    assert_int_equal(ckpt_manager_latest(NULL, NULL, NULL, 0), CKPT_EINVAL);
}

/* ---- save policy ------------------------------------------------------------------------- */

static void test_should_save_steps(void **u)
{
    (void)u;
    char root[4200];
    root_of(root, "policy-steps");
    rm_rf(root);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.save_every_steps = 5;
    ckpt_manager *m = open_mgr(root, &o);
    char got[64] = "";
    for (int64_t s = 0; s <= 12; s++) {
        int save = -1;
        expect_ok(ckpt_manager_should_save(m, s, &save));
        expect_same(save);
        if (save) {
            snprintf(got + strlen(got), sizeof got - strlen(got), " %lld", (long long)s);
            assert_int_equal(ckpt_manager_mark_saved(m, s), CKPT_OK);
            /* asked again at the step just saved: no */
            expect_ok(ckpt_manager_should_save(m, s, &save));
            assert_int_equal(save, 0);
        }
    }
    assert_string_equal(got, " 0 5 10");
    ckpt_manager_close(m);
    /* no policy: never */
    ckpt_manager_options_init(&o);
    m = open_mgr(root, &o);
    for (int64_t s = 0; s <= 3; s++) {
        int save = -1;
        expect_ok(ckpt_manager_should_save(m, s, &save));
        assert_int_equal(save, 0);
    }
    ckpt_manager_close(m);
}

static void sleep_secs(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void test_should_save_seconds(void **u)
{
    (void)u;
    char root[4200];
    root_of(root, "policy-secs");
    rm_rf(root);
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.save_every_secs = 0.3;
    ckpt_manager *m = open_mgr(root, &o);
    int save = -1;
    expect_ok(ckpt_manager_should_save(m, 1, &save));
    expect_same(save);
    assert_int_equal(save, 0);
    /* only rank 0 waits: its clock decides for everyone */
    if (rank == 0)
        sleep_secs(0.4);
    expect_ok(ckpt_manager_should_save(m, 2, &save));
    expect_same(save);
    assert_int_equal(save, 1);
    save_step(m, 2, M_NONE, 0); /* restarts the timer */
    expect_ok(ckpt_manager_should_save(m, 3, &save));
    assert_int_equal(save, 0);
    if (rank == 0)
        sleep_secs(0.4);
    expect_ok(ckpt_manager_should_save(m, 4, &save));
    expect_same(save);
    assert_int_equal(save, 1);
    ckpt_manager_close(m);
}

/* ---- preemption -------------------------------------------------------------------------- */

static void test_preempt(void **u)
{
    (void)u;
    assert_int_equal(ckpt_preempt_install(), CKPT_OK);
    assert_int_equal(ckpt_preempt_install(), CKPT_OK); /* idempotent */
    struct sigaction sa;
    assert_int_equal(sigaction(SIGUSR1, NULL, &sa), 0);
    assert_true(sa.sa_flags & SA_RESTART);
    assert_true(sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
    assert_int_equal(sigaction(SIGTERM, NULL, &sa), 0);
    assert_true(sa.sa_flags & SA_RESTART);
    ckpt_preempt_clear();
    MPI_Barrier(MPI_COMM_WORLD);

    int req = -1;
    expect_ok(ckpt_preempt_requested(MPI_COMM_WORLD, &req));
    assert_int_equal(req, 0);

    /* SIGUSR1 on rank 1 only: every rank hears of it */
    if (rank == 1)
        assert_int_equal(raise(SIGUSR1), 0);
    expect_ok(ckpt_preempt_requested(MPI_COMM_WORLD, &req));
    expect_same(req);
    assert_int_equal(req, 1);
    /* locally only rank 1 has it */
    assert_int_equal(ckpt_preempt_requested(MPI_COMM_NULL, &req), CKPT_OK);
    assert_int_equal(req, rank == 1);
    /* it stays set until cleared */
    expect_ok(ckpt_preempt_requested(MPI_COMM_WORLD, &req));
    assert_int_equal(req, 1);
    ckpt_preempt_clear();
    expect_ok(ckpt_preempt_requested(MPI_COMM_WORLD, &req));
    assert_int_equal(req, 0);

    /* SIGTERM on rank 0: the process lives on, and everyone hears of it */
    if (rank == 0)
        assert_int_equal(raise(SIGTERM), 0);
    expect_ok(ckpt_preempt_requested(MPI_COMM_WORLD, &req));
    expect_same(req);
    assert_int_equal(req, 1);
    ckpt_preempt_clear();

    /* a NULL argument on one rank: every rank fails, none waits */
    expect_everywhere(ckpt_preempt_requested(MPI_COMM_WORLD, rank == 1 ? NULL : &req), CKPT_EINVAL,
                      "ckpt_preempt_requested: requested is NULL");
    if (rank == 0)
        assert_non_null(strstr(ckpt_errmsg(), "on another rank"));
    MPI_Barrier(MPI_COMM_WORLD);
}

/* The whole loop: a preemption mid-run saves at that step, and a rerun resumes from it. */
static void test_preempt_loop(void **u)
{
    (void)u;
    char root[4200], path[4300];
    root_of(root, "loop");
    rm_rf(root);
    assert_int_equal(ckpt_preempt_install(), CKPT_OK);
    ckpt_preempt_clear();
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.save_every_steps = 4;
    o.keep_last = 2;
    ckpt_manager *m = open_mgr(root, &o);
    int64_t stopped = -1;
    for (int64_t step = 1; step <= 20; step++) {
        if (step == 11 && rank == nranks - 1)
            raise(SIGUSR1);
        int save = 0, stop = 0;
        expect_ok(ckpt_manager_should_save(m, step, &save));
        expect_ok(ckpt_preempt_requested(MPI_COMM_WORLD, &stop));
        if (save || stop)
            save_step(m, step, M_NONE, 0);
        if (stop) {
            stopped = step;
            break;
        }
    }
    assert_true(stopped == 11);
    ckpt_manager_close(m);
    ckpt_preempt_clear();
    /* the rerun */
    m = open_mgr(root, &o);
    int64_t step = -1;
    expect_ok(ckpt_manager_latest(m, &step, path, sizeof path));
    assert_true(step == 11);
    expect_contents(path, 11);
    const int64_t want[] = {8, 11};
    expect_committed(m, want, 2);
    ckpt_manager_close(m);
}

int main(int argc, char **argv)
{
    int st = mpi_test_begin(&argc, &argv, "test_manager", 2, &rank, &nranks, base, sizeof base);
    if (st)
        return st;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_last),
        cmocka_unit_test(test_keep_last_every),
        cmocka_unit_test(test_keep_last_best_min),
        cmocka_unit_test(test_keep_last_best_max),
        cmocka_unit_test(test_keep_all_three),
        cmocka_unit_test(test_keep_all),
        cmocka_unit_test(test_keep_last_one),
        cmocka_unit_test(test_best_midway),
        cmocka_unit_test(test_best_lacking_metric),
        cmocka_unit_test(test_retention_keeps_newest_committed),
        cmocka_unit_test(test_retention_protects_last_saved),
        cmocka_unit_test(test_latest_skips_broken),
        cmocka_unit_test(test_save_replaces_incomplete),
        cmocka_unit_test(test_latest_empty),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_should_save_steps),
        cmocka_unit_test(test_should_save_seconds),
        cmocka_unit_test(test_preempt),
        cmocka_unit_test(test_preempt_loop),
    };
    int failed = cmocka_run_group_tests_name("manager", tests, NULL, NULL);
    return mpi_test_end(failed);
}
