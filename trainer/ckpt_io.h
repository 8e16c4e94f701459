/* ckpt_io: the trainer's checkpoint contents, and its checkpoints over time through libckpt's public
 * API only: the checkpoint manager (ckpt_manager_*: step directories, latest, retention, save
 * policy, cleanup), asynchronous saves (ckpt_saver_*) and preemption (ckpt_preempt_*).
 *
 * Contents of a checkpoint (every tensor f32, Shard(0) over the saving ranks, global shapes; 1-D
 * tensors have shape (n), matrices (rows, cols)):
 *   model/<param>     parameters, <param> as in gpt_param_table: wte, wpe, h.<l>.ln1.w, ..., lnf.b
 *   optim/m/<param>   AdamW first moment
 *   optim/v/<param>   AdamW second moment
 * Attributes:
 *   trainer/format            string "shard-train/1"
 *   step                      int: optimizer steps completed (= AdamW step count t)
 *   config/n_layer, config/n_head, config/n_embd, config/max_seq, config/vocab   ints (L, H, C, T, V)
 *   data/seed, data/counter   ints: batch generator state (counter = sequences drawn so far; the
 *                             seed's 64 bits stored as int64)
 *   data/val_frac             double (info)
 *   train/best_val_loss       double, +inf before the first evaluation
 *   train/best_step           int, -1 before the first evaluation
 *   train/bad_evals           int: evaluations since the last improvement (early-stopping counter)
 *   train/val_loss            double: the validation loss of exactly this state (evaluated at this
 *                             step), NaN when the state was not evaluated -- the keep-best metric, so a
 *                             checkpoint never inherits an earlier state's loss
 *   train/tokens              int: training tokens processed so far (global)
 *   sched/lr                  double: learning rate of the last step taken
 *   sched/lr_max, sched/lr_min doubles, sched/warmup, sched/total_steps ints: the schedule that was in
 *                             use (info: a resumed run uses its own flags; its position is `step`)
 *   optim/beta1, optim/beta2, optim/eps, optim/weight_decay, optim/grad_clip   doubles (info)
 *   world_size                int: ranks that saved (info only; any world size loads)
 *   init_seed                 int: parameter-initialisation seed (info)
 *
 * Directory policy (libckpt's manager): the checkpoint of step s is DIR/step-%08lld (s) (8 digits,
 * more when needed); a save goes to DIR/step-N.tmp-* first and is renamed into place when committed.
 * The latest is the highest-step COMMITTED directory whose index opens (the manager skips the others
 * with a warning). Retention runs after each save commits (never before): keep the keep_last newest
 * committed (0: keep all) and the keep_best lowest train/val_loss (NaN / missing never counts), and
 * never the just-committed step nor the newest. ckptio_clean removes incomplete directories and the
 * temporary debris of interrupted saves (kill -9, node failure) at start-up.
 *
 * Asynchronous saves (options.async, the trainer's default): ckptio_save plans the save collectively
 * and returns; a background thread writes the shards STRAIGHT FROM the trainer's parameter and AdamW
 * buffers (libckpt's no_copy mode: no staging copy, no extra memory). That is safe because only the
 * optimizer update writes those buffers -- forward/backward, evaluation and sampling only read them
 * (the all-gathers copy them) -- so the trainer calls ckptio_wait (collective: the commit, then
 * retention) before its NEXT optimizer update, and the write overlaps that step's forward/backward.
 * The main thread stalls only for the planning (ckptio_save) and for whatever of the write is not
 * finished by the time the next update is due (ckptio_wait). Sync mode: ckptio_save writes, commits
 * and applies retention before it returns. */
#ifndef TRAINER_CKPT_IO_H
#define TRAINER_CKPT_IO_H

#include <stddef.h>
#include <stdint.h>

#include "adamw.h"
#include "comm.h"
#include "gpt.h"
#include "shard.h"

typedef struct train_meta {
    int64_t step;
    uint64_t data_seed, data_counter;
    double val_frac;
    double best_val_loss;
    int64_t best_step;
    int64_t bad_evals;
    double val_loss;
    int64_t tokens;
    double lr;
    adamw_config opt;
    int64_t world_size;
    uint64_t init_seed;
} train_meta;

/* Errors of this module: CKPTIO_ECONFIG (the checkpoint's model differs: the message names the
 * field) and CKPTIO_EIO (anything libckpt or the file system refused: the message is libckpt's). */
enum { CKPTIO_OK = 0, CKPTIO_EIO = -1, CKPTIO_ECONFIG = -2, CKPTIO_ENOTFOUND = -3 };

/* Exit status of a job that saved on preemption and wants to be run again: libckpt's
 * CKPT_EXIT_REQUEUE (75, EX_TEMPFAIL), so every libckpt user requeues the same way (checked at
 * compile time in ckpt_io.c). */
#define CKPTIO_EXIT_REQUEUE 75

typedef struct ckptio_options {
    int keep_last;       /* keep the keep_last newest committed checkpoints; 0: keep all */
    int keep_best;       /* also the keep_best lowest train/val_loss (needs keep_last > 0 to matter) */
    int64_t every_steps; /* ckptio_should_save: steps that are multiples of this; 0: off */
    double every_secs;   /* ckptio_should_save: this many seconds since the last commit; 0: off */
    int async;           /* 1: asynchronous no_copy saves (see above); 0: synchronous */
} ckptio_options;

/* What a save or wait completed (or started). */
typedef struct ckptio_result {
    int committed;      /* 1: a checkpoint committed in this call; 0: started (async) or nothing to do */
    int async;          /* it was written in the background */
    int64_t step;
    char path[4096];
    double stall_s;     /* time this call took on the calling thread */
    double total_s;     /* committed: from the start of the save to its commit */
    double start_stall_s; /* committed: the stall of the ckptio_save that started it */
    int removed;        /* committed: old checkpoints deleted by retention */
} ckptio_result;

typedef struct ckptio ckptio;

/* Opens the checkpoint manager of dir (created with its parents on rank 0 when missing) and, with
 * async, a saver. Collective. Warnings of the manager go to stderr as "shard-train: warning: ...". */
int ckptio_open(comm *c, const char *dir, const ckptio_options *o, ckptio **out, char *err, size_t errlen);
/* Frees everything (collective: the manager frees its communicator). A save still in flight is
 * abandoned uncommitted: call ckptio_wait first. NULL is a no-op. */
void ckptio_close(ckptio *io);

/* The path of step's checkpoint (local). */
void ckptio_step_path(const ckptio *io, int64_t step, char *buf, size_t len);

/* The latest committed checkpoint: 1 and path (and *step) when found, 0 when none, CKPTIO_EIO when the
 * root cannot be read (err). Collective. */
int ckptio_latest(ckptio *io, char *path, size_t path_len, int64_t *step, char *err, size_t errlen);
/* The same among the committed checkpoints with a step below `below` (the fallback when the latest
 * fails to load). Collective. */
int ckptio_latest_below(ckptio *io, int64_t below, char *path, size_t path_len, int64_t *step, char *err,
                        size_t errlen);

/* Removes incomplete step directories and debris of interrupted saves; *removed gets the count.
 * Only while no save is in flight. Collective. */
int ckptio_clean(ckptio *io, int *removed, char *err, size_t errlen);

/* The save policy (every_steps / every_secs, measured from the last commit): *save = 1 when step is
 * due. With every_secs, ckpt_manager_should_save (collective: rank 0's clock decides); without, the same
 * rule decided locally (identical on every rank, no collective). */
int ckptio_should_save(ckptio *io, int64_t step, int *save, char *err, size_t errlen);

/* Saves model + optimizer + meta as step meta->step (replacing a checkpoint of that step that exists).
 * Sync mode, or wait != 0: returns once committed and retention applied (res->committed = 1). Async
 * mode without wait: returns once the save is planned (res->committed = 0); the caller must not
 * modify s->params, s->m, s->v until ckptio_wait. A save in flight is completed first. Collective. */
int ckptio_save(ckptio *io, const shard_model *s, const train_meta *meta, int wait, ckptio_result *res, char *err,
                size_t errlen);

/* Completes the save in flight, if any: waits for the background write, commits (res->committed = 1),
 * records the step with the manager and applies retention (a retention failure is a warning, not an
 * error: the checkpoint is committed). CKPTIO_OK with res->committed = 0 when none was in flight.
 * CKPTIO_EIO when the save failed (not committed; the previous checkpoints are untouched). Collective. */
int ckptio_wait(ckptio *io, ckptio_result *res, char *err, size_t errlen);

/* 1 when an asynchronous save awaits ckptio_wait (the same on every rank). */
int ckptio_in_flight(const ckptio *io);

/* Preemption through libckpt: SIGTERM / SIGUSR1 only set a flag (ckpt_preempt_install), and
 * ckptio_preempt_requested (collective: one all-reduce) tells every rank whether any rank got one. */
int ckptio_preempt_install(void);
int ckptio_preempt_requested(comm *c, int *requested);

/* Reads the model configuration stored in the checkpoint at path (rank 0 reads, broadcasts).
 * Collective. CKPTIO_OK, CKPTIO_ENOTFOUND (not a readable checkpoint), CKPTIO_ECONFIG (no config). */
int ckptio_read_config(comm *c, const char *path, gpt_config *cfg, char *err, size_t errlen);

/* CKPTIO_OK when equal, else CKPTIO_ECONFIG with a message naming the first differing field. */
int ckptio_check_config(const char *path, const gpt_config *have_ckpt, const gpt_config *want, char *err,
                        size_t errlen);

/* Loads the checkpoint at path into the sharded storage at this world size (any sharding of the
 * saving run). weights_only: only the model/ tensors (optimizer state and meta untouched, except that meta may
 * be NULL); else model, optimizer and meta. Checks the stored config against s->cfg first. Collective. */
int ckptio_load(comm *c, const char *path, shard_model *s, train_meta *meta, int weights_only, char *err,
                size_t errlen);

#endif /* TRAINER_CKPT_IO_H */
