/* bench-scale: the metadata plane of a save and a load at N ranks, simulated in one process
 * through the library's own planner (no data, no MPI): a Llama-3-70B-shaped model (723 tensors
 * from its public config: hidden 8192, FFN 28672, 80 layers, 8 KV heads of 128, vocab 128256),
 * every tensor Shard(0) over N ranks.
 *
 *   bench-scale [--ranks N] [--load-ranks M] [--dir DIR] [--irregular]
 *
 * Phases, each timed, with the process's peak RSS after it:
 *   plan     what the collective save computes: the declarations' union, the three grid rounds
 *            fed with every rank's boxes (the sum of all ranks' work; one rank does 1/N of it),
 *            the explicit plan of whatever is not a grid, the index assembled;
 *   encode   index.h5 written (rank 0's job), and its size;
 *   decode   index.h5 read back and validated (rank 0 reads it; the others open its bytes);
 *   query    one rank's load planning at M ranks: the saved boxes overlapping each of its
 *            Shard(0) boxes.
 * --irregular stores every tensor explicitly (rows shifted by one at each boundary) to show what
 * the compact index saves. Prints one JSON line. */
#include "grid.h"
#include "meta.h"
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double peak_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

typedef struct tshape {
    char name[96];
    int ndim;
    int64_t shape[2];
} tshape;

static int llama70b(tshape *t)
{
    const int64_t H = 8192, F = 28672, KV = 1024, V = 128256;
    int n = 0;
    snprintf(t[n].name, sizeof t[n].name, "model/embed_tokens/weight");
    t[n].ndim = 2, t[n].shape[0] = V, t[n].shape[1] = H, n++;
    for (int l = 0; l < 80; l++) {
        struct {
            const char *s;
            int nd;
            int64_t a, b;
        } p[9] = {{"self_attn/q_proj/weight", 2, H, H},   {"self_attn/k_proj/weight", 2, KV, H},
                  {"self_attn/v_proj/weight", 2, KV, H},  {"self_attn/o_proj/weight", 2, H, H},
                  {"mlp/gate_proj/weight", 2, F, H},      {"mlp/up_proj/weight", 2, F, H},
                  {"mlp/down_proj/weight", 2, H, F},      {"input_layernorm/weight", 1, H, 0},
                  {"post_attention_layernorm/weight", 1, H, 0}};
        for (int k = 0; k < 9; k++, n++) {
            snprintf(t[n].name, sizeof t[n].name, "model/layers/%d/%s", l, p[k].s);
            t[n].ndim = p[k].nd, t[n].shape[0] = p[k].a, t[n].shape[1] = p[k].b;
        }
    }
    snprintf(t[n].name, sizeof t[n].name, "model/norm/weight");
    t[n].ndim = 1, t[n].shape[0] = H, n++;
    snprintf(t[n].name, sizeof t[n].name, "lm_head/weight");
    t[n].ndim = 2, t[n].shape[0] = V, t[n].shape[1] = H, n++;
    return n;
}

/* --irregular: the boundary between ranks 0 and 1 moves up one row, so no tensor is a grid */
static void shift(const ckpt_itensor *t, int r, int n, ckpt_box *b)
{
    int64_t c = (t->shape[0] + n - 1) / n;
    if (c < 2 || t->shape[0] <= c)
        return;
    if (r == 0)
        b->ext[0] -= 1;
    if (r == 1)
        b->off[0] -= 1, b->ext[0] += 1;
}

/* Rank r's box of t (Shard(0) over n ranks, shifted with --irregular); its volume. */
static int64_t rank_box(const ckpt_itensor *t, int r, int n, int irregular, ckpt_box *b)
{
    ckpt_shard_box(t->ndim, t->shape, 0, r, n, b->off, b->ext);
    b->ndim = t->ndim;
    if (irregular)
        shift(t, r, n, b);
    return ckpt_box_volume(b);
}

static int count_hit(const ckpt_boxref *b, void *arg)
{
    (void)b;
    ++*(int64_t *)arg;
    return 0;
}

int main(int argc, char **argv)
{
    int N = 16384, M = 8192, irregular = 0;
    const char *dir = "/tmp/bench-scale";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ranks") && i + 1 < argc)
            N = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--load-ranks") && i + 1 < argc)
            M = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--irregular"))
            irregular = 1;
        else {
            fprintf(stderr, "usage: bench-scale [--ranks N] [--load-ranks M] [--dir DIR] [--irregular]\n");
            return 2;
        }
    }
    static tshape T[800];
    int nt = llama70b(T);
    double rss0 = peak_mb(), t0 = now();

    /* plan: declarations (every rank declares all tensors: the tree merges identical lists) */
    ckpt_index *ix;
    ckpt_index_new(&ix);
    ix->layout = CKPT_LAYOUT_PER_RANK;
    ix->world_size = N;
    ix->piece_bytes = 4 << 20;
    ckpt_state *decl;
    ckpt_state_create(&decl);
    for (int i = 0; i < nt; i++)
        ckpt_state_add_tensor(decl, T[i].name, CKPT_BF16, T[i].ndim, T[i].shape, 0);
    ckpt_wire a = {0}, b = {0}, u = {0};
    ckpt_plan_encode_decls(decl, 0, &a);
    ckpt_plan_encode_decls(decl, 1, &b);
    int rounds = 0;
    for (int bit = 1; bit < N; bit <<= 1, rounds++) /* one merge per tree level on the critical path */
        ckpt_plan_merge_decls(&a, &b, &u), ckpt_wire_free(&a), a = u, u = (ckpt_wire){0};
    if (ckpt_plan_decode_decls(&a, ix) != CKPT_OK) {
        fprintf(stderr, "bench-scale: %s\n", ckpt_errmsg());
        return 1;
    }
    ckpt_wire_free(&a);
    ckpt_wire_free(&b);
    /* the grid rounds, every rank's boxes (one each per tensor) */
    int64_t scratch[2], explicit_boxes = 0;
    ckpt_plan_box *all = NULL;
    int64_t nall = 0, cap = 0;
    for (int64_t ti = 0; ti < ix->ntensors; ti++) {
        ckpt_itensor *t = &ix->tensors[ti];
        ckpt_grid_acc acc;
        ckpt_grid g;
        int ok = 0;
        for (int round = 1; round <= 3; round++) {
            ckpt_grid_acc_init(&acc, round);
            for (int r = 0; r < N; r++) {
                ckpt_box bx;
                if (rank_box(t, r, N, irregular, &bx) == 0)
                    continue;
                if (round == 1)
                    ckpt_grid_round1(&acc, &bx, 1);
                else if (round == 2)
                    ckpt_grid_round2(&acc, &g, r, &bx, 1);
                else
                    ckpt_grid_round3(&acc, &g, r, &bx, 1, scratch);
            }
            if (round == 1)
                ckpt_grid_propose(t, &acc, &g);
            else if (round == 2 && ckpt_grid_writers(&g, &acc, N) != 0)
                break;
            else if (round == 3)
                ok = ckpt_grid_holds(&g, &acc);
        }
        if (ok) {
            t->sharding = CKPT_SHARDING_GRID;
            t->grid = g;
            continue;
        }
        t->sharding = CKPT_SHARDING_EXPLICIT;
        for (int r = 0; r < N; r++) {
            ckpt_box bx;
            if (rank_box(t, r, N, irregular, &bx) == 0)
                continue;
            if (nall == cap) {
                cap = cap ? cap * 2 : 1 << 20;
                ckpt_plan_box *grown = realloc(all, (size_t)cap * sizeof *all);
                if (!grown) {
                    fprintf(stderr, "bench-scale: out of memory for %lld explicit boxes\n", (long long)cap);
                    return 1;
                }
                all = grown;
            }
            all[nall] = (ckpt_plan_box){bx, (int32_t)ti, r, nall};
            nall++;
        }
    }
    explicit_boxes = nall;
    int64_t *assign = malloc(((size_t)nall + 1) * sizeof *assign);
    int rc = ckpt_plan_explicit(ix, all, nall, assign);
    free(all);
    free(assign);
    if (rc == CKPT_OK)
        rc = ckpt_plan_assemble(ix, dir, 1);
    if (rc) {
        fprintf(stderr, "bench-scale: %s\n", ckpt_errmsg());
        return 1;
    }
    double t_plan = now() - t0, rss_plan = peak_mb();

    /* encode */
    mkdir(dir, 0755);
    char ipath[4200];
    snprintf(ipath, sizeof ipath, "%s/index.h5", dir);
    t0 = now();
    if (ckpt_index_write(ix, ipath) != CKPT_OK) {
        fprintf(stderr, "bench-scale: %s\n", ckpt_errmsg());
        return 1;
    }
    double t_enc = now() - t0, rss_enc = peak_mb();
    struct stat st;
    stat(ipath, &st);
    int64_t boxes = ix->nboxes;
    ckpt_index_free(ix);
    ckpt_state_free(decl);

    /* decode */
    t0 = now();
    ckpt_index *rx;
    if (ckpt_index_read(ipath, &rx) != CKPT_OK) {
        fprintf(stderr, "bench-scale: %s\n", ckpt_errmsg());
        return 1;
    }
    double t_dec = now() - t0, rss_dec = peak_mb();

    /* one rank's load planning at M ranks: the last rank (its boxes reach the ends) */
    t0 = now();
    int64_t hits = 0;
    for (int64_t ti = 0; ti < rx->ntensors; ti++) {
        const ckpt_itensor *t = &rx->tensors[ti];
        ckpt_box want;
        want.ndim = t->ndim;
        ckpt_shard_box(t->ndim, t->shape, 0, M - 1, M, want.off, want.ext);
        if (ckpt_box_volume(&want) > 0)
            ckpt_index_foreach_in(rx, ti, &want, count_hit, &hits);
    }
    double t_query = now() - t0;
    printf("{\"ranks\":%d,\"tensors\":%d,\"irregular\":%d,\"boxes\":%lld,\"explicit_boxes\":%lld,"
           "\"merge_rounds\":%d,\"plan_s\":%.3f,\"plan_per_rank_us\":%.2f,\"encode_s\":%.3f,\"index_bytes\":%lld,"
           "\"decode_s\":%.4f,\"load_ranks\":%d,\"query_ms\":%.3f,\"query_hits\":%lld,"
           "\"rss_mb\":{\"start\":%.1f,\"plan\":%.1f,\"encode\":%.1f,\"decode\":%.1f}}\n",
           N, nt, irregular, (long long)boxes, (long long)explicit_boxes, rounds, t_plan, t_plan / N * 1e6, t_enc,
           (long long)st.st_size, t_dec, M, t_query * 1e3, (long long)hits, rss0, rss_plan, rss_enc, rss_dec);
    ckpt_index_free(rx);
    return 0;
}
