/* bench-meta: the metadata cost of a save and a load at N ranks (issue "libckpt at 10^4 ranks").
 * Every rank holds Shard(0) of T small f32 tensors [8 N, 16] (512 bytes per rank per tensor), so
 * the time is planning, index and file metadata, not data. Prints one line per repetition and the
 * best, as JSON:
 *   {"ranks":N,"tensors":T,"save_s":..,"load_s":..,"index_bytes":..,"rss_mb_rank0":..}
 *
 *   mpirun -n N bench-meta --dir DIR [--tensors T] [--reps K] [--layout per-rank|shared|group]
 */
#include <ckpt.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static double now(void) { return MPI_Wtime(); }

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, n;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    const char *dir = "/tmp/bench-meta";
    int tensors = 100, reps = 3;
    ckpt_save_options so;
    ckpt_save_options_init(&so);
    so.fsync = 0; /* metadata cost, not the disk's */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--tensors") && i + 1 < argc)
            tensors = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layout") && i + 1 < argc) {
            const char *l = argv[++i];
            if (!strcmp(l, "shared"))
                so.layout = CKPT_LAYOUT_SHARED;
#ifdef CKPT_LAYOUT_GROUP_AVAILABLE
            else if (!strcmp(l, "group"))
                so.layout = CKPT_LAYOUT_GROUP;
#endif
            else if (strcmp(l, "per-rank") != 0) {
                if (rank == 0)
                    fprintf(stderr, "bench-meta: unknown layout %s\n", l);
                MPI_Abort(MPI_COMM_WORLD, 2);
            }
        } else {
            if (rank == 0)
                fprintf(stderr, "usage: mpirun -n N bench-meta --dir DIR [--tensors T] [--reps K] [--layout L]\n");
            MPI_Finalize();
            return 2;
        }
    }
    int64_t shape[2] = {8 * (int64_t)n, 16};
    float *data = malloc((size_t)tensors * 8 * 16 * sizeof(float));
    for (int i = 0; i < tensors * 8 * 16; i++)
        data[i] = (float)(rank * 1000 + i);
    ckpt_state *s, *l;
    ckpt_state_create(&s);
    ckpt_state_create(&l);
    float *back = calloc((size_t)tensors * 8 * 16, sizeof(float));
    for (int t = 0; t < tensors; t++) {
        char name[64];
        snprintf(name, sizeof name, "model/layer%03d/w", t);
        ckpt_state_add_shard(s, name, CKPT_F32, 2, shape, 0, rank, n, data + (size_t)t * 128);
        ckpt_state_add_shard(l, name, CKPT_F32, 2, shape, 0, rank, n, back + (size_t)t * 128);
    }
    ckpt_state_set_int(s, "step", 1);
    double best_save = 1e30, best_load = 1e30;
    long long index_bytes = 0;
    for (int r = 0; r < reps; r++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/ckpt-%d", dir, r);
        if (rank == 0) {
            mkdir(dir, 0755);
            char cmd[4200];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
            if (system(cmd) != 0)
                fprintf(stderr, "bench-meta: cannot clear %s\n", path);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = now();
        int rc = ckpt_save(MPI_COMM_WORLD, path, s, &so);
        double mine = now() - t0, save_s;
        MPI_Allreduce(&mine, &save_s, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (rc) {
            if (rank == 0)
                fprintf(stderr, "bench-meta: save failed: %s\n", ckpt_errmsg());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = now();
        rc = ckpt_load(MPI_COMM_WORLD, path, l, NULL);
        mine = now() - t0;
        double load_s;
        MPI_Allreduce(&mine, &load_s, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (rc || memcmp(back, data, (size_t)tensors * 128 * sizeof(float)) != 0) {
            if (rank == 0)
                fprintf(stderr, "bench-meta: load failed or differs: %s\n", rc ? ckpt_errmsg() : "data differs");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        if (rank == 0) {
            char ipath[4200];
            struct stat st;
            snprintf(ipath, sizeof ipath, "%s/index.h5", path);
            index_bytes = stat(ipath, &st) == 0 ? (long long)st.st_size : -1;
            printf("{\"ranks\":%d,\"tensors\":%d,\"rep\":%d,\"save_s\":%.4f,\"load_s\":%.4f,\"index_bytes\":%lld}\n", n,
                   tensors, r, save_s, load_s, index_bytes);
        }
        best_save = save_s < best_save ? save_s : best_save;
        best_load = load_s < best_load ? load_s : best_load;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (rank == 0)
        printf("{\"ranks\":%d,\"tensors\":%d,\"best\":1,\"save_s\":%.4f,\"load_s\":%.4f,\"index_bytes\":%lld,"
               "\"rss_mb_rank0\":%.1f}\n", n, tensors, best_save, best_load, index_bytes, ru.ru_maxrss / 1024.0);
    ckpt_state_free(s);
    ckpt_state_free(l);
    free(data);
    free(back);
    MPI_Finalize();
    return 0;
}
