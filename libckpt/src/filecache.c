/* filecache.c -- bounded LRU of open HDF5 files. */
#include "filecache.h"
#include "error.h"
#include "h5util.h"
#include "vfd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

int ckpt_fc_default_cap(void)
{
    const char *v = getenv("CKPT_MAX_OPEN_FILES");
    if (v && *v) {
        long n = strtol(v, NULL, 10);
        if (n >= 1 && n <= 1 << 20)
            return (int)n;
    }
    struct rlimit rl;
    long cap = 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        cap = (long)rl.rlim_cur / 4;
    return cap < 4 ? 4 : cap > 256 ? 256 : (int)cap;
}

int ckpt_fc_init(ckpt_filecache *c, int cap, ckpt_fc_open_fn open, void *arg, const char *dir)
{
    memset(c, 0, sizeof *c);
    c->cap = cap < 1 ? 1 : cap;
    c->e = calloc((size_t)c->cap, sizeof *c->e);
    c->open = open;
    c->arg = arg;
    c->dir = dir;
    return c->e ? CKPT_OK : ckpt_error(CKPT_ENOMEM, "out of memory for the open-file table");
}

void ckpt_fc_drop_dataset(ckpt_fc_entry *e)
{
    if (e->dset >= 0) {
        ckpt_h5_lock();
        H5Dclose(e->dset);
        ckpt_h5_unlock();
    }
    e->dset = -1;
    e->dset_key = -1;
    e->dset_kind = -1;
    e->dset_first_piece = -1;
}

/* Closes entry i and moves the last entry into its place; a failed close (a write that did not
 * reach the disk) is kept in c->why. */
static int close_entry(ckpt_filecache *c, int i)
{
    ckpt_fc_entry *e = &c->e[i];
    if (c->on_close)
        c->on_close(e, c->arg);
    ckpt_fc_drop_dataset(e);
    ckpt_h5_lock();
    if (e->sums >= 0)
        H5Dclose(e->sums);
    char why[sizeof c->why];
    int rc = ckpt_h5_close_file(e->file, why, sizeof why);
    if (rc < 0 && !c->why[0])
        snprintf(c->why, sizeof c->why, "%s", why[0] ? why : "; HDF5 could not close it");
    ckpt_h5_unlock();
    c->e[i] = c->e[--c->n];
    return rc;
}

int ckpt_fc_set_cap(ckpt_filecache *c, int cap)
{
    if (cap < 1)
        return ckpt_error(CKPT_EINVAL, "the open-file bound must be at least 1, not %d", cap);
    while (c->n > cap) {
        int lru = 0;
        for (int i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[lru].used)
                lru = i;
        if (close_entry(c, lru) != 0)
            return ckpt_error(CKPT_EIO, "closing a data file of '%s' failed%s", c->dir, c->why);
    }
    ckpt_fc_entry *n = realloc(c->e, (size_t)cap * sizeof *n);
    if (!n)
        return ckpt_error(CKPT_ENOMEM, "out of memory for the open-file table");
    c->e = n;
    c->cap = cap;
    return CKPT_OK;
}

int ckpt_fc_get(ckpt_filecache *c, int64_t id, ckpt_fc_entry **out)
{
    for (int i = 0; i < c->n; i++)
        if (c->e[i].id == id) {
            c->e[i].used = ++c->clock;
            *out = &c->e[i];
            return CKPT_OK;
        }
    if (c->n == c->cap) {
        int lru = 0;
        for (int i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[lru].used)
                lru = i;
        if (close_entry(c, lru) != 0)
            return ckpt_error(CKPT_EIO, "closing a data file of '%s' (to stay within %d open files) failed%s", c->dir,
                              c->cap, c->why);
    }
    hid_t h;
    int rc = c->open(id, &h, c->arg);
    if (rc)
        return rc;
    ckpt_fc_entry *e = &c->e[c->n++];
    memset(e, 0, sizeof *e);
    e->id = id;
    e->file = h;
    e->dset = e->sums = -1;
    e->dset_key = -1;
    e->dset_kind = -1;
    e->dset_first_piece = -1;
    e->used = ++c->clock;
    *out = e;
    return CKPT_OK;
}

int ckpt_fc_close_all(ckpt_filecache *c)
{
    int bad = 0;
    while (c->n > 0)
        bad |= close_entry(c, c->n - 1) != 0;
    return bad ? -1 : 0;
}

void ckpt_fc_free(ckpt_filecache *c)
{
    if (c->e)
        ckpt_fc_close_all(c);
    free(c->e);
    memset(c, 0, sizeof *c);
}

int ckpt_fc_out_of_descriptors(void) { return errno == EMFILE || errno == ENFILE; }
