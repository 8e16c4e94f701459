/* test_gpu.c -- boxes in CUDA device memory: synchronous and asynchronous saves copy them out
 * through host memory, loads copy them back in; compared bit-exactly. Exits 77 (CTest: skipped)
 * when no CUDA device is present. mpiexec -n N test_gpu SCRATCH_DIR */
#include "pattern.h"

#include <ckpt.h>
#include <cuda_runtime_api.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                                         \
    do {                                                                                                         \
        if (!(cond)) {                                                                                           \
            fprintf(stderr, "rank %d: FAILED %s:%d: ", rank, __FILE__, __LINE__);                                \
            fprintf(stderr, __VA_ARGS__);                                                                        \
            fprintf(stderr, " (%s)\n", ckpt_errmsg());                                                           \
            failed++;                                                                                            \
        }                                                                                                        \
    } while (0)

static int rank, nranks, failed;

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int ndev = 0;
    cudaError_t e = cudaGetDeviceCount(&ndev);
    int have = e == cudaSuccess && ndev > 0, all = 0;
    MPI_Allreduce(&have, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all || argc != 2) {
        if (rank == 0)
            printf("SKIPPED: no CUDA device (cudaGetDeviceCount: %s, %d devices)\n", cudaGetErrorString(e), ndev);
        MPI_Finalize();
        return 77;
    }
    cudaSetDevice(rank % ndev);
    int64_t shape[2] = {1000, 257}, off[2], ext[2], zero[2] = {0, 0};
    ckpt_shard_box(2, shape, 0, rank, nranks, off, ext);
    size_t n = (size_t)(ext[0] * ext[1]), full = (size_t)(shape[0] * shape[1]);
    float *host = malloc(n * sizeof(float) + 4), *want = malloc(full * sizeof(float)), *back = malloc(full * sizeof(float));
    pattern_fill(3, CKPT_F32, 2, shape, off, ext, host);
    pattern_fill(3, CKPT_F32, 2, shape, zero, shape, want);
    float *dev = NULL, *dev_full = NULL;
    CHECK(cudaMalloc((void **)&dev, n * sizeof(float) + 4) == cudaSuccess, "cudaMalloc");
    CHECK(cudaMalloc((void **)&dev_full, full * sizeof(float)) == cudaSuccess, "cudaMalloc");
    cudaMemcpy(dev, host, n * sizeof(float), cudaMemcpyHostToDevice);
    char path[4200];
    for (int mode = 0; mode < 3; mode++) { /* sync, async staged, async no_copy */
        snprintf(path, sizeof path, "%s/gpu-%d", argv[1], mode);
        ckpt_state *s;
        ckpt_state_create(&s);
        ckpt_state_add_shard(s, "w", CKPT_F32, 2, shape, 0, rank, nranks, dev);
        ckpt_save_options o;
        ckpt_save_options_init(&o);
        o.overwrite = 1;
        o.piece_bytes = 65536;
        int rc;
        if (mode == 0) {
            rc = ckpt_save(MPI_COMM_WORLD, path, s, &o);
        } else {
            ckpt_saver_options so;
            ckpt_saver_options_init(&so);
            so.no_copy = mode == 2;
            so.staging_bytes = 100000; /* smaller than a rank's box: streams */
            ckpt_saver *sv;
            ckpt_saver_create(MPI_COMM_WORLD, &so, &sv);
            rc = ckpt_saver_save(sv, path, s, &o);
            if (rc == CKPT_OK)
                rc = ckpt_saver_wait(sv);
            ckpt_saver_free(sv);
        }
        CHECK(rc == CKPT_OK, "save mode %d", mode);
        ckpt_state_free(s);
        /* load the whole tensor into device memory on every rank */
        ckpt_state_create(&s);
        ckpt_state_add_replicated(s, "w", CKPT_F32, 2, shape, dev_full);
        cudaMemset(dev_full, 0, full * sizeof(float));
        rc = ckpt_load(MPI_COMM_WORLD, path, s, NULL);
        CHECK(rc == CKPT_OK, "load mode %d", mode);
        cudaMemcpy(back, dev_full, full * sizeof(float), cudaMemcpyDeviceToHost);
        CHECK(memcmp(back, want, full * sizeof(float)) == 0, "mode %d: device tensor differs after the round trip", mode);
        ckpt_state_free(s);
    }
    cudaFree(dev);
    cudaFree(dev_full);
    free(host);
    free(want);
    free(back);
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%s\n", any ? "gpu round trips FAILED" : "gpu round trips bit-exact (sync, async staged, async no_copy)");
    MPI_Finalize();
    return any ? 1 : 0;
}
