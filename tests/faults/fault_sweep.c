/* fault_sweep.c -- a fault at any I/O call loses nothing (issue "reliability").
 *
 *   mpiexec -n 2 fault_sweep DIR CONFIG [STRIDE]
 *
 * CONFIG: per-rank, per-rank-zstd, shared, group, async (file-per-rank through ckpt_saver), or
 * load. A clean save of step 2 over a committed step 1 is first run with the fault layer counting
 * every call of each kind (fault.h) on each rank; then, for each rank in turn, for each kind and
 * each k up to that count (every STRIDE-th k, default 1), the same save runs with only that call
 * failing on only that rank (ENOSPC; writes also as short writes, fsyncs also as EIO), and every
 * time:
 *   - every rank returns the same status and the same message, which names the errno and a path
 *     inside the checkpoint root (or the save succeeded: a fault in a best-effort step, counted);
 *   - nothing is committed on failure: the latest checkpoint is still step 1 and loads bit-exactly;
 *   - after ckpt_manager_clean_incomplete the root holds the step directories only (no debris);
 *   - no hang (the test runs under a CTest timeout; each point is announced first), no leak (ASan).
 * CONFIG load fails each call of a load of step 1 instead (EIO): the same status and message on
 * every rank, and the next load succeeds bit-exactly. Prints the number of fault points swept. */
#include "fault.h"
#include "pattern.h"

#include <ckpt.h>

#include <dirent.h>
#include <errno.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank, nranks;
static const char *root, *config;
static int failures;

#define CHECK(cond, ...)                                                                             \
    do {                                                                                             \
        if (!(cond)) {                                                                               \
            fprintf(stderr, "rank %d: FAIL (%s:%d): ", rank, __FILE__, __LINE__);                    \
            fprintf(stderr, __VA_ARGS__);                                                            \
            fprintf(stderr, "\n");                                                                   \
            failures++;                                                                              \
        }                                                                                            \
    } while (0)

/* The state: a few tensors of every shape kind, Shard(0) over the ranks, plus a replicated one. */
enum { NT = 3 };
static const int64_t SHAPES[NT][2] = {{40, 6}, {17, 1}, {5, 3}};
static float *mem[NT];
static int64_t off[NT][2], ext[NT][2];

static ckpt_state *make_state(int fill)
{
    ckpt_state *s;
    ckpt_state_create(&s);
    for (int t = 0; t < NT; t++) {
        char name[32];
        snprintf(name, sizeof name, "layer%d/w", t);
        if (t == 2) { /* replicated */
            off[t][0] = off[t][1] = 0;
            ext[t][0] = SHAPES[t][0], ext[t][1] = SHAPES[t][1];
        } else {
            ckpt_shard_box(2, SHAPES[t], 0, rank, nranks, off[t], ext[t]);
        }
        size_t n = (size_t)(ext[t][0] * ext[t][1]);
        free(mem[t]);
        mem[t] = malloc(n * sizeof(float) + 4);
        if (fill)
            pattern_fill(t, CKPT_F32, 2, SHAPES[t], off[t], ext[t], mem[t]);
        else
            memset(mem[t], 0xA5, n * sizeof(float));
        ckpt_state_add_tensor(s, name, CKPT_F32, 2, SHAPES[t], 0);
        ckpt_state_add_box(s, name, off[t], ext[t], mem[t]);
    }
    ckpt_state_set_int(s, "step", 1);
    return s;
}

static int loaded_exactly(void)
{
    for (int t = 0; t < NT; t++) {
        size_t n = (size_t)(ext[t][0] * ext[t][1]);
        float *want = malloc(n * sizeof(float) + 4);
        pattern_fill(t, CKPT_F32, 2, SHAPES[t], off[t], ext[t], want);
        int same = memcmp(want, mem[t], n * sizeof(float)) == 0;
        free(want);
        if (!same)
            return 0;
    }
    return 1;
}

static void set_fault(const char *spec)
{
    if (spec)
        setenv("CKPT_FAULT", spec, 1);
    else
        unsetenv("CKPT_FAULT");
    ckpt_fault_reset();
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Same status and message on every rank? */
static int agreed(int rc)
{
    int64_t v[2] = {rc, (int64_t)(fnv(ckpt_errmsg()) >> 1)}, lo[2], hi[2];
    MPI_Allreduce(v, lo, 2, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(v, hi, 2, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    return lo[0] == hi[0] && lo[1] == hi[1];
}

static void save_options(ckpt_save_options *o)
{
    ckpt_save_options_init(o);
    if (!strcmp(config, "per-rank-zstd"))
        o->compress = CKPT_COMPRESS_ZSTD;
    if (!strcmp(config, "shared"))
        o->layout = CKPT_LAYOUT_SHARED;
    if (!strcmp(config, "group")) {
        o->layout = CKPT_LAYOUT_GROUP;
        o->group_size = 2;
    }
}

/* One save of step 2 (sync, or async through a saver). */
static int save_step2(ckpt_manager *m, ckpt_state *s)
{
    ckpt_save_options o;
    save_options(&o);
    if (strcmp(config, "async") != 0)
        return ckpt_manager_save(m, 2, s, &o);
    char path[4096];
    ckpt_manager_step_path(m, 2, path, sizeof path);
    ckpt_saver *sv;
    ckpt_saver_create(MPI_COMM_WORLD, NULL, &sv);
    int rc = ckpt_saver_save(sv, path, s, &o);
    if (rc == CKPT_OK)
        rc = ckpt_saver_wait(sv);
    ckpt_saver_free(sv);
    return rc;
}

/* The root holds exactly the step directories steps[] (and the manager's lock file). */
static int root_clean(const char *const *names, int n)
{
    DIR *d = opendir(root);
    if (!d)
        return 0;
    int seen = 0, other = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "ckpt-manager.lock"))
            continue;
        int known = 0;
        for (int i = 0; i < n; i++)
            known |= !strcmp(e->d_name, names[i]);
        seen += known;
        other += !known;
        if (!known && rank == 0)
            fprintf(stderr, "rank 0: debris left in the root: %s\n", e->d_name);
    }
    closedir(d);
    return seen == n && other == 0;
}

static const char *kind_what(int kind, int variant)
{
    if (variant == 1)
        return kind == CKPT_IO_WRITE ? "short" : "EIO";
    return "ENOSPC";
}

static int points, tolerated;

/* What the counting run's calls were about (the path or name each was given), so a tolerated
 * point can be told apart: an open HDF5 expects to fail, a close of a file only read. */
#define TRACE_MAX 512
static char traced[CKPT_IO_KINDS][TRACE_MAX][96];

static void on_trace(ckpt_io_kind kind, uint64_t k, const char *what, void *user)
{
    (void)user;
    if (k >= 1 && k <= TRACE_MAX)
        snprintf(traced[kind][k - 1], sizeof traced[kind][k - 1], "%s", what);
}

/* Names the call a spec "KIND@K:WHAT" failed. */
static const char *traced_call(const char *spec)
{
    for (int kind = 0; kind < CKPT_IO_KINDS; kind++) {
        const char *n = ckpt_io_kind_name((ckpt_io_kind)kind);
        size_t l = strlen(n);
        if (strncmp(spec, n, l) == 0 && spec[l] == '@') {
            unsigned long long k = strtoull(spec + l + 1, NULL, 10);
            if (k >= 1 && k <= TRACE_MAX && traced[kind][k - 1][0])
                return traced[kind][k - 1];
        }
    }
    return "a call given no name";
}

/* Counts a fault point whose call returned rc on every rank: the ranks must agree; a success
 * (printed with the call's file) must be one `may_succeed` allows. Returns whether it succeeded. */
static int point_done(int rc, int target, const char *spec, int may_succeed)
{
    points++;
    CHECK(agreed(rc), "%s on rank %d: the ranks disagree: %s \"%s\"", spec, target, ckpt_status_name(rc),
          ckpt_errmsg());
    if (rc != CKPT_OK)
        return 0;
    tolerated++;
    if (rank == target)
        fprintf(stderr, "tolerated: rank %d %s (%s)\n", target, spec, traced_call(spec));
    CHECK(may_succeed, "%s on rank %d: the call failed but the save or load succeeded", spec, target);
    return 1;
}

/* One fault point of a save: only `spec` fails, on rank `target`. */
static void save_point(ckpt_manager *m, int target, const char *spec, const char *errtext)
{
    ckpt_state *s = make_state(1);
    if (rank == 0)
        fprintf(stderr, "point %d: rank %d %s\n", points + 1, target, spec);
    set_fault(rank == target ? spec : NULL);
    int rc = save_step2(m, s);
    set_fault(NULL);
    /* A save may only outlive a short write (retried), a failed open HDF5 makes to probe for a
     * file before creating it, or a failed close of a directory descriptor: never a failed write,
     * fsync, rename, mkdir or collective call. */
    if (!point_done(rc, target, spec, strstr(spec, ":short") || !strncmp(spec, "open@", 5) ||
                                          !strncmp(spec, "close@", 6))) {
        CHECK(strstr(ckpt_errmsg(), errtext) != NULL, "%s on rank %d: the message does not name the error '%s': %s",
              spec, target, errtext, ckpt_errmsg());
        CHECK(strstr(ckpt_errmsg(), root) != NULL, "%s on rank %d: the message names no file of the root: %s", spec,
              target, ckpt_errmsg());
    }
    int64_t step = -1;
    char path[4096];
    int lrc = ckpt_manager_latest(m, &step, path, sizeof path);
    CHECK(lrc == CKPT_OK && step == (rc == CKPT_OK ? 2 : 1), "%s on rank %d: latest is %lld (%s), expected %d", spec,
          target, (long long)step, lrc ? ckpt_errmsg() : "ok", rc == CKPT_OK ? 2 : 1);
    ckpt_state *l = make_state(0);
    int ok = lrc == CKPT_OK && ckpt_load(MPI_COMM_WORLD, path, l, NULL) == CKPT_OK && loaded_exactly();
    CHECK(ok, "%s on rank %d: the latest checkpoint does not load bit-exactly: %s", spec, target, ckpt_errmsg());
    ckpt_state_free(l);
    int removed = 0;
    CHECK(ckpt_manager_clean_incomplete(m, &removed) == CKPT_OK, "clean_incomplete: %s", ckpt_errmsg());
    if (rc == CKPT_OK && rank == 0) { /* back to one step for the next point */
        char p2[4096];
        ckpt_manager_step_path(m, 2, p2, sizeof p2);
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", p2);
        if (system(cmd) != 0)
            failures++;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const char *one[1] = {"step-00000001"};
    CHECK(root_clean(one, 1), "%s on rank %d: the root is not clean after clean_incomplete", spec, target);
    ckpt_state_free(s);
}

static void load_point(const char *path, int target, const char *spec)
{
    if (rank == 0)
        fprintf(stderr, "point %d: rank %d %s (load)\n", points + 1, target, spec);
    ckpt_state *l = make_state(0);
    set_fault(rank == target ? spec : NULL);
    int rc = ckpt_load(MPI_COMM_WORLD, path, l, NULL);
    set_fault(NULL);
    /* a load may only outlive a failed close of a file it only read */
    if (point_done(rc, target, spec, !strncmp(spec, "close@", 6)))
        CHECK(loaded_exactly(), "%s on rank %d: a load that succeeded is not exact", spec, target);
    else
        CHECK(strstr(ckpt_errmsg(), "Input/output error") && strstr(ckpt_errmsg(), root),
              "%s on rank %d: the message does not name the error and the file: %s", spec, target, ckpt_errmsg());
    ckpt_state_free(l);
    l = make_state(0);
    CHECK(ckpt_load(MPI_COMM_WORLD, path, l, NULL) == CKPT_OK && loaded_exactly(), "the next load fails: %s",
          ckpt_errmsg());
    ckpt_state_free(l);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (argc < 3) {
        fprintf(stderr, "usage: fault_sweep DIR per-rank|per-rank-zstd|shared|group|async|load [STRIDE]\n");
        MPI_Finalize();
        return 2;
    }
    root = argv[1];
    config = argv[2];
    int stride = argc > 3 ? atoi(argv[3]) : 1;
    if (stride < 1)
        stride = 1;
    if (rank == 0) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            return 1;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    set_fault(NULL);
    ckpt_manager_options mo;
    ckpt_manager_options_init(&mo);
    ckpt_manager *m;
    if (ckpt_manager_open(MPI_COMM_WORLD, root, &mo, &m) != CKPT_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, ckpt_errmsg());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    ckpt_state *s = make_state(1);
    ckpt_save_options o;
    save_options(&o);
    if (ckpt_manager_save(m, 1, s, &o) != CKPT_OK) {
        fprintf(stderr, "rank %d: the clean save fails: %s\n", rank, ckpt_errmsg());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    char path1[4096];
    ckpt_manager_step_path(m, 1, path1, sizeof path1);
    /* how many calls of each kind a clean run makes, on each rank */
    uint64_t mine[CKPT_IO_KINDS], all[2][CKPT_IO_KINDS];
    ckpt_fault_reset();
    ckpt_fault_set_trace(on_trace, NULL);
    int is_load = !strcmp(config, "load");
    if (is_load) {
        ckpt_state *l = make_state(0);
        if (ckpt_load(MPI_COMM_WORLD, path1, l, NULL) != CKPT_OK)
            MPI_Abort(MPI_COMM_WORLD, 1);
        ckpt_state_free(l);
    } else {
        ckpt_state *s2 = make_state(1);
        if (save_step2(m, s2) != CKPT_OK) {
            fprintf(stderr, "rank %d: the counting save fails: %s\n", rank, ckpt_errmsg());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        ckpt_state_free(s2);
    }
    ckpt_fault_set_trace(NULL, NULL);
    for (int k = 0; k < CKPT_IO_KINDS; k++)
        mine[k] = ckpt_fault_count((ckpt_io_kind)k);
    MPI_Allgather(mine, CKPT_IO_KINDS, MPI_UINT64_T, all, CKPT_IO_KINDS, MPI_UINT64_T, MPI_COMM_WORLD);
    if (!is_load && rank == 0) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s/step-00000002'", root);
        if (system(cmd) != 0)
            failures++;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        for (int r = 0; r < nranks && r < 2; r++) {
            fprintf(stderr, "rank %d makes:", r);
            for (int k = 0; k < CKPT_IO_KINDS; k++)
                fprintf(stderr, " %s=%llu", ckpt_io_kind_name((ckpt_io_kind)k), (unsigned long long)all[r][k]);
            fprintf(stderr, "\n");
        }
    }
    for (int target = 0; target < nranks && target < 2; target++)
        for (int k = 0; k < CKPT_IO_KINDS; k++)
            for (int variant = 0; variant < 2; variant++) {
                if (variant == 1 && k != CKPT_IO_WRITE && k != CKPT_IO_FSYNC && k != CKPT_IO_MPIIO && !is_load)
                    continue;
                if (is_load && variant == 1)
                    continue;
                for (uint64_t c = 1; c <= all[target][k]; c += (uint64_t)stride) {
                    char spec[64];
                    const char *what = is_load ? "EIO" : kind_what(k, variant);
                    snprintf(spec, sizeof spec, "%s@%llu:%s", ckpt_io_kind_name((ckpt_io_kind)k), (unsigned long long)c,
                             what);
                    const char *text = !strcmp(what, "ENOSPC") ? "No space left on device"
                                       : !strcmp(what, "EIO")  ? "Input/output error"
                                                               : "No space left on device"; /* a short write: the retry finds the disk full */
                    if (is_load)
                        load_point(path1, target, spec);
                    else
                        save_point(m, target, spec, text);
                }
            }
    ckpt_manager_close(m);
    ckpt_state_free(s);
    for (int t = 0; t < NT; t++)
        free(mem[t]);
    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("fault sweep %s: %d fault points, %d tolerated (the save or load still succeeded), %d failed checks\n",
               config, points, tolerated, total);
    MPI_Finalize();
    return total ? 1 : 0;
}
