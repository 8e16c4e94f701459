/* GPT model checks:
 *  - finite-difference gradient check of every parameter tensor of the tiny model, and of a model whose
 *    sequence spans two attention tiles; proof that the check can fail
 *  - causality (a token never influences earlier positions) and attention against a naive reference
 *  - split-independent, seed-dependent initialisation
 *  - loss at init ~ ln(256)
 *  - per-unit path (gathered copies, explicit unit calls) == gpt_forward/gpt_backward bit for bit
 *  - two "ranks" with the global token normaliser sum to the full-batch loss and gradients
 *  - parameter table, name lookup, sampling */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.h"

enum { GB = 2, GT = 32 }; /* batch used by the checks; GT == tiny max_seq so every wpe row is used */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng_normal(uint64_t *s)
{
    double u1 = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(rng_next(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static gpt_config tiny(void)
{
    gpt_config c;
    assert_int_equal(gpt_config_preset("tiny", &c), 0);
    return c;
}

static void make_batch(int32_t *tok, int32_t *tgt, int n, int V, uint64_t seed)
{
    uint64_t s = seed;
    for (int i = 0; i < n; i++)
        tok[i] = (int32_t)(rng_next(&s) % (uint64_t)V);
    for (int i = 0; i < n; i++)
        tgt[i] = (int32_t)(rng_next(&s) % (uint64_t)V);
}

/* Moves the model away from the GPT-2 init to a generic point: weights ~ N(0, 0.1), LayerNorm weights
 * 1 + N(0, 0.1), biases N(0, 0.1). At the real init attention is almost uniform and many gradients are
 * ~0, which would make a finite-difference check nearly vacuous. */
static void scramble(gpt_model *m, uint64_t seed)
{
    uint64_t s = seed;
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_param_info *t = &m->table[i];
        int ln_w = strstr(t->name, "ln") && t->name[strlen(t->name) - 1] == 'w';
        float *p = m->params + t->offset;
        for (int64_t k = 0; k < t->numel; k++)
            p[k] = (float)((ln_w ? 1.0 : 0.0) + 0.1 * rng_normal(&s));
    }
}

/* mean loss recomputed in double from the per-token losses: the returned float loss is quantised to
 * ~5e-7 at 5.5, which would dominate a finite difference */
static double loss_of(gpt_model *m, gpt_acts *a, const int32_t *tok, const int32_t *tgt, int B, int T)
{
    float lf;
    assert_int_equal(gpt_forward(m, a, tok, tgt, B, T, &lf), 0);
    double s = 0.0;
    for (int n = 0; n < B * T; n++)
        s += a->head.losses[n];
    return s / (B * T);
}

/* ---------------------------------------------------------------- finite differences */

/* Tolerances. The forward is fp32; the loss is averaged over 64 tokens whose per-token losses (~5.5)
 * each carry ~5e-7 of rounding, so one loss evaluation carries ~1e-7 of noise and a central difference
 * with EPS = 1e-2 carries ~1e-7 / 2e-2 = 5e-6 in absolute terms (measured: |num - ana| <= 6.3e-6 over
 * 24 elements at EPS 1e-2; the error grows ~1/EPS down to 1e-3 and shrinks at 3e-2, so it is rounding
 * noise, not truncation: the O(EPS^2 f''') term is < 1e-6 here). FD_ATOL = 2e-5 sits ~3x above that
 * noise. FD_RTOL = 1e-2 bounds the relative error of every element whose gradient is well above the
 * noise; a wrong backward is off by O(1) relative (a missing term, a wrong scale, a transposed index),
 * so 1e-2 separates noise from bugs by orders of magnitude. Each tensor's largest-|g| element is always
 * checked and must exceed 100 * FD_ATOL, so there the tolerance is at most 2% relative;
 * test_gradcheck_can_fail shows a 5% error in such an element is rejected. */
#define FD_EPS 1e-2f
#define FD_RTOL 1e-2
#define FD_ATOL 2e-5
#define FD_PER_TENSOR 8

typedef struct fd_ctx {
    gpt_model *m;
    gpt_acts *a;
    int B, T;
    int32_t *tok, *tgt;
    float *grad; /* analytic gradient, flat, table order */
} fd_ctx;

static int64_t argmax_abs(const float *g, int64_t lo, int64_t hi)
{
    int64_t best = lo;
    for (int64_t k = lo + 1; k < hi; k++)
        if (fabsf(g[k]) > fabsf(g[best]))
            best = k;
    return best;
}

/* Deterministic choice: the largest-|g| element, for the fused QKV tensors also the largest in each of
 * the Q, K and V row blocks (so the attention-score path through Q and K is always checked), then
 * hashed positions. */
static int pick_elements(const gpt_param_info *t, const float *g, int64_t *idx)
{
    int n = 0;
    idx[n++] = argmax_abs(g, 0, t->numel);
    if (strstr(t->name, ".qkv.")) {
        int64_t third = t->numel / 3;
        for (int j = 0; j < 3; j++)
            idx[n++] = argmax_abs(g, j * third, (j + 1) * third);
    }
    uint64_t s = 0x1234ULL + (uint64_t)t->offset;
    while (n < FD_PER_TENSOR && n < t->numel)
        idx[n++] = (int64_t)(rng_next(&s) % (uint64_t)t->numel);
    return n;
}

/* number of elements of tensor ti whose gradient in `grad` disagrees with finite differences */
static int fd_check_tensor(fd_ctx *c, int ti, const float *grad, double *worst_rel, int verbose)
{
    const gpt_param_info *t = &c->m->table[ti];
    float *p = c->m->params + t->offset;
    const float *g = grad + t->offset;
    int64_t idx[FD_PER_TENSOR];
    int n = pick_elements(t, g, idx), bad = 0;
    *worst_rel = 0.0;
    for (int e = 0; e < n; e++) {
        int64_t k = idx[e];
        float orig = p[k];
        p[k] = orig + FD_EPS;
        double fp = loss_of(c->m, c->a, c->tok, c->tgt, c->B, c->T);
        p[k] = orig - FD_EPS;
        double fm = loss_of(c->m, c->a, c->tok, c->tgt, c->B, c->T);
        p[k] = orig;
        double num = (fp - fm) / (2.0 * (double)FD_EPS);
        double ana = g[k];
        double diff = fabs(num - ana), mag = fmax(fabs(num), fabs(ana));
        double rel = diff / fmax(mag, 1e-30);
        if (mag > 100 * FD_ATOL && rel > *worst_rel)
            *worst_rel = rel;
        int ok = diff <= FD_RTOL * mag + FD_ATOL;
        if (!ok)
            bad++;
        if (verbose && !ok)
            printf("    %-18s [%6lld] analytic % .6e numeric % .6e rel %.2e\n", t->name, (long long)k, ana, num,
                   rel);
    }
    return bad;
}

static fd_ctx *fd_create(const gpt_config *cfg, int B, int T)
{
    fd_ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->m = gpt_model_create(cfg, 1234);
    c->a = gpt_acts_create(cfg, B, T);
    assert_non_null(c->m);
    assert_non_null(c->a);
    c->B = B;
    c->T = T;
    c->tok = malloc(sizeof(int32_t) * (size_t)(B * T));
    c->tgt = malloc(sizeof(int32_t) * (size_t)(B * T));
    scramble(c->m, 99);
    make_batch(c->tok, c->tgt, B * T, cfg->vocab, 7);
    float loss;
    gpt_zero_grad(c->m);
    assert_int_equal(gpt_forward(c->m, c->a, c->tok, c->tgt, B, T, &loss), 0);
    assert_int_equal(gpt_backward(c->m, c->a), 0);
    c->grad = malloc(sizeof(float) * (size_t)c->m->n_elem);
    memcpy(c->grad, c->m->grads, sizeof(float) * (size_t)c->m->n_elem);
    return c;
}

static void fd_free(fd_ctx *c)
{
    gpt_model_free(c->m);
    gpt_acts_free(c->a);
    free(c->grad);
    free(c->tok);
    free(c->tgt);
    free(c);
}

static int fd_setup(void **state)
{
    gpt_config cfg = tiny();
    *state = fd_create(&cfg, GB, GT);
    return 0;
}

static int fd_teardown(void **state)
{
    fd_free(*state);
    return 0;
}

/* checks every tensor of c's model; returns the number of failures */
static int fd_check_all(fd_ctx *c)
{
    int total_bad = 0;
    for (int i = 0; i < c->m->n_tensors; i++) {
        double worst;
        int bad = fd_check_tensor(c, i, c->grad, &worst, 1);
        const float *g = c->grad + c->m->table[i].offset;
        double gmax = 0.0;
        for (int64_t k = 0; k < c->m->table[i].numel; k++)
            gmax = fmax(gmax, fabs(g[k]));
        printf("    %-18s max|g| %.3e  worst rel err %.2e  %s\n", c->m->table[i].name, gmax, worst,
               bad ? "FAIL" : "ok");
        /* a tensor whose gradient is identically ~0 would make the check vacuous */
        if (gmax < 100 * FD_ATOL) {
            printf("    %-18s gradient too small to check meaningfully\n", c->m->table[i].name);
            bad++;
        }
        total_bad += bad;
    }
    return total_bad;
}

static void test_gradcheck_all_tensors(void **state)
{
    fd_ctx *c = *state;
    printf("  gradcheck tiny (B=%d T=%d): eps %.0e, %d elements/tensor, pass if |num-ana| <= "
           "%.0e*max(|num|,|ana|) + %.0e\n",
           c->B, c->T, (double)FD_EPS, FD_PER_TENSOR, FD_RTOL, FD_ATOL);
    assert_int_equal(fd_check_all(c), 0);
}

/* The attention kernels work in 64-row causal tiles; the tiny model has a single tile. This config has
 * T = 80: a full tile plus a partial one, so the cross-tile paths (keys of tile 0 seen by queries of
 * tile 1, dK/dV gathered over later query rows) are checked too. */
static void test_gradcheck_multi_tile(void **state)
{
    (void)state;
    gpt_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 16, .max_seq = 80, .vocab = 256};
    fd_ctx *c = fd_create(&cfg, 1, 80);
    printf("  gradcheck L1 H2 C16 (B=1 T=80, two attention tiles)\n");
    assert_int_equal(fd_check_all(c), 0);
    fd_free(c);
}

/* The same check rejects a gradient that is wrong by 5% in one element (the largest-|g| element of a
 * few tensors, including the query block of a QKV projection). */
static void test_gradcheck_can_fail(void **state)
{
    fd_ctx *c = *state;
    const char *names[] = {"wte", "h.0.attn.qkv.w", "h.1.mlp.fc.b", "lnf.w"};
    float *bad_grad = malloc(sizeof(float) * (size_t)c->m->n_elem);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int ti = gpt_find_tensor(&c->m->cfg, names[i]);
        assert_true(ti >= 0);
        const gpt_param_info *t = &c->m->table[ti];
        memcpy(bad_grad, c->grad, sizeof(float) * (size_t)c->m->n_elem);
        int64_t idx[FD_PER_TENSOR];
        pick_elements(t, c->grad + t->offset, idx);
        /* wte, fc.b, lnf.w: the largest element; qkv.w: the largest of the Q block (attention scores) */
        int64_t k = strstr(t->name, ".qkv.") ? idx[1] : idx[0];
        bad_grad[t->offset + k] *= 1.05f;
        double worst;
        assert_int_equal(fd_check_tensor(c, ti, c->grad, &worst, 0), 0);
        assert_true(fd_check_tensor(c, ti, bad_grad, &worst, 0) >= 1);
    }
    free(bad_grad);
}

/* ---------------------------------------------------------------- forward semantics */

/* A gradient check only proves the backward matches the forward. These pin the forward down:
 * (1) causality: changing the token at position p leaves every logit at positions < p bit-identical
 *     and changes the logits at p;
 * (2) the attention output of the first block equals a naive double-precision softmax(QK^T/sqrt(hs))V
 *     computed from the saved qkv. Both on T = 80 (two attention tiles). */
static void test_causal_and_attention_reference(void **state)
{
    (void)state;
    gpt_config cfg = {.n_layer = 2, .n_head = 2, .n_embd = 16, .max_seq = 80, .vocab = 256};
    const int B = 2, T = 80, C = cfg.n_embd, H = cfg.n_head, hs = C / H, V = cfg.vocab;
    gpt_model *m = gpt_model_create(&cfg, 3);
    scramble(m, 5);
    gpt_acts *a = gpt_acts_create(&cfg, B, T);
    int32_t tok[2 * 80], tgt[2 * 80];
    make_batch(tok, tgt, B * T, V, 23);
    float loss;
    assert_int_equal(gpt_forward(m, a, tok, NULL, B, T, &loss), 0);

    /* (2) naive attention for block 0 */
    const float *qkv = a->blocks[0].qkv, *y = a->blocks[0].atty;
    double worst = 0.0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                const float *q = qkv + ((size_t)b * T + i) * 3 * C + h * hs;
                double s[80], mx = -1e300, sum = 0.0;
                for (int j = 0; j <= i; j++) {
                    const float *k = qkv + ((size_t)b * T + j) * 3 * C + C + h * hs;
                    double d = 0.0;
                    for (int e = 0; e < hs; e++)
                        d += (double)q[e] * k[e];
                    s[j] = d / sqrt((double)hs);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j <= i; j++)
                    sum += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < hs; e++) {
                    double acc = 0.0;
                    for (int j = 0; j <= i; j++)
                        acc += s[j] / sum * qkv[((size_t)b * T + j) * 3 * C + 2 * C + h * hs + e];
                    double got = y[((size_t)b * T + i) * C + h * hs + e];
                    worst = fmax(worst, fabs(got - acc) / fmax(fabs(acc), 1e-3));
                }
            }
    printf("  attention vs naive reference: max rel err %.2e\n", worst);
    assert_true(worst < 1e-4);

    /* (1) causality */
    float *before = malloc(sizeof(float) * (size_t)(B * T * V));
    memcpy(before, a->head.logits, sizeof(float) * (size_t)(B * T * V));
    const int p = 70; /* in the second tile */
    tok[T + p] = (tok[T + p] + 1) % V;
    assert_int_equal(gpt_forward(m, a, tok, NULL, B, T, &loss), 0);
    assert_memory_equal(before, a->head.logits, sizeof(float) * (size_t)(T + p) * V);
    assert_memory_not_equal(before + (size_t)(T + p) * V, a->head.logits + (size_t)(T + p) * V,
                            sizeof(float) * (size_t)V);
    free(before);
    gpt_model_free(m);
    gpt_acts_free(a);
}

/* ---------------------------------------------------------------- initialisation */

static void test_init_split_and_seed(void **state)
{
    (void)state;
    gpt_config cfg;
    assert_int_equal(gpt_config_preset("default", &cfg), 0);
    const char *names[] = {"wte", "wpe", "h.0.attn.qkv.w", "h.3.mlp.proj.w", "h.2.ln1.w", "h.1.mlp.fc.b", "lnf.w"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        gpt_param_info t;
        assert_int_equal(gpt_tensor_info(&cfg, gpt_find_tensor(&cfg, names[i]), &t), 0);
        float *whole = malloc(sizeof(float) * (size_t)t.numel);
        float *parts = malloc(sizeof(float) * (size_t)t.numel);
        float *other = malloc(sizeof(float) * (size_t)t.numel);
        assert_int_equal(gpt_init_param(&cfg, names[i], 0, t.numel, whole, 42), 0);
        int64_t cut = t.numel / 3 + 7; /* not on a row boundary */
        assert_int_equal(gpt_init_param(&cfg, names[i], 0, cut, parts, 42), 0);
        assert_int_equal(gpt_init_param(&cfg, names[i], cut, t.numel - cut, parts + cut, 42), 0);
        assert_memory_equal(whole, parts, sizeof(float) * (size_t)t.numel);
        assert_int_equal(gpt_init_param(&cfg, names[i], 0, t.numel, other, 43), 0);
        int64_t differ = 0;
        for (int64_t k = 0; k < t.numel; k++)
            differ += whole[k] != other[k];
        if (t.is_matrix) {
            assert_true(differ > t.numel * 99 / 100);
            /* statistics: mean 0, std 0.02 (residual projections 0.02/sqrt(2L)) */
            double s = 0, s2 = 0;
            for (int64_t k = 0; k < t.numel; k++) {
                s += whole[k];
                s2 += (double)whole[k] * whole[k];
            }
            double mean = s / t.numel, sd = sqrt(s2 / t.numel - mean * mean);
            double want = strstr(names[i], "proj.w") ? 0.02 / sqrt(2.0 * cfg.n_layer) : 0.02;
            assert_true(fabs(mean) < 0.05 * want);
            assert_true(fabs(sd - want) < 0.02 * want);
        } else {
            assert_int_equal(differ, 0); /* constants */
            float want = strstr(names[i], ".w") ? 1.0f : 0.0f;
            for (int64_t k = 0; k < t.numel; k++)
                assert_true(whole[k] == want);
        }
        free(whole);
        free(parts);
        free(other);
    }
    float x;
    assert_int_equal(gpt_init_param(&cfg, "h.4.ln1.w", 0, 1, &x, 1), -1); /* no layer 4 */
    assert_int_equal(gpt_init_param(&cfg, "nope", 0, 1, &x, 1), -1);
    assert_int_equal(gpt_init_param(&cfg, "lnf.b", 256, 1, &x, 1), -1); /* past the end */
    assert_int_equal(gpt_init_param(&cfg, "lnf.b", 255, 1, &x, 1), 0);
}

/* ---------------------------------------------------------------- loss at init */

static void test_loss_at_init(void **state)
{
    (void)state;
    gpt_config cfg = tiny();
    gpt_model *m = gpt_model_create(&cfg, 1);
    gpt_acts *a = gpt_acts_create(&cfg, GB, GT);
    int32_t tok[GB * GT], tgt[GB * GT];
    make_batch(tok, tgt, GB * GT, cfg.vocab, 3);
    float loss;
    assert_int_equal(gpt_forward(m, a, tok, tgt, GB, GT, &loss), 0);
    printf("  loss at init %.4f (ln 256 = %.4f)\n", (double)loss, log(256.0));
    assert_true(fabs(loss - log(256.0)) < 0.1);
    /* bad inputs are rejected */
    tok[3] = 256;
    assert_int_equal(gpt_forward(m, a, tok, tgt, GB, GT, &loss), -1);
    tok[3] = 0;
    tgt[5] = 300;
    assert_int_equal(gpt_forward(m, a, tok, tgt, GB, GT, &loss), -1);
    assert_int_equal(gpt_forward(m, a, tok, NULL, GB, GT + 1, &loss), -1);
    /* logits-only forward: no backward possible */
    assert_int_equal(gpt_forward(m, a, tok, NULL, GB, GT, &loss), 0);
    assert_int_equal(gpt_backward(m, a), -1);
    gpt_model_free(m);
    gpt_acts_free(a);
}

/* ---------------------------------------------------------------- per-unit path */

typedef struct unit_bufs {
    float *p[64], *g[64]; /* per unit: gathered parameter copy and gradient buffer */
} unit_bufs;

/* Runs one step through the unit functions on gathered copies of the parameters, the way a sharded
 * trainer would. Writes each unit's gradients into u->g. */
static float run_units(const gpt_model *m, gpt_acts *a, unit_bufs *u, const int32_t *tok, const int32_t *tgt,
                       int B, int T, double scale)
{
    const gpt_config *cfg = &m->cfg;
    const int U = gpt_num_units(cfg);
    assert_true(U <= 64);
    for (int i = 0; i < U; i++) {
        int first, count;
        gpt_unit_tensors(cfg, i, &first, &count);
        int64_t n = gpt_unit_numel(cfg, i);
        u->p[i] = malloc(sizeof(float) * (size_t)n);
        u->g[i] = calloc((size_t)n, sizeof(float));
        memcpy(u->p[i], m->params + m->table[first].offset, sizeof(float) * (size_t)n);
    }
    gpt_embed_params ep, eg;
    gpt_embed_view(cfg, u->p[0], &ep);
    gpt_embed_view(cfg, u->g[0], &eg);
    gpt_lnf_params lp, lg;
    gpt_lnf_view(cfg, u->p[U - 1], &lp);
    gpt_lnf_view(cfg, u->g[U - 1], &lg);
    float loss;
    assert_int_equal(gpt_embed_forward(cfg, &ep, a, tok, B, T), 0);
    for (int l = 0; l < cfg->n_layer; l++) {
        gpt_block_params bp;
        gpt_block_view(cfg, u->p[1 + l], &bp);
        gpt_block_forward(cfg, &bp, a, l);
    }
    assert_int_equal(gpt_head_forward(cfg, ep.wte, &lp, a, tgt, scale, &loss), 0);
    assert_int_equal(gpt_head_backward(cfg, ep.wte, &lp, eg.wte, &lg, a), 0);
    for (int l = cfg->n_layer - 1; l >= 0; l--) {
        gpt_block_params bp, bg;
        gpt_block_view(cfg, u->p[1 + l], &bp);
        gpt_block_view(cfg, u->g[1 + l], &bg);
        gpt_block_backward(cfg, &bp, &bg, a, l);
    }
    gpt_embed_backward(cfg, &eg, a);
    return loss;
}

static void free_units(const gpt_config *cfg, unit_bufs *u)
{
    for (int i = 0; i < gpt_num_units(cfg); i++) {
        free(u->p[i]);
        free(u->g[i]);
    }
}

static void test_units_match_full_path(void **state)
{
    (void)state;
    gpt_config cfg = tiny();
    gpt_model *m = gpt_model_create(&cfg, 5);
    scramble(m, 11);
    gpt_acts *a = gpt_acts_create(&cfg, GB, GT);
    gpt_acts *a2 = gpt_acts_create(&cfg, GB, GT);
    int32_t tok[GB * GT], tgt[GB * GT];
    make_batch(tok, tgt, GB * GT, cfg.vocab, 13);
    float loss_full;
    gpt_zero_grad(m);
    assert_int_equal(gpt_forward(m, a, tok, tgt, GB, GT, &loss_full), 0);
    assert_int_equal(gpt_backward(m, a), 0);

    unit_bufs u;
    float loss_units = run_units(m, a2, &u, tok, tgt, GB, GT, (double)(GB * GT));
    assert_memory_equal(&loss_full, &loss_units, sizeof(float));
    for (int i = 0; i < gpt_num_units(&cfg); i++) {
        int first, count;
        gpt_unit_tensors(&cfg, i, &first, &count);
        assert_memory_equal(u.g[i], m->grads + m->table[first].offset,
                            sizeof(float) * (size_t)gpt_unit_numel(&cfg, i));
    }
    /* logits too */
    assert_memory_equal(a->head.logits, a2->head.logits, sizeof(float) * GB * GT * (size_t)cfg.vocab);
    free_units(&cfg, &u);
    gpt_model_free(m);
    gpt_acts_free(a);
    gpt_acts_free(a2);
}

/* Two "ranks" holding one sequence each, both normalising by the global token count: their summed
 * losses and gradients equal the full batch's (up to fp32 reordering). */
static void test_global_normaliser(void **state)
{
    (void)state;
    gpt_config cfg = tiny();
    gpt_model *m = gpt_model_create(&cfg, 8);
    scramble(m, 21);
    gpt_acts *a = gpt_acts_create(&cfg, GB, GT);
    int32_t tok[GB * GT], tgt[GB * GT];
    make_batch(tok, tgt, GB * GT, cfg.vocab, 17);
    tgt[4] = -1; /* one ignored target: the normaliser counts 63 tokens */
    float loss_full;
    gpt_zero_grad(m);
    assert_int_equal(gpt_forward(m, a, tok, tgt, GB, GT, &loss_full), 0);
    assert_int_equal(gpt_backward(m, a), 0);
    const double global = GB * GT - 1;
    unit_bufs r0, r1;
    float l0 = run_units(m, a, &r0, tok, tgt, 1, GT, global);
    float l1 = run_units(m, a, &r1, tok + GT, tgt + GT, 1, GT, global);
    printf("  full %.7f  rank0 %.7f + rank1 %.7f = %.7f\n", (double)loss_full, (double)l0, (double)l1,
           (double)(l0 + l1));
    assert_true(fabs((double)(l0 + l1) - loss_full) < 1e-5);
    double worst = 0.0, gmax = 0.0;
    for (int i = 0; i < gpt_num_units(&cfg); i++) {
        int first, count;
        gpt_unit_tensors(&cfg, i, &first, &count);
        const float *g = m->grads + m->table[first].offset;
        for (int64_t k = 0; k < gpt_unit_numel(&cfg, i); k++) {
            worst = fmax(worst, fabs((double)r0.g[i][k] + r1.g[i][k] - g[k]));
            gmax = fmax(gmax, fabs(g[k]));
        }
    }
    printf("  max |g_rank0 + g_rank1 - g_full| = %.2e (max |g| %.2e)\n", worst, gmax);
    assert_true(worst < 1e-5 * fmax(gmax, 1.0));
    free_units(&cfg, &r0);
    free_units(&cfg, &r1);
    gpt_model_free(m);
    gpt_acts_free(a);
}

/* ---------------------------------------------------------------- table, names, sampling */

static void test_param_table(void **state)
{
    (void)state;
    gpt_config cfg;
    assert_int_equal(gpt_config_preset("default", &cfg), 0);
    int n = gpt_num_tensors(&cfg);
    assert_int_equal(n, 4 + 12 * 4);
    gpt_param_info *t = calloc((size_t)n, sizeof *t);
    assert_int_equal(gpt_param_table(&cfg, t), n);
    static const char *const sfx[12] = {"ln1.w", "ln1.b", "attn.qkv.w", "attn.qkv.b", "attn.proj.w",
                                        "attn.proj.b", "ln2.w", "ln2.b", "mlp.fc.w", "mlp.fc.b", "mlp.proj.w",
                                        "mlp.proj.b"};
    assert_string_equal(t[0].name, "wte");
    assert_string_equal(t[1].name, "wpe");
    for (int l = 0; l < 4; l++)
        for (int j = 0; j < 12; j++) {
            char want[64];
            snprintf(want, sizeof want, "h.%d.%s", l, sfx[j]);
            assert_string_equal(t[2 + 12 * l + j].name, want);
            assert_int_equal(t[2 + 12 * l + j].unit, 1 + l);
        }
    assert_string_equal(t[n - 2].name, "lnf.w");
    assert_string_equal(t[n - 1].name, "lnf.b");
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(t[i].offset, off);
        assert_int_equal(t[i].numel, t[i].shape[0] * t[i].shape[1]);
        assert_int_equal(t[i].is_matrix, t[i].ndim == 2);
        assert_int_equal(gpt_find_tensor(&cfg, t[i].name), i);
        off += t[i].numel;
    }
    assert_int_equal(off, gpt_num_elements(&cfg));
    printf("  default model: %lld parameters in %d tensors\n", (long long)off, n);
    assert_true(off > 3200000 && off < 3400000);
    int qkv = gpt_find_tensor(&cfg, "h.2.attn.qkv.w");
    assert_int_equal(t[qkv].shape[0], 768);
    assert_int_equal(t[qkv].shape[1], 256);
    int mp = gpt_find_tensor(&cfg, "h.2.mlp.proj.w");
    assert_int_equal(t[mp].shape[0], 256);
    assert_int_equal(t[mp].shape[1], 1024);
    /* units */
    assert_int_equal(gpt_num_units(&cfg), 6);
    int64_t sum = 0;
    for (int uidx = 0; uidx < 6; uidx++) {
        int first, count;
        gpt_unit_tensors(&cfg, uidx, &first, &count);
        int64_t un = 0;
        for (int i = first; i < first + count; i++) {
            assert_int_equal(t[i].unit, uidx);
            un += t[i].numel;
        }
        assert_int_equal(un, gpt_unit_numel(&cfg, uidx));
        sum += un;
    }
    assert_int_equal(sum, off);
    assert_int_equal(gpt_find_tensor(&cfg, "h.01.ln1.w"), -1);
    assert_int_equal(gpt_find_tensor(&cfg, "h.4.ln1.w"), -1);
    assert_int_equal(gpt_find_tensor(&cfg, "h.1.ln3.w"), -1);
    free(t);
}

static void test_sampling(void **state)
{
    (void)state;
    float logits[256];
    for (int v = 0; v < 256; v++)
        logits[v] = (float)((v * 37) % 11) * 0.1f;
    logits[200] = 3.0f;
    uint64_t s = 5;
    assert_int_equal(gpt_sample_token(logits, 256, 0.0f, &s), 200);
    uint64_t s1 = 77, s2 = 77;
    for (int i = 0; i < 20; i++)
        assert_int_equal(gpt_sample_token(logits, 256, 1.0f, &s1), gpt_sample_token(logits, 256, 1.0f, &s2));
    logits[17] = 60.0f; /* overwhelming */
    for (int i = 0; i < 20; i++)
        assert_int_equal(gpt_sample_token(logits, 256, 1.0f, &s1), 17);
    /* high temperature spreads out */
    int seen[256] = {0}, distinct = 0;
    logits[17] = 0.0f;
    for (int i = 0; i < 2000; i++)
        seen[gpt_sample_token(logits, 256, 5.0f, &s1)]++;
    for (int v = 0; v < 256; v++)
        distinct += seen[v] > 0;
    assert_true(distinct > 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_table),
        cmocka_unit_test(test_init_split_and_seed),
        cmocka_unit_test(test_loss_at_init),
        cmocka_unit_test_setup_teardown(test_gradcheck_all_tensors, fd_setup, fd_teardown),
        cmocka_unit_test_setup_teardown(test_gradcheck_can_fail, fd_setup, fd_teardown),
        cmocka_unit_test(test_gradcheck_multi_tile),
        cmocka_unit_test(test_causal_and_attention_reference),
        cmocka_unit_test(test_units_match_full_path),
        cmocka_unit_test(test_global_normaliser),
        cmocka_unit_test(test_sampling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
