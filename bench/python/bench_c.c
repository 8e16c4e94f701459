/* bench/python, the C side: the same state the Python side saves and loads, declared and
 * saved/loaded straight through the C API.
 *
 * Built twice (bench/python/CMakeLists.txt):
 *   libbench-py-c.so   bench_c_save / bench_c_load, called by bench_py.py once per rep on the
 *                      very buffers the Python side uses, interleaved with the Python calls, so
 *                      both run in the same process, memory and MPI job;
 *   bench-py-c         a standalone program doing the same reps, as a reference:
 *                      mpirun -n N bench-py-c --dir DIR [--size-mb S] [--tensors T] [--reps R] [--fsync 0|1]
 *
 * State: T f32 tensors "model/layerNNN/w" of [rows, 4096], Shard(0) over the ranks. */
#include <ckpt.h>

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLS 4096

int bench_c_save(MPI_Fint comm_f, const char *path, int ntensors, int64_t rows, float **bufs, int fsync);
int bench_c_load(MPI_Fint comm_f, const char *path, int ntensors, int64_t rows, float **bufs, int fsync);

static int declare(ckpt_state *s, MPI_Comm comm, int ntensors, int64_t rows, float **bufs)
{
    int rank, nranks;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    for (int t = 0; t < ntensors; t++) {
        char name[64];
        snprintf(name, sizeof name, "model/layer%03d/w", t);
        int64_t shape[2] = {rows, COLS};
        int rc = ckpt_state_add_shard(s, name, CKPT_F32, 2, shape, 0, rank, nranks, bufs[t]);
        if (rc)
            return rc;
    }
    return CKPT_OK;
}

/* What a C caller does to save or load: declare the state, then ckpt_save (default options
 * but fsync) or ckpt_load (checksums verified) with it. */
static int run(MPI_Fint comm_f, const char *path, int ntensors, int64_t rows, float **bufs, int fsync,
               int load)
{
    ckpt_save_options so;
    ckpt_save_options_init(&so);
    so.fsync = fsync;
    MPI_Comm comm = MPI_Comm_f2c(comm_f);
    ckpt_state *s;
    int rc = ckpt_state_create(&s);
    if (!rc)
        rc = declare(s, comm, ntensors, rows, bufs);
    if (!rc)
        rc = load ? ckpt_load(comm, path, s, NULL) : ckpt_save(comm, path, s, &so);
    ckpt_state_free(s);
    return rc;
}

int bench_c_save(MPI_Fint comm_f, const char *path, int ntensors, int64_t rows, float **bufs, int fsync)
{
    return run(comm_f, path, ntensors, rows, bufs, fsync, 0);
}

int bench_c_load(MPI_Fint comm_f, const char *path, int ntensors, int64_t rows, float **bufs, int fsync)
{
    return run(comm_f, path, ntensors, rows, bufs, fsync, 1);
}

#ifndef BENCH_PY_C_LIBRARY
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, nranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    const char *dir = NULL;
    int64_t size_mb = 1024;
    int ntensors = 16, reps = 3, fsync = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--size-mb"))
            size_mb = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--tensors"))
            ntensors = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--fsync"))
            fsync = atoi(argv[i + 1]);
    }
    if (!dir || size_mb <= 0 || ntensors <= 0 || reps <= 0) {
        if (rank == 0)
            fprintf(stderr, "usage: bench-py-c --dir DIR [--size-mb S] [--tensors T] [--reps R] [--fsync 0|1]\n");
        MPI_Finalize();
        return 2;
    }
    int64_t rows = size_mb * 1024 * 1024 / 4 / COLS / ntensors;
    float **save_bufs = calloc((size_t)ntensors, sizeof *save_bufs);
    float **load_bufs = calloc((size_t)ntensors, sizeof *load_bufs);
    for (int t = 0; t < ntensors; t++) {
        int64_t shape[2] = {rows, COLS}, off[2], ext[2];
        ckpt_shard_box(2, shape, 0, rank, nranks, off, ext);
        size_t n = (size_t)(ext[0] * ext[1]);
        save_bufs[t] = malloc(n * sizeof(float) + 1);
        load_bufs[t] = malloc(n * sizeof(float) + 1);
        for (size_t i = 0; i < n; i++) { /* touched before timing, as bench_py.py's arrays */
            save_bufs[t][i] = (float)((off[0] * COLS + (int64_t)i) % 65521) * 1e-4f;
            load_bufs[t][i] = 0.0f;
        }
    }
    MPI_Fint cf = MPI_Comm_c2f(MPI_COMM_WORLD);
    int rc = CKPT_OK;
    for (int r = 0; r < reps && rc == CKPT_OK; r++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/c-%d", dir, r);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = now();
        if ((rc = bench_c_save(cf, path, ntensors, rows, save_bufs, fsync)))
            break;
        MPI_Barrier(MPI_COMM_WORLD);
        double t1 = now();
        if ((rc = bench_c_load(cf, path, ntensors, rows, load_bufs, fsync)))
            break;
        MPI_Barrier(MPI_COMM_WORLD);
        double t2 = now();
        if (rank == 0)
            printf("rep %d save %.6f load %.6f\n", r, t1 - t0, t2 - t1);
        fflush(stdout);
    }
    int failed = rc != CKPT_OK;
    if (failed)
        fprintf(stderr, "bench-py-c: %s\n", ckpt_errmsg());
    for (int t = 0; t < ntensors; t++) {
        free(save_bufs[t]);
        free(load_bufs[t]);
    }
    free(save_bufs);
    free(load_bufs);
    MPI_Finalize();
    return failed;
}
#endif
