/* loop: the training loop of shard-train.
 *
 * Per optimizer step: zero the sharded grads; for each micro-batch, draw this rank's sequences of the
 * global batch and run the fully-sharded forward/backward (fsdp.h), gradients reduce-scattered into
 * the shards and accumulated; one all-reduce of the loss (normalised by the GLOBAL token count) and of
 * the refusal flag, and libckpt's preemption flag (one all-reduce of an int); the global grad norm;
 * non-finite loss or norm -> stop (EXIT_NONFINITE) without saving, so the last good checkpoint stays the
 * latest (an asynchronous save of an earlier step still in flight commits first); the asynchronous save
 * in flight, if any, is completed (ckptio_wait: commit + retention) -- it wrote straight from the shards
 * during this step's forward/backward and must be done before they change; clipping; sharded AdamW at
 * the scheduled learning rate. Then, as due: evaluation on the validation split with a short text sample
 * and early stopping (like Lightning's EarlyStopping, mode min: an evaluation improves when
 * val < best - min_delta; `patience` evaluations without improvement stop the run); checkpoint every N
 * steps or T seconds (the manager's save policy; asynchronous by default: started here, committed before
 * the next update), and, committed before exiting, at the end, on early stopping, after --run-steps, and
 * on SIGTERM / SIGUSR1 (save, then exit EXIT_REQUEUE = libckpt's CKPT_EXIT_REQUEUE, 75).
 *
 * Every decision is taken collectively, so every rank returns the same exit code. */
#ifndef TRAINER_LOOP_H
#define TRAINER_LOOP_H

#include <stdint.h>

#include "adamw.h"
#include "comm.h"
#include "gpt.h"

/* Exit codes of shard-train (documented in --help). */
enum {
    EXIT_OK = 0,          /* finished: --steps reached, early stopping, or --run-steps done */
    EXIT_ERROR = 1,       /* runtime failure: checkpoint I/O, MPI, allocation */
    EXIT_USAGE = 2,       /* bad command line */
    EXIT_DATA = 3,        /* data missing, unreadable, empty, or too short for the context */
    EXIT_CKPT = 4,        /* checkpoint to resume / init from is unreadable or of another model */
    EXIT_NONFINITE = 5,   /* NaN/Inf loss or gradient norm: stopped, nothing saved at that step */
    EXIT_REQUEUE = 75     /* SIGTERM or SIGUSR1: checkpoint committed, resume with --resume auto;
                             libckpt's CKPT_EXIT_REQUEUE (EX_TEMPFAIL), checked at compile time */
};

typedef struct train_options {
    const char *data_path;
    const char *ckpt_dir;
    gpt_config cfg;
    int model_explicit;    /* --model given: a checkpoint must match it; else a checkpoint's config wins */
    int64_t batch;         /* global sequences per optimizer step */
    int64_t micro_batch;   /* sequences per rank per forward/backward (0: the whole local share) */
    int64_t steps;         /* total optimizer steps (schedule length) */
    int64_t run_steps;     /* stop this invocation after this many steps (0: no limit) */
    adamw_config opt;
    double lr_min_ratio;   /* lr floor = lr * ratio (when --min-lr not given) */
    int warmup_explicit;
    uint64_t seed;
    double val_frac;
    int64_t eval_every;
    int64_t eval_seqs;
    int sample_len;
    double temperature;
    int64_t ckpt_every;
    double ckpt_secs;
    int keep_last, keep_best;
    int async;             /* 1 (default): asynchronous no-copy saves (ckpt_io.h); 0: --no-async */
    const char *resume;    /* NULL, "auto" or a checkpoint path */
    const char *init_from; /* NULL or a checkpoint path */
    int patience;          /* 0: early stopping off */
    double min_delta;
    const char *metrics_path;
    int threads;
    int64_t log_every;
} train_options;

void train_options_default(train_options *o);

/* Runs the whole job on this rank; returns the exit code, identical on every rank. */
int train_run(const train_options *o, comm *c);

/* Installs libckpt's SIGTERM / SIGUSR1 handlers (a flag the loop polls once per step). 0 or -1. */
int train_install_signals(void);

#endif /* TRAINER_LOOP_H */
