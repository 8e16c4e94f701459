/* loop: set-up (checkpoint source, data, sharded model), the training steps, evaluation, early
 * stopping, checkpoints and signals. */
#include "loop.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt_io.h"
#include "data.h"
#include "fsdp.h"
#include "shard.h"

#define DEFAULT_DATA "/usr/share/games/fortunes"

/* ---------------------------------------------------------------- signals */

_Static_assert(EXIT_REQUEUE == CKPTIO_EXIT_REQUEUE, "shard-train requeues with libckpt's CKPT_EXIT_REQUEUE");

int train_install_signals(void)
{
    return ckptio_preempt_install() == CKPTIO_OK ? 0 : -1;
}

/* ---------------------------------------------------------------- helpers */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void train_options_default(train_options *o)
{
    memset(o, 0, sizeof *o);
    gpt_config_preset("default", &o->cfg);
    o->batch = 8;
    o->steps = 1000;
    adamw_config_default(&o->opt);
    o->lr_min_ratio = 0.1;
    o->seed = 1337;
    o->val_frac = 0.1;
    o->eval_every = 100;
    o->eval_seqs = 32;
    o->sample_len = 64;
    o->temperature = 0.8;
    o->ckpt_every = 0;
    o->ckpt_secs = 0.0;
    o->keep_last = 3;
    o->keep_best = 0;
    o->async = 1;
    o->patience = 0;
    o->min_delta = 0.0;
    o->log_every = 1;
}

/* Every rank passes its own code (0: fine) and message; all get the maximum code, and the lowest
 * failing rank prints its message (once for the job). comm failures here abort the job. */
static int agree_error(comm *c, int code, const char *msg)
{
    int agreed = comm_agree_max(c, code);
    if (agreed == 0)
        return 0;
    int32_t who = code ? c->rank : c->size;
    comm_all_reduce(c, &who, 1, COMM_I32, COMM_MIN);
    if (who == c->rank)
        fprintf(stderr, "shard-train: error: %s\n", msg);
    return agreed;
}

/* A collective failed: the communicator can no longer be trusted to agree on anything. */
static void comm_fatal(comm *c, const char *where)
{
    fprintf(stderr, "shard-train: fatal: rank %d: communication failed during %s: %s\n", c->rank, where,
            comm_errmsg(c));
    fflush(stderr);
    exit(EXIT_ERROR);
}

static void print_escaped(FILE *f, const char *s, int n)
{
    fputc('"', f);
    for (int i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n')
            fputs("\\n", f);
        else if (ch == '\t')
            fputs("\\t", f);
        else if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static const char *human_bytes(double b, char *buf, size_t n)
{
    if (b >= 1024.0 * 1024.0)
        snprintf(buf, n, "%.2f MiB", b / (1024.0 * 1024.0));
    else
        snprintf(buf, n, "%.1f KiB", b / 1024.0);
    return buf;
}

/* rank 0: the line for a committed checkpoint */
static void print_commit(const comm *c, const ckptio_result *r, int timer)
{
    if (c->rank != 0 || !r->committed)
        return;
    if (r->async)
        printf("checkpoint %s committed (async: stall %.1f ms at the save + %.1f ms at the commit, %.0f ms from "
               "save to commit)%s",
               r->path, r->start_stall_s * 1e3, r->stall_s * 1e3, r->total_s * 1e3, timer ? " [timer]" : "");
    else
        printf("checkpoint %s (%.0f ms, synchronous)%s", r->path, r->total_s * 1e3, timer ? " [timer]" : "");
    if (r->removed > 0)
        printf("; retention removed %d older checkpoint%s", r->removed, r->removed > 1 ? "s" : "");
    printf("\n");
    fflush(stdout);
}

/* ---------------------------------------------------------------- evaluation and sampling */

static int evaluate(fsdp *f, comm *c, const data_set *d, int64_t n_eval, int64_t mb, int32_t *tok, int32_t *tgt,
                    double *val)
{
    const int N = c->size, T = d->T;
    int64_t first, count;
    data_split(n_eval, N, c->rank, &first, &count);
    const int64_t bq = (n_eval + N - 1) / N, n_micro = (bq + mb - 1) / mb;
    double sum = 0.0;
    int32_t refused = 0;
    for (int64_t k = 0; k < n_micro; k++) {
        int64_t lo = k * mb, nb = count - lo < mb ? count - lo : mb;
        if (nb < 0)
            nb = 0;
        if (nb > 0)
            data_val_batch(d, n_eval, first + lo, nb, tok, tgt);
        int rc = fsdp_forward_loss(f, tok, tgt, (int)nb, &sum);
        if (rc == -1)
            comm_fatal(c, "evaluation");
        refused |= rc == -2;
    }
    double red[2] = {sum, (double)refused};
    if (comm_all_reduce(c, red, 2, COMM_F64, COMM_SUM) != 0)
        comm_fatal(c, "evaluation");
    *val = red[0] / ((double)n_eval * T);
    return red[1] > 0 ? -1 : 0;
}

/* Generates len bytes from a newline prompt (temperature sampling, RNG seeded by (seed, step));
 * every rank takes part in the gathers, rank 0 computes and prints. */
static void sample_text(fsdp *f, comm *c, uint64_t seed, int64_t step, int len, double temperature)
{
    if (len <= 0)
        return;
    const int T = f->T, V = f->cfg.vocab;
    int32_t *ctx = malloc(sizeof(int32_t) * (size_t)(len + 1));
    float *logits = malloc(sizeof(float) * (size_t)V);
    char *text = malloc((size_t)len + 1);
    int ok = ctx && logits && text;
    if (comm_agree_max(c, !ok) != 0) {
        free(ctx);
        free(logits);
        free(text);
        return;
    }
    uint64_t rng = seed * 0x9E3779B97F4A7C15ULL ^ (uint64_t)step ^ 0xA5A5A5A5ULL;
    int n = 1;
    ctx[0] = '\n';
    for (int i = 0; i < len; i++) {
        int w = n < T ? n : T;
        int rc = fsdp_last_logits(f, ctx + (n - w), w, c->rank == 0, logits);
        if (rc == -1)
            comm_fatal(c, "sampling");
        int tok = 0;
        if (c->rank == 0)
            tok = rc == 0 ? gpt_sample_token(logits, V, (float)temperature, &rng) : ' ';
        ctx[n++] = tok;
        text[i] = (char)tok;
    }
    if (c->rank == 0) {
        printf("sample @ step %lld: ", (long long)step);
        print_escaped(stdout, text, len);
        printf("\n");
        fflush(stdout);
    }
    free(ctx);
    free(logits);
    free(text);
}

/* ---------------------------------------------------------------- the run */

static void meta_init(train_meta *m, const train_options *o)
{
    memset(m, 0, sizeof *m);
    m->data_seed = o->seed;
    m->val_frac = o->val_frac;
    m->best_val_loss = INFINITY;
    m->best_step = -1;
    m->val_loss = NAN;
    m->init_seed = o->seed;
}

int train_run(const train_options *oin, comm *c)
{
    train_options o = *oin;
    const int rank = c->rank, N = c->size;
    char err[4096] = "";
    char src[4096] = "";
    int have_src = 0, weights_only = 0, code;
    FILE *metrics = NULL;
    shard_model *s = NULL;
    fsdp *f = NULL;
    int32_t *tok = NULL, *tgt = NULL;
    ckptio *io = NULL;
    data_set d;
    memset(&d, 0, sizeof d);

    if (!o.ckpt_dir) {
        if (rank == 0)
            fprintf(stderr, "shard-train: error: --ckpt-dir is required (see --help)\n");
        return EXIT_USAGE;
    }

    /* the checkpoint directory: libckpt's manager (paths, latest, retention, save policy), and its
     * asynchronous saver unless --no-async */
    ckptio_options io_opt = {.keep_last = o.keep_last,
                             .keep_best = o.keep_best,
                             .every_steps = o.ckpt_every,
                             .every_secs = o.ckpt_secs,
                             .async = o.async};
    if (ckptio_open(c, o.ckpt_dir, &io_opt, &io, err, sizeof err) != CKPTIO_OK) {
        if (rank == 0)
            fprintf(stderr, "shard-train: error: %s\n", err);
        return EXIT_ERROR;
    }

    /* 1. where the state comes from: --resume (auto: the latest committed checkpoint), else --init-from */
    if (o.resume) {
        if (strcmp(o.resume, "auto") == 0) {
            int64_t st;
            have_src = ckptio_latest(io, src, sizeof src, &st, err, sizeof err);
            if (have_src < 0) {
                if (rank == 0)
                    fprintf(stderr, "shard-train: error: %s\n", err);
                code = EXIT_CKPT;
                goto out;
            }
            if (!have_src && rank == 0)
                printf("shard-train: no committed checkpoint in '%s': starting fresh\n", o.ckpt_dir);
        } else {
            snprintf(src, sizeof src, "%s", o.resume);
            have_src = 1;
        }
    } else {
        char old[4096];
        int64_t st = 0;
        if (ckptio_latest(io, old, sizeof old, &st, err, sizeof err) == 1 && rank == 0)
            fprintf(stderr,
                    "shard-train: warning: '%s' already holds checkpoints up to step %lld; starting fresh without "
                    "--resume (same-numbered steps will be replaced)\n",
                    o.ckpt_dir, (long long)st);
    }
    if (!have_src && o.init_from) {
        snprintf(src, sizeof src, "%s", o.init_from);
        have_src = 1;
        weights_only = 1;
    }
    if (have_src) {
        gpt_config have;
        int rc = ckptio_read_config(c, src, &have, err, sizeof err);
        if (rc == CKPTIO_OK && o.model_explicit)
            rc = ckptio_check_config(src, &have, &o.cfg, err, sizeof err);
        if (rc != CKPTIO_OK) { /* read_config broadcast the same outcome to every rank */
            if (rank == 0)
                fprintf(stderr, "shard-train: error: %s\n", err);
            code = EXIT_CKPT;
            goto out;
        }
        if (!o.model_explicit)
            o.cfg = have;
    }
    const gpt_config *cfg = &o.cfg;
    const int T = cfg->max_seq;

    /* 2. data */
    const char *dpath = o.data_path ? o.data_path : DEFAULT_DATA;
    int drc = data_load(dpath, o.val_frac, T, &d, err, sizeof err);
    if (drc != DATA_OK && !o.data_path)
        snprintf(err + strlen(err), sizeof err - strlen(err),
                 " (the default corpus comes from Debian's fortunes/fortunes-min packages: scripts/setup.sh "
                 "installs them; or pass --data PATH)");
    if ((code = agree_error(c, drc != DATA_OK ? EXIT_DATA : 0, err)) != 0)
        goto out;

    /* 3. sharded model, activations, batches */
    s = shard_create(cfg, rank, N);
    const int64_t bq = (o.batch + N - 1) / N; /* largest local share of the global batch */
    const int64_t mb = o.micro_batch > 0 && o.micro_batch < bq ? o.micro_batch : bq;
    const int64_t n_micro = (bq + mb - 1) / mb;
    f = s ? fsdp_create(s, c, (int)mb, T) : NULL;
    tok = malloc(sizeof(int32_t) * (size_t)(mb * T));
    tgt = malloc(sizeof(int32_t) * (size_t)(mb * T));
    snprintf(err, sizeof err, "rank %d: out of memory allocating the sharded model (%s)", rank,
             s ? "activations" : "parameter shards");
    if ((code = agree_error(c, (!s || !f || !tok || !tgt) ? EXIT_ERROR : 0, err)) != 0)
        goto out;

    /* 4. initial state */
    train_meta meta;
    meta_init(&meta, &o);
    if (have_src) {
        const int is_auto = o.resume && strcmp(o.resume, "auto") == 0 && !weights_only;
        for (;;) {
            int rc = ckptio_load(c, src, s, weights_only ? NULL : &meta, weights_only, err, sizeof err);
            if (rc == CKPTIO_OK)
                break;
            /* libckpt agrees on load errors and the config check ran on broadcast data: same branch everywhere.
             * With --resume auto a damaged latest checkpoint falls back to the next older committed one. */
            int64_t st = 0;
            if (is_auto && rc == CKPTIO_EIO) {
                int64_t below = 0;
                sscanf(strrchr(src, '/') ? strrchr(src, '/') + 1 : src, "step-%" SCNd64, &below);
                if (rank == 0)
                    fprintf(stderr, "shard-train: warning: %s; trying an older checkpoint\n", err);
                int found = below > 0 ? ckptio_latest_below(io, below, src, sizeof src, &st, err, sizeof err) : 0;
                if (found == 1) {
                    meta_init(&meta, &o);
                    continue;
                }
                if (found == 0)
                    snprintf(err, sizeof err, "no loadable checkpoint in '%s'", o.ckpt_dir);
            }
            if (rank == 0)
                fprintf(stderr, "shard-train: error: %s\n", err);
            code = EXIT_CKPT;
            goto out;
        }
    } else {
        shard_init_params(s, o.seed);
    }
    {
        /* debris of interrupted saves (a kill -9 in the middle of one) and incomplete step directories */
        int removed = 0;
        if (ckptio_clean(io, &removed, err, sizeof err) != CKPTIO_OK) {
            if (rank == 0)
                fprintf(stderr, "shard-train: warning: %s\n", err);
        } else if (removed > 0 && rank == 0) {
            printf("shard-train: removed %d incomplete checkpoint director%s (interrupted saves) from '%s'\n",
                   removed, removed > 1 ? "ies" : "y", o.ckpt_dir);
        }
    }
    meta.opt = o.opt;
    meta.world_size = N;
    meta.val_frac = o.val_frac;
    const int resumed = have_src && !weights_only;

    /* 5. metrics file and the header */
    if (rank == 0 && o.metrics_path) {
        metrics = fopen(o.metrics_path, resumed ? "a" : "w");
        snprintf(err, sizeof err, "cannot open metrics file '%s'", o.metrics_path);
    }
    if ((code = agree_error(c, (rank == 0 && o.metrics_path && !metrics) ? EXIT_ERROR : 0, err)) != 0)
        goto out;
    if (rank == 0) {
        char b1[32], b2[32];
        printf("shard-train: model L=%d H=%d C=%d T=%d V=%d (%lld parameters), %d rank%s, %d thread%s/rank\n",
               cfg->n_layer, cfg->n_head, cfg->n_embd, cfg->max_seq, cfg->vocab,
               (long long)gpt_num_elements(cfg), N, N > 1 ? "s" : "", o.threads, o.threads > 1 ? "s" : "");
        printf("shard-train: data '%s' (%d file%s): %s train, %s validation\n", dpath, d.nfiles,
               d.nfiles > 1 ? "s" : "", human_bytes((double)d.n_train, b1, sizeof b1),
               human_bytes((double)d.n_val, b2, sizeof b2));
        printf("shard-train: global batch %lld x %d tokens, %lld micro-batch%s of <= %lld sequences per rank\n",
               (long long)o.batch, T, (long long)n_micro, n_micro > 1 ? "es" : "", (long long)mb);
        if (have_src)
            printf("shard-train: %s '%s' (step %lld)\n", weights_only ? "weights from" : "resumed from", src,
                   (long long)meta.step);
    }
    {
        /* per-rank memory: sharded state, gathered-unit buffers, activations */
        double *mem = calloc((size_t)N * 4, sizeof(double));
        if (mem) {
            mem[rank * 4 + 0] = (double)s->local_numel;
            mem[rank * 4 + 1] = (double)shard_state_bytes(s);
            mem[rank * 4 + 2] = (double)fsdp_gathered_bytes(f);
            mem[rank * 4 + 3] = (double)fsdp_activation_bytes(f);
        }
        int bad = comm_agree_max(c, mem == NULL);
        if (!bad) {
            if (comm_all_reduce(c, mem, 4 * N, COMM_F64, COMM_SUM) != 0)
                comm_fatal(c, "set-up");
            if (rank == 0)
                for (int r = 0; r < N; r++) {
                    char b1[32], b2[32], b3[32];
                    printf("shard-train: memory rank %d: params+grads+adam m,v %s (%.0f of %lld elements), "
                           "gathered units %s, activations %s\n",
                           r, human_bytes(mem[r * 4 + 1], b1, sizeof b1), mem[r * 4 + 0],
                           (long long)gpt_num_elements(cfg), human_bytes(mem[r * 4 + 2], b2, sizeof b2),
                           human_bytes(mem[r * 4 + 3], b3, sizeof b3));
                }
        }
        free(mem);
    }
    if (rank == 0)
        fflush(stdout);

    /* 6. steps */
    code = EXIT_OK;
    const char *reason = "reached --steps";
    if (meta.step >= o.steps) {
        if (rank == 0)
            printf("shard-train: checkpoint is at step %lld >= --steps %lld: nothing to do\n", (long long)meta.step,
                   (long long)o.steps);
        goto out;
    }
    const double global_tokens = (double)o.batch * T;
    int64_t run_steps = 0, timed = 0, step_bytes = 0, n_ckpt = 0;
    /* wall time of the steps (evaluation and checkpoints included, the final checkpoint excluded: every
     * run writes one) and the part of it the main thread spent in checkpoint calls */
    const double t_loop = now_s();
    double t_train = 0.0, t_ckpt = 0.0, t_final = 0.0;
    int pending_timer = 0; /* the save in flight was due to the timer */
    double t_steps = 0.0, t_comm = 0.0, t_comp = 0.0, t_first = 0.0, c_first = 0.0, k_first = 0.0;
    int64_t first, count;
    data_split(o.batch, N, rank, &first, &count);
    comm_reset_stats(c);

    while (meta.step < o.steps) {
        const double t0 = now_s(), c0 = c->seconds, k0 = f->compute_s;
        double it_ckpt = 0.0; /* main-thread time in checkpoint calls during this iteration */
        const int64_t b0 = c->bytes;
        memset(s->grads, 0, sizeof(float) * (size_t)s->local_numel);
        double loss_sum = 0.0;
        int refused = 0;
        for (int64_t k = 0; k < n_micro; k++) {
            int64_t lo = k * mb, nb = count - lo < mb ? count - lo : mb;
            if (nb < 0)
                nb = 0;
            if (nb > 0)
                data_train_batch(&d, meta.data_seed, meta.data_counter, first + lo, nb, tok, tgt);
            int rc = fsdp_forward_backward(f, tok, tgt, (int)nb, global_tokens, &loss_sum);
            if (rc == -1)
                comm_fatal(c, "forward/backward");
            refused |= rc == -2;
        }
        /* SIGTERM / SIGUSR1 on any rank (libckpt's preemption flag, one all-reduce) */
        int preempt = 0;
        if (ckptio_preempt_requested(c, &preempt) != CKPTIO_OK)
            comm_fatal(c, "the preemption poll");
        /* loss (global mean) + refusal flag in one all-reduce */
        double red[2] = {loss_sum, refused ? 1.0 : 0.0};
        if (comm_all_reduce(c, red, 2, COMM_F64, COMM_SUM) != 0)
            comm_fatal(c, "loss reduction");
        const double loss = red[0] / global_tokens;
        double norm = 0.0;
        if (adamw_grad_norm(s, c, &norm) != 0)
            comm_fatal(c, "gradient norm");
        if (red[1] > 0) {
            if (rank == 0)
                fprintf(stderr, "shard-train: error: the model refused a batch at step %lld\n",
                        (long long)meta.step + 1);
            code = EXIT_ERROR;
            break;
        }
        if (!isfinite(loss) || !isfinite(norm)) {
            if (rank == 0)
                fprintf(stderr,
                        "shard-train: error: non-finite %s at step %lld (loss %g, grad norm %g): stopping without "
                        "saving; the last checkpoint in '%s' is the last good state (lower --lr?)\n",
                        !isfinite(loss) ? "loss" : "gradient norm", (long long)meta.step + 1, loss, norm,
                        o.ckpt_dir);
            code = EXIT_NONFINITE;
            break;
        }
        /* An asynchronous save writes straight from params, m and v (no copy): it must be complete
         * before the update changes them. Its write overlapped this step's forward/backward. */
        if (ckptio_in_flight(io)) {
            const double tw = now_s();
            ckptio_result r;
            int wrc = ckptio_wait(io, &r, err, sizeof err);
            it_ckpt += now_s() - tw;
            if (wrc != CKPTIO_OK) {
                if (rank == 0)
                    fprintf(stderr, "shard-train: error: %s\n", err);
                code = EXIT_ERROR;
                break;
            }
            n_ckpt++;
            print_commit(c, &r, pending_timer);
        }
        const double lr = adamw_lr(&o.opt, meta.step);
        adamw_update(s, &o.opt, meta.step + 1, lr, adamw_clip_scale(&o.opt, norm));
        meta.step++;
        meta.val_loss = NAN; /* this new state is not evaluated (yet): keep-best must not rank it */
        meta.data_counter += (uint64_t)o.batch;
        meta.tokens += o.batch * T;
        meta.lr = lr;
        run_steps++;
        const double dt = now_s() - t0, dcomm = c->seconds - c0, dcomp = f->compute_s - k0;
        step_bytes += c->bytes - b0;
        if (run_steps == 1) { /* the first step of a run warms caches up: timed apart */
            t_first = dt;
            c_first = dcomm;
            k_first = dcomp;
        } else {
            t_steps += dt;
            t_comm += dcomm;
            t_comp += dcomp;
            timed++;
        }
        const double tps = global_tokens / dt;
        if (rank == 0 && (o.log_every <= 1 || meta.step % o.log_every == 0 || meta.step == o.steps)) {
            printf("step %6lld/%lld | loss %.6f | lr %.3e | grad norm %.4f | %.1f ms/step | %.0f tok/s\n",
                   (long long)meta.step, (long long)o.steps, loss, lr, norm, dt * 1e3, tps);
            fflush(stdout);
        }

        /* evaluation, sample, early stopping */
        int early = 0, evaluated = 0;
        double val = NAN;
        if (o.eval_every > 0 && d.n_val > 0 && (meta.step % o.eval_every == 0 || meta.step == o.steps)) {
            if (evaluate(f, c, &d, o.eval_seqs, mb, tok, tgt, &val) != 0) {
                if (rank == 0)
                    fprintf(stderr, "shard-train: error: the model refused a validation batch\n");
                code = EXIT_ERROR;
                break;
            }
            evaluated = 1;
            if (!isfinite(val)) {
                if (rank == 0)
                    fprintf(stderr,
                            "shard-train: error: non-finite validation loss %g at step %lld: stopping without "
                            "saving\n",
                            val, (long long)meta.step);
                code = EXIT_NONFINITE;
                break;
            }
            meta.val_loss = val;
            if (val < meta.best_val_loss - o.min_delta) {
                meta.best_val_loss = val;
                meta.best_step = meta.step;
                meta.bad_evals = 0;
            } else {
                meta.bad_evals++;
            }
            early = o.patience > 0 && meta.bad_evals >= o.patience;
            if (rank == 0) {
                printf("eval  %6lld | val loss %.6f | best %.6f @ %lld | no improvement for %lld/%d\n",
                       (long long)meta.step, val, meta.best_val_loss, (long long)meta.best_step,
                       (long long)meta.bad_evals, o.patience);
                fflush(stdout);
            }
            sample_text(f, c, meta.data_seed, meta.step, o.sample_len, o.temperature);
        }
        /* checkpoint and stop decisions (every input is identical on every rank) */
        const int sig = preempt, finished = meta.step >= o.steps;
        const int run_done = o.run_steps > 0 && run_steps >= o.run_steps;
        const int terminal = finished || run_done || early || sig;
        const int periodic = o.ckpt_every > 0 && meta.step % o.ckpt_every == 0;
        const double tc = now_s();
        int due = 0, ck_failed = 0;
        if (!terminal && ckptio_should_save(io, meta.step, &due, err, sizeof err) != CKPTIO_OK)
            ck_failed = 1;
        /* the iteration's wall time: up to here for the last one (its final checkpoint is apart) */
        double it_end = terminal ? tc : 0.0;
        if (!ck_failed && (terminal || due)) {
            /* periodic: started here, written during the next step, committed before its update (async);
             * terminal (end, --run-steps, early stopping, signal): committed before going on */
            ckptio_result r;
            if (ckptio_save(io, s, &meta, terminal, &r, err, sizeof err) != CKPTIO_OK) {
                ck_failed = 1;
            } else {
                pending_timer = due && !periodic;
                if (r.committed) {
                    n_ckpt++;
                    print_commit(c, &r, pending_timer);
                }
            }
        }
        if (terminal) {
            t_final = now_s() - tc;
        } else {
            it_end = now_s();
            it_ckpt += it_end - tc;
        }
        t_ckpt += it_ckpt;
        t_train = it_end - t_loop;
        if (metrics) {
            /* iter_ms: the whole iteration (evaluation, sampling, checkpoint calls; a final checkpoint
             * not); ckpt_ms: the part of it inside checkpoint calls (save start, commit wait, policy) */
            fprintf(metrics,
                    "{\"step\":%lld,\"loss\":%.17g,\"lr\":%.17g,\"grad_norm\":%.17g,\"tokens_per_s\":%.6g,"
                    "\"ms_per_step\":%.6g,\"comm_ms\":%.6g,\"compute_ms\":%.6g,\"iter_ms\":%.6g,\"ckpt_ms\":%.6g",
                    (long long)meta.step, loss, lr, norm, tps, dt * 1e3, dcomm * 1e3, dcomp * 1e3, (it_end - t0) * 1e3,
                    it_ckpt * 1e3);
            if (evaluated)
                fprintf(metrics, ",\"val_loss\":%.17g", val);
            fprintf(metrics, "}\n");
            fflush(metrics);
        }
        if (ck_failed) {
            if (rank == 0)
                fprintf(stderr, "shard-train: error: %s\n", err);
            code = EXIT_ERROR;
            break;
        }
        if (finished)
            break;
        if (early) {
            reason = "early stopping";
            break;
        }
        if (run_done) {
            reason = "reached --run-steps";
            break;
        }
        if (sig) {
            reason = "signal: checkpoint saved, exiting for requeue (exit 75)";
            code = EXIT_REQUEUE;
            break;
        }
    }
    /* stopped before the update (NaN/Inf, a refused batch): an asynchronous save of an EARLIER, good step
     * may still be in flight -- let it commit; the bad state itself is never saved */
    if (ckptio_in_flight(io)) {
        ckptio_result r;
        if (ckptio_wait(io, &r, err, sizeof err) != CKPTIO_OK) {
            if (rank == 0)
                fprintf(stderr, "shard-train: error: %s\n", err);
            if (code == EXIT_OK)
                code = EXIT_ERROR;
        } else {
            n_ckpt++;
            print_commit(c, &r, pending_timer);
        }
    }
    if (timed == 0 && run_steps == 1) {
        t_steps = t_first;
        t_comm = c_first;
        t_comp = k_first;
        timed = 1;
    }
    const double mib_per_step = run_steps > 0 ? (double)step_bytes / run_steps / (1024.0 * 1024.0) : 0.0;
    if (rank == 0 && (code == EXIT_OK || code == EXIT_REQUEUE)) {
        printf("shard-train: done at step %lld (%s): %lld step%s in this run", (long long)meta.step, reason,
               (long long)run_steps, run_steps == 1 ? "" : "s");
        if (timed > 0)
            printf(", %.1f ms/step, %.0f tok/s; rank 0's step time: model compute %.1f%%, communication %.1f%%, "
                   "other %.1f%%",
                   t_steps / timed * 1e3, global_tokens * timed / t_steps, 100.0 * t_comp / t_steps,
                   100.0 * t_comm / t_steps, 100.0 * (t_steps - t_comp - t_comm) / t_steps);
        if (N > 1)
            printf("; %.1f MiB sent per rank per step", mib_per_step);
        printf("\n");
        printf("shard-train: wall %.3f s for %lld steps (evaluation and checkpoints included, the final "
               "checkpoint not); checkpoint stall %.3f s (%.2f%%), %lld checkpoint%s (%s), final %.0f ms\n",
               t_train, (long long)run_steps, t_ckpt, t_train > 0 ? 100.0 * t_ckpt / t_train : 0.0,
               (long long)n_ckpt, n_ckpt == 1 ? "" : "s", o.async ? "async" : "sync", t_final * 1e3);
        fflush(stdout);
    }
out:
    ckptio_close(io);
    if (metrics)
        fclose(metrics);
    free(tok);
    free(tgt);
    fsdp_free(f);
    shard_free(s);
    data_free(&d);
    return code;
}
