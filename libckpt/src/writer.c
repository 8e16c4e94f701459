/* writer.c -- one process writes the checkpoint that `world_size` ranks would have written:
 * the offline half of resharding, merging and format conversion. Tensors are declared with the
 * boxes each rank owns (or one Shard(dim) descriptor), planned by the same planner as ckpt_save
 * (regular shardings become one grid descriptor, the rest explicit rows), then filled piece by
 * piece -- memory stays at what the caller passes per call plus per-file checksum tables -- with
 * a bounded number of data files open, and committed atomically like any save. */
#include "ckpt.h"
#include "codec_zstd.h"
#include "commit.h"
#include "dtype.h"
#include "error.h"
#include "filecache.h"
#include "h5util.h"
#include "io_per_rank.h"
#include "io_shared.h"
#include "meta.h"
#include "options.h"
#include "piece.h"
#include "plan.h"
#include "state.h"
#include "sysio.h"
#include "vfd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What was declared of one tensor. */
typedef struct wdecl {
    int shard_dim, shard_ranks;   /* ckpt_writer_add_shard; shard_ranks 0 when not used */
    ckpt_plan_box *boxes;         /* ckpt_writer_add_box */
    int64_t nboxes, cap;
} wdecl;

/* A data file's state, kept while it is closed too: its checksum table is written at commit. */
typedef struct wfile {
    int64_t id;
    int created;
    int64_t next_slot;   /* file-per-rank/-group: the next box's first_piece */
    uint64_t *sums;
    int64_t sums_cap;
} wfile;

struct ckpt_writer {
    char path[4096], tmp[4096];
    int world;
    ckpt_save_options o;
    ckpt_state *decl;  /* declared tensors (no boxes) */
    wdecl *wd;         /* parallel to decl->tensors */
    int wd_cap;
    ckpt_state *attrs;
    ckpt_index *ix;    /* after planning */
    int64_t *tslot;    /* per tensor: its first piece in `written` */
    int64_t *rslot;    /* per explicit row: its first piece in `written`, relative to its tensor's */
    unsigned char *written; /* one bit per piece */
    int64_t nslots;
    ckpt_filecache fc;
    int max_open;
    int shared_ready;  /* shared layout: every tensor's dataset exists */
    int dirfd;         /* the temporary directory: data files are created inside it by plain name */
    wfile *files;      /* the files touched, sorted by id */
    int64_t nfiles, files_cap;
    unsigned char *buf;
    size_t buf_cap;
    int failed;
};

void ckpt_writer_abort(ckpt_writer *w)
{
    if (!w)
        return;
    ckpt_fc_free(&w->fc);
    if (w->dirfd >= 0)
        ckpt_sys_close(w->dirfd);
    if (w->tmp[0])
        ckpt_remove_tree(w->tmp);
    for (int i = 0; w->wd && w->decl && i < w->decl->ntensors; i++)
        free(w->wd[i].boxes);
    free(w->wd);
    ckpt_state_free(w->decl);
    ckpt_state_free(w->attrs);
    ckpt_index_free(w->ix);
    free(w->tslot);
    free(w->rslot);
    free(w->written);
    for (int64_t i = 0; i < w->nfiles; i++)
        free(w->files[i].sums);
    free(w->files);
    free(w->buf);
    free(w);
}

int ckpt_writer_open(const char *path, int world_size, const ckpt_save_options *opts, ckpt_writer **out)
{
    if (!out)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_open: out is NULL");
    *out = NULL;
    if (!path || !path[0])
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_open: path is empty");
    if (world_size < 1)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_open: world size %d is below 1", world_size);
    ckpt_save_options o;
    int rc = ckpt_save_options_copy(&o, opts);
    if (rc)
        return rc;
    if (o.layout == CKPT_LAYOUT_GROUP && o.group_size < 1)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_open: the file-per-group layout needs group_size >= 1 here "
                          "(one process has no nodes to group by)");
    ckpt_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ckpt_error(CKPT_ENOMEM, "out of memory opening a writer");
    w->o = o;
    snprintf(w->path, sizeof w->path, "%s", path);
    w->world = world_size;
    w->max_open = ckpt_fc_default_cap();
    w->dirfd = -1;
    rc = ckpt_state_create(&w->decl);
    if (rc == CKPT_OK)
        rc = ckpt_state_create(&w->attrs);
    if (rc) {
        ckpt_writer_abort(w);
        return rc;
    }
    *out = w;
    return CKPT_OK;
}

static int frozen(const ckpt_writer *w)
{
    return w->ix || w->failed
               ? ckpt_error(CKPT_EINVAL, "writer for '%s': declarations are closed once data is written", w->path)
               : CKPT_OK;
}

int ckpt_writer_add_tensor(ckpt_writer *w, const char *name, ckpt_dtype dtype, int ndim, const int64_t *shape)
{
    if (!w)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_add_tensor: writer is NULL");
    int rc = frozen(w);
    int before = w->decl->ntensors;
    if (rc == CKPT_OK)
        rc = ckpt_state_add_tensor(w->decl, name, dtype, ndim, shape, 0);
    if (rc == CKPT_OK && w->decl->ntensors > before) {
        if (w->decl->ntensors > w->wd_cap) {
            int nc = w->wd_cap ? w->wd_cap * 2 : 16;
            wdecl *n = realloc(w->wd, (size_t)nc * sizeof *n);
            if (!n)
                return ckpt_error(CKPT_ENOMEM, "out of memory declaring '%s'", name);
            w->wd = n;
            w->wd_cap = nc;
        }
        memset(&w->wd[before], 0, sizeof w->wd[before]);
    }
    return rc;
}

/* The declared tensor called name and its declarations. */
static int find_decl(ckpt_writer *w, const char *name, const char *fn, ckpt_stensor **t, wdecl **d)
{
    *t = name ? ckpt_state_find(w->decl, name) : NULL;
    if (!*t)
        return ckpt_error(CKPT_ENOTFOUND, "%s: tensor '%s' was not declared", fn, name ? name : "(null)");
    *d = &w->wd[*t - w->decl->tensors];
    return CKPT_OK;
}

int ckpt_writer_add_box(ckpt_writer *w, const char *name, const int64_t *offset, const int64_t *extent, int rank)
{
    if (!w)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_add_box: writer is NULL");
    int rc = frozen(w);
    if (rc)
        return rc;
    if (rank < 0 || rank >= w->world)
        return ckpt_error(CKPT_EINVAL, "tensor '%s': rank %d outside 0..%d", name ? name : "?", rank, w->world - 1);
    ckpt_stensor *t;
    wdecl *d;
    if ((rc = find_decl(w, name, "ckpt_writer_add_box", &t, &d)) != CKPT_OK)
        return rc;
    if (d->shard_ranks)
        return ckpt_error(CKPT_EINVAL, "tensor '%s' was declared with ckpt_writer_add_shard: add no boxes to it",
                          name);
    if (t->ndim > 0 && (!offset || !extent))
        return ckpt_error(CKPT_EINVAL, "tensor '%s': box offset or extent is NULL", name);
    ckpt_box b;
    ckpt_box_set(&b, t->ndim, offset, extent);
    char bs[512], ss[256];
    if (!ckpt_box_in_shape(&b, t->shape))
        return ckpt_error(CKPT_ECOVERAGE, "tensor '%s': box %s lies outside the tensor's shape %s", name,
                          ckpt_box_str(&b, bs, sizeof bs), ckpt_shape_str(t->ndim, t->shape, ss, sizeof ss));
    if (ckpt_box_volume(&b) == 0)
        return CKPT_OK;
    if (d->nboxes == d->cap) {
        int64_t nc = d->cap ? d->cap * 2 : 4;
        ckpt_plan_box *n = realloc(d->boxes, (size_t)nc * sizeof *n);
        if (!n)
            return ckpt_error(CKPT_ENOMEM, "out of memory declaring a box of '%s'", name);
        d->boxes = n;
        d->cap = nc;
    }
    ckpt_plan_box *pb = &d->boxes[d->nboxes];
    pb->box = b;
    pb->rank = rank;
    pb->slot = d->nboxes++;
    return CKPT_OK;
}

int ckpt_writer_add_shard(ckpt_writer *w, const char *name, int dim, int nranks)
{
    if (!w)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_add_shard: writer is NULL");
    int rc = frozen(w);
    if (rc)
        return rc;
    ckpt_stensor *t;
    wdecl *d;
    if ((rc = find_decl(w, name, "ckpt_writer_add_shard", &t, &d)) != CKPT_OK)
        return rc;
    if (d->nboxes || d->shard_ranks)
        return ckpt_error(CKPT_EINVAL, "tensor '%s' already has boxes declared", name);
    if (nranks < 1 || nranks > w->world)
        return ckpt_error(CKPT_EINVAL, "tensor '%s': Shard over %d ranks, outside 1..%d", name, nranks, w->world);
    if (t->ndim == 0 ? dim != 0 : (dim < 0 || dim >= t->ndim))
        return ckpt_error(CKPT_EINVAL, "tensor '%s': shard dim %d outside 0..%d", name, dim, t->ndim - 1);
    d->shard_dim = dim;
    d->shard_ranks = nranks;
    return CKPT_OK;
}

int ckpt_writer_set_attrs(ckpt_writer *w, const ckpt_state *attrs)
{
    if (!w || !attrs)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_set_attrs: NULL argument");
    return ckpt_state_copy_attrs(w->attrs, attrs);
}

int ckpt_writer_set_max_open_files(ckpt_writer *w, int n)
{
    if (!w || n < 1)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_set_max_open_files: need a writer and n >= 1");
    w->max_open = n;
    return w->fc.e ? ckpt_fc_set_cap(&w->fc, n) : CKPT_OK;
}

/* ---- planning ---- */

static int open_data_file(int64_t id, hid_t *out, void *arg);
static void close_dataset_cb(ckpt_fc_entry *e, void *arg);

static int cmp_rank(const void *a, const void *b)
{
    const ckpt_plan_box *x = a, *y = b;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* Tries the grid rounds on one tensor's declared boxes (sorted by rank here). */
static int recognise_grid(ckpt_writer *w, ckpt_itensor *t, wdecl *d)
{
    if (d->nboxes > 0)
        qsort(d->boxes, (size_t)d->nboxes, sizeof *d->boxes, cmp_rank);
    ckpt_box *boxes = malloc(((size_t)d->nboxes + 1) * sizeof *boxes);
    int64_t *scratch = malloc(((size_t)d->nboxes + 1) * sizeof *scratch);
    if (!boxes || !scratch) {
        free(boxes);
        free(scratch);
        return -2;
    }
    for (int64_t i = 0; i < d->nboxes; i++)
        boxes[i] = d->boxes[i].box;
    ckpt_grid_acc acc;
    ckpt_grid g;
    int ok = 0;
    for (int round = 1; round <= 3; round++) {
        ckpt_grid_acc_init(&acc, round);
        for (int64_t i = 0; i < d->nboxes;) {
            int64_t k = i;
            while (k < d->nboxes && d->boxes[k].rank == d->boxes[i].rank)
                k++;
            if (round == 1)
                ckpt_grid_round1(&acc, boxes + i, k - i);
            else if (round == 2)
                ckpt_grid_round2(&acc, &g, d->boxes[i].rank, boxes + i, k - i);
            else
                ckpt_grid_round3(&acc, &g, d->boxes[i].rank, boxes + i, k - i, scratch);
            i = k;
        }
        if (round == 1)
            ckpt_grid_propose(t, &acc, &g);
        else if (round == 2 && ckpt_grid_writers(&g, &acc, w->world) != 0)
            break;
        else if (round == 3)
            ok = ckpt_grid_holds(&g, &acc);
    }
    free(boxes);
    free(scratch);
    if (ok) {
        t->sharding = CKPT_SHARDING_GRID;
        t->grid = g;
    }
    return ok;
}

static int plan(ckpt_writer *w)
{
    ckpt_index *ix;
    int rc = ckpt_index_new(&ix);
    if (rc)
        return rc;
    w->ix = ix;
    ix->layout = w->o.layout;
    ix->world_size = w->world;
    ix->piece_bytes = w->o.piece_bytes;
    ckpt_plan_compression(ix, &w->o);
    /* tensors in name order */
    ckpt_wire decls = {0};
    ckpt_plan_encode_decls(w->decl, 0, &decls);
    rc = decls.failed ? ckpt_error(CKPT_ENOMEM, "out of memory planning") : ckpt_plan_decode_decls(&decls, ix);
    ckpt_wire_free(&decls);
    int64_t nexplicit = 0;
    for (int64_t i = 0; rc == CKPT_OK && i < ix->ntensors; i++) {
        ckpt_itensor *t = &ix->tensors[i];
        ckpt_stensor *st;
        wdecl *d;
        find_decl(w, t->name, "plan", &st, &d);
        if (d->shard_ranks) {
            memset(&t->grid, 0, sizeof t->grid);
            t->grid.ndim = t->ndim;
            for (int k = 0; k < t->ndim; k++) {
                t->grid.shape[k] = t->shape[k];
                t->grid.chunk[k] = t->shape[k] > 0 ? t->shape[k] : 1;
            }
            if (t->ndim > 0 && t->shape[d->shard_dim] > 0) {
                int64_t n = t->shape[d->shard_dim];
                t->grid.chunk[d->shard_dim] = (n + d->shard_ranks - 1) / d->shard_ranks;
                t->grid.stride[d->shard_dim] = 1;
            }
            t->sharding = CKPT_SHARDING_GRID;
            if (ckpt_grid_init(&t->grid, w->world) != 0)
                rc = ckpt_error(CKPT_EINVAL, "tensor '%s': no valid Shard(%d) over %d ranks", t->name, d->shard_dim,
                                d->shard_ranks);
            continue;
        }
        int g = recognise_grid(w, t, d);
        if (g == -2)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory planning '%s'", t->name);
        else if (!g) {
            t->sharding = CKPT_SHARDING_EXPLICIT;
            nexplicit += d->nboxes;
        }
    }
    ckpt_plan_box *all = NULL;
    int64_t *assign = NULL;
    if (rc == CKPT_OK) {
        all = malloc(((size_t)nexplicit + 1) * sizeof *all);
        assign = malloc(((size_t)nexplicit + 1) * sizeof *assign);
        if (!all || !assign)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory planning %" PRId64 " boxes", nexplicit);
    }
    int64_t k = 0;
    for (int64_t i = 0; rc == CKPT_OK && i < ix->ntensors; i++) {
        ckpt_itensor *t = &ix->tensors[i];
        ckpt_stensor *st;
        wdecl *d;
        find_decl(w, t->name, "plan", &st, &d);
        if (t->sharding == CKPT_SHARDING_EXPLICIT)
            for (int64_t j = 0; j < d->nboxes; j++) {
                all[k] = d->boxes[j];
                all[k].tensor = (int32_t)i;
                all[k].slot = k;
                k++;
            }
        free(d->boxes); /* the plan replaces the declarations */
        d->boxes = NULL;
        d->nboxes = d->cap = 0;
    }
    if (rc == CKPT_OK)
        rc = ckpt_plan_explicit(ix, all, nexplicit, assign);
    free(all);
    free(assign);
    if (rc == CKPT_OK && ix->layout == CKPT_LAYOUT_GROUP) {
        int64_t K = w->o.group_size, n = (w->world + K - 1) / K;
        ix->groups = calloc((size_t)n, sizeof *ix->groups);
        if (!ix->groups)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory planning");
        for (int64_t g = 0; rc == CKPT_OK && g < n; g++) {
            ix->groups[g].first_rank = g * K;
            ix->groups[g].nranks = (g + 1) * K <= w->world ? K : w->world - g * K;
            ix->groups[g].group = g;
        }
        ix->ngroups = n;
    }
    if (rc == CKPT_OK)
        rc = ckpt_state_copy_attrs(ix->attrs, w->attrs);
    if (rc == CKPT_OK)
        rc = ckpt_plan_assemble(ix, w->path, 1);
    /* every piece's place in the written-bitmap */
    if (rc == CKPT_OK) {
        w->tslot = calloc((size_t)ix->ntensors + 1, sizeof *w->tslot);
        w->rslot = calloc((size_t)ix->nrows + 1, sizeof *w->rslot);
        if (!w->tslot || !w->rslot)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory planning");
    }
    for (int64_t i = 0; rc == CKPT_OK && i < ix->ntensors; i++) {
        ckpt_itensor *t = &ix->tensors[i];
        w->tslot[i] = w->nslots;
        if (t->sharding == CKPT_SHARDING_GRID) {
            w->nslots += t->nboxes * ckpt_grid_max_pieces(&t->grid, ckpt_dtype_size(t->dtype), ix->piece_bytes);
        } else {
            for (int64_t j = 0; j < t->nboxes; j++) {
                ckpt_boxref b;
                ckpt_index_box(ix, i, j, &b);
                w->rslot[t->first_row + j] = w->nslots - w->tslot[i];
                w->nslots += b.pieces.count;
            }
        }
    }
    if (rc == CKPT_OK && !(w->written = calloc((size_t)(w->nslots / 8 + 1), 1)))
        rc = ckpt_error(CKPT_ENOMEM, "out of memory planning");
    if (rc == CKPT_OK) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
        rc = ckpt_commit_prepare(w->path, w->o.overwrite, nonce, w->tmp, sizeof w->tmp);
        if (rc)
            w->tmp[0] = '\0';
        else if ((w->dirfd = ckpt_sys_open_dir(w->tmp, 1)) < 0)
            rc = ckpt_error(CKPT_EIO, "cannot open directory '%s': %s", w->tmp, strerror(-w->dirfd));
    }
    if (rc == CKPT_OK)
        rc = ckpt_fc_init(&w->fc, w->max_open, open_data_file, w, w->tmp);
    if (rc == CKPT_OK)
        w->fc.on_close = close_dataset_cb;
    if (rc) /* a half-built plan is never used: the writer can only be aborted now */
        w->failed = 1;
    return rc;
}

/* ---- data files ---- */

static wfile *file_state(ckpt_writer *w, int64_t id)
{
    int64_t lo = 0, hi = w->nfiles;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (w->files[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < w->nfiles && w->files[lo].id == id)
        return &w->files[lo];
    if (w->nfiles == w->files_cap) {
        int64_t nc = w->files_cap ? w->files_cap * 2 : 16;
        wfile *n = realloc(w->files, (size_t)nc * sizeof *n);
        if (!n)
            return NULL;
        w->files = n;
        w->files_cap = nc;
    }
    memmove(&w->files[lo + 1], &w->files[lo], (size_t)(w->nfiles - lo) * sizeof *w->files);
    memset(&w->files[lo], 0, sizeof w->files[lo]);
    w->files[lo].id = id;
    w->nfiles++;
    return &w->files[lo];
}

static int open_data_file(int64_t id, hid_t *out, void *arg)
{
    ckpt_writer *w = arg;
    wfile *f = file_state(w, id);
    if (!f)
        return ckpt_error(CKPT_ENOMEM, "out of memory tracking data files");
    char name[64], fpath[4200];
    ckpt_index_file_name(w->ix, id, name, sizeof name);
    snprintf(fpath, sizeof fpath, "%s/%s", w->tmp, name);
    ckpt_h5_lock();
    errno = 0;
    hid_t fapl = ckpt_h5_data_fapl(w->dirfd);
    if (fapl < 0)
        *out = -1;
    else if (f->created)
        *out = H5Fopen(name, H5F_ACC_RDWR, fapl);
    else
        *out = H5Fcreate(name, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    char detail[400] = "";
    if (*out < 0) /* before another HDF5 call clears the error stack */
        ckpt_error_hdf5_detail(detail, sizeof detail);
    if (fapl >= 0)
        H5Pclose(fapl);
    int rc = CKPT_OK;
    if (*out < 0 && (strstr(detail, "Too many open files") || strstr(detail, "EMFILE")))
        rc = ckpt_error(CKPT_EIO, "cannot open data file '%s': out of file descriptors (Too many open files; this "
                        "writer keeps at most %d files open: lower CKPT_MAX_OPEN_FILES or raise ulimit -n)", fpath,
                        w->fc.cap);
    else if (*out < 0)
        rc = ckpt_error(CKPT_EIO, "cannot %s data file '%s'%s", f->created ? "reopen" : "create", fpath, detail);
    ckpt_h5_unlock();
    if (rc == CKPT_OK)
        f->created = 1;
    return rc;
}

static int64_t box_key(const ckpt_writer *w, const ckpt_boxref *b)
{
    return w->ix->layout == CKPT_LAYOUT_SHARED ? b->tensor : b->gid;
}

static int64_t piece_slot(const ckpt_writer *w, const ckpt_boxref *b, int64_t k)
{
    const ckpt_itensor *t = &w->ix->tensors[b->tensor];
    int64_t base = w->tslot[b->tensor];
    if (t->sharding == CKPT_SHARDING_GRID)
        base += b->j * ckpt_grid_max_pieces(&t->grid, ckpt_dtype_size(t->dtype), w->ix->piece_bytes);
    else
        base += w->rslot[t->first_row + b->j];
    return base + k;
}

static int is_written(const ckpt_writer *w, int64_t s) { return (w->written[s >> 3] >> (s & 7)) & 1; }

/* 1 when no piece of box b was written yet (its dataset does not exist). */
static int box_untouched(const ckpt_writer *w, const ckpt_boxref *b)
{
    for (int64_t k = 0; k < b->pieces.count; k++)
        if (is_written(w, piece_slot(w, b, k)))
            return 0;
    return 1;
}

static int box_complete(const ckpt_writer *w, const ckpt_boxref *b)
{
    for (int64_t k = 0; k < b->pieces.count; k++)
        if (!is_written(w, piece_slot(w, b, k)))
            return 0;
    return 1;
}

/* Closes the entry's dataset; a finished box's dataset adds its storage to its tensor. */
static void close_dataset(ckpt_writer *w, ckpt_fc_entry *e)
{
    if (e->dset < 0)
        return;
    if (w->ix->layout != CKPT_LAYOUT_SHARED) {
        int64_t gid = e->dset_key;
        int64_t lo = 0, hi = w->ix->ntensors; /* the tensor owning gid */
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (w->ix->tensors[mid].first_box <= gid)
                lo = mid;
            else
                hi = mid;
        }
        ckpt_boxref b;
        ckpt_index_box(w->ix, lo, gid - w->ix->tensors[lo].first_box, &b);
        if (box_complete(w, &b)) {
            ckpt_h5_lock();
            w->ix->tensors[lo].stored_bytes += (int64_t)H5Dget_storage_size(e->dset);
            ckpt_h5_unlock();
        }
    }
    ckpt_fc_drop_dataset(e);
}

static void close_dataset_cb(ckpt_fc_entry *e, void *arg) { close_dataset(arg, e); }

/* The chunk dims of the dataset holding box b. */
static void chunk_of(const ckpt_writer *w, const ckpt_boxref *b, int64_t *ch)
{
    const ckpt_itensor *t = &w->ix->tensors[b->tensor];
    memset(ch, 0, sizeof(int64_t) * CKPT_MAX_NDIM);
    if (w->ix->layout == CKPT_LAYOUT_SHARED) {
        if (t->nboxes == 0)
            return;
        if (t->sharding == CKPT_SHARDING_GRID) {
            ckpt_shared_chunk(t->ndim, t->shape, ckpt_dtype_size(t->dtype), NULL, 0, t->grid.chunk,
                              w->ix->piece_bytes, ch);
        } else {
            ckpt_box *boxes = malloc(((size_t)t->nboxes + 1) * sizeof *boxes);
            for (int64_t j = 0; boxes && j < t->nboxes; j++)
                boxes[j] = w->ix->rows[t->first_row + j].box;
            if (boxes)
                ckpt_shared_chunk(t->ndim, t->shape, ckpt_dtype_size(t->dtype), boxes, t->nboxes, NULL,
                                  w->ix->piece_bytes, ch);
            free(boxes);
        }
        return;
    }
    for (int d = 0; d < t->ndim; d++)
        ch[d] = d < b->pieces.dim ? 1 : d == b->pieces.dim ? b->pieces.len : b->box.ext[d];
}

/* Opens (creating on first use) the dataset holding box b; *e is its file's cache entry. */
static int dataset_of(ckpt_writer *w, const ckpt_boxref *b, ckpt_fc_entry **e)
{
    int rc = ckpt_fc_get(&w->fc, b->file, e);
    if (rc)
        return rc;
    int64_t key = box_key(w, b);
    if ((*e)->dset >= 0 && (*e)->dset_key == key)
        return CKPT_OK;
    close_dataset(w, *e);
    const ckpt_itensor *t = &w->ix->tensors[b->tensor];
    char dsname[CKPT_MAX_NAME + 32], fname[64];
    ckpt_index_dataset(w->ix, b, dsname, sizeof dsname);
    ckpt_index_file_name(w->ix, b->file, fname, sizeof fname);
    int shared = w->ix->layout == CKPT_LAYOUT_SHARED;
    int create = !shared && box_untouched(w, b);
    hid_t ds = -1;
    ckpt_h5_lock();
    if (shared) {
        /* the shared file holds every tensor's dataset, created at plan time (see ensure_shared) */
        hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
        H5Pset_chunk_cache(dapl, 521, (size_t)w->ix->piece_bytes * 2, 1.0);
        ds = H5Dopen2((*e)->file, dsname, dapl);
        H5Pclose(dapl);
    } else if (!create) {
        hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
        H5Pset_chunk_cache(dapl, 0, 0, 1.0);
        ds = H5Dopen2((*e)->file, dsname, dapl);
        H5Pclose(dapl);
    } else {
        wfile *f = file_state(w, b->file);
        ckpt_write_item it;
        memset(&it, 0, sizeof it);
        it.tensor = t->name;
        it.dataset = dsname;
        it.dtype = t->dtype;
        it.box = b->box;
        it.pieces = b->pieces;
        it.first_piece = f ? f->next_slot : 0;
        ckpt_io_codec codec = {w->o.compress, w->o.level, w->o.shuffle, 1};
        rc = f ? ckpt_io_create_box_dataset((*e)->file, &it, &codec, fname, &ds)
               : ckpt_error(CKPT_ENOMEM, "out of memory tracking data files");
        if (rc == CKPT_OK) {
            f->next_slot += b->pieces.count;
            (*e)->dset_first_piece = it.first_piece;
        }
    }
    ckpt_h5_unlock();
    if (rc)
        return rc;
    if (ds < 0) {
        char detail[300];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        return ckpt_error(CKPT_EIO, "cannot open dataset %s in '%s/%s'%s", dsname, w->tmp, fname, detail);
    }
    (*e)->dset = ds;
    (*e)->dset_key = key;
    if (!shared && !create) {
        ckpt_h5_lock();
        int ok = ckpt_h5_read_attr_i64(ds, "first_piece", &(*e)->dset_first_piece) == 0;
        ckpt_h5_unlock();
        if (!ok)
            return ckpt_error(CKPT_EIO, "dataset %s in '%s/%s' lost its first_piece attribute", dsname, w->tmp, fname);
    }
    return CKPT_OK;
}

/* Grows a file's checksum table to hold n entries (new ones zero). */
static int ensure_sums(wfile *f, int64_t n)
{
    if (n <= f->sums_cap)
        return CKPT_OK;
    int64_t nc = f->sums_cap ? f->sums_cap : 64;
    while (nc < n)
        nc *= 2;
    uint64_t *p = realloc(f->sums, (size_t)nc * sizeof *p);
    if (!p)
        return ckpt_error(CKPT_ENOMEM, "out of memory for %lld checksums", (long long)nc);
    memset(p + f->sums_cap, 0, (size_t)(nc - f->sums_cap) * sizeof *p);
    f->sums = p;
    f->sums_cap = nc;
    return CKPT_OK;
}

/* Records a piece's checksum at slot s of its file's table. */
static int record_sum(ckpt_writer *w, int64_t file, int64_t s, uint64_t sum)
{
    wfile *f = file_state(w, file);
    if (!f)
        return ckpt_error(CKPT_ENOMEM, "out of memory tracking data files");
    int rc = ensure_sums(f, s + 1);
    if (rc == CKPT_OK)
        f->sums[s] = sum;
    return rc;
}

/* Creates every tensor's dataset in the shared file (also those without boxes). */
static int ensure_shared(ckpt_writer *w)
{
    if (w->ix->layout != CKPT_LAYOUT_SHARED || w->shared_ready)
        return CKPT_OK;
    w->shared_ready = 1;
    ckpt_fc_entry *e;
    int rc = ckpt_fc_get(&w->fc, 0, &e);
    ckpt_h5_lock();
    for (int64_t ti = 0; rc == CKPT_OK && ti < w->ix->ntensors; ti++) {
        const ckpt_itensor *t = &w->ix->tensors[ti];
        int nd = t->ndim;
        ckpt_boxref b;
        memset(&b, 0, sizeof b);
        b.tensor = ti;
        int64_t ch[CKPT_MAX_NDIM];
        chunk_of(w, &b, ch);
        hsize_t dims[CKPT_MAX_NDIM], chunk[CKPT_MAX_NDIM];
        for (int d = 0; d < nd; d++) {
            dims[d] = (hsize_t)t->shape[d];
            chunk[d] = (hsize_t)ch[d];
        }
        hid_t sp = nd ? H5Screate_simple(nd, dims, NULL) : H5Screate(H5S_SCALAR);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), lcpl = H5Pcreate(H5P_LINK_CREATE);
        H5Pset_create_intermediate_group(lcpl, 1);
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
        if (nd > 0 && ch[0] > 0) {
            H5Pset_chunk(dcpl, nd, chunk);
            if (w->o.compress == CKPT_COMPRESS_ZSTD && ckpt_codec_set_dcpl(dcpl, w->o.level, w->o.shuffle) < 0)
                rc = ckpt_error(CKPT_EINVAL, "cannot set up zstd level %d", w->o.level);
        }
        char dsname[CKPT_MAX_NAME + 32];
        ckpt_shared_dataset(t->name, dsname, sizeof dsname);
        hid_t ds = rc ? -1 : H5Dcreate2(e->file, dsname, ckpt_h5_type(t->dtype), sp, lcpl, dcpl, H5P_DEFAULT);
        if (rc == CKPT_OK && (ds < 0 || ckpt_h5_attr_str(ds, "dtype", ckpt_dtype_name(t->dtype)) < 0)) {
            char detail[300];
            ckpt_error_hdf5_detail(detail, sizeof detail);
            rc = ckpt_error(CKPT_EIO, "cannot create dataset %s in '%s/%s'%s", dsname, w->tmp, CKPT_SHARED_FILE, detail);
        }
        if (ds >= 0)
            H5Dclose(ds);
        H5Pclose(lcpl);
        H5Pclose(dcpl);
        H5Sclose(sp);
    }
    ckpt_h5_unlock();
    return rc;
}

typedef struct piece_job {
    ckpt_writer *w;
    const ckpt_boxref *b;
    const ckpt_box *region;
    const void *data;
    ckpt_fc_entry *e;
} piece_job;

static int write_piece(int64_t k, const ckpt_box *piece, void *arg)
{
    piece_job *p = arg;
    ckpt_writer *w = p->w;
    const ckpt_boxref *b = p->b;
    const ckpt_itensor *t = &w->ix->tensors[b->tensor];
    char bs[512], rs[512];
    if (!ckpt_box_contains(p->region, piece))
        return ckpt_error(CKPT_EINVAL,
                          "tensor '%s': region %s does not consist of whole pieces of box %s (piece %lld is %s); "
                          "write pieces as ckpt_writer_box_piece describes", t->name,
                          ckpt_box_str(p->region, rs, sizeof rs), ckpt_box_str(&b->box, bs, sizeof bs),
                          (long long)k, ckpt_box_str(piece, bs, sizeof bs));
    int64_t s = piece_slot(w, b, k);
    if (is_written(w, s))
        return ckpt_error(CKPT_EINVAL, "tensor '%s': piece %lld of box %s written twice", t->name, (long long)k,
                          ckpt_box_str(&b->box, bs, sizeof bs));
    size_t es = ckpt_dtype_size(t->dtype), n = (size_t)ckpt_box_volume(piece) * es;
    const unsigned char *src;
    if (ckpt_box_region_contiguous(p->region, piece)) {
        int64_t lin = t->ndim ? ckpt_box_linear(p->region, piece->off) : 0;
        src = (const unsigned char *)p->data + lin * (int64_t)es;
    } else {
        if (n > w->buf_cap) {
            unsigned char *nb = realloc(w->buf, n);
            if (!nb)
                return ckpt_error(CKPT_ENOMEM, "out of memory writing '%s'", t->name);
            w->buf = nb;
            w->buf_cap = n;
        }
        ckpt_box_copy(piece, p->region, p->data, t->dtype, piece, w->buf, t->dtype);
        src = w->buf;
    }
    int64_t table_slot = w->ix->layout == CKPT_LAYOUT_SHARED ? b->sum_base + k : p->e->dset_first_piece + k;
    int rc = record_sum(w, b->file, table_slot, ckpt_piece_checksum(src, n));
    if (rc)
        return rc;
    ckpt_h5_lock();
    int nd = t->ndim;
    ckpt_box origin;
    ckpt_index_dataset_box(w->ix, b, &origin);
    hid_t fs = H5Dget_space(p->e->dset), ms;
    if (nd) {
        hsize_t start[CKPT_MAX_NDIM], count[CKPT_MAX_NDIM];
        for (int d = 0; d < nd; d++) {
            start[d] = (hsize_t)(piece->off[d] - origin.off[d]);
            count[d] = (hsize_t)piece->ext[d];
        }
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        ms = H5Screate_simple(nd, count, NULL);
    } else {
        ms = H5Screate(H5S_SCALAR);
    }
    if (H5Dwrite(p->e->dset, ckpt_h5_type(t->dtype), ms, fs, H5P_DEFAULT, src) < 0) {
        char detail[300], fname[64];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        ckpt_index_file_name(w->ix, b->file, fname, sizeof fname);
        rc = ckpt_error(CKPT_EIO, "cannot write tensor '%s' to %s%s", t->name, fname, detail);
    }
    H5Sclose(ms);
    H5Sclose(fs);
    ckpt_h5_unlock();
    if (rc == CKPT_OK)
        w->written[s >> 3] |= (unsigned char)(1u << (s & 7));
    return rc;
}

/* The saved box that holds the whole region (the first found), for ckpt_writer_write. */
typedef struct find_box {
    const ckpt_box *region;
    ckpt_boxref b;
    int found;
} find_box;

static int containing(const ckpt_boxref *b, void *arg)
{
    find_box *f = arg;
    if (!ckpt_box_contains(&b->box, f->region))
        return 0;
    f->b = *b;
    f->found = 1;
    return 1;
}

static int ready(ckpt_writer *w)
{
    if (w->failed)
        return ckpt_error(CKPT_EINVAL, "writer for '%s' failed earlier and must be aborted", w->path);
    int rc = w->ix ? CKPT_OK : plan(w);
    if (rc == CKPT_OK)
        rc = ensure_shared(w);
    if (rc)
        w->failed = 1;
    return rc;
}

int ckpt_writer_write(ckpt_writer *w, const char *name, const int64_t *offset, const int64_t *extent,
                      const void *data)
{
    if (!w || !name)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_write: writer or name is NULL");
    int rc = ready(w);
    if (rc)
        return rc;
    int64_t ti = ckpt_strmap_get(&w->ix->by_name, name);
    if (ti < 0)
        return ckpt_error(CKPT_ENOTFOUND, "ckpt_writer_write: tensor '%s' was not declared", name);
    const ckpt_itensor *t = &w->ix->tensors[ti];
    if (t->ndim > 0 && (!offset || !extent))
        return ckpt_error(CKPT_EINVAL, "tensor '%s': offset or extent is NULL", name);
    ckpt_box region;
    ckpt_box_set(&region, t->ndim, offset, extent);
    if (ckpt_box_volume(&region) == 0)
        return CKPT_OK;
    if (!data)
        return ckpt_error(CKPT_EINVAL, "tensor '%s': data is NULL", name);
    find_box fb;
    memset(&fb, 0, sizeof fb);
    fb.region = &region;
    char rs[512];
    if (!ckpt_box_in_shape(&region, t->shape) ||
        (rc = ckpt_index_foreach_in(w->ix, ti, &region, containing, &fb)) < 0 || !fb.found)
        return rc < 0 ? rc
                      : ckpt_error(CKPT_EINVAL, "tensor '%s': region %s lies in no single declared box", name,
                                   ckpt_box_str(&region, rs, sizeof rs));
    ckpt_fc_entry *e;
    if ((rc = dataset_of(w, &fb.b, &e)) != CKPT_OK) {
        w->failed = 1;
        return rc;
    }
    piece_job job = {w, &fb.b, &region, data, e};
    rc = ckpt_pieces_foreach(&fb.b.box, &fb.b.pieces, &region, write_piece, &job);
    char why[600];
    ckpt_h5_lock();
    int err = rc == CKPT_OK ? ckpt_vfd_error(e->file, why, sizeof why) : 0;
    ckpt_h5_unlock();
    if (err < 0 && err != -EINVAL) { /* the driver kept a write that did not reach the disk */
        char fname[64];
        ckpt_index_file_name(w->ix, fb.b.file, fname, sizeof fname);
        rc = ckpt_error(CKPT_EIO, "cannot write data file '%s/%s'%s", w->tmp, fname, why);
    }
    if (rc && rc != CKPT_EINVAL)
        w->failed = 1;
    return rc;
}

/* The planned index entry of a tensor (planning now if needed). */
static int planned_tensor(ckpt_writer *w, const char *name, int64_t *ti)
{
    int rc = ready(w);
    if (rc)
        return rc;
    *ti = ckpt_strmap_get(&w->ix->by_name, name);
    if (*ti < 0)
        return ckpt_error(CKPT_ENOTFOUND, "tensor '%s' was not declared", name);
    return CKPT_OK;
}

int ckpt_writer_num_boxes(ckpt_writer *w, const char *name, int64_t *nboxes)
{
    if (!w || !name || !nboxes)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_num_boxes: NULL argument");
    int64_t ti;
    int rc = planned_tensor(w, name, &ti);
    if (rc == CKPT_OK)
        *nboxes = w->ix->tensors[ti].nboxes;
    return rc;
}

int ckpt_writer_box_piece(ckpt_writer *w, const char *name, int64_t j, int64_t k, int64_t *offset, int64_t *extent,
                          int64_t *npieces)
{
    if (!w || !name)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_box_piece: writer or name is NULL");
    int64_t ti;
    int rc = planned_tensor(w, name, &ti);
    if (rc)
        return rc;
    const ckpt_itensor *t = &w->ix->tensors[ti];
    if (j < 0 || j >= t->nboxes)
        return ckpt_error(CKPT_ENOTFOUND, "tensor '%s' has %lld saved boxes, not %lld", name, (long long)t->nboxes,
                          (long long)j + 1);
    ckpt_boxref b;
    ckpt_index_box(w->ix, ti, j, &b);
    if (npieces)
        *npieces = b.pieces.count;
    if (k < 0 || k >= b.pieces.count)
        return k < 0 && npieces ? CKPT_OK
                                : ckpt_error(CKPT_ENOTFOUND, "box %lld of '%s' has %lld pieces", (long long)j, name,
                                             (long long)b.pieces.count);
    ckpt_box pb;
    ckpt_piece_box(&b.box, &b.pieces, k, &pb);
    for (int d = 0; d < t->ndim; d++) {
        if (offset)
            offset[d] = pb.off[d];
        if (extent)
            extent[d] = pb.ext[d];
    }
    return CKPT_OK;
}

/* Every piece written? Names the first that was not. */
static int check_complete(ckpt_writer *w)
{
    char bs[512];
    for (int64_t ti = 0; ti < w->ix->ntensors; ti++)
        for (int64_t j = 0; j < w->ix->tensors[ti].nboxes; j++) {
            ckpt_boxref b;
            ckpt_index_box(w->ix, ti, j, &b);
            for (int64_t k = 0; k < b.pieces.count; k++)
                if (!is_written(w, piece_slot(w, &b, k)))
                    return ckpt_error(CKPT_ECOVERAGE, "tensor '%s': piece %lld of box %s was never written",
                                      w->ix->tensors[ti].name, (long long)k, ckpt_box_str(&b.box, bs, sizeof bs));
        }
    return CKPT_OK;
}

int ckpt_writer_commit(ckpt_writer *w)
{
    if (!w)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_commit: writer is NULL");
    int rc = ready(w);
    if (rc == CKPT_OK)
        rc = check_complete(w);
    /* close the datasets (their storage counts), then write each file's checksum table */
    for (int i = 0; rc == CKPT_OK && i < w->fc.n; i++)
        close_dataset(w, &w->fc.e[i]);
    for (int64_t i = 0; rc == CKPT_OK && i < w->nfiles; i++) {
        wfile *f = &w->files[i];
        ckpt_fc_entry *e;
        char fname[64];
        ckpt_index_file_name(w->ix, f->id, fname, sizeof fname);
        rc = ckpt_fc_get(&w->fc, f->id, &e);
        if (rc == CKPT_OK && w->ix->layout == CKPT_LAYOUT_SHARED) {
            ckpt_h5_lock();
            for (int64_t ti = 0; ti < w->ix->ntensors; ti++) {
                char dsname[CKPT_MAX_NAME + 32];
                ckpt_shared_dataset(w->ix->tensors[ti].name, dsname, sizeof dsname);
                hid_t ds = H5Dopen2(e->file, dsname, H5P_DEFAULT);
                if (ds >= 0) {
                    w->ix->tensors[ti].stored_bytes = (int64_t)H5Dget_storage_size(ds);
                    H5Dclose(ds);
                }
            }
            ckpt_h5_unlock();
            /* every slot, also the padding of grids whose edge boxes have fewer pieces */
            int64_t total = 0;
            for (int64_t ti = 0; ti < w->ix->ntensors; ti++)
                total += w->ix->tensors[ti].nslots;
            rc = ensure_sums(f, total);
            f->next_slot = total;
        }
        if (rc == CKPT_OK) {
            ckpt_h5_lock();
            rc = ckpt_io_write_checksums(e->file, f->sums, f->next_slot, fname);
            ckpt_h5_unlock();
        }
    }
    if (rc == CKPT_OK && ckpt_fc_close_all(&w->fc) != 0)
        rc = ckpt_error(CKPT_EIO, "cannot write the data files of '%s'%s", w->tmp, w->fc.why);
    for (int64_t i = 0; rc == CKPT_OK && w->o.fsync && i < w->nfiles; i++) {
        char fname[64];
        ckpt_index_file_name(w->ix, w->files[i].id, fname, sizeof fname);
        int err = ckpt_sys_fsync_in(w->dirfd, fname);
        if (err)
            rc = ckpt_error(CKPT_EIO, "fsync of '%s/%s' failed: %s", w->tmp, fname, strerror(-err));
    }
    if (rc == CKPT_OK) {
        char ipath[4200];
        snprintf(ipath, sizeof ipath, "%s/%s", w->tmp, CKPT_INDEX_FILE);
        rc = ckpt_index_write(w->ix, ipath);
        if (rc == CKPT_OK)
            rc = ckpt_commit_finish(w->tmp, w->path, w->o.overwrite, w->o.fsync);
        if (rc == CKPT_OK)
            w->tmp[0] = '\0';
    }
    ckpt_writer_abort(w); /* frees; removes the temporary directory unless committed */
    return rc;
}
