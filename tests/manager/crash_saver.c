/* crash_saver.c -- the MPI program behind crash_test.sh.
 *
 *   crash_saver save ROOT STEP FLOATS PIDDIR
 *       every rank writes PIDDIR/rank-R.pid (so the script can kill -9 the whole job), then
 *       the job saves STEP through the manager: tensor "x" f32 [nranks * FLOATS], Shard(0),
 *       whose contents are pattern(tid = STEP).
 *   crash_saver check ROOT
 *       after the crash: latest must be step 1 (the debris of step 2 is reported), the list
 *       must show the debris, cleanup must remove it, and step 1 must load bit-exactly.
 *   crash_saver hold ROOT PIDDIR
 *       a job that keeps its manager open and commits forever: writes PIDDIR/rank-R.pid, opens the
 *       manager (keep_last 2), then saves steps 1, 2, 3, ... every 50 ms (as crash_saver train
 *       does), printing "holding" once after the first save and nothing after (its launcher may
 *       be killed: then stdout is a broken pipe). Ends only when killed.
 *   crash_saver peek ROOT
 *       rank 0 prints "latest N" (ckpt_manager_peek_latest: no lock), or "latest none".
 *   crash_saver train ROOT LAST
 *       a training loop: resumes from the latest checkpoint (verified bit-exactly), then runs
 *       steps up to LAST (20 ms each), saving every 25 steps (keep_last 2) and polling for
 *       preemption; on SIGTERM/SIGUSR1 it saves at once and exits with CKPT_EXIT_REQUEUE.
 *
 * Exits 0 on success, 1 on failure (the same on every rank), 75 after a preemption save. */
#include "pattern.h"

#include <ckpt.h>

#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int rank, nranks;

#define CHECK(cond, ...)                                                                                          \
    do {                                                                                                          \
        if (!(cond)) {                                                                                            \
            fprintf(stderr, "crash_saver rank %d: ", rank);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                                         \
            fprintf(stderr, "\n");                                                                                \
            ok = 0;                                                                                               \
            goto out;                                                                                             \
        }                                                                                                         \
    } while (0)

static int all_ok(int ok)
{
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all;
}

static const char *state_name(int s)
{
    switch (s) {
    case CKPT_ENTRY_COMMITTED: return "committed";
    case CKPT_ENTRY_INCOMPLETE: return "incomplete";
    case CKPT_ENTRY_CORRUPT: return "corrupt";
    case CKPT_ENTRY_UNREADABLE: return "unreadable";
    case CKPT_ENTRY_TEMPORARY: return "temporary";
    default: return "?";
    }
}

static int do_save(const char *root, int64_t step, int64_t floats, const char *piddir)
{
    int ok = 1;
    char p[4200];
    snprintf(p, sizeof p, "%s/rank-%d.pid", piddir, rank);
    FILE *f = fopen(p, "w");
    if (f) {
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD); /* every pid is on disk before the save starts */
    ckpt_manager *m = NULL;
    ckpt_state *s = NULL;
    int64_t shape[1] = {floats * nranks}, off[1], ext[1];
    float *buf = malloc((size_t)floats * sizeof *buf);
    ok = buf != NULL;
    if (!all_ok(ok))
        return 0;
    ckpt_shard_box(1, shape, 0, rank, nranks, off, ext);
    pattern_fill((int)step, CKPT_F32, 1, shape, off, ext, buf);
    int rc = ckpt_manager_open(MPI_COMM_WORLD, root, NULL, &m);
    CHECK(rc == CKPT_OK, "open: %s", ckpt_errmsg());
    CHECK(ckpt_state_create(&s) == CKPT_OK, "state");
    CHECK(ckpt_state_add_shard(s, "x", CKPT_F32, 1, shape, 0, rank, nranks, buf) == CKPT_OK, "%s", ckpt_errmsg());
    CHECK(ckpt_state_set_int(s, "step", step) == CKPT_OK, "%s", ckpt_errmsg());
    rc = ckpt_manager_save(m, step, s, NULL);
    CHECK(rc == CKPT_OK, "save of step %lld: %s", (long long)step, ckpt_errmsg());
    if (rank == 0)
        printf("saved step %lld (%lld floats per rank)\n", (long long)step, (long long)floats);
out:
    ckpt_state_free(s);
    ckpt_manager_close(m);
    free(buf);
    return all_ok(ok);
}

/* Loads tensor "x" of the checkpoint at path (Shard(0) over this job) and compares it bit for
 * bit with pattern(tid = step). */
static int load_exact(const char *path, int64_t step)
{
    int ok = 1;
    ckpt_reader *r = NULL;
    ckpt_state *s = NULL;
    float *got = NULL, *want = NULL;
    int i = -1;
    ckpt_tensor_info ti;
    int64_t off[1] = {0}, ext[1] = {0};
    int rc = ckpt_reader_open(path, &r);
    CHECK(rc == CKPT_OK, "reader: %s", ckpt_errmsg());
    CHECK(ckpt_reader_find(r, "x", &i) == CKPT_OK && ckpt_reader_tensor_info(r, i, &ti) == CKPT_OK, "%s",
          ckpt_errmsg());
    ckpt_shard_box(1, ti.shape, 0, rank, nranks, off, ext);
    got = malloc((size_t)ext[0] * sizeof *got + 1);
    want = malloc((size_t)ext[0] * sizeof *want + 1);
    CHECK(got && want, "out of memory");
    pattern_fill((int)step, CKPT_F32, 1, ti.shape, off, ext, want);
    memset(got, 0xff, (size_t)ext[0] * sizeof *got);
    CHECK(ckpt_state_create(&s) == CKPT_OK, "state");
    CHECK(ckpt_state_add_shard(s, "x", CKPT_F32, 1, ti.shape, 0, rank, nranks, got) == CKPT_OK, "%s", ckpt_errmsg());
out:
    ckpt_reader_close(r);
    if (!all_ok(ok)) {
        ckpt_state_free(s);
        free(got);
        free(want);
        return 0;
    }
    rc = ckpt_load(MPI_COMM_WORLD, path, s, NULL);
    int64_t st = -1;
    if (rc != CKPT_OK)
        fprintf(stderr, "crash_saver rank %d: load of '%s': %s\n", rank, path, ckpt_errmsg()), ok = 0;
    else if (ckpt_state_get_int(s, "step", &st) != CKPT_OK || st != step)
        fprintf(stderr, "crash_saver rank %d: attribute step is %lld, want %lld\n", rank, (long long)st, (long long)step),
            ok = 0;
    else if (memcmp(got, want, (size_t)ext[0] * sizeof *got) != 0)
        fprintf(stderr, "crash_saver rank %d: step %lld differs from what was saved\n", rank, (long long)step), ok = 0;
    ckpt_state_free(s);
    free(got);
    free(want);
    return all_ok(ok);
}

static int do_check(const char *root)
{
    int ok = 1;
    ckpt_manager *m = NULL;
    ckpt_manager_entry *e = NULL;
    int n = 0, temporary = 0, removed = -1;
    int64_t step = -1;
    char path[4200];
    int rc = ckpt_manager_open(MPI_COMM_WORLD, root, NULL, &m);
    CHECK(rc == CKPT_OK, "open: %s", ckpt_errmsg());
    /* warnings about the debris go to stderr (rank 0); the script looks for them */
    rc = ckpt_manager_latest(m, &step, path, sizeof path);
    CHECK(rc == CKPT_OK, "latest: %s", ckpt_errmsg());
    CHECK(step == 1, "latest is step %lld, want 1", (long long)step);
    rc = ckpt_manager_list(m, &e, &n);
    CHECK(rc == CKPT_OK, "list: %s", ckpt_errmsg());
    for (int i = 0; i < n; i++) {
        if (rank == 0)
            printf("entry %s step %lld %s %lld bytes\n", e[i].name, (long long)e[i].step, state_name(e[i].state),
                   (long long)e[i].bytes);
        if (e[i].state == CKPT_ENTRY_TEMPORARY && e[i].step == 2)
            temporary++;
        else
            CHECK(e[i].step == 1 && e[i].state == CKPT_ENTRY_COMMITTED, "unexpected entry %s", e[i].name);
    }
    CHECK(temporary >= 1, "the interrupted save of step 2 left no temporary directory");
    free(e);
    e = NULL;
    MPI_Barrier(MPI_COMM_WORLD); /* every rank listed before rank 0 cleans */
    rc = ckpt_manager_clean_incomplete(m, &removed);
    CHECK(rc == CKPT_OK, "clean: %s", ckpt_errmsg());
    CHECK(removed == temporary, "cleanup removed %d, want %d", removed, temporary);
    if (rank == 0)
        printf("cleanup removed %d\n", removed);
    rc = ckpt_manager_list(m, &e, &n);
    CHECK(rc == CKPT_OK && n == 1 && e[0].step == 1, "after cleanup: %d entries", n);
out:
    free(e);
    if (!all_ok(ok)) {
        ckpt_manager_close(m);
        return 0;
    }
    if (!load_exact(path, 1)) {
        ckpt_manager_close(m);
        return 0;
    }
    if (rank == 0)
        printf("step 1 loaded bit-exactly from %s\n", path);
    ckpt_manager_close(m);
    return 1;
}

/* Saves `step` of the training loop: tensor "x" f32 [nranks * 1024], pattern(tid = step). */
static int train_save(ckpt_manager *m, int64_t step)
{
    enum { FLOATS = 1024 };
    float buf[FLOATS];
    int64_t shape[1] = {(int64_t)FLOATS * nranks}, off[1], ext[1];
    ckpt_shard_box(1, shape, 0, rank, nranks, off, ext);
    pattern_fill((int)step, CKPT_F32, 1, shape, off, ext, buf);
    ckpt_state *s = NULL;
    int rc = ckpt_state_create(&s);
    if (rc == CKPT_OK)
        rc = ckpt_state_add_shard(s, "x", CKPT_F32, 1, shape, 0, rank, nranks, buf);
    if (rc == CKPT_OK)
        rc = ckpt_state_set_int(s, "step", step);
    rc = all_ok(rc == CKPT_OK) ? ckpt_manager_save(m, step, s, NULL) : CKPT_EINVAL;
    if (rc != CKPT_OK)
        fprintf(stderr, "crash_saver rank %d: save of step %lld: %s\n", rank, (long long)step, ckpt_errmsg());
    ckpt_state_free(s);
    return rc == CKPT_OK;
}

/* Returns 0 (finished), 1 (failure) or CKPT_EXIT_REQUEUE (preempted and saved). */
static int do_train(const char *root, int64_t last)
{
    ckpt_manager *m = NULL;
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.save_every_steps = 25;
    o.keep_last = 2;
    if (ckpt_preempt_install() != CKPT_OK || ckpt_manager_open(MPI_COMM_WORLD, root, &o, &m) != CKPT_OK) {
        fprintf(stderr, "crash_saver rank %d: %s\n", rank, ckpt_errmsg());
        return 1;
    }
    int64_t start = 0;
    char path[4200];
    int rc = ckpt_manager_latest(m, &start, path, sizeof path);
    if (rc == CKPT_OK) {
        if (!load_exact(path, start)) {
            ckpt_manager_close(m);
            return 1;
        }
        if (rank == 0)
            printf("resumed from step %lld\n", (long long)start);
    } else if (rc == CKPT_ENOTFOUND) {
        start = 0;
    } else {
        fprintf(stderr, "crash_saver rank %d: latest: %s\n", rank, ckpt_errmsg());
        ckpt_manager_close(m);
        return 1;
    }
    for (int64_t step = start + 1; step <= last; step++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL); /* "training"; a signal may cut it short */
        int save = 0, stop = 0;
        if (ckpt_manager_should_save(m, step, &save) != CKPT_OK ||
            ckpt_preempt_requested(MPI_COMM_WORLD, &stop) != CKPT_OK) {
            fprintf(stderr, "crash_saver rank %d: %s\n", rank, ckpt_errmsg());
            ckpt_manager_close(m);
            return 1;
        }
        if ((save || stop) && !train_save(m, step)) {
            ckpt_manager_close(m);
            return 1;
        }
        if (stop) {
            if (rank == 0)
                printf("preempted at step %lld: saved, exiting with %d\n", (long long)step, CKPT_EXIT_REQUEUE);
            ckpt_manager_close(m);
            return CKPT_EXIT_REQUEUE;
        }
    }
    if (rank == 0)
        printf("finished at step %lld\n", (long long)last);
    ckpt_manager_close(m);
    return 0;
}

static int write_pid(const char *piddir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/rank-%d.pid", piddir, rank);
    FILE *f = fopen(p, "w");
    if (!f)
        return 0;
    fprintf(f, "%ld\n", (long)getpid());
    return fclose(f) == 0;
}

static int do_hold(const char *root, const char *piddir)
{
    if (!all_ok(write_pid(piddir)))
        return 1;
    ckpt_manager *m = NULL;
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.keep_last = 2;
    if (ckpt_manager_open(MPI_COMM_WORLD, root, &o, &m) != CKPT_OK) {
        fprintf(stderr, "crash_saver rank %d: %s\n", rank, ckpt_errmsg());
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* stdout may outlive its reader */
    for (int64_t step = 1;; step++) {
        if (!train_save(m, step)) {
            ckpt_manager_close(m);
            return 1;
        }
        if (step == 1 && rank == 0) {
            printf("holding %s\n", root);
            fflush(stdout);
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int do_peek(const char *root)
{
    int64_t step = -1;
    int rc = ckpt_manager_peek_latest(root, &step, NULL, 0);
    if (rank == 0) {
        if (rc == CKPT_OK)
            printf("latest %lld\n", (long long)step);
        else
            printf("latest none (%s)\n", ckpt_errmsg());
    }
    return rc == CKPT_OK || rc == CKPT_ENOTFOUND ? 0 : 1;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int status = 1;
    if (argc == 6 && strcmp(argv[1], "save") == 0)
        status = do_save(argv[2], atoll(argv[3]), atoll(argv[4]), argv[5]) ? 0 : 1;
    else if (argc == 3 && strcmp(argv[1], "check") == 0)
        status = do_check(argv[2]) ? 0 : 1;
    else if (argc == 4 && strcmp(argv[1], "hold") == 0)
        status = do_hold(argv[2], argv[3]);
    else if (argc == 3 && strcmp(argv[1], "peek") == 0)
        status = do_peek(argv[2]);
    else if (argc == 4 && strcmp(argv[1], "train") == 0)
        status = do_train(argv[2], atoll(argv[3]));
    else if (rank == 0)
        fprintf(stderr, "usage: crash_saver save ROOT STEP FLOATS PIDDIR | check ROOT | train ROOT LAST | hold ROOT "
                        "PIDDIR | peek ROOT\n");
    fflush(stdout);
    MPI_Finalize();
    return status;
}
