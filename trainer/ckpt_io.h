/* ckpt_io: the trainer's checkpoint contents (built on libckpt's public API only) and a minimal
 * checkpoint-directory policy. The policy part (ckptio_save's naming and retention, ckptio_find_latest)
 * is the small interface that a later switch to libckpt's own checkpoint manager replaces.
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
 *   train/val_loss            double: the last evaluation's loss, NaN when none yet (keep-best uses it)
 *   train/tokens              int: training tokens processed so far (global)
 *   sched/lr                  double: learning rate of the last step taken
 *   sched/lr_max, sched/lr_min doubles, sched/warmup, sched/total_steps ints: the schedule that was in
 *                             use (info: a resumed run uses its own flags; its position is `step`)
 *   optim/beta1, optim/beta2, optim/eps, optim/weight_decay, optim/grad_clip   doubles (info)
 *   world_size                int: ranks that saved (info only; any world size loads)
 *   init_seed                 int: parameter-initialisation seed (info)
 *
 * Directory policy: checkpoint of step s at DIR/step-%08d (s); the latest is the highest-step such
 * directory that ckpt_reader_open accepts (incomplete or unreadable ones are skipped with a warning);
 * retention after each committed save (rank 0 deletes, the others wait at a barrier): keep the newest
 * keep_last (0: all) and the keep_best with the lowest train/val_loss, delete other step directories
 * older than the one just committed, and leftover temporary directories of interrupted saves. */
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

/* Saves model + optimizer + meta to DIR/step-%08d(meta->step) (replacing one that exists), then
 * applies retention. Collective. path_out (may be NULL) receives the checkpoint path. */
int ckptio_save(comm *c, const char *dir, const shard_model *s, const train_meta *meta, int keep_last,
                int keep_best, char *path_out, size_t path_len, char *err, size_t errlen);

/* Creates dir (and missing parents) on rank 0; every rank gets the same outcome. Collective. */
int ckptio_prepare_dir(comm *c, const char *dir, char *err, size_t errlen);

/* Finds the latest committed checkpoint in dir (rank 0 scans, broadcasts). Returns 1 and fills path
 * (and *step) when found, 0 when none (also when dir does not exist). Collective. */
int ckptio_find_latest(comm *c, const char *dir, char *path, size_t path_len, int64_t *step);
/* The same among the checkpoints with a step below `below` (the fallback when the latest fails to load). */
int ckptio_find_latest_below(comm *c, const char *dir, int64_t below, char *path, size_t path_len, int64_t *step);

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
