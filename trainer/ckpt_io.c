/* ckpt_io: trainer state <-> ckpt_state; checkpoints over time through libckpt's manager, asynchronous
 * saver and preemption flag. */
#include "ckpt_io.h"

#include <ckpt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FORMAT_TAG "shard-train/1"

static MPI_Comm mpi_of(const comm *c)
{
    return *(const MPI_Comm *)comm_mpi_handle(c);
}

/* ---------------------------------------------------------------- state building */

/* Declares prefix<param> for every parameter, this rank's Shard(0) box pointing into buf. */
static int add_group(ckpt_state *st, const shard_model *s, const char *prefix, float *buf)
{
    for (int i = 0; i < s->n_tensors; i++) {
        const gpt_param_info *p = &s->table[i];
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        int rc = ckpt_state_add_shard(st, name, CKPT_F32, p->ndim, p->shape, 0, s->rank, s->nranks,
                                      shard_local(s, buf, i));
        if (rc != CKPT_OK)
            return rc;
    }
    return CKPT_OK;
}

static int set_meta(ckpt_state *st, const shard_model *s, const train_meta *m)
{
    const gpt_config *g = &s->cfg;
    int rc = CKPT_OK;
#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        if (rc == CKPT_OK)                                                                                             \
            rc = (x);                                                                                                  \
    } while (0)
    TRY(ckpt_state_set_string(st, "trainer/format", FORMAT_TAG));
    TRY(ckpt_state_set_int(st, "step", m->step));
    TRY(ckpt_state_set_int(st, "config/n_layer", g->n_layer));
    TRY(ckpt_state_set_int(st, "config/n_head", g->n_head));
    TRY(ckpt_state_set_int(st, "config/n_embd", g->n_embd));
    TRY(ckpt_state_set_int(st, "config/max_seq", g->max_seq));
    TRY(ckpt_state_set_int(st, "config/vocab", g->vocab));
    TRY(ckpt_state_set_int(st, "data/seed", (int64_t)m->data_seed));
    TRY(ckpt_state_set_int(st, "data/counter", (int64_t)m->data_counter));
    TRY(ckpt_state_set_double(st, "data/val_frac", m->val_frac));
    TRY(ckpt_state_set_double(st, "train/best_val_loss", m->best_val_loss));
    TRY(ckpt_state_set_int(st, "train/best_step", m->best_step));
    TRY(ckpt_state_set_int(st, "train/bad_evals", m->bad_evals));
    TRY(ckpt_state_set_double(st, "train/val_loss", m->val_loss));
    TRY(ckpt_state_set_int(st, "train/tokens", m->tokens));
    TRY(ckpt_state_set_double(st, "sched/lr", m->lr));
    TRY(ckpt_state_set_double(st, "sched/lr_max", m->opt.lr_max));
    TRY(ckpt_state_set_double(st, "sched/lr_min", m->opt.lr_min));
    TRY(ckpt_state_set_int(st, "sched/warmup", m->opt.warmup_steps));
    TRY(ckpt_state_set_int(st, "sched/total_steps", m->opt.total_steps));
    TRY(ckpt_state_set_double(st, "optim/beta1", m->opt.beta1));
    TRY(ckpt_state_set_double(st, "optim/beta2", m->opt.beta2));
    TRY(ckpt_state_set_double(st, "optim/eps", m->opt.eps));
    TRY(ckpt_state_set_double(st, "optim/weight_decay", m->opt.weight_decay));
    TRY(ckpt_state_set_double(st, "optim/grad_clip", m->opt.grad_clip));
    TRY(ckpt_state_set_int(st, "world_size", s->nranks));
    TRY(ckpt_state_set_int(st, "init_seed", (int64_t)m->init_seed));
#undef TRY
    return rc;
}

/* reads the attributes a resumed run needs; missing info-only ones keep their current value */
static int get_meta(const ckpt_state *st, train_meta *m, char *err, size_t errlen)
{
    int64_t v;
    double d;
    static const char *const need[] = {"step", "data/seed", "data/counter"};
    int64_t *dst[3];
    int64_t step, seed, counter;
    dst[0] = &step;
    dst[1] = &seed;
    dst[2] = &counter;
    for (int i = 0; i < 3; i++)
        if (ckpt_state_get_int(st, need[i], dst[i]) != CKPT_OK) {
            snprintf(err, errlen, "checkpoint has no integer attribute '%s'", need[i]);
            return CKPTIO_ECONFIG;
        }
    m->step = step;
    m->data_seed = (uint64_t)seed;
    m->data_counter = (uint64_t)counter;
    if (ckpt_state_get_double(st, "train/best_val_loss", &d) == CKPT_OK)
        m->best_val_loss = d;
    if (ckpt_state_get_int(st, "train/best_step", &v) == CKPT_OK)
        m->best_step = v;
    if (ckpt_state_get_int(st, "train/bad_evals", &v) == CKPT_OK)
        m->bad_evals = v;
    if (ckpt_state_get_double(st, "train/val_loss", &d) == CKPT_OK)
        m->val_loss = d;
    if (ckpt_state_get_int(st, "train/tokens", &v) == CKPT_OK)
        m->tokens = v;
    if (ckpt_state_get_double(st, "sched/lr", &d) == CKPT_OK)
        m->lr = d;
    if (ckpt_state_get_int(st, "world_size", &v) == CKPT_OK)
        m->world_size = v;
    if (ckpt_state_get_int(st, "init_seed", &v) == CKPT_OK)
        m->init_seed = (uint64_t)v;
    if (ckpt_state_get_double(st, "data/val_frac", &d) == CKPT_OK)
        m->val_frac = d;
    return CKPTIO_OK;
}

/* ---------------------------------------------------------------- the manager, saves, preemption */

_Static_assert(CKPTIO_EXIT_REQUEUE == CKPT_EXIT_REQUEUE, "the trainer requeues with libckpt's exit status");

#define VAL_LOSS_KEY "train/val_loss"

struct ckptio {
    comm *c;
    ckptio_options o;
    ckpt_manager *m;
    ckpt_saver *sv;      /* async mode */
    /* the save in flight (async): its state (boxes point into the trainer's shards), step, path */
    ckpt_state *st;
    int in_flight;
    int64_t step;
    char path[4096];
    double t_start, start_stall;
    int64_t last_saved; /* step last committed (-1: none yet), as the manager records it */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void warn_cb(const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "shard-train: warning: %s\n", msg);
}

static int lib_error(char *err, size_t errlen, const char *what, int rc)
{
    snprintf(err, errlen, "%s (%s): %s", what, ckpt_status_name(rc), ckpt_errmsg());
    return CKPTIO_EIO;
}

int ckptio_open(comm *c, const char *dir, const ckptio_options *o, ckptio **out, char *err, size_t errlen)
{
    *out = NULL;
    ckptio *io = calloc(1, sizeof *io);
    /* a local allocation failure must not leave the other ranks inside ckpt_manager_open */
    if (comm_agree_max(c, io == NULL) != 0) {
        snprintf(err, errlen, "out of memory opening the checkpoint directory '%s'", dir);
        free(io);
        return CKPTIO_EIO;
    }
    io->c = c;
    io->o = *o;
    io->last_saved = -1;
    ckpt_manager_options mo;
    ckpt_manager_options_init(&mo);
    mo.keep_last = o->keep_last;
    mo.keep_best = o->keep_best;
    mo.best_metric = VAL_LOSS_KEY;
    mo.best_mode = CKPT_BEST_MIN;
    mo.save_every_steps = o->every_steps;
    mo.save_every_secs = o->every_secs;
    mo.warn = warn_cb;
    int rc = ckpt_manager_open(mpi_of(c), dir, &mo, &io->m);
    if (rc != CKPT_OK) {
        snprintf(err, errlen, "cannot open checkpoint directory '%s' (%s): %s", dir, ckpt_status_name(rc),
                 ckpt_errmsg());
        free(io);
        return CKPTIO_EIO;
    }
    if (o->async) {
        ckpt_saver_options so;
        ckpt_saver_options_init(&so);
        so.no_copy = 1; /* safe: the trainer waits before its next optimizer update (see ckpt_io.h) */
        rc = ckpt_saver_create(mpi_of(c), &so, &io->sv);
        if (comm_agree_max(c, rc != CKPT_OK) != 0) {
            snprintf(err, errlen, "cannot create the asynchronous saver: %s",
                     rc != CKPT_OK ? ckpt_errmsg() : "it failed on another rank");
            ckpt_saver_free(io->sv);
            ckpt_manager_close(io->m);
            free(io);
            return CKPTIO_EIO;
        }
    }
    *out = io;
    return CKPTIO_OK;
}

void ckptio_close(ckptio *io)
{
    if (!io)
        return;
    ckpt_saver_free(io->sv); /* an uncommitted save in flight is finished writing and abandoned */
    ckpt_state_free(io->st);
    ckpt_manager_close(io->m);
    free(io);
}

void ckptio_step_path(const ckptio *io, int64_t step, char *buf, size_t len)
{
    if (ckpt_manager_step_path(io->m, step, buf, len) != CKPT_OK && len > 0)
        buf[0] = '\0';
}

int ckptio_latest(ckptio *io, char *path, size_t path_len, int64_t *step, char *err, size_t errlen)
{
    int64_t st = -1;
    int rc = ckpt_manager_latest(io->m, &st, path, path_len);
    if (rc == CKPT_ENOTFOUND)
        return 0;
    if (rc != CKPT_OK)
        return lib_error(err, errlen, "cannot look for the latest checkpoint", rc);
    if (step)
        *step = st;
    return 1;
}

int ckptio_latest_below(ckptio *io, int64_t below, char *path, size_t path_len, int64_t *step, char *err,
                        size_t errlen)
{
    /* rank 0 lists the root (libckpt classifies every entry), everyone gets its verdict */
    int64_t msg[2] = {-1, CKPT_OK};
    char why[1024] = "";
    if (io->c->rank == 0) {
        ckpt_manager_entry *e = NULL;
        int n = 0;
        int rc = ckpt_manager_list(io->m, &e, &n);
        if (rc != CKPT_OK) {
            msg[1] = rc;
            snprintf(why, sizeof why, "%s", ckpt_errmsg());
        }
        for (int i = n - 1; i >= 0 && msg[0] < 0; i--) { /* sorted by step */
            if (e[i].step >= below || e[i].state == CKPT_ENTRY_TEMPORARY)
                continue;
            if (e[i].state == CKPT_ENTRY_COMMITTED)
                msg[0] = e[i].step;
            else
                fprintf(stderr, "shard-train: warning: skipping step %lld ('%s', not committed: %s)\n",
                        (long long)e[i].step, e[i].name, ckpt_status_name(e[i].status));
        }
        free(e);
    }
    if (comm_broadcast(io->c, msg, sizeof msg, 0) != 0 || comm_broadcast(io->c, why, sizeof why, 0) != 0) {
        snprintf(err, errlen, "%s", comm_errmsg(io->c));
        return CKPTIO_EIO;
    }
    if (msg[1] != CKPT_OK) {
        snprintf(err, errlen, "cannot list the checkpoints (%s): %s", ckpt_status_name((int)msg[1]), why);
        return CKPTIO_EIO;
    }
    if (msg[0] < 0)
        return 0;
    ckptio_step_path(io, msg[0], path, path_len);
    if (step)
        *step = msg[0];
    return 1;
}

int ckptio_clean(ckptio *io, int *removed, char *err, size_t errlen)
{
    int rc = ckpt_manager_clean_incomplete(io->m, removed);
    return rc == CKPT_OK ? CKPTIO_OK : lib_error(err, errlen, "cannot remove incomplete checkpoints", rc);
}

int ckptio_should_save(ckptio *io, int64_t step, int *save, char *err, size_t errlen)
{
    *save = 0;
    if (io->o.every_secs <= 0) {
        /* no timer: the manager's rule (a multiple of every_steps, not the step last saved) needs no
         * clock, so every rank decides alone, identically -- no collective in every step */
        *save = io->o.every_steps > 0 && step % io->o.every_steps == 0 && step != io->last_saved;
        return CKPTIO_OK;
    }
    int rc = ckpt_manager_should_save(io->m, step, save); /* rank 0's clock decides for all */
    return rc == CKPT_OK ? CKPTIO_OK : lib_error(err, errlen, "checkpoint save policy", rc);
}

int ckptio_in_flight(const ckptio *io)
{
    return io->in_flight;
}

/* After a commit: the manager records the step (timer, protection) and applies retention. */
static void committed(ckptio *io, int64_t step, ckptio_result *res)
{
    ckpt_manager_mark_saved(io->m, step);
    io->last_saved = step;
    int removed = 0;
    int rc = ckpt_manager_apply_retention(io->m, &removed);
    if (rc != CKPT_OK && io->c->rank == 0) /* same status on every rank: warn once */
        fprintf(stderr, "shard-train: warning: step %lld is committed, but retention failed (%s): %s\n",
                (long long)step, ckpt_status_name(rc), ckpt_errmsg());
    res->committed = 1;
    res->removed = removed;
}

int ckptio_wait(ckptio *io, ckptio_result *res, char *err, size_t errlen)
{
    const double t0 = now_s();
    memset(res, 0, sizeof *res);
    if (!io->in_flight)
        return CKPTIO_OK;
    int rc = ckpt_saver_wait(io->sv);
    io->in_flight = 0;
    ckpt_state_free(io->st);
    io->st = NULL;
    res->async = 1;
    res->step = io->step;
    snprintf(res->path, sizeof res->path, "%s", io->path);
    if (rc != CKPT_OK) {
        snprintf(err, errlen, "asynchronous save of checkpoint '%s' failed (%s): %s", io->path, ckpt_status_name(rc),
                 ckpt_errmsg());
        res->stall_s = now_s() - t0;
        return CKPTIO_EIO;
    }
    committed(io, io->step, res);
    const double t1 = now_s();
    res->stall_s = t1 - t0;
    res->total_s = t1 - io->t_start;
    res->start_stall_s = io->start_stall;
    return CKPTIO_OK;
}

int ckptio_save(ckptio *io, const shard_model *s, const train_meta *meta, int wait, ckptio_result *res, char *err,
                size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (io->in_flight) { /* one at a time (the trainer waits before each update anyway) */
        ckptio_result prev;
        int wrc = ckptio_wait(io, &prev, err, errlen);
        if (wrc != CKPTIO_OK)
            return wrc;
    }
    const double t0 = now_s();
    char path[4096];
    ckptio_step_path(io, meta->step, path, sizeof path);
    ckpt_state *st = NULL;
    int rc = ckpt_state_create(&st);
    if (rc == CKPT_OK)
        rc = add_group(st, s, "model/", s->params);
    if (rc == CKPT_OK)
        rc = add_group(st, s, "optim/m/", s->m);
    if (rc == CKPT_OK)
        rc = add_group(st, s, "optim/v/", s->v);
    if (rc == CKPT_OK)
        rc = set_meta(st, s, meta);
    /* local failures above (allocation) must not leave other ranks inside the save */
    if (comm_agree_max(io->c, rc != CKPT_OK) != 0) {
        snprintf(err, errlen, "building the checkpoint state failed: %s",
                 rc != CKPT_OK ? ckpt_errmsg() : "on another rank");
        ckpt_state_free(st);
        return CKPTIO_EIO;
    }
    ckpt_save_options opt;
    ckpt_save_options_init(&opt);
    opt.overwrite = 1; /* a fresh run replaces same-numbered steps; so does a resumed one after a crash */
    res->step = meta->step;
    snprintf(res->path, sizeof res->path, "%s", path);
    if (!io->sv) { /* synchronous */
        rc = ckpt_save(mpi_of(io->c), path, st, &opt);
        ckpt_state_free(st);
        if (rc != CKPT_OK) {
            snprintf(err, errlen, "saving checkpoint '%s' failed (%s): %s", path, ckpt_status_name(rc), ckpt_errmsg());
            return CKPTIO_EIO;
        }
        committed(io, meta->step, res);
        res->stall_s = res->total_s = res->start_stall_s = now_s() - t0;
        return CKPTIO_OK;
    }
    rc = ckpt_saver_save(io->sv, path, st, &opt);
    if (rc != CKPT_OK) {
        ckpt_state_free(st);
        snprintf(err, errlen, "starting the asynchronous save of checkpoint '%s' failed (%s): %s", path,
                 ckpt_status_name(rc), ckpt_errmsg());
        return CKPTIO_EIO;
    }
    io->st = st;
    io->in_flight = 1;
    io->step = meta->step;
    snprintf(io->path, sizeof io->path, "%s", path);
    io->t_start = t0;
    io->start_stall = now_s() - t0;
    res->async = 1;
    res->stall_s = io->start_stall;
    if (!wait)
        return CKPTIO_OK;
    return ckptio_wait(io, res, err, errlen); /* its stall_s: the wait alone; start_stall_s: the start */
}

int ckptio_preempt_install(void)
{
    return ckpt_preempt_install() == CKPT_OK ? CKPTIO_OK : CKPTIO_EIO;
}

int ckptio_preempt_requested(comm *c, int *requested)
{
    *requested = 0;
    return ckpt_preempt_requested(mpi_of(c), requested) == CKPT_OK ? CKPTIO_OK : CKPTIO_EIO;
}

int ckptio_read_config(comm *c, const char *path, gpt_config *cfg, char *err, size_t errlen)
{
    struct {
        int32_t rc;
        gpt_config cfg;
        char msg[1024];
    } m;
    memset(&m, 0, sizeof m);
    if (c->rank == 0) {
        ckpt_reader *r;
        int rc = ckpt_reader_open(path, &r);
        if (rc != CKPT_OK) {
            m.rc = CKPTIO_ENOTFOUND;
            snprintf(m.msg, sizeof m.msg, "cannot open checkpoint '%s' (%s): %s", path, ckpt_status_name(rc),
                     ckpt_errmsg());
        } else {
            const ckpt_state *a = ckpt_reader_attrs(r);
            static const char *const keys[5] = {"config/n_layer", "config/n_head", "config/n_embd",
                                                "config/max_seq", "config/vocab"};
            int *dst[5] = {&m.cfg.n_layer, &m.cfg.n_head, &m.cfg.n_embd, &m.cfg.max_seq, &m.cfg.vocab};
            for (int i = 0; i < 5 && m.rc == 0; i++) {
                int64_t v;
                if (ckpt_state_get_int(a, keys[i], &v) != CKPT_OK) {
                    m.rc = CKPTIO_ECONFIG;
                    snprintf(m.msg, sizeof m.msg,
                             "checkpoint '%s' is not a shard-train checkpoint: it has no integer attribute '%s'",
                             path, keys[i]);
                } else {
                    *dst[i] = (int)v;
                }
            }
            ckpt_reader_close(r);
        }
    }
    if (comm_broadcast(c, &m, sizeof m, 0) != 0) {
        snprintf(err, errlen, "%s", comm_errmsg(c));
        return CKPTIO_EIO;
    }
    if (m.rc != 0) {
        snprintf(err, errlen, "%s", m.msg);
        return m.rc;
    }
    *cfg = m.cfg;
    return CKPTIO_OK;
}

int ckptio_check_config(const char *path, const gpt_config *have, const gpt_config *want, char *err, size_t errlen)
{
    static const char *const names[5] = {"n_layer (L)", "n_head (H)", "n_embd (C)", "max_seq (T)", "vocab (V)"};
    static const char *const keys[5] = {"config/n_layer", "config/n_head", "config/n_embd", "config/max_seq",
                                        "config/vocab"};
    const int h[5] = {have->n_layer, have->n_head, have->n_embd, have->max_seq, have->vocab};
    const int w[5] = {want->n_layer, want->n_head, want->n_embd, want->max_seq, want->vocab};
    for (int i = 0; i < 5; i++)
        if (h[i] != w[i]) {
            snprintf(err, errlen,
                     "model configuration mismatch: checkpoint '%s' has %s = %d (attribute %s), this run's model "
                     "has %s = %d",
                     path, names[i], h[i], keys[i], names[i], w[i]);
            return CKPTIO_ECONFIG;
        }
    return CKPTIO_OK;
}

int ckptio_load(comm *c, const char *path, shard_model *s, train_meta *meta, int weights_only, char *err,
                size_t errlen)
{
    gpt_config have;
    int rc = ckptio_read_config(c, path, &have, err, errlen);
    if (rc != CKPTIO_OK)
        return rc;
    if ((rc = ckptio_check_config(path, &have, &s->cfg, err, errlen)) != CKPTIO_OK)
        return rc;
    ckpt_state *st = NULL;
    rc = ckpt_state_create(&st);
    if (rc == CKPT_OK)
        rc = add_group(st, s, "model/", s->params);
    if (rc == CKPT_OK && !weights_only)
        rc = add_group(st, s, "optim/m/", s->m);
    if (rc == CKPT_OK && !weights_only)
        rc = add_group(st, s, "optim/v/", s->v);
    if (comm_agree_max(c, rc != CKPT_OK) != 0) {
        snprintf(err, errlen, "building the load state failed: %s", rc != CKPT_OK ? ckpt_errmsg() : "on another rank");
        ckpt_state_free(st);
        return CKPTIO_EIO;
    }
    rc = ckpt_load(mpi_of(c), path, st, NULL);
    if (rc != CKPT_OK) {
        snprintf(err, errlen, "loading checkpoint '%s' failed (%s): %s", path, ckpt_status_name(rc), ckpt_errmsg());
        ckpt_state_free(st);
        return CKPTIO_EIO;
    }
    int mrc = CKPTIO_OK;
    if (!weights_only && meta)
        mrc = get_meta(st, meta, err, errlen);
    ckpt_state_free(st);
    return mrc;
}
