/* ckpt_io: trainer state <-> ckpt_state, and the step-directory policy (latest, retention). */
#include "ckpt_io.h"

#include <ckpt.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---------------------------------------------------------------- directory helpers */

/* step of a name "step-DDDDDDDD" (8 or more digits, nothing after), else -1; with tmp != NULL also
 * accepts "step-DDDDDDDD.<anything>" (leftovers of interrupted saves) and sets *tmp = 1 for those */
static int64_t parse_step_name(const char *name, int *tmp)
{
    if (strncmp(name, "step-", 5) != 0)
        return -1;
    const char *p = name + 5;
    int64_t v = 0;
    int nd = 0;
    while (*p >= '0' && *p <= '9' && nd < 18) {
        v = v * 10 + (*p - '0');
        p++;
        nd++;
    }
    if (nd < 8)
        return -1;
    if (*p == '\0') {
        if (tmp)
            *tmp = 0;
        return v;
    }
    if (tmp && *p == '.') {
        *tmp = 1;
        return v;
    }
    return -1;
}

typedef struct step_dir {
    int64_t step;
    int tmp;
    char name[64];
} step_dir;

static int cmp_step_desc(const void *a, const void *b)
{
    const step_dir *x = a, *y = b;
    return (x->step < y->step) - (x->step > y->step);
}

/* lists step directories (and, with with_tmp, temporary leftovers), newest first */
static int list_steps(const char *dir, int with_tmp, step_dir **out, int *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int tmp = 0;
        int64_t st = parse_step_name(e->d_name, with_tmp ? &tmp : NULL);
        size_t len = strlen(e->d_name);
        if (st < 0 || len >= sizeof((step_dir *)0)->name)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            step_dir *nd = realloc(*out, (size_t)cap * sizeof *nd);
            if (!nd)
                break;
            *out = nd;
        }
        (*out)[*n].step = st;
        (*out)[*n].tmp = tmp;
        memcpy((*out)[*n].name, e->d_name, len + 1);
        (*n)++;
    }
    closedir(d);
    if (*n > 1)
        qsort(*out, (size_t)*n, sizeof **out, cmp_step_desc);
    return 0;
}

static int remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return -1;
        struct dirent *e;
        int rc = 0;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            size_t len = strlen(path) + strlen(e->d_name) + 2;
            char *sub = malloc(len);
            if (!sub) {
                rc = -1;
                break;
            }
            snprintf(sub, len, "%s/%s", path, e->d_name);
            rc |= remove_tree(sub);
            free(sub);
        }
        closedir(d);
        return rmdir(path) == 0 ? rc : -1;
    }
    return unlink(path);
}

/* val loss stored in a committed checkpoint (NaN when unreadable or absent) */
static double stored_val_loss(const char *path)
{
    ckpt_reader *r;
    double v = NAN;
    if (ckpt_reader_open(path, &r) != CKPT_OK)
        return v;
    if (ckpt_state_get_double(ckpt_reader_attrs(r), "train/val_loss", &v) != CKPT_OK)
        v = NAN;
    ckpt_reader_close(r);
    return v;
}

/* rank 0: applies keep-last / keep-best after the checkpoint of step `now` committed */
static void retention(const char *dir, int64_t now, int keep_last, int keep_best)
{
    step_dir *sd;
    int n;
    if (list_steps(dir, 1, &sd, &n) != 0)
        return;
    char path[4096];
    /* committed candidates (step <= now), newest first */
    int *keep = calloc((size_t)(n ? n : 1), sizeof(int));
    double *vl = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!keep || !vl) {
        free(keep);
        free(vl);
        free(sd);
        return;
    }
    int seen = 0;
    for (int i = 0; i < n; i++) {
        vl[i] = NAN;
        if (sd[i].tmp || sd[i].step > now)
            continue;
        if (keep_last <= 0 || seen < keep_last)
            keep[i] = 1;
        seen++;
        if (keep_best > 0) {
            snprintf(path, sizeof path, "%s/%s", dir, sd[i].name);
            vl[i] = stored_val_loss(path);
        }
    }
    /* keep_best lowest finite val losses */
    for (int b = 0; b < keep_best; b++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!sd[i].tmp && sd[i].step <= now && keep[i] != 2 && isfinite(vl[i]) && (best < 0 || vl[i] < vl[best]))
                best = i;
        if (best < 0)
            break;
        keep[best] = 2;
    }
    for (int i = 0; i < n; i++) {
        if (keep[i] || sd[i].step > now || (!sd[i].tmp && sd[i].step == now))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, sd[i].name);
        if (remove_tree(path) != 0)
            fprintf(stderr, "shard-train: warning: could not remove old checkpoint '%s': %s\n", path,
                    strerror(errno));
    }
    free(keep);
    free(vl);
    free(sd);
}

/* ---------------------------------------------------------------- public */

int ckptio_save(comm *c, const char *dir, const shard_model *s, const train_meta *meta, int keep_last,
                int keep_best, char *path_out, size_t path_len, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/step-%08lld", dir, (long long)meta->step);
    if (path_out)
        snprintf(path_out, path_len, "%s", path);
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
    /* local failures above (allocation) must not leave other ranks inside ckpt_save */
    if (comm_agree_max(c, rc != CKPT_OK) != 0) {
        snprintf(err, errlen, "building the checkpoint state failed: %s", rc != CKPT_OK ? ckpt_errmsg() : "on another rank");
        ckpt_state_free(st);
        return CKPTIO_EIO;
    }
    ckpt_save_options opt;
    ckpt_save_options_init(&opt);
    opt.overwrite = 1;
    rc = ckpt_save(mpi_of(c), path, st, &opt);
    ckpt_state_free(st);
    if (rc != CKPT_OK) {
        snprintf(err, errlen, "saving checkpoint '%s' failed (%s): %s", path, ckpt_status_name(rc), ckpt_errmsg());
        return CKPTIO_EIO;
    }
    if (s->rank == 0)
        retention(dir, meta->step, keep_last, keep_best);
    comm_barrier(c);
    return CKPTIO_OK;
}

static int mkdir_p(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

int ckptio_prepare_dir(comm *c, const char *dir, char *err, size_t errlen)
{
    struct {
        int32_t rc;
        char msg[1024];
    } m;
    memset(&m, 0, sizeof m);
    if (c->rank == 0 && mkdir_p(dir) != 0) {
        m.rc = CKPTIO_EIO;
        snprintf(m.msg, sizeof m.msg, "cannot create checkpoint directory '%s': %s", dir, strerror(errno));
    }
    if (comm_broadcast(c, &m, sizeof m, 0) != 0) {
        snprintf(err, errlen, "%s", comm_errmsg(c));
        return CKPTIO_EIO;
    }
    if (m.rc)
        snprintf(err, errlen, "%s", m.msg);
    return m.rc;
}

int ckptio_find_latest(comm *c, const char *dir, char *path, size_t path_len, int64_t *step)
{
    return ckptio_find_latest_below(c, dir, INT64_MAX, path, path_len, step);
}

int ckptio_find_latest_below(comm *c, const char *dir, int64_t below, char *path, size_t path_len, int64_t *step)
{
    struct {
        int64_t found, step;
        char path[4096];
    } msg;
    memset(&msg, 0, sizeof msg);
    if (c->rank == 0) {
        step_dir *sd;
        int n;
        if (list_steps(dir, 0, &sd, &n) == 0) {
            for (int i = 0; i < n && !msg.found; i++) {
                if (sd[i].step >= below)
                    continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", dir, sd[i].name);
                ckpt_reader *r;
                int rc = ckpt_reader_open(p, &r);
                if (rc == CKPT_OK) {
                    ckpt_reader_close(r);
                    msg.found = 1;
                    msg.step = sd[i].step;
                    snprintf(msg.path, sizeof msg.path, "%s", p);
                } else {
                    fprintf(stderr, "shard-train: warning: skipping checkpoint '%s' (%s): %s\n", p,
                            ckpt_status_name(rc), ckpt_errmsg());
                }
            }
            free(sd);
        }
    }
    comm_broadcast(c, &msg, sizeof msg, 0);
    if (msg.found) {
        snprintf(path, path_len, "%s", msg.path);
        if (step)
            *step = msg.step;
    }
    return (int)msg.found;
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
