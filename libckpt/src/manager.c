/* manager.c -- the checkpoint manager: step directories under one root, the newest committed
 * one, retention, cleanup of incomplete saves, and the save policy. Rank 0 reads and changes
 * the root; the other ranks learn the outcome (status, message, result) from it. */
#include "manager.h"
#include "comm.h"
#include "commit.h"
#include "error.h"
#include "name.h"
#include "rootlock.h"
#include "sysio.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MGR_PATH_MAX 4096
/* Room a root path must leave for "/<directory name>" (names are at most 255 bytes). */
#define MGR_NAME_ROOM 300

struct ckpt_manager {
    ckpt_comm c;
    char *root;             /* without trailing '/' */
    char *metric;           /* copy of best_metric, or NULL */
    ckpt_manager_options o; /* o.best_metric == metric */
    int64_t last_step;      /* step last saved (ckpt_manager_mark_saved), -1 before any */
    double last_time;       /* monotonic seconds of that save, or of the open */
    ckpt_root_lock lock;    /* rank 0: held from open to close */
};

/* A growable list of directory entries. */
typedef struct entry_list {
    ckpt_manager_entry *e;
    int n, cap;
} entry_list;

static double now_secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void warn(const ckpt_manager *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(const ckpt_manager *m, const char *fmt, ...)
{
    char msg[CKPT_ERRMSG_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m->o.warn)
        m->o.warn(msg, m->o.warn_user);
    else
        fprintf(stderr, "libckpt: warning: %s\n", msg);
}

/* Rank 0's values to every rank (all ranks call it). */
static int bcast_i64(const ckpt_manager *m, int64_t *v, int n)
{
    if (!m->c.active)
        return CKPT_OK;
    int rc = MPI_Bcast(v, n, MPI_INT64_T, 0, m->c.comm);
    if (rc != MPI_SUCCESS) {
        char s[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, s, &len);
        return ckpt_error(CKPT_EMPI, "checkpoint manager of '%s': MPI_Bcast failed: %.*s", m->root, len, s);
    }
    return CKPT_OK;
}

/* ------------------------------------------------------------------------- */
/* Names and retention (no file system)                                       */
/* ------------------------------------------------------------------------- */

int ckpt_manager_parse_name(const char *name, int64_t *step, int *temporary)
{
    if (!name || strncmp(name, "step-", 5) != 0)
        return 0;
    const char *p = name + 5, *q = p;
    int64_t v = 0;
    while (*q >= '0' && *q <= '9') {
        int d = *q - '0';
        if (v > (INT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
        q++;
    }
    size_t nd = (size_t)(q - p);
    /* canonical "%08lld": exactly 8 digits, or more without a leading zero */
    if (nd < 8 || (nd > 8 && *p == '0'))
        return 0;
    int tmp;
    char base[256], fresh[256];
    if (*q == '\0')
        tmp = 0;
    else if (strncmp(q, ".tmp-", 5) == 0)
        tmp = ckpt_commit_displaced(name, base, sizeof base, fresh, sizeof fresh) &&
                      (size_t)(q - name) == strlen(base) ? 2 : 1;
    else
        return 0;
    *step = v;
    *temporary = tmp;
    return 1;
}

/* 1 when a ranks before b: the better metric, then the newer step. */
static int better(const ckpt_manager_entry *a, const ckpt_manager_entry *b, ckpt_best_mode mode)
{
    if (a->metric != b->metric)
        return mode == CKPT_BEST_MAX ? a->metric > b->metric : a->metric < b->metric;
    return a->step > b->step;
}

void ckpt_manager_select(const ckpt_manager_options *o, const ckpt_manager_entry *e, int n, int64_t protect,
                         int *keep)
{
    int newest = -1;
    for (int i = 0; i < n; i++) {
        keep[i] = e[i].state != CKPT_ENTRY_COMMITTED || o->keep_last <= 0;
        if (e[i].state == CKPT_ENTRY_COMMITTED && (newest < 0 || e[i].step > e[newest].step))
            newest = i;
    }
    if (o->keep_last <= 0 || newest < 0)
        return;
    keep[newest] = 1;
    for (int i = 0; i < n; i++) {
        if (e[i].state != CKPT_ENTRY_COMMITTED || keep[i])
            continue;
        if (e[i].step == protect || (o->keep_every > 0 && e[i].step % o->keep_every == 0)) {
            keep[i] = 1;
            continue;
        }
        int newer = 0, ahead = 0;
        for (int j = 0; j < n; j++) {
            if (j == i || e[j].state != CKPT_ENTRY_COMMITTED)
                continue;
            if (e[j].step > e[i].step)
                newer++;
            if (e[i].has_metric && e[j].has_metric && better(&e[j], &e[i], o->best_mode))
                ahead++;
        }
        if (newer < o->keep_last)
            keep[i] = 1;
        else if (o->keep_best > 0 && e[i].has_metric && ahead < o->keep_best)
            keep[i] = 1;
    }
}

/* ------------------------------------------------------------------------- */
/* Scanning the root (local)                                                  */
/* ------------------------------------------------------------------------- */

static int cmp_entry(const void *pa, const void *pb)
{
    const ckpt_manager_entry *a = pa, *b = pb;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    int ta = a->state == CKPT_ENTRY_TEMPORARY, tb = b->state == CKPT_ENTRY_TEMPORARY;
    if (ta != tb)
        return ta - tb;
    return strcmp(a->name, b->name);
}

/* Every step directory and temporary directory in root, sorted; step directories get state
 * CKPT_ENTRY_UNREADABLE until classify() looks at them. When asked, (*kinds)[i] (malloc'ed) is
 * entry i's kind as ckpt_manager_parse_name tells it (0 step, 1 temporary, 2 displaced). */
static int scan_dir(const char *root, entry_list *out, char **kinds)
{
    out->e = NULL;
    out->n = out->cap = 0;
    if (kinds)
        *kinds = NULL;
    int err = 0;
    DIR *d = ckpt_sys_opendir(root, &err);
    if (!d)
        return ckpt_error(err == -ENOENT ? CKPT_ENOTFOUND : CKPT_EIO, "cannot read checkpoint root '%s': %s", root,
                          strerror(-err));
    struct dirent *de;
    int rc = CKPT_OK;
    while ((de = readdir(d))) {
        int64_t step;
        int tmp;
        char p[MGR_PATH_MAX];
        struct stat st;
        if (!ckpt_manager_parse_name(de->d_name, &step, &tmp) || strlen(de->d_name) >= sizeof out->e->name)
            continue;
        if (snprintf(p, sizeof p, "%s/%s", root, de->d_name) >= (int)sizeof p)
            continue;
        if (lstat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            continue; /* a file or a link with a step name: not ours */
        if (out->n == out->cap) {
            int cap = out->cap ? 2 * out->cap : 16;
            ckpt_manager_entry *e = realloc(out->e, (size_t)cap * sizeof *e);
            if (!e) {
                rc = ckpt_error(CKPT_ENOMEM, "out of memory listing checkpoint root '%s'", root);
                break;
            }
            out->e = e;
            out->cap = cap;
        }
        ckpt_manager_entry *e = &out->e[out->n++];
        memset(e, 0, sizeof *e);
        e->step = step;
        e->state = tmp ? CKPT_ENTRY_TEMPORARY : CKPT_ENTRY_UNREADABLE;
        e->status = tmp ? CKPT_EINCOMPLETE : CKPT_OK;
        snprintf(e->name, sizeof e->name, "%s", de->d_name);
    }
    ckpt_sys_closedir(d);
    if (rc == CKPT_OK && out->n > 1)
        qsort(out->e, (size_t)out->n, sizeof *out->e, cmp_entry);
    if (rc == CKPT_OK && kinds) {
        if (!(*kinds = malloc((size_t)out->n + 1)))
            rc = ckpt_error(CKPT_ENOMEM, "out of memory listing checkpoint root '%s'", root);
        for (int i = 0; rc == CKPT_OK && i < out->n; i++) {
            int64_t step;
            int tmp = 0;
            ckpt_manager_parse_name(out->e[i].name, &step, &tmp);
            (*kinds)[i] = (char)tmp;
        }
    }
    if (rc) {
        free(out->e);
        out->e = NULL;
        out->n = out->cap = 0;
    }
    return rc;
}

static int scan_root(const ckpt_manager *m, entry_list *out)
{
    return scan_dir(m->root, out, NULL);
}

/* Opens a step directory of root to tell its state and read `metric` (NULL: none). When it is
 * not committed, the reason (naming the directory and file) goes to why. */
static void classify_in(const char *root, const char *metric, ckpt_manager_entry *e, char *why, size_t wlen)
{
    char p[MGR_PATH_MAX];
    if (why && wlen)
        why[0] = '\0';
    snprintf(p, sizeof p, "%s/%s", root, e->name);
    ckpt_reader *r = NULL;
    int rc = ckpt_reader_open(p, &r);
    e->status = rc;
    e->has_metric = 0;
    e->metric = 0;
    if (rc != CKPT_OK) {
        e->state = rc == CKPT_EINCOMPLETE ? CKPT_ENTRY_INCOMPLETE
                   : rc == CKPT_ECORRUPT  ? CKPT_ENTRY_CORRUPT
                                          : CKPT_ENTRY_UNREADABLE;
        if (why && wlen)
            snprintf(why, wlen, "%s", ckpt_errmsg());
        return;
    }
    e->state = CKPT_ENTRY_COMMITTED;
    if (metric) {
        const ckpt_state *a = ckpt_reader_attrs(r);
        double v = 0;
        int64_t iv = 0;
        int have = 0;
        if (a && ckpt_state_get_double(a, metric, &v) == CKPT_OK)
            have = 1;
        else if (a && ckpt_state_get_int(a, metric, &iv) == CKPT_OK) {
            v = (double)iv;
            have = 1;
        }
        if (have && !isnan(v)) {
            e->has_metric = 1;
            e->metric = v;
        }
    }
    ckpt_reader_close(r);
}

static void classify(const ckpt_manager *m, ckpt_manager_entry *e, char *why, size_t wlen)
{
    classify_in(m->root, m->metric, e, why, wlen);
}

/* Bytes of the regular files below path (best effort; checkpoints are flat). */
static int64_t tree_bytes(const char *path, int depth)
{
    int err = 0;
    DIR *d = ckpt_sys_opendir(path, &err);
    if (!d)
        return 0;
    int64_t sum = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[MGR_PATH_MAX];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", path, de->d_name) >= (int)sizeof p || lstat(p, &st) != 0)
            continue;
        if (S_ISREG(st.st_mode))
            sum += (int64_t)st.st_size;
        else if (S_ISDIR(st.st_mode) && depth > 0)
            sum += tree_bytes(p, depth - 1);
    }
    ckpt_sys_closedir(d);
    return sum;
}

/* 1 when es holds a step directory (not a temporary) of `step`. */
static int has_step_dir(const entry_list *es, const char *kinds, int64_t step)
{
    for (int i = 0; i < es->n; i++)
        if (es->e[i].step == step && kinds[i] == 0)
            return 1;
    return 0;
}

/* Rank 0: puts back the copy that stands for each step whose overwrite was interrupted between
 * its renames (commit.h); *restored gets how many. A rename that fails is an error: the step
 * must not silently fall back to an older one. */
static int restore_displaced(const ckpt_manager *m, int *restored)
{
    entry_list es;
    char *kinds = NULL;
    *restored = 0;
    int rc = scan_dir(m->root, &es, &kinds);
    for (int i = 0; rc == CKPT_OK && i < es.n; i++) {
        if (kinds[i] != 2 || has_step_dir(&es, kinds, es.e[i].step))
            continue;
        char chosen[256] = "";
        char from[256];
        snprintf(from, sizeof from, "%s", es.e[i].name);
        int got = ckpt_commit_recover(m->root, es.e[i].name, 0, chosen, sizeof chosen);
        if (got == 1)
            got = ckpt_commit_recover(m->root, es.e[i].name, 1, NULL, 0);
        if (got < 0) {
            rc = ckpt_error_prefix("step %" PRId64 " cannot be recovered: ", es.e[i].step);
            break;
        }
        if (got == 1) {
            (*restored)++;
            warn(m,
                 "restored step %" PRId64 " from '%s/%s': an overwrite of it was interrupted between its renames (a "
                 "file system without RENAME_EXCHANGE); %s", es.e[i].step, m->root, chosen,
                 strcmp(chosen, from) == 0 ? "this is the checkpoint from before the overwrite"
                                           : "this is the overwrite's new, committed copy");
            kinds[i] = 0; /* the step has its directory now: no other copy of it is restored */
        }
    }
    free(kinds);
    free(es.e);
    return rc;
}

/* A name for a directory on its way out: "<path>.tmp-del-<16 hex>", debris if we stop. */
static void doomed_name(const char *path, char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
    snprintf(buf, len, "%s.tmp-del-%016" PRIx64, path, nonce);
}

/* Removes a step directory crash-safely: rename it to a temporary name first (atomic: the step
 * is gone at once), then remove that tree. `what` names it in errors ("old checkpoint"). */
static int remove_step_dir(const ckpt_manager *m, const ckpt_manager_entry *e, const char *what)
{
    char p[MGR_PATH_MAX], t[MGR_PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", m->root, e->name);
    doomed_name(p, t, sizeof t);
    int rerr = ckpt_sys_rename(p, t);
    if (rerr)
        return ckpt_error(CKPT_EIO, "cannot remove %s '%s' (step %" PRId64 "): renaming it to '%s' failed: %s", what,
                          p, e->step, t, strerror(-rerr));
    int err = ckpt_remove_tree(t);
    if (err)
        return ckpt_error(CKPT_EIO,
                          "cannot remove %s '%s' (step %" PRId64 "): removing '%s' failed: %s (what is left is "
                          "debris that ckpt_manager_clean_incomplete removes)",
                          what, p, e->step, t, strerror(-err));
    return CKPT_OK;
}

/* ------------------------------------------------------------------------- */
/* Options, open, close                                                       */
/* ------------------------------------------------------------------------- */

void ckpt_manager_options_init(ckpt_manager_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->version = CKPT_MANAGER_OPTIONS_VERSION;
    o->keep_last = 0;
    o->keep_every = 0;
    o->keep_best = 0;
    o->best_metric = NULL;
    o->best_mode = CKPT_BEST_MIN;
    o->save_every_steps = 0;
    o->save_every_secs = 0;
    o->warn = NULL;
    o->warn_user = NULL;
}

static int check_options(const char *root, const ckpt_manager_options *o)
{
    if (!root || !root[0])
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_open: the checkpoint root is empty");
    if (strlen(root) + MGR_NAME_ROOM >= MGR_PATH_MAX)
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_open: checkpoint root '%.64s...' is too long (%zu bytes; at most %d)",
                          root, strlen(root), MGR_PATH_MAX - MGR_NAME_ROOM - 1);
    if (o->version != CKPT_MANAGER_OPTIONS_VERSION)
        return ckpt_error(CKPT_EINVAL,
                          "checkpoint manager of '%s': options version %u; this library expects %d (call "
                          "ckpt_manager_options_init)", root, o->version, CKPT_MANAGER_OPTIONS_VERSION);
    if (o->keep_last < 0)
        return ckpt_error(CKPT_EINVAL, "checkpoint manager of '%s': keep_last is %d; it must be >= 0 (0 keeps all)",
                          root, o->keep_last);
    if (o->keep_every < 0)
        return ckpt_error(CKPT_EINVAL, "checkpoint manager of '%s': keep_every is %" PRId64 "; it must be >= 0 (0 = off)",
                          root, o->keep_every);
    if (o->keep_best < 0)
        return ckpt_error(CKPT_EINVAL, "checkpoint manager of '%s': keep_best is %d; it must be >= 0 (0 = off)", root,
                          o->keep_best);
    if (o->best_mode != CKPT_BEST_MIN && o->best_mode != CKPT_BEST_MAX)
        return ckpt_error(CKPT_EINVAL,
                          "checkpoint manager of '%s': best_mode is %d; it must be CKPT_BEST_MIN (0) or CKPT_BEST_MAX (1)",
                          root, (int)o->best_mode);
    if (o->keep_best > 0 && (!o->best_metric || !o->best_metric[0]))
        return ckpt_error(CKPT_EINVAL, "checkpoint manager of '%s': keep_best is %d but best_metric is not set", root,
                          o->keep_best);
    if (o->best_metric && o->best_metric[0] && ckpt_name_check(o->best_metric, "best_metric attribute key") != CKPT_OK)
        return ckpt_error_prefix("checkpoint manager of '%s': ", root);
    if (o->save_every_steps < 0)
        return ckpt_error(CKPT_EINVAL,
                          "checkpoint manager of '%s': save_every_steps is %" PRId64 "; it must be >= 0 (0 = off)", root,
                          o->save_every_steps);
    if (!(o->save_every_secs >= 0) || isinf(o->save_every_secs))
        return ckpt_error(CKPT_EINVAL,
                          "checkpoint manager of '%s': save_every_secs is %g; it must be finite and >= 0 (0 = off)",
                          root, o->save_every_secs);
    return CKPT_OK;
}

/* mkdir -p */
static int make_root(const char *root)
{
    char buf[MGR_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", root);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        int err = ckpt_sys_mkdir(buf, 0755);
        if (err && err != -EEXIST)
            return ckpt_error(CKPT_EIO, "cannot create checkpoint root '%s': mkdir '%s' failed: %s", root, buf,
                              strerror(-err));
        *p = c;
        if (!c)
            break;
    }
    struct stat st;
    if (stat(root, &st) != 0)
        return ckpt_error(CKPT_EIO, "cannot create checkpoint root '%s': %s", root, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ckpt_error(CKPT_EEXIST, "checkpoint root '%s' exists and is not a directory", root);
    return CKPT_OK;
}

static void free_manager(ckpt_manager *m)
{
    if (!m)
        return;
    ckpt_root_lock_release(&m->lock);
    free(m->root);
    free(m->metric);
    free(m);
}

static void lock_warn(const char *msg, void *user)
{
    warn(user, "%s", msg);
}

/* Rank 0: creates the root and takes its lock for the manager's lifetime. */
static int take_root(ckpt_manager *m)
{
    int rc = make_root(m->root);
    return rc ? rc : ckpt_root_lock_acquire(m->root, &m->lock, lock_warn, m);
}

int ckpt_manager_open(MPI_Comm comm, const char *root, const ckpt_manager_options *opts, ckpt_manager **out)
{
    ckpt_error_clear();
    if (!out)
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_open: out is NULL");
    *out = NULL;
    ckpt_manager_options defaults;
    ckpt_manager_options_init(&defaults);
    if (!opts)
        opts = &defaults;
    ckpt_comm c;
    int rc = ckpt_comm_open(comm, &c);
    if (rc)
        return rc;
    ckpt_manager *m = NULL;
    rc = check_options(root, opts);
    if (rc == CKPT_OK) {
        m = calloc(1, sizeof *m);
        if (m) {
            m->lock.fd = -1;
            m->o = *opts;
            m->root = strdup(root);
            if (opts->best_metric && opts->best_metric[0])
                m->metric = strdup(opts->best_metric);
        }
        if (!m || !m->root || (opts->best_metric && opts->best_metric[0] && !m->metric))
            rc = ckpt_error(CKPT_ENOMEM, "out of memory opening the checkpoint manager of '%s'", root);
        else {
            m->o.best_metric = m->metric;
            size_t n = strlen(m->root);
            while (n > 1 && m->root[n - 1] == '/')
                m->root[--n] = '\0';
        }
    }
    rc = ckpt_comm_agree(&c, rc);
    if (rc == CKPT_OK)
        rc = ckpt_comm_share_root(&c, c.rank == 0 ? take_root(m) : CKPT_OK);
    if (rc == CKPT_OK && c.rank != 0) {
        struct stat st;
        int lrc = CKPT_OK;
        const char *why = NULL;
        if (stat(m->root, &st) != 0)
            why = strerror(errno);
        else if (!S_ISDIR(st.st_mode))
            why = "not a directory";
        if (why)
            lrc = ckpt_error(CKPT_ENOTFOUND,
                             "checkpoint root '%s', which rank 0 created, is not visible here: %s (every rank must see "
                             "the same file system)", m->root, why);
        rc = ckpt_comm_agree(&c, lrc);
    } else if (rc == CKPT_OK) {
        rc = ckpt_comm_agree(&c, CKPT_OK);
    }
    if (rc) {
        free_manager(m);
        ckpt_comm_close(&c);
        return rc;
    }
    m->c = c;
    m->last_step = -1;
    m->last_time = now_secs();
    *out = m;
    return CKPT_OK;
}

void ckpt_manager_close(ckpt_manager *m)
{
    if (!m)
        return;
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin)
        m->c.active = 0; /* the communicator went with MPI */
    ckpt_comm_close(&m->c);
    free_manager(m);
}

int ckpt_manager_step_path(const ckpt_manager *m, int64_t step, char *buf, size_t len)
{
    if (!m || !buf)
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_step_path: %s is NULL", m ? "buf" : "manager");
    if (step < 0)
        return ckpt_error(CKPT_EINVAL, "step %" PRId64 " is negative (checkpoint root '%s')", step, m->root);
    int k = snprintf(buf, len, "%s/step-%08" PRId64, m->root, step);
    if (k < 0 || (size_t)k >= len)
        return ckpt_error(CKPT_EINVAL, "the path of step %" PRId64 " under '%s' needs %d bytes; the buffer has %zu", step,
                          m->root, k + 1, len);
    return CKPT_OK;
}

/* ------------------------------------------------------------------------- */
/* Latest, list                                                               */
/* ------------------------------------------------------------------------- */

/* The newest committed step under root: the one rule of ckpt_manager_latest and
 * ckpt_manager_peek_latest. From the highest step down, a step's candidate is its directory,
 * or -- only when it has none -- the copy standing for it after an interrupted overwrite
 * (ckpt_commit_recover; ckpt_manager_latest restores those first). The first candidate that
 * opens wins; its directory name goes to name. m (may be NULL) receives warnings about what
 * is skipped. */
static int newest_committed(const char *root, const ckpt_manager *m, int64_t *found, char *name, size_t nlen)
{
    entry_list es;
    char *kinds = NULL;
    *found = -1;
    int rc = scan_dir(root, &es, &kinds);
    if (rc)
        return rc;
    char *why = malloc(CKPT_ERRMSG_MAX);
    if (!why) {
        free(kinds);
        free(es.e);
        return ckpt_error(CKPT_ENOMEM, "out of memory scanning checkpoint root '%s'", root);
    }
    int skipped = 0;
    for (int i = 0; m && i < es.n; i++) {
        if (kinds[i] == 1)
            warn(m,
                 "'%s/%s' is the temporary directory of a save of step %" PRId64 " that did not finish (or is still "
                 "running); ckpt_manager_clean_incomplete removes it", root, es.e[i].name, es.e[i].step);
        else if (kinds[i] == 2)
            warn(m,
                 "'%s/%s' is the previous copy of step %" PRId64 " left by an overwrite that did not finish removing "
                 "it; ckpt_manager_clean_incomplete removes it", root, es.e[i].name, es.e[i].step);
    }
    for (int i = es.n - 1; i >= 0 && *found < 0; i--) {
        ckpt_manager_entry *e = &es.e[i];
        if (kinds[i] == 1)
            continue;
        if (kinds[i] == 2) {
            char chosen[256];
            if (has_step_dir(&es, kinds, e->step) ||
                ckpt_commit_recover(root, e->name, 0, chosen, sizeof chosen) != 1)
                continue;
            snprintf(e->name, sizeof e->name, "%s", chosen);
        }
        classify_in(root, NULL, e, why, CKPT_ERRMSG_MAX);
        if (e->state == CKPT_ENTRY_COMMITTED) {
            *found = e->step;
            snprintf(name, nlen, "%s", e->name);
        } else {
            skipped++;
            if (m)
                warn(m, "skipping step %" PRId64 " (%s): %s", e->step,
                     e->state == CKPT_ENTRY_INCOMPLETE ? "incomplete"
                     : e->state == CKPT_ENTRY_CORRUPT  ? "corrupt"
                                                       : "unreadable",
                     why);
        }
    }
    free(why);
    free(kinds);
    free(es.e);
    if (*found < 0) {
        if (skipped)
            return ckpt_error(CKPT_ENOTFOUND,
                              "no committed checkpoint under '%s' (%d step director%s skipped: incomplete, corrupt or "
                              "unreadable)", root, skipped, skipped == 1 ? "y" : "ies");
        return ckpt_error(CKPT_ENOTFOUND, "no committed checkpoint under '%s'", root);
    }
    return CKPT_OK;
}

/* Rank 0: restores interrupted overwrites, then the newest committed step. */
static int find_latest(const ckpt_manager *m, int64_t *found)
{
    int restored = 0;
    char name[256];
    int rc = restore_displaced(m, &restored);
    return rc ? rc : newest_committed(m->root, m, found, name, sizeof name);
}

int ckpt_manager_latest(ckpt_manager *m, int64_t *step, char *path, size_t len)
{
    ckpt_error_clear();
    if (!m)
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_latest: manager is NULL");
    int64_t found = -1;
    int rc = CKPT_OK;
    if (m->c.rank == 0)
        rc = find_latest(m, &found);
    rc = ckpt_comm_share_root(&m->c, rc);
    if (rc == CKPT_OK)
        rc = bcast_i64(m, &found, 1);
    if (rc == CKPT_OK && path)
        rc = ckpt_manager_step_path(m, found, path, len);
    if (rc == CKPT_OK && step)
        *step = found;
    if (rc == CKPT_OK)
        ckpt_error_clear();
    return rc;
}

int ckpt_manager_peek_latest(const char *root, int64_t *step, char *path, size_t len)
{
    ckpt_error_clear();
    if (!root || !root[0])
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_peek_latest: the checkpoint root is %s", root ? "empty" : "NULL");
    if (strlen(root) + MGR_NAME_ROOM >= MGR_PATH_MAX)
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_peek_latest: checkpoint root '%.64s...' is too long", root);
    char r[MGR_PATH_MAX], name[256];
    snprintf(r, sizeof r, "%s", root);
    size_t n = strlen(r);
    while (n > 1 && r[n - 1] == '/')
        r[--n] = '\0';
    int64_t found = -1;
    int rc = newest_committed(r, NULL, &found, name, sizeof name);
    if (rc == CKPT_OK && path) {
        int k = snprintf(path, len, "%s/%s", r, name);
        if (k < 0 || (size_t)k >= len)
            rc = ckpt_error(CKPT_EINVAL, "the path of step %" PRId64 " under '%s' needs %d bytes; the buffer has %zu",
                            found, r, k + 1, len);
    }
    if (rc == CKPT_OK && step)
        *step = found;
    if (rc == CKPT_OK)
        ckpt_error_clear();
    return rc;
}

int ckpt_manager_list(const ckpt_manager *m, ckpt_manager_entry **entries, int *n)
{
    ckpt_error_clear();
    if (!m || !entries || !n)
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_list: %s is NULL", !m ? "manager" : !entries ? "entries" : "n");
    *entries = NULL;
    *n = 0;
    entry_list es;
    int rc = scan_root(m, &es);
    if (rc)
        return rc;
    for (int i = 0; i < es.n; i++) {
        char p[MGR_PATH_MAX];
        if (es.e[i].state != CKPT_ENTRY_TEMPORARY)
            classify(m, &es.e[i], NULL, 0);
        snprintf(p, sizeof p, "%s/%s", m->root, es.e[i].name);
        es.e[i].bytes = tree_bytes(p, 8);
    }
    *entries = es.e;
    *n = es.n;
    ckpt_error_clear();
    return CKPT_OK;
}

/* ------------------------------------------------------------------------- */
/* Save policy, save, retention, cleanup                                      */
/* ------------------------------------------------------------------------- */

int ckpt_manager_should_save(ckpt_manager *m, int64_t step, int *save)
{
    ckpt_error_clear();
    if (!m)
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_should_save: manager is NULL");
    int rc = CKPT_OK;
    if (!save)
        rc = ckpt_error(CKPT_EINVAL, "ckpt_manager_should_save: save is NULL (checkpoint root '%s')", m->root);
    else if (step < 0)
        rc = ckpt_error(CKPT_EINVAL, "ckpt_manager_should_save: step %" PRId64 " is negative (checkpoint root '%s')",
                        step, m->root);
    if ((rc = ckpt_comm_agree(&m->c, rc)) != CKPT_OK)
        return rc;
    int64_t d = 0;
    if (m->c.rank == 0 && step != m->last_step) {
        if (m->o.save_every_steps > 0 && step % m->o.save_every_steps == 0)
            d = 1;
        else if (m->o.save_every_secs > 0 && now_secs() - m->last_time >= m->o.save_every_secs)
            d = 1;
    }
    if ((rc = bcast_i64(m, &d, 1)) != CKPT_OK)
        return rc;
    *save = (int)d;
    return CKPT_OK;
}

int ckpt_manager_mark_saved(ckpt_manager *m, int64_t step)
{
    if (!m)
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_mark_saved: manager is NULL");
    if (step < 0)
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_mark_saved: step %" PRId64 " is negative (checkpoint root '%s')",
                          step, m->root);
    m->last_step = step;
    m->last_time = now_secs();
    return CKPT_OK;
}

int ckpt_manager_save(ckpt_manager *m, int64_t step, const ckpt_state *state, const ckpt_save_options *opts)
{
    ckpt_error_clear();
    if (!m)
        return ckpt_error(CKPT_EINVAL, "ckpt_manager_save: manager is NULL");
    ckpt_save_options so;
    ckpt_save_options_init(&so);
    char path[MGR_PATH_MAX];
    int rc = CKPT_OK;
    if (opts && opts->version != CKPT_SAVE_OPTIONS_VERSION)
        rc = ckpt_error(CKPT_EINVAL, "save options version %u; this library expects %d (call ckpt_save_options_init)",
                        opts->version, CKPT_SAVE_OPTIONS_VERSION);
    else if (opts)
        so = *opts;
    if (rc == CKPT_OK)
        rc = ckpt_manager_step_path(m, step, path, sizeof path);
    if (rc == CKPT_OK && !state)
        rc = ckpt_error(CKPT_EINVAL, "ckpt_manager_save: state is NULL (step %" PRId64 ", checkpoint root '%s')", step,
                        m->root);
    if ((rc = ckpt_comm_agree(&m->c, rc)) != CKPT_OK)
        return rc;

    /* rank 0: an incomplete or corrupt directory of this step (a crash, a resumed run) is replaced */
    int64_t overwrite = so.overwrite ? 1 : 0;
    if (m->c.rank == 0) {
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            ckpt_manager_entry e;
            char why[CKPT_ERRMSG_MAX];
            memset(&e, 0, sizeof e);
            e.step = step;
            snprintf(e.name, sizeof e.name, "%s", path + strlen(m->root) + 1);
            classify(m, &e, why, sizeof why);
            if (e.state == CKPT_ENTRY_INCOMPLETE || e.state == CKPT_ENTRY_CORRUPT) {
                warn(m, "replacing the %s directory of step %" PRId64 ": %s",
                     e.state == CKPT_ENTRY_INCOMPLETE ? "incomplete" : "corrupt", step, why);
                overwrite = 1;
            }
        }
        ckpt_error_clear();
    }
    if ((rc = bcast_i64(m, &overwrite, 1)) != CKPT_OK)
        return rc;
    so.overwrite = (int)overwrite;

    rc = ckpt_save(m->c.active ? m->c.comm : MPI_COMM_NULL, path, state, &so);
    if (rc)
        return rc;
    ckpt_manager_mark_saved(m, step);
    rc = ckpt_manager_apply_retention(m, NULL);
    if (rc)
        ckpt_error_prefix("step %" PRId64 " was saved to '%s', but retention failed: ", step, path);
    return rc;
}

/* Rank 0: deletes what retention does not keep. */
static int retain(const ckpt_manager *m, int64_t *removed)
{
    *removed = 0;
    if (m->o.keep_last <= 0)
        return CKPT_OK; /* keep all */
    entry_list es;
    int rc = scan_root(m, &es);
    if (rc)
        return rc;
    int *keep = calloc((size_t)es.n + 1, sizeof *keep);
    if (!keep) {
        free(es.e);
        return ckpt_error(CKPT_ENOMEM, "out of memory applying retention under '%s'", m->root);
    }
    for (int i = 0; i < es.n; i++)
        if (es.e[i].state != CKPT_ENTRY_TEMPORARY)
            classify(m, &es.e[i], NULL, 0);
    ckpt_error_clear();
    ckpt_manager_select(&m->o, es.e, es.n, m->last_step, keep);
    char *first = NULL; /* the first failure's message; the others are still tried */
    for (int i = 0; i < es.n; i++) {
        if (keep[i] || es.e[i].state != CKPT_ENTRY_COMMITTED)
            continue;
        int err = remove_step_dir(m, &es.e[i], "old checkpoint");
        if (err == CKPT_OK)
            (*removed)++;
        else if (rc == CKPT_OK) {
            rc = err;
            first = strdup(ckpt_errmsg());
        }
    }
    if (rc)
        ckpt_error(rc, "%s", first ? first : "cannot remove an old checkpoint");
    free(first);
    free(keep);
    free(es.e);
    return rc;
}

/* Rank 0 removes (what = retain or clean); every rank learns the outcome and the count. */
static int remove_on_root(ckpt_manager *m, int (*what)(const ckpt_manager *, int64_t *), const char *fn,
                          int *removed)
{
    ckpt_error_clear();
    if (!m)
        return ckpt_error(CKPT_EINVAL, "%s: manager is NULL", fn);
    int64_t n = 0;
    int rc = CKPT_OK;
    if (m->c.rank == 0)
        rc = what(m, &n);
    rc = ckpt_comm_share_root(&m->c, rc);
    int brc = bcast_i64(m, &n, 1);
    if (rc == CKPT_OK)
        rc = brc;
    if (removed)
        *removed = (int)n;
    return rc;
}

int ckpt_manager_apply_retention(ckpt_manager *m, int *removed)
{
    return remove_on_root(m, retain, "ckpt_manager_apply_retention", removed);
}

/* Rank 0: removes incomplete step directories and temporary debris. In three passes, so that no
 * committed copy of a step is lost: incomplete step directories go first, then the copies that
 * stand for steps without a directory are restored (an interrupted overwrite), then debris goes
 * -- except a displaced copy that is still the only committed one of its step. */
static int clean(const ckpt_manager *m, int64_t *removed)
{
    *removed = 0;
    entry_list es;
    char *first = NULL; /* the first failure's message; the others are still tried */
    int rc = scan_root(m, &es);
    if (rc)
        return rc;
    for (int i = 0; i < es.n; i++) {
        ckpt_manager_entry *e = &es.e[i];
        char p[MGR_PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", m->root, e->name);
        if (e->state == CKPT_ENTRY_TEMPORARY || ckpt_commit_check(p) != CKPT_EINCOMPLETE)
            continue;
        int err = remove_step_dir(m, e, "incomplete checkpoint");
        if (err == CKPT_OK)
            (*removed)++;
        else if (rc == CKPT_OK) {
            rc = err;
            first = strdup(ckpt_errmsg());
        }
    }
    free(es.e);
    int restored = 0, err = restore_displaced(m, &restored);
    if (err) {
        /* removing the debris now could delete the last committed copy of a step */
        free(first);
        return err;
    }
    char *kinds = NULL;
    if ((err = scan_dir(m->root, &es, &kinds)) != CKPT_OK) {
        free(first);
        return err;
    }
    for (int i = 0; i < es.n; i++) {
        ckpt_manager_entry *e = &es.e[i];
        char p[MGR_PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", m->root, e->name);
        if (kinds[i] == 0)
            continue;
        if (kinds[i] == 2 && ckpt_commit_check(p) == CKPT_OK) {
            char sp[MGR_PATH_MAX];
            snprintf(sp, sizeof sp, "%s/step-%08" PRId64, m->root, e->step);
            if (ckpt_commit_check(sp) != CKPT_OK) {
                warn(m, "keeping '%s': it is the only committed copy of step %" PRId64 " ('%s' is not committed)", p,
                     e->step, sp);
                continue;
            }
        }
        int e2 = ckpt_remove_tree(p);
        if (e2 == 0) {
            (*removed)++;
            continue;
        }
        err = ckpt_error(CKPT_EIO, "cannot remove '%s', the debris of an interrupted save of step %" PRId64 ": %s", p,
                         e->step, strerror(-e2));
        if (rc == CKPT_OK) {
            rc = err;
            first = strdup(ckpt_errmsg());
        }
    }
    free(kinds);
    free(es.e);
    if (rc)
        ckpt_error(rc, "%s", first ? first : "cannot remove an incomplete checkpoint");
    else
        ckpt_error_clear();
    free(first);
    return rc;
}

int ckpt_manager_clean_incomplete(ckpt_manager *m, int *removed)
{
    return remove_on_root(m, clean, "ckpt_manager_clean_incomplete", removed);
}
