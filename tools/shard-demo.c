/* shard-demo -- the library in two commands: save a sharded state with N ranks, load it back
 * resharded with M ranks, and say what happened.
 *
 *   mpirun -n 4 shard-demo save DIR    each rank holds Shard(0) rows of a model's weights,
 *                                      a Shard(1) slice of an optimizer moment, a replicated
 *                                      bias and the step/learning-rate attributes
 *   mpirun -n 3 shard-demo load DIR    each rank asks for a different sharding (Shard(1) of the
 *                                      weights, Shard(0) of the moment) and checks every byte
 */
#include <ckpt.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROWS 1536
#define COLS 1024

static float weight_value(int64_t r, int64_t c) { return (float)((r * 131 + c * 7) % 1009) * 0.001f - 0.5f; }
static float moment_value(int64_t r, int64_t c) { return (float)((r * 17 + c * 3) % 997) * 1e-4f; }

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int fail(int rank, const char *what, int rc)
{
    fprintf(stderr, "[rank %d] %s failed: %s (%s)\n", rank, what, ckpt_errmsg(), ckpt_status_name(rc));
    MPI_Finalize();
    return 1;
}

static float *fill(const int64_t *off, const int64_t *ext, float (*f)(int64_t, int64_t))
{
    float *p = malloc((size_t)(ext[0] * ext[1]) * sizeof *p + 1);
    for (int64_t r = 0; r < ext[0]; r++)
        for (int64_t c = 0; c < ext[1]; c++)
            p[r * ext[1] + c] = f(off[0] + r, off[1] + c);
    return p;
}

static int64_t check(const int64_t *off, const int64_t *ext, const float *p, float (*f)(int64_t, int64_t))
{
    int64_t bad = 0;
    for (int64_t r = 0; r < ext[0]; r++)
        for (int64_t c = 0; c < ext[1]; c++)
            bad += p[r * ext[1] + c] != f(off[0] + r, off[1] + c);
    return bad;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 3 || (strcmp(argv[1], "save") && strcmp(argv[1], "load"))) {
        if (rank == 0)
            fprintf(stderr, "usage: mpirun -n N shard-demo save|load DIR\n");
        MPI_Finalize();
        return 2;
    }
    const char *dir = argv[2];
    int saving = strcmp(argv[1], "save") == 0;
    int64_t shape[2] = {ROWS, COLS}, woff[2], wext[2], moff[2], mext[2], bshape[1] = {COLS};
    /* save: weights Shard(0), moment Shard(1); load: the other way round */
    ckpt_shard_box(2, shape, saving ? 0 : 1, rank, size, woff, wext);
    ckpt_shard_box(2, shape, saving ? 1 : 0, rank, size, moff, mext);
    float *w = saving ? fill(woff, wext, weight_value) : calloc((size_t)(wext[0] * wext[1]) + 1, sizeof(float));
    float *m = saving ? fill(moff, mext, moment_value) : calloc((size_t)(mext[0] * mext[1]) + 1, sizeof(float));
    float bias[COLS];
    for (int i = 0; i < COLS; i++)
        bias[i] = saving ? (float)i * 0.25f : 0.0f;

    ckpt_state *s;
    int rc;
    if ((rc = ckpt_state_create(&s)) ||
        (rc = ckpt_state_add_tensor(s, "model/weight", CKPT_F32, 2, shape, 0)) ||
        (rc = ckpt_state_add_box(s, "model/weight", woff, wext, w)) ||
        (rc = ckpt_state_add_tensor(s, "optim/exp_avg/weight", CKPT_F32, 2, shape, 0)) ||
        (rc = ckpt_state_add_box(s, "optim/exp_avg/weight", moff, mext, m)) ||
        (rc = ckpt_state_add_replicated(s, "model/bias", CKPT_F32, 1, bshape, bias)))
        return fail(rank, "building the state", rc);

    double t0 = now();
    if (saving) {
        ckpt_state_set_int(s, "step", 1000);
        ckpt_state_set_double(s, "lr", 3e-4);
        ckpt_save_options o;
        ckpt_save_options_init(&o);
        o.overwrite = 1;
        if ((rc = ckpt_save(MPI_COMM_WORLD, dir, s, &o)))
            return fail(rank, "ckpt_save", rc);
        double dt = now() - t0;
        if (rank == 0)
            printf("saved %s with %d ranks in %.3f s: model/weight [%d, %d] f32 split by rows (Shard(0)), "
                   "optim/exp_avg/weight split by columns (Shard(1)), model/bias replicated (written once), "
                   "attributes step=1000 lr=3e-4\n", dir, size, dt, ROWS, COLS);
        printf("  rank %d held weight rows [%lld, %lld) and moment columns [%lld, %lld)\n", rank,
               (long long)woff[0], (long long)(woff[0] + wext[0]), (long long)moff[1], (long long)(moff[1] + mext[1]));
    } else {
        if ((rc = ckpt_load(MPI_COMM_WORLD, dir, s, NULL)))
            return fail(rank, "ckpt_load", rc);
        double dt = now() - t0;
        int64_t bad = check(woff, wext, w, weight_value) + check(moff, mext, m, moment_value);
        for (int i = 0; i < COLS; i++)
            bad += bias[i] != (float)i * 0.25f;
        int64_t step = -1;
        ckpt_state_get_int(s, "step", &step);
        int64_t allbad = 0;
        MPI_Reduce(&bad, &allbad, 1, MPI_INT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
        if (rank == 0)
            printf("loaded %s with %d ranks in %.3f s, resharded: weights now by columns, moment by rows; "
                   "checksums verified; step=%lld\n", dir, size, dt, (long long)step);
        printf("  rank %d got weight columns [%lld, %lld) and moment rows [%lld, %lld)\n", rank,
               (long long)woff[1], (long long)(woff[1] + wext[1]), (long long)moff[0], (long long)(moff[0] + mext[0]));
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0)
            printf("%s: %lld of %d elements differ from what was saved\n", allbad ? "FAILED" : "bit-exact",
                   (long long)allbad, 2 * ROWS * COLS + COLS);
        if (allbad) {
            ckpt_state_free(s);
            MPI_Finalize();
            return 1;
        }
    }
    ckpt_state_free(s);
    free(w);
    free(m);
    MPI_Finalize();
    return 0;
}
