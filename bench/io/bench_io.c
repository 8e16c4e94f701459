/* bench-io -- checkpoint save/load throughput against this machine's raw file bandwidth.
 *
 *   mpirun -n N bench-io [--size-mb S] [--dir DIR] [--load-ranks M] [--threads T] [--load-threads T] [--reps R]
 *
 * Builds a synthetic state of S MiB in total (half f32, half bf16; values ~ N(0, 0.02) like
 * trained weights), Shard(0) over N ranks. For each layout x compression setting it saves the
 * state (fsync and close included), then loads it back resharded on M ranks (a sub-communicator;
 * default M = N-1, or 1). In the same run it measures the raw bandwidth of the same bytes: plain
 * write()+fsync() of one file per rank, and plain pread() of each loading rank's share. Every
 * figure is printed as GB/s and as a ratio to the raw figure, with the compression ratio and the
 * peak extra memory (VmHWM growth) per rank relative to the rank's state size.
 */
#include <ckpt.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COLS 4096
#define NTENSORS 16 /* per dtype */

static int rank, nranks;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static long vm_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* Resets the high-water mark so a phase's own peak can be read (Linux >= 4.0). */
static void reset_hwm(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd >= 0) {
        if (write(fd, "5", 1) != 1) {
        }
        close(fd);
    }
}

static long vm_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static uint64_t rng_state;
static double normal(void)
{
    /* xorshift64* + Box-Muller: fast and good enough for a weight-like distribution */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t a = rng_state * 2685821657736338717ULL;
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t b = rng_state * 2685821657736338717ULL;
    double u1 = ((double)(a >> 11) + 1.0) / 9007199254740993.0, u2 = (double)(b >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef struct tensor {
    char name[64];
    ckpt_dtype dtype;
    int64_t shape[2];
    int64_t off[2], ext[2];
    void *data;
    size_t bytes;
} tensor;

static void die(const char *what, int rc)
{
    fprintf(stderr, "[rank %d] %s: %s (%s)\n", rank, what, ckpt_errmsg(), ckpt_status_name(rc));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void rmrf(const char *p)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", p);
}

/* Raw baseline: write+fsync the rank's bytes to one file; returns seconds (max over ranks). */
static double raw_write(const char *dir, tensor *t, int nt)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/raw-%05d.bin", dir, rank);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    for (int i = 0; i < nt && fd >= 0; i++) {
        const char *p = t[i].data;
        size_t left = t[i].bytes;
        while (left) {
            ssize_t w = write(fd, p, left > (1 << 26) ? (1 << 26) : left);
            if (w <= 0) {
                perror("raw write");
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (fd < 0 || fsync(fd) != 0 || close(fd) != 0) {
        perror("raw write");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    double dt = now() - t0, mx;
    MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return mx;
}

/* Raw read baseline on the loading ranks: read `share` bytes spread over the raw files. */
static double raw_read(MPI_Comm lc, const char *dir, size_t total, int saved_ranks, void *buf)
{
    int lr, ln;
    MPI_Comm_rank(lc, &lr);
    MPI_Comm_size(lc, &ln);
    size_t per_file = total / (size_t)saved_ranks;
    size_t chunk = (total + (size_t)ln - 1) / (size_t)ln, lo = chunk * (size_t)lr, hi = lo + chunk > total ? total : lo + chunk;
    MPI_Barrier(lc);
    double t0 = now();
    char *p = buf;
    for (size_t pos = lo; pos < hi;) {
        size_t f = pos / per_file, off = pos % per_file, n = per_file - off;
        if (n > hi - pos)
            n = hi - pos;
        char path[4200];
        snprintf(path, sizeof path, "%s/raw-%05zu.bin", dir, f);
        int fd = open(path, O_RDONLY);
        size_t got = 0;
        while (fd >= 0 && got < n) {
            ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (fd >= 0)
            close(fd);
        p += n;
        pos += n;
    }
    double dt = now() - t0, mx;
    MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, lc);
    return mx;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    long size_mb = 1024;
    const char *dir = "bench-io-out";
    int m = nranks > 1 ? nranks - 1 : 1, threads = 1, reps = 1, load_threads = 1, layouts_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size-mb") && i + 1 < argc)
            size_mb = atol(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--load-ranks") && i + 1 < argc)
            m = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--load-threads") && i + 1 < argc)
            load_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layouts-only"))
            layouts_only = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            if (rank == 0)
                fprintf(stderr, "usage: mpirun -n N bench-io [--size-mb S] [--dir DIR] [--load-ranks M] [--threads T] [--load-threads T] [--reps R] [--layouts-only]\n");
            MPI_Finalize();
            return 2;
        }
    }
    if (m < 1 || m > nranks)
        m = nranks;
    if (rank == 0)
        mkdir(dir, 0755);
    MPI_Barrier(MPI_COMM_WORLD);

    /* the state: NTENSORS f32 and NTENSORS bf16 tensors of equal bytes, Shard(0) */
    size_t half = (size_t)size_mb << 19; /* bytes per dtype */
    tensor t[2 * NTENSORS];
    size_t mine = 0;
    rng_state = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(rank + 1) * 0xD1B54A32D192ED03ULL;
    for (int i = 0; i < 2 * NTENSORS; i++) {
        tensor *x = &t[i];
        x->dtype = i < NTENSORS ? CKPT_F32 : CKPT_BF16;
        size_t es = x->dtype == CKPT_F32 ? 4 : 2;
        snprintf(x->name, sizeof x->name, "%s/layer%02d", x->dtype == CKPT_F32 ? "f32" : "bf16", i % NTENSORS);
        x->shape[0] = (int64_t)(half / NTENSORS / es / COLS);
        x->shape[1] = COLS;
        ckpt_shard_box(2, x->shape, 0, rank, nranks, x->off, x->ext);
        x->bytes = (size_t)(x->ext[0] * x->ext[1]) * es;
        x->data = malloc(x->bytes + 1);
        if (x->dtype == CKPT_F32) {
            float *p = x->data;
            for (size_t k = 0; k < x->bytes / 4; k++)
                p[k] = (float)(0.02 * normal());
        } else {
            uint16_t *p = x->data;
            for (size_t k = 0; k < x->bytes / 2; k++) {
                float f = (float)(0.02 * normal());
                uint32_t u;
                memcpy(&u, &f, 4);
                p[k] = (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
            }
        }
        mine += x->bytes;
    }
    size_t total = 0;
    {
        unsigned long long a = mine, s = 0;
        MPI_Allreduce(&a, &s, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
        total = (size_t)s;
    }
    MPI_Comm lc;
    MPI_Comm_split(MPI_COMM_WORLD, rank < m ? 0 : MPI_UNDEFINED, rank, &lc);
    /* load buffers: this loading rank's Shard(0) of every tensor for M ranks, allocated and
     * touched once (fresh pages cost more than the I/O on these machines) */
    void *lbuf[2 * NTENSORS] = {0};
    int64_t loff[2 * NTENSORS][2], lext[2 * NTENSORS][2];
    size_t lbytes = 0;
    if (lc != MPI_COMM_NULL)
        for (int i = 0; i < 2 * NTENSORS; i++) {
            ckpt_shard_box(2, t[i].shape, 0, rank, m, loff[i], lext[i]);
            size_t n = (size_t)(lext[i][0] * lext[i][1]) * ckpt_dtype_size(t[i].dtype);
            lbuf[i] = malloc(n + 1);
            memset(lbuf[i], 1, n);
            lbytes += n;
        }
    void *rawbuf = lc != MPI_COMM_NULL ? malloc(total / (size_t)m + 4096) : NULL;
    if (rawbuf)
        memset(rawbuf, 1, total / (size_t)m + 4096);

    double raw_w = 1e30, raw_r = 1e30;
    for (int r = 0; r < reps; r++) {
        double w = raw_write(dir, t, 2 * NTENSORS);
        raw_w = w < raw_w ? w : raw_w;
        if (lc != MPI_COMM_NULL) {
            double rr = raw_read(lc, dir, total, nranks, rawbuf);
            raw_r = rr < raw_r ? rr : raw_r;
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    MPI_Bcast(&raw_r, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    double gb = (double)total / 1e9;
    if (rank == 0) {
        printf("bench-io: %.2f GB state (%d f32 + %d bf16 tensors [rows, %d], values ~ N(0, 0.02)), saved by N=%d ranks, "
               "loaded resharded by M=%d ranks; %d compression / %d decompression thread(s) per rank; best of %d\n",
               gb, NTENSORS, NTENSORS, COLS, nranks, m, threads, load_threads, reps);
        printf("raw write+fsync, one file per rank: %6.2f GB/s   raw pread of the same bytes by M ranks: %6.2f GB/s\n",
               gb / raw_w, gb / raw_r);
        printf("%-22s %9s %7s %9s %7s %7s %10s\n", "setting", "save GB/s", "x raw", "load GB/s", "x raw", "ratio",
               "extra mem");
    }
    struct { const char *name; ckpt_layout layout; ckpt_compress comp; int level; } settings[] = {
        {"file-per-rank", CKPT_LAYOUT_PER_RANK, CKPT_COMPRESS_NONE, 0},
        {"shared", CKPT_LAYOUT_SHARED, CKPT_COMPRESS_NONE, 0},
        {"file-per-group (node)", CKPT_LAYOUT_GROUP, CKPT_COMPRESS_NONE, 0},
        {"file-per-rank zstd:1", CKPT_LAYOUT_PER_RANK, CKPT_COMPRESS_ZSTD, 1},
        {"shared zstd:1", CKPT_LAYOUT_SHARED, CKPT_COMPRESS_ZSTD, 1},
        {"file-per-rank zstd:-1", CKPT_LAYOUT_PER_RANK, CKPT_COMPRESS_ZSTD, -1},
    };
    for (size_t si = 0; si < sizeof settings / sizeof settings[0]; si++) {
        if (layouts_only && settings[si].comp != CKPT_COMPRESS_NONE)
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/ckpt", dir);
        double best_s = 1e30, best_l = 1e30;
        long extra_kb = 0;
        double ratio = 1;
        for (int r = 0; r < reps; r++) {
            if (rank == 0)
                rmrf(path);
            ckpt_state *s;
            ckpt_state_create(&s);
            for (int i = 0; i < 2 * NTENSORS; i++) {
                ckpt_state_add_tensor(s, t[i].name, t[i].dtype, 2, t[i].shape, 0);
                ckpt_state_add_box(s, t[i].name, t[i].off, t[i].ext, t[i].data);
            }
            ckpt_save_options o;
            ckpt_save_options_init(&o);
            o.layout = settings[si].layout;
            o.compress = settings[si].comp;
            o.level = settings[si].level;
            o.shuffle = 1;
            o.threads = threads;
            MPI_Barrier(MPI_COMM_WORLD);
            reset_hwm();
            long before = vm_rss_kb();
            double t0 = now();
            int rc = ckpt_save(MPI_COMM_WORLD, path, s, &o);
            double dt = now() - t0, mx;
            long extra = vm_hwm_kb() - before, mxe;
            if (rc)
                die("ckpt_save", rc);
            MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            MPI_Allreduce(&extra, &mxe, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
            best_s = mx < best_s ? mx : best_s;
            extra_kb = mxe > extra_kb ? mxe : extra_kb;
            ckpt_state_free(s);
            if (lc != MPI_COMM_NULL) {
                ckpt_state *l;
                ckpt_state_create(&l);
                for (int i = 0; i < 2 * NTENSORS; i++) {
                    ckpt_state_add_tensor(l, t[i].name, t[i].dtype, 2, t[i].shape, 0);
                    ckpt_state_add_box(l, t[i].name, loff[i], lext[i], lbuf[i]);
                }
                ckpt_load_options lo;
                ckpt_load_options_init(&lo);
                lo.threads = load_threads;
                MPI_Barrier(lc);
                t0 = now();
                rc = ckpt_load(lc, path, l, &lo);
                dt = now() - t0;
                if (rc)
                    die("ckpt_load", rc);
                MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, lc);
                best_l = mx < best_l ? mx : best_l;
                ckpt_state_free(l);
                if (rank == 0) {
                    ckpt_reader *rd;
                    if (ckpt_reader_open(path, &rd) == CKPT_OK) {
                        double raw = 0, st = 0;
                        for (int i = 0; i < ckpt_reader_num_tensors(rd); i++) {
                            ckpt_tensor_info ti;
                            ckpt_reader_tensor_info(rd, i, &ti);
                            raw += (double)ti.raw_bytes;
                            st += (double)ti.stored_bytes;
                        }
                        ratio = st > 0 ? raw / st : 0;
                        ckpt_reader_close(rd);
                    }
                }
            }
            MPI_Barrier(MPI_COMM_WORLD);
        }
        MPI_Bcast(&best_l, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        if (rank == 0)
            printf("%-22s %9.2f %7.2f %9.2f %7.2f %7.3f %9.1f%%\n", settings[si].name, gb / best_s, raw_w / best_s,
                   gb / best_l, raw_r / best_l, ratio, 100.0 * (double)extra_kb * 1024.0 / (double)mine);
        fflush(stdout);
    }
    /* async: how long a training loop is stalled by ckpt_saver_save, vs a synchronous save */
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/ckpt", dir);
      for (int nocopy = 0; nocopy < 2; nocopy++) {
        ckpt_saver *sv;
        ckpt_saver_options so;
        ckpt_saver_options_init(&so);
        so.no_copy = nocopy;
        ckpt_saver_create(MPI_COMM_WORLD, &so, &sv);
        double best_sync = 1e30, best_stall = 1e30, best_total = 1e30;
        for (int r = 0; r < reps + 1; r++) { /* the first async round pays the staging buffer's page faults */
            ckpt_state *s;
            ckpt_state_create(&s);
            for (int i = 0; i < 2 * NTENSORS; i++) {
                ckpt_state_add_tensor(s, t[i].name, t[i].dtype, 2, t[i].shape, 0);
                ckpt_state_add_box(s, t[i].name, t[i].off, t[i].ext, t[i].data);
            }
            if (rank == 0)
                rmrf(path);
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = now();
            int rc = ckpt_save(MPI_COMM_WORLD, path, s, NULL);
            double sync = now() - t0, mx;
            if (rc)
                die("ckpt_save", rc);
            if (rank == 0)
                rmrf(path);
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = now();
            rc = ckpt_saver_save(sv, path, s, NULL);
            double stall = now() - t0;
            if (rc)
                die("ckpt_saver_save", rc);
            rc = ckpt_saver_wait(sv);
            double total = now() - t0;
            if (rc)
                die("ckpt_saver_wait", rc);
            ckpt_state_free(s);
            MPI_Allreduce(&sync, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            sync = mx;
            MPI_Allreduce(&stall, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            stall = mx;
            MPI_Allreduce(&total, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            total = mx;
            if (r == 0 && reps > 0)
                continue;
            best_sync = sync < best_sync ? sync : best_sync;
            best_stall = stall < best_stall ? stall : best_stall;
            best_total = total < best_total ? total : best_total;
        }
        ckpt_saver_free(sv);
        if (rank == 0)
            printf("async save (file-per-rank, %s): stall %.3f s = %.1f%% of a synchronous save (%.3f s); "
                   "save-to-commit %.3f s\n", nocopy ? "no_copy" : "staged copy", best_stall,
                   100.0 * best_stall / best_sync, best_sync, best_total);
      }
    }
    if (rank == 0) {
        rmrf(dir);
    }
    for (int i = 0; i < 2 * NTENSORS; i++) {
        free(t[i].data);
        free(lbuf[i]);
    }
    free(rawbuf);
    if (lc != MPI_COMM_NULL)
        MPI_Comm_free(&lc);
    MPI_Finalize();
    return 0;
}
