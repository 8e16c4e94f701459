/* bench-model: single-process forward+backward(+SGD) throughput of the GPT model, against the sgemm
 * peak measured in the same run with the same thread count.
 *
 *   bench-model [--model default|tiny] [--batch 4] [--seq T] [--steps 20] [--warmup 3] [--threads N]
 *               [--no-update]
 *
 * Reports ms/step (mean, median, best), tokens/s, model GFLOP per step (matmuls incl. the tied LM head,
 * plus attention QK^T and att.V over the full TxT square, x3 for forward+backward: gpt_flops_per_step;
 * and the FLOPs actually executed with block-causal attention: gpt_flops_executed_per_step), achieved
 * GFLOP/s and its fraction of the OpenBLAS sgemm rate measured in the same run at 1024x768x256 (NT)
 * with the same thread count, both as one OpenBLAS-threaded call and as the model issues them (an
 * OpenMP team of single-threaded calls on row slabs).
 * The machine may be shared: the median and best steps are the robust numbers, and the sgemm rates are
 * the best of measurements taken before and after the timed steps. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpt.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--model default|tiny] [--batch B] [--seq T] [--steps N] [--warmup N] [--threads N] "
            "[--no-update]\n",
            argv0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* sgemm rate at M x N x K (C = A B^T) with `threads` threads: split == 0: one call, OpenBLAS threads
 * it; split == 1: OpenMP team, each thread a single-threaded call on its row slab (the model's way) */
static double sgemm_gflops(int M, int N, int K, int threads, int split)
{
    float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)N * K);
    float *C = malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++)
        A[i] = (float)(i % 13) * 0.01f;
    for (size_t i = 0; i < (size_t)N * K; i++)
        B[i] = (float)(i % 7) * 0.01f;
    openblas_set_num_threads(split ? 1 : threads);
    double best = 0.0;
    for (int trial = -1; trial < 10; trial++) { /* trial -1: warm-up; best of 10 resists a busy machine */
        int reps = 20;
        double t0 = now_s();
        for (int r = 0; r < reps; r++) {
            if (!split) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
                continue;
            }
#pragma omp parallel num_threads(threads)
            {
                int id = omp_get_thread_num(), nt = omp_get_num_threads();
                int r0 = (int)((long)M * id / nt), r1 = (int)((long)M * (id + 1) / nt);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, N, K, 1.0f, A + (size_t)r0 * K, K, B,
                            K, 0.0f, C + (size_t)r0 * N, N);
            }
        }
        double g = 2.0 * M * N * (double)K * reps / (now_s() - t0) / 1e9;
        if (trial >= 0)
            best = g > best ? g : best;
    }
    openblas_set_num_threads(threads);
    free(A);
    free(B);
    free(C);
    return best;
}

int main(int argc, char **argv)
{
    const char *model = "default";
    int B = 4, T = 0, steps = 20, warmup = 3, threads = omp_get_max_threads(), update = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-update") == 0) {
            update = 0;
            continue;
        }
        if (!v) {
            usage(argv[0]);
            return 2;
        }
        if (strcmp(a, "--model") == 0)
            model = v;
        else if (strcmp(a, "--batch") == 0)
            B = atoi(v);
        else if (strcmp(a, "--seq") == 0)
            T = atoi(v);
        else if (strcmp(a, "--steps") == 0)
            steps = atoi(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atoi(v);
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else {
            usage(argv[0]);
            return 2;
        }
        i++;
    }
    gpt_config cfg;
    if (gpt_config_preset(model, &cfg) != 0) {
        fprintf(stderr, "unknown model '%s'\n", model);
        return 2;
    }
    if (T <= 0 || T > cfg.max_seq)
        T = cfg.max_seq;
    if (B < 1 || steps < 1 || warmup < 0 || threads < 1) {
        usage(argv[0]);
        return 2;
    }
    omp_set_num_threads(threads);

    double peak = sgemm_gflops(1024, 768, 256, threads, 0);
    double peak_split = sgemm_gflops(1024, 768, 256, threads, 1);

    gpt_model *m = gpt_model_create(&cfg, 1337);
    gpt_acts *acts = gpt_acts_create(&cfg, B, T);
    if (!m || !acts) {
        fprintf(stderr, "allocation failed\n");
        return 1;
    }
    const int N = B * T;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)N), *tgt = malloc(sizeof(int32_t) * (size_t)N);
    uint64_t s = 0xC0FFEE;
    int32_t *stream = malloc(sizeof(int32_t) * (size_t)(N + 1));
    for (int i = 0; i <= N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        stream[i] = (int32_t)('a' + (s >> 33) % 26); /* letters: a learnable byte distribution */
    }
    memcpy(tok, stream, sizeof(int32_t) * (size_t)N);
    memcpy(tgt, stream + 1, sizeof(int32_t) * (size_t)N);

    const float lr = 1e-3f;
    double t_total = 0.0, t_best = 1e30, t_fwd = 0.0, t_bwd = 0.0;
    double *t_step = malloc(sizeof(double) * (size_t)steps);
    float loss = 0.0f, first_loss = 0.0f;
    for (int it = 0; it < warmup + steps; it++) {
        double t0 = now_s();
        gpt_zero_grad(m);
        if (gpt_forward(m, acts, tok, tgt, B, T, &loss) != 0) {
            fprintf(stderr, "forward failed\n");
            return 1;
        }
        double t1 = now_s();
        gpt_backward(m, acts);
        double t2 = now_s();
        if (update) {
            float *p = m->params;
            const float *g = m->grads;
            const int64_t n = m->n_elem;
#pragma omp parallel for schedule(static)
            for (int64_t k = 0; k < n; k++)
                p[k] -= lr * g[k];
        }
        double t3 = now_s();
        if (it == 0)
            first_loss = loss;
        if (it >= warmup) {
            t_step[it - warmup] = t3 - t0;
            t_total += t3 - t0;
            t_fwd += t1 - t0;
            t_bwd += t2 - t1;
            if (t3 - t0 < t_best)
                t_best = t3 - t0;
        }
    }
    qsort(t_step, (size_t)steps, sizeof(double), cmp_double);
    const double t_mean = t_total / steps, t_med = t_step[steps / 2];
    /* again after the steps (best of both): a transient load during one window should not set the peak */
    double p2 = sgemm_gflops(1024, 768, 256, threads, 0), p2s = sgemm_gflops(1024, 768, 256, threads, 1);
    peak = p2 > peak ? p2 : peak;
    peak_split = p2s > peak_split ? p2s : peak_split;
    const double flops = gpt_flops_per_step(&cfg, B, T), flops_exec = gpt_flops_executed_per_step(&cfg, B, T);
    printf("model %s: L%d H%d C%d V%d, %lld parameters; B=%d T=%d (%d tokens/step); %d threads\n", model,
           cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab, (long long)m->n_elem, B, T, N, threads);
    printf("sgemm 1024x768x256: %.1f GFLOP/s (OpenBLAS, %d threads) | %.1f GFLOP/s (OpenMP team of 1-thread "
           "calls, as the model runs them)\n",
           peak, threads, peak_split);
    printf("step (fwd+bwd%s) over %d steps: mean %.1f ms, median %.1f ms, best %.1f ms "
           "(mean fwd %.1f ms, bwd %.1f ms)\n",
           update ? "+sgd" : "", steps, 1e3 * t_mean, 1e3 * t_med, 1e3 * t_best, 1e3 * t_fwd / steps,
           1e3 * t_bwd / steps);
    printf("throughput: %.0f tokens/s mean, %.0f median, %.0f best\n", N / t_mean, N / t_med, N / t_best);
    printf("GFLOP/step: %.2f (dense-attention convention), %.2f executed (block-causal attention)\n", flops / 1e9,
           flops_exec / 1e9);
    printf("achieved (median step): %.1f GFLOP/s model = %.0f%% of sgemm peak; %.1f GFLOP/s executed = %.0f%%\n",
           flops / t_med / 1e9, 100.0 * flops / t_med / 1e9 / peak, flops_exec / t_med / 1e9,
           100.0 * flops_exec / t_med / 1e9 / peak);
    printf("loss: %.4f (first step) -> %.4f (last step)\n", (double)first_loss, (double)loss);
    free(t_step);
    free(stream);
    free(tok);
    free(tgt);
    gpt_acts_free(acts);
    gpt_model_free(m);
    return 0;
}
