/* test_overwrite.c -- overwriting a committed step and saving through the manager, with a fault
 * at every file-system call the library makes (one process, no MPI_Init, MPI_COMM_NULL).
 *
 *   crash sweep: the overwrite of step 5 (copy A by copy B) is run in a child that ends with
 *     _exit right after the k-th call of each kind (CKPT_FAULT "KIND@K:crash"), once with
 *     RENAME_EXCHANGE disabled ("no_exchange", as on NFS) and once with it. After each crash:
 *     ckpt_manager_peek_latest and ckpt_manager_latest both say step 5 (never the older step 3),
 *     step 5 loads bit-exactly as A when the crash came before the rename that puts B in place
 *     and as B from that rename on, ckpt_manager_clean_incomplete leaves exactly the two step
 *     directories, and the load is still exact after it.
 *   error sweep: the same overwrite with the k-th call of each kind failing with ENOSPC or EIO
 *     (and short writes): the save either fails naming the errno -- and step 5 is still A -- or
 *     succeeds with B; no descriptor is left open; cleanup leaves only step directories.
 *   manager sweep: ckpt_manager_open + ckpt_manager_save (retention keep_last 2) +
 *     ckpt_manager_close with the k-th call failing: an error names the errno, the previous
 *     steps stay committed and exact, the lock is released, nothing is left behind.
 *
 * Prints the number of fault points of each sweep. Scratch directory: argv[1]. */
#include "pattern.h"

#include "fault.h"
#include "fault_env.h"
#include "sysio.h"

#include <ckpt.h>

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit.h"

#define N 33
#define STEP_A 105 /* pattern ids of the two copies of step 5 */
#define STEP_B 205

static char dir[4096], root[4200];

static void set_faults(const char *spec)
{
    expect_ok(test_set_faults(spec));
}

static void step_path(int64_t step, char *buf, size_t len)
{
    snprintf(buf, len, "%s/step-%08lld", root, (long long)step);
}

/* Saves pattern tid as step `step` (overwrite when asked). */
static int save_step(int64_t step, int tid, int overwrite)
{
    float buf[N];
    int64_t shape[1] = {N}, off[1] = {0};
    pattern_fill(tid, CKPT_F32, 1, shape, off, shape, buf);
    ckpt_state *s = NULL;
    int rc = ckpt_state_create(&s);
    if (rc == CKPT_OK)
        rc = ckpt_state_add_replicated(s, "v", CKPT_F32, 1, shape, buf);
    if (rc == CKPT_OK)
        rc = ckpt_state_set_int(s, "tid", tid);
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.overwrite = overwrite;
    char p[4300];
    step_path(step, p, sizeof p);
    if (rc == CKPT_OK)
        rc = ckpt_save(MPI_COMM_NULL, p, s, &o);
    ckpt_state_free(s);
    return rc;
}

/* Which pattern the checkpoint at path holds (-1: not loadable or not an exact pattern). */
static int loaded_tid(const char *path)
{
    float got[N], want[N];
    int64_t shape[1] = {N}, off[1] = {0}, tid = -1;
    ckpt_state *s = NULL;
    if (ckpt_state_create(&s) != CKPT_OK)
        return -1;
    int rc = ckpt_state_add_replicated(s, "v", CKPT_F32, 1, shape, got);
    if (rc == CKPT_OK)
        rc = ckpt_load(MPI_COMM_NULL, path, s, NULL);
    if (rc == CKPT_OK)
        rc = ckpt_state_get_int(s, "tid", &tid);
    ckpt_state_free(s);
    if (rc != CKPT_OK)
        return -1;
    pattern_fill((int)tid, CKPT_F32, 1, shape, off, shape, want);
    return memcmp(got, want, sizeof got) == 0 ? (int)tid : -1;
}

static void rm_rf(const char *p)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0)
        fail_msg("cannot remove %s", p);
}

/* The root's entries, sorted, as " a b c". */
static void listing(char *out, size_t len)
{
    struct dirent **names = NULL;
    int n = scandir(root, &names, NULL, alphasort);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.')
            snprintf(out + strlen(out), len - strlen(out), " %s", names[i]->d_name);
        free(names[i]);
    }
    free(names);
}

/* A fresh root: step 3 (pattern 3) and step 5 (copy A). */
static void fresh_root(void)
{
    rm_rf(root);
    if (mkdir(root, 0755) != 0)
        fail_msg("mkdir %s", root);
    set_faults(NULL);
    expect_ok(save_step(3, 3, 0));
    expect_ok(save_step(5, STEP_A, 0));
}

static int warnings;
static void count_warn(const char *msg, void *user)
{
    (void)msg;
    (void)user;
    warnings++;
}

static ckpt_manager *open_mgr(const ckpt_manager_options *base)
{
    ckpt_manager_options o;
    if (base)
        o = *base;
    else
        ckpt_manager_options_init(&o);
    o.warn = count_warn;
    ckpt_manager *m = NULL;
    expect_ok(ckpt_manager_open(MPI_COMM_NULL, root, &o, &m));
    return m;
}

/* After a crash or an error: both views of latest agree on step 5 holding `want`; cleanup
 * leaves exactly steps 3 and 5; the load stays exact. `what` names the fault. */
static void check_root(const char *what, int want)
{
    char path[4300], p5[4300], ls[4096];
    int64_t step = -1;
    int rc = ckpt_manager_peek_latest(root, &step, path, sizeof path);
    if (rc != CKPT_OK || step != 5)
        fail_msg("%s: peek_latest says step %lld (%s: %s)", what, (long long)step, ckpt_status_name(rc), ckpt_errmsg());
    int got = loaded_tid(path);
    if (got != want)
        fail_msg("%s: peek_latest's '%s' holds copy %d, want %d", what, path, got, want);
    ckpt_manager *m = open_mgr(NULL);
    step = -1;
    expect_ok(ckpt_manager_latest(m, &step, path, sizeof path));
    step_path(5, p5, sizeof p5);
    if (step != 5 || strcmp(path, p5) != 0)
        fail_msg("%s: latest is step %lld at '%s'", what, (long long)step, path);
    if ((got = loaded_tid(path)) != want)
        fail_msg("%s: latest '%s' holds copy %d, want %d", what, path, got, want);
    expect_ok(ckpt_manager_clean_incomplete(m, NULL));
    ckpt_manager_close(m);
    listing(ls, sizeof ls);
    if (strcmp(ls, " step-00000003 step-00000005") != 0)
        fail_msg("%s: after cleanup the root holds '%s'", what, ls);
    if ((got = loaded_tid(p5)) != want || loaded_tid(strcat(strcpy(path, root), "/step-00000003")) != 3)
        fail_msg("%s: after cleanup step 5 holds copy %d, want %d", what, got, want);
    if (ckpt_sys_open_files() != 0)
        fail_msg("%s: %d descriptors left open", what, ckpt_sys_open_files());
}

/* ---- the crash sweep ---------------------------------------------------------------------- */

typedef struct call {
    ckpt_io_kind kind;
    uint64_t k;
    char what[300];
} call;

typedef struct trace {
    call *v;
    int n, cap;
} trace;

static void on_call(ckpt_io_kind kind, uint64_t k, const char *what, void *user)
{
    trace *t = user;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->v = realloc(t->v, (size_t)t->cap * sizeof *t->v);
    }
    call *c = &t->v[t->n++];
    c->kind = kind;
    c->k = k;
    snprintf(c->what, sizeof c->what, "%s", what);
}

/* The calls of one overwrite of step 5 by copy B, in order, under `mode`. */
static void record_overwrite(const char *mode, trace *t)
{
    fresh_root();
    set_faults(mode);
    t->n = 0;
    ckpt_fault_set_trace(on_call, t);
    int rc = save_step(5, STEP_B, 1);
    ckpt_fault_set_trace(NULL, NULL);
    expect_ok(rc);
    set_faults(NULL);
}

static int crash_sweep(const char *mode)
{
    trace t = {NULL, 0, 0};
    char p5[4300], spec[256], what[1024];
    record_overwrite(mode, &t);
    step_path(5, p5, sizeof p5);
    int publish = -1; /* the call that puts B at step-00000005 */
    for (int i = 0; i < t.n; i++)
        if (t.v[i].kind == CKPT_IO_RENAME && strcmp(t.v[i].what, p5) == 0)
            publish = i;
    if (publish < 0)
        fail_msg("%s: no rename onto '%s' among %d calls", mode, p5, t.n);
    for (int i = 0; i < t.n; i++) {
        fresh_root();
        snprintf(spec, sizeof spec, "%s%s%s@%llu:crash", mode, *mode ? "," : "", ckpt_io_kind_name(t.v[i].kind),
                 (unsigned long long)t.v[i].k);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            setenv("CKPT_FAULT", spec, 1);
            if (ckpt_fault_reset() != CKPT_OK)
                _exit(3);
            save_step(5, STEP_B, 1);
            _exit(4); /* the crash never came */
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != CKPT_FAULT_CRASH_EXIT)
            fail_msg("%s: the child did not crash as asked (status %d)", spec, st);
        snprintf(what, sizeof what, "crash after %s of '%s' (%s)", ckpt_io_kind_name(t.v[i].kind), t.v[i].what, spec);
        check_root(what, i >= publish ? STEP_B : STEP_A);
    }
    int n = t.n;
    free(t.v);
    return n;
}

static void test_crash_without_exchange(void **u)
{
    (void)u;
    int n = crash_sweep("no_exchange");
    print_message("overwrite without RENAME_EXCHANGE: a crash after each of %d calls recovered\n", n);
}

static void test_crash_with_exchange(void **u)
{
    (void)u;
    int n = crash_sweep("");
    print_message("overwrite with RENAME_EXCHANGE: a crash after each of %d calls recovered\n", n);
}

/* ---- the error sweeps --------------------------------------------------------------------- */

static char last_msg[2048]; /* the message of the last failure of a swept function */

/* Runs fn with the k-th call of `kind` failing with `err` for k = 1..(calls of a clean run);
 * fn returns the status it got; check(rc) checks the state after. Returns the points swept. */
static int error_sweep(const char *mode, ckpt_io_kind kind, const char *err, int (*fn)(void),
                       void (*check)(const char *what, int rc), void (*reset)(void))
{
    reset();
    set_faults(mode);
    if (fn() != CKPT_OK)
        fail_msg("clean run failed: %s", last_msg);
    uint64_t total = ckpt_fault_count(kind);
    int points = 0;
    for (uint64_t k = 1; k <= total; k++) {
        char spec[256], what[512];
        reset();
        snprintf(spec, sizeof spec, "%s%s%s@%llu:%s", mode, *mode ? "," : "", ckpt_io_kind_name(kind),
                 (unsigned long long)k, err);
        set_faults(spec);
        last_msg[0] = '\0';
        int rc = fn();
        const char *msg = last_msg;
        set_faults(NULL);
        snprintf(what, sizeof what, "%s: %s", spec, rc ? msg : "saved");
        if (rc != CKPT_OK && strcmp(err, "short") != 0) {
            const char *want = strcmp(err, "EIO") == 0 ? "Input/output error" : "No space left on device";
            if (!strstr(msg, want))
                fail_msg("%s: the error does not name the failure (%s)", spec, msg);
        }
        if (rc != CKPT_OK && strcmp(err, "short") == 0 && kind == CKPT_IO_WRITE)
            fail_msg("%s: a short write was not retried: %s", spec, msg);
        check(what, rc);
        points++;
    }
    return points;
}

static int overwrite_b(void)
{
    int rc = save_step(5, STEP_B, 1);
    snprintf(last_msg, sizeof last_msg, "%s", rc ? ckpt_errmsg() : "");
    return rc;
}

static void check_overwrite(const char *what, int rc)
{
    if (ckpt_sys_open_files() != 0)
        fail_msg("%s: %d descriptors left open", what, ckpt_sys_open_files());
    check_root(what, rc == CKPT_OK ? STEP_B : STEP_A);
}

static const ckpt_io_kind kinds[] = {CKPT_IO_OPEN,  CKPT_IO_READ,  CKPT_IO_WRITE, CKPT_IO_FSYNC, CKPT_IO_RENAME,
                                     CKPT_IO_MKDIR, CKPT_IO_UNLINK, CKPT_IO_RMDIR, CKPT_IO_CLOSE, CKPT_IO_TRUNCATE,
                                     CKPT_IO_LOCK};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static int sweep_all(const char *mode, int (*fn)(void), void (*check)(const char *, int), void (*reset)(void))
{
    int points = 0;
    for (size_t i = 0; i < NKINDS; i++) {
        points += error_sweep(mode, kinds[i], "ENOSPC", fn, check, reset);
        points += error_sweep(mode, kinds[i], "EIO", fn, check, reset);
    }
    points += error_sweep(mode, CKPT_IO_WRITE, "short", fn, check, reset);
    return points;
}

static void test_overwrite_errors(void **u)
{
    (void)u;
    int a = sweep_all("no_exchange", overwrite_b, check_overwrite, fresh_root);
    int b = sweep_all("", overwrite_b, check_overwrite, fresh_root);
    print_message("overwrite errors: %d fault points without RENAME_EXCHANGE, %d with\n", a, b);
}

/* The manager: open, save step 7 with keep_last 2 (retention removes step 3), close. */
static int manager_cycle(void)
{
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.keep_last = 2;
    o.warn = count_warn;
    ckpt_manager *m = NULL;
    int rc = ckpt_manager_open(MPI_COMM_NULL, root, &o, &m);
    if (rc) {
        snprintf(last_msg, sizeof last_msg, "%s", ckpt_errmsg());
        return rc;
    }
    float buf[N];
    int64_t shape[1] = {N}, off[1] = {0};
    pattern_fill(7, CKPT_F32, 1, shape, off, shape, buf);
    ckpt_state *s = NULL;
    rc = ckpt_state_create(&s);
    if (rc == CKPT_OK)
        rc = ckpt_state_add_replicated(s, "v", CKPT_F32, 1, shape, buf);
    if (rc == CKPT_OK)
        rc = ckpt_state_set_int(s, "tid", 7);
    if (rc == CKPT_OK)
        rc = ckpt_manager_save(m, 7, s, NULL);
    snprintf(last_msg, sizeof last_msg, "%s", rc ? ckpt_errmsg() : "");
    ckpt_state_free(s);
    ckpt_manager_close(m);
    return rc;
}

static void check_manager(const char *what, int rc)
{
    char ls[4096], path[4300];
    if (ckpt_sys_open_files() != 0)
        fail_msg("%s: %d descriptors left open", what, ckpt_sys_open_files());
    /* step 7 is committed exactly when the save got that far: the message says so */
    int saved = rc == CKPT_OK || strstr(last_msg, "step 7 was saved to");
    int64_t step = -1;
    if (ckpt_manager_peek_latest(root, &step, path, sizeof path) != CKPT_OK || step != (saved ? 7 : 5) ||
        loaded_tid(path) != (saved ? 7 : STEP_A))
        fail_msg("%s: latest is step %lld at '%s'", what, (long long)step, path);
    ckpt_manager *m = open_mgr(NULL); /* the lock was released (or is stale): it opens */
    expect_ok(ckpt_manager_clean_incomplete(m, NULL));
    ckpt_manager_close(m);
    listing(ls, sizeof ls);
    /* retention runs after the commit: step 3 goes unless it failed */
    if (saved) {
        if (strcmp(ls, " step-00000005 step-00000007") != 0 && strcmp(ls, " step-00000003 step-00000005 step-00000007") != 0)
            fail_msg("%s: the root holds '%s'", what, ls);
    } else if (strcmp(ls, " step-00000003 step-00000005") != 0) {
        fail_msg("%s: the root holds '%s'", what, ls);
    }
}

static void test_manager_errors(void **u)
{
    (void)u;
    int n = sweep_all("", manager_cycle, check_manager, fresh_root);
    print_message("manager open/save/retention/close: %d fault points\n", n);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_overwrite SCRATCH_DIR\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    snprintf(root, sizeof root, "%s/root", dir);
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0)
        return 1;
    unsetenv("CKPT_FAULT");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_without_exchange),
        cmocka_unit_test(test_crash_with_exchange),
        cmocka_unit_test(test_overwrite_errors),
        cmocka_unit_test(test_manager_errors),
    };
    return cmocka_run_group_tests_name("overwrite", tests, NULL, NULL);
}
