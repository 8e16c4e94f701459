/* root.c -- see root.h. */
#include "root.h"

#include <ckpt.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int has_file(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p)
        return 0;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int root_is_checkpoint(const char *path)
{
    return has_file(path, "COMMITTED") || has_file(path, "index.h5");
}

/* Looks like a checkpoint, complete or not; adds up the sizes of its regular files. */
static int scan_sub(const char *path, const char *name, int64_t *bytes)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int looks = strstr(name, ".tmp-") != NULL;
    int64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        char p[4096];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", path, n) >= (int)sizeof p || lstat(p, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        sum += (int64_t)st.st_size;
        if (!strcmp(n, "COMMITTED") || !strcmp(n, "index.h5") || !strcmp(n, "data.h5") ||
            (!strncmp(n, "rank-", 5) && strlen(n) > 8 && !strcmp(n + strlen(n) - 3, ".h5")))
            looks = 1;
    }
    closedir(d);
    *bytes = sum;
    return looks;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const root_entry *)a)->name, ((const root_entry *)b)->name);
}

int root_list_read(const char *path, root_list *out)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[4096];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= (int)sizeof p || stat(p, &st) != 0 ||
            !S_ISDIR(st.st_mode))
            continue;
        int64_t bytes = 0;
        if (!scan_sub(p, e->d_name, &bytes))
            continue;
        if (out->n == cap) {
            int nc = cap ? 2 * cap : 16;
            root_entry *v = realloc(out->v, (size_t)nc * sizeof *v);
            if (!v)
                break;
            out->v = v;
            cap = nc;
        }
        root_entry *r = &out->v[out->n];
        memset(r, 0, sizeof *r);
        if (!(r->name = strdup(e->d_name)))
            break;
        out->n++;
        r->bytes = bytes;
        ckpt_reader *rd = NULL;
        int rc = ckpt_reader_open(p, &rd);
        if (rc == CKPT_OK) {
            r->state = ROOT_COMMITTED;
            if (ckpt_state_get_int(ckpt_reader_attrs(rd), "step", &r->step) == CKPT_OK)
                r->has_step = 1;
            ckpt_reader_close(rd);
        } else {
            r->state = rc == CKPT_EINCOMPLETE ? ROOT_INCOMPLETE : ROOT_CORRUPT;
            r->error = strdup(ckpt_errmsg());
        }
    }
    closedir(d);
    if (out->n > 1)
        qsort(out->v, (size_t)out->n, sizeof *out->v, by_name);
    /* latest is the manager's answer (one rule: ckpt_manager_peek_latest), not the step
     * attribute: what a resuming job would load */
    char lp[4400];
    if (ckpt_manager_peek_latest(path, NULL, lp, sizeof lp) == CKPT_OK) {
        const char *base = strrchr(lp, '/');
        base = base ? base + 1 : lp;
        for (int i = 0; i < out->n; i++)
            if (strcmp(out->v[i].name, base) == 0)
                out->v[i].latest = 1;
    }
    return 0;
}

void root_list_free(root_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].error);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

const char *root_state_name(root_state s)
{
    switch (s) {
    case ROOT_COMMITTED: return "committed";
    case ROOT_INCOMPLETE: return "incomplete";
    case ROOT_CORRUPT: return "corrupt";
    }
    return "?";
}
