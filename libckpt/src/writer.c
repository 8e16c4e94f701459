/* writer.c -- one process writes the checkpoint that `world_size` ranks would have written:
 * the offline half of resharding, merging and format conversion. Boxes are declared with the
 * rank that owns them, planned by the same planner as ckpt_save, then filled piece by piece
 * (so memory stays at one piece), and committed atomically like any save. */
#include "ckpt.h"
#include "codec_zstd.h"
#include "commit.h"
#include "dtype.h"
#include "error.h"
#include "h5util.h"
#include "io_shared.h"
#include "meta.h"
#include "piece.h"
#include "plan.h"
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ckpt_writer {
    char path[4096], tmp[4096];
    int world;
    ckpt_save_options o;
    ckpt_state **ranks; /* declarations per virtual rank (data pointers are placeholders) */
    ckpt_state *attrs;
    ckpt_index *ix; /* after planning */
    hid_t *files;   /* per index file */
    hid_t *dsets;   /* per box (file-per-rank) or per tensor (shared) */
    unsigned char *written; /* per piece */
    unsigned char *buf;
    size_t buf_cap;
    int failed;
};

static char placeholder; /* boxes are declared before their data exists */

void ckpt_writer_abort(ckpt_writer *w)
{
    if (!w)
        return;
    ckpt_h5_lock();
    if (w->ix) {
        int64_t nd = w->ix->layout == CKPT_LAYOUT_SHARED ? w->ix->ntensors : w->ix->nboxes;
        for (int64_t i = 0; w->dsets && i < nd; i++)
            if (w->dsets[i] >= 0)
                H5Dclose(w->dsets[i]);
        for (int i = 0; w->files && i < w->ix->nfiles; i++)
            if (w->files[i] >= 0)
                H5Fclose(w->files[i]);
    }
    ckpt_h5_unlock();
    if (w->tmp[0])
        ckpt_remove_tree(w->tmp);
    for (int r = 0; w->ranks && r < w->world; r++)
        ckpt_state_free(w->ranks[r]);
    free(w->ranks);
    ckpt_state_free(w->attrs);
    ckpt_index_free(w->ix);
    free(w->files);
    free(w->dsets);
    free(w->written);
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
    if (opts)
        o = *opts;
    else
        ckpt_save_options_init(&o);
    if (o.version != CKPT_SAVE_OPTIONS_VERSION)
        return ckpt_error(CKPT_EINVAL, "save options version %u; this library expects %d", o.version,
                          CKPT_SAVE_OPTIONS_VERSION);
    if (o.layout != CKPT_LAYOUT_PER_RANK && o.layout != CKPT_LAYOUT_SHARED)
        return ckpt_error(CKPT_EINVAL, "unknown layout %d", (int)o.layout);
    if (o.compress == CKPT_COMPRESS_ZSTD && !ckpt_codec_zstd_level_valid(o.level))
        return ckpt_error(CKPT_EINVAL, "zstd level %d is not valid", o.level);
    if (o.piece_bytes < 64 || o.piece_bytes > (1LL << 30))
        return ckpt_error(CKPT_EINVAL, "piece_bytes %lld outside 64..%lld", (long long)o.piece_bytes, 1LL << 30);
    ckpt_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ckpt_error(CKPT_ENOMEM, "out of memory opening a writer");
    w->o = o;
    snprintf(w->path, sizeof w->path, "%s", path);
    w->world = world_size;
    w->ranks = calloc((size_t)world_size, sizeof *w->ranks);
    int rc = w->ranks ? ckpt_state_create(&w->attrs) : ckpt_error(CKPT_ENOMEM, "out of memory opening a writer");
    for (int r = 0; rc == CKPT_OK && r < world_size; r++)
        rc = ckpt_state_create(&w->ranks[r]);
    if (rc) {
        ckpt_writer_abort(w);
        return rc;
    }
    *out = w;
    return CKPT_OK;
}

static int frozen(const ckpt_writer *w)
{
    return w->ix ? ckpt_error(CKPT_EINVAL, "writer for '%s': declarations are closed once data is written", w->path)
                 : CKPT_OK;
}

int ckpt_writer_add_tensor(ckpt_writer *w, const char *name, ckpt_dtype dtype, int ndim, const int64_t *shape)
{
    if (!w)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_add_tensor: writer is NULL");
    int rc = frozen(w);
    /* declared on rank 0 so that a tensor no rank holds (zero-size) still reaches the plan */
    if (rc == CKPT_OK)
        rc = ckpt_state_add_tensor(w->ranks[0], name, dtype, ndim, shape, 0);
    return rc;
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
    ckpt_stensor *t = name ? ckpt_state_find(w->ranks[0], name) : NULL;
    if (!t)
        return ckpt_error(CKPT_ENOTFOUND, "ckpt_writer_add_box: tensor '%s' was not declared", name ? name : "(null)");
    if ((rc = ckpt_state_add_tensor(w->ranks[rank], name, t->dtype, t->ndim, t->shape, 0)) != CKPT_OK)
        return rc;
    return ckpt_state_add_box(w->ranks[rank], name, offset, extent, &placeholder);
}

int ckpt_writer_set_attrs(ckpt_writer *w, const ckpt_state *attrs)
{
    if (!w || !attrs)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_set_attrs: NULL argument");
    return ckpt_state_copy_attrs(w->attrs, attrs);
}

/* Plans the checkpoint from the declarations and creates the temporary directory. */
static int plan(ckpt_writer *w)
{
    ckpt_wire all = {0};
    size_t *lens = calloc((size_t)w->world, sizeof *lens);
    int64_t *assign = NULL, *assign_off = NULL;
    int rc = lens ? ckpt_index_new(&w->ix) : ckpt_error(CKPT_ENOMEM, "out of memory planning");
    for (int r = 0; rc == CKPT_OK && r < w->world; r++) {
        size_t before = all.len;
        ckpt_plan_encode_state(w->ranks[r], &all);
        lens[r] = all.len - before;
    }
    if (rc == CKPT_OK && all.failed)
        rc = ckpt_error(CKPT_ENOMEM, "out of memory planning");
    if (rc == CKPT_OK)
        rc = ckpt_plan_save(all.buf, lens, w->world, w->o.piece_bytes, w->ix, &assign, &assign_off);
    if (rc == CKPT_OK && w->o.layout == CKPT_LAYOUT_SHARED)
        rc = ckpt_plan_use_shared_file(w->ix);
    if (rc == CKPT_OK)
        rc = ckpt_state_copy_attrs(w->ix->attrs, w->attrs);
    if (rc == CKPT_OK) {
        if (w->o.compress == CKPT_COMPRESS_ZSTD)
            snprintf(w->ix->compression, sizeof w->ix->compression, "zstd:%d%s", w->o.level, w->o.shuffle ? "+shuffle" : "");
        else
            snprintf(w->ix->compression, sizeof w->ix->compression, "none");
        int64_t nd = w->o.layout == CKPT_LAYOUT_SHARED ? w->ix->ntensors : w->ix->nboxes;
        w->files = malloc(((size_t)w->ix->nfiles + 1) * sizeof *w->files);
        w->dsets = malloc(((size_t)nd + 1) * sizeof *w->dsets);
        w->written = calloc((size_t)w->ix->npieces + 1, 1);
        if (!w->files || !w->dsets || !w->written)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory planning");
        else {
            for (int i = 0; i < w->ix->nfiles; i++)
                w->files[i] = -1;
            for (int64_t i = 0; i < nd; i++)
                w->dsets[i] = -1;
        }
    }
    if (rc == CKPT_OK) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
        rc = ckpt_commit_prepare(w->path, w->o.overwrite, nonce, w->tmp, sizeof w->tmp);
        if (rc)
            w->tmp[0] = '\0';
    }
    free(assign);
    free(assign_off);
    free(lens);
    ckpt_wire_free(&all);
    if (rc) { /* a half-built plan is never used: the writer can only be aborted now */
        ckpt_index_free(w->ix);
        w->ix = NULL;
        w->failed = 1;
    }
    return rc;
}

/* Creates the dataset of tensor ti in the shared layout (boxes or not). */
static int tensor_dataset(ckpt_writer *w, int64_t ti);

/* Opens (creating on first use) the dataset that holds saved box bi; bi < 0 with the shared
 * layout: the dataset of tensor -bi-1, which may have no boxes. */
static int dataset_of(ckpt_writer *w, int64_t bi, hid_t *out)
{
    int shared = w->ix->layout == CKPT_LAYOUT_SHARED;
    int64_t ti = bi >= 0 ? w->ix->boxes[bi].tensor : -bi - 1;
    const ckpt_itensor *t = &w->ix->tensors[ti];
    ckpt_ibox none;
    memset(&none, 0, sizeof none);
    none.box.ndim = t->ndim;
    none.tensor = (int32_t)ti;
    char dsname[CKPT_MAX_NAME + 16];
    if (bi < 0) {
        ckpt_shared_dataset(t->name, dsname, sizeof dsname);
        none.dataset = dsname;
    }
    const ckpt_ibox *b = bi >= 0 ? &w->ix->boxes[bi] : &none;
    int64_t di = shared ? ti : bi;
    if (w->dsets[di] >= 0) {
        *out = w->dsets[di];
        return CKPT_OK;
    }
    char fpath[4200];
    snprintf(fpath, sizeof fpath, "%s/%s", w->tmp, w->ix->files[b->file]);
    int rc = CKPT_OK;
    ckpt_h5_lock();
    if (w->files[b->file] < 0) {
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST);
        w->files[b->file] = H5Fcreate(fpath, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
        H5Pclose(fapl);
    }
    int nd = t->ndim;
    ckpt_box dbox = b->box;
    if (shared)
        ckpt_box_set(&dbox, nd, NULL, t->shape);
    hsize_t dims[CKPT_MAX_NDIM], chunk[CKPT_MAX_NDIM];
    int64_t ch[CKPT_MAX_NDIM] = {0};
    if (shared && nd > 0) {
        ckpt_box *boxes = malloc(((size_t)t->nboxes + 1) * sizeof *boxes);
        for (int64_t j = 0; boxes && j < t->nboxes; j++)
            boxes[j] = w->ix->boxes[t->first_box + j].box;
        if (boxes)
            ckpt_shared_chunk(nd, t->shape, ckpt_dtype_size(t->dtype), boxes, t->nboxes, w->o.piece_bytes, ch);
        free(boxes);
    } else {
        for (int d = 0; d < nd; d++)
            ch[d] = d < b->piece_dim ? 1 : d == b->piece_dim ? b->piece_len : b->box.ext[d];
    }
    for (int d = 0; d < nd; d++) {
        dims[d] = (hsize_t)dbox.ext[d];
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
    hid_t ds = -1, dapl = H5Pcreate(H5P_DATASET_ACCESS);
    /* no chunk cache: whole pieces are written; with many datasets open a cache each would add up.
     * (the shared layout's chunks may straddle pieces: a small cache keeps those partial writes cheap) */
    H5Pset_chunk_cache(dapl, shared ? 521 : 0, shared ? (size_t)w->o.piece_bytes * 2 : 0, 1.0);
    if (rc == CKPT_OK && w->files[b->file] >= 0)
        ds = H5Dcreate2(w->files[b->file], b->dataset, ckpt_h5_type(t->dtype), sp, lcpl, dcpl, dapl);
    H5Pclose(dapl);
    if (rc == CKPT_OK && ds < 0) {
        char detail[300];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        rc = ckpt_error(CKPT_EIO, "cannot create dataset %s in '%s'%s", b->dataset, fpath, detail);
    }
    if (rc == CKPT_OK) {
        ckpt_h5_attr_str(ds, "dtype", ckpt_dtype_name(t->dtype));
        if (!shared) {
            ckpt_h5_attr_str(ds, "tensor", t->name);
            ckpt_h5_attr_i64_array(ds, "offset", b->box.off, nd);
        }
        w->dsets[di] = ds;
        *out = ds;
    }
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    ckpt_h5_unlock();
    return rc;
}

static int tensor_dataset(ckpt_writer *w, int64_t ti)
{
    hid_t ds;
    return dataset_of(w, -ti - 1, &ds);
}

typedef struct piece_job {
    ckpt_writer *w;
    int64_t bi;
    const ckpt_box *region;
    const void *data;
    hid_t ds;
    int64_t covered;
} piece_job;

static int write_piece(int64_t k, const ckpt_box *piece, void *arg)
{
    piece_job *p = arg;
    ckpt_writer *w = p->w;
    const ckpt_ibox *b = &w->ix->boxes[p->bi];
    const ckpt_itensor *t = &w->ix->tensors[b->tensor];
    char bs[512], rs[512];
    if (!ckpt_box_contains(p->region, piece))
        return ckpt_error(CKPT_EINVAL,
                          "tensor '%s': region %s does not consist of whole pieces of box %s (piece %lld is %s); "
                          "write pieces as ckpt_writer_box_piece describes", t->name,
                          ckpt_box_str(p->region, rs, sizeof rs), ckpt_box_str(&b->box, bs, sizeof bs),
                          (long long)k, ckpt_box_str(piece, bs, sizeof bs));
    if (w->written[b->first_piece + k])
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
    w->ix->checksums[b->first_piece + k] = ckpt_piece_checksum(src, n);
    ckpt_h5_lock();
    int rc = CKPT_OK;
    int nd = t->ndim;
    ckpt_box origin = b->box;
    if (w->ix->layout == CKPT_LAYOUT_SHARED)
        ckpt_box_set(&origin, nd, NULL, t->shape);
    hid_t fs = H5Dget_space(p->ds), ms;
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
    if (H5Dwrite(p->ds, ckpt_h5_type(t->dtype), ms, fs, H5P_DEFAULT, src) < 0) {
        char detail[300];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        rc = ckpt_error(CKPT_EIO, "cannot write tensor '%s' to %s%s", t->name, w->ix->files[b->file], detail);
    }
    H5Sclose(ms);
    H5Sclose(fs);
    ckpt_h5_unlock();
    if (rc == CKPT_OK) {
        w->written[b->first_piece + k] = 1;
        p->covered += ckpt_box_volume(piece);
    }
    return rc;
}

int ckpt_writer_write(ckpt_writer *w, const char *name, const int64_t *offset, const int64_t *extent,
                      const void *data)
{
    if (!w || !name)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_write: writer or name is NULL");
    if (w->failed)
        return ckpt_error(CKPT_EINVAL, "writer for '%s' failed earlier and must be aborted", w->path);
    int rc = w->ix ? CKPT_OK : plan(w);
    if (rc) {
        w->failed = 1;
        return rc;
    }
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
    for (int64_t bi = t->first_box; bi < t->first_box + t->nboxes; bi++) {
        const ckpt_ibox *b = &w->ix->boxes[bi];
        if (!ckpt_box_contains(&b->box, &region))
            continue;
        hid_t ds;
        if ((rc = dataset_of(w, bi, &ds)) != CKPT_OK) {
            w->failed = 1;
            return rc;
        }
        ckpt_pieces pc;
        ckpt_pieces_from(t->ndim, b->box.ext, b->piece_dim, b->piece_len, &pc);
        piece_job job = {w, bi, &region, data, ds, 0};
        rc = ckpt_pieces_foreach(&b->box, &pc, &region, write_piece, &job);
        if (rc && rc != CKPT_EINVAL)
            w->failed = 1;
        return rc;
    }
    char rs[512];
    return ckpt_error(CKPT_EINVAL, "tensor '%s': region %s lies in no single declared box", name,
                      ckpt_box_str(&region, rs, sizeof rs));
}

/* The planned index entry of a tensor (planning now if needed). */
static int planned_tensor(ckpt_writer *w, const char *name, const ckpt_itensor **out)
{
    if (w->failed)
        return ckpt_error(CKPT_EINVAL, "writer for '%s' failed earlier and must be aborted", w->path);
    int rc = w->ix ? CKPT_OK : plan(w);
    if (rc)
        return rc;
    int64_t ti = ckpt_strmap_get(&w->ix->by_name, name);
    if (ti < 0)
        return ckpt_error(CKPT_ENOTFOUND, "tensor '%s' was not declared", name);
    *out = &w->ix->tensors[ti];
    return CKPT_OK;
}

int ckpt_writer_num_boxes(ckpt_writer *w, const char *name, int64_t *nboxes)
{
    if (!w || !name || !nboxes)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_num_boxes: NULL argument");
    const ckpt_itensor *t;
    int rc = planned_tensor(w, name, &t);
    if (rc == CKPT_OK)
        *nboxes = t->nboxes;
    return rc;
}

int ckpt_writer_box_piece(ckpt_writer *w, const char *name, int64_t j, int64_t k, int64_t *offset, int64_t *extent,
                          int64_t *npieces)
{
    if (!w || !name)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_box_piece: writer or name is NULL");
    const ckpt_itensor *t;
    int rc = planned_tensor(w, name, &t);
    if (rc)
        return rc;
    if (j < 0 || j >= t->nboxes)
        return ckpt_error(CKPT_ENOTFOUND, "tensor '%s' has %lld saved boxes, not %lld", name, (long long)t->nboxes,
                          (long long)j + 1);
    const ckpt_ibox *b = &w->ix->boxes[t->first_box + j];
    if (npieces)
        *npieces = b->npieces;
    if (k < 0 || k >= b->npieces)
        return k < 0 && npieces ? CKPT_OK
                                : ckpt_error(CKPT_ENOTFOUND, "box %lld of '%s' has %lld pieces", (long long)j, name,
                                             (long long)b->npieces);
    ckpt_pieces pc;
    ckpt_pieces_from(t->ndim, b->box.ext, b->piece_dim, b->piece_len, &pc);
    ckpt_box pb;
    ckpt_piece_box(&b->box, &pc, k, &pb);
    for (int d = 0; d < t->ndim; d++) {
        if (offset)
            offset[d] = pb.off[d];
        if (extent)
            extent[d] = pb.ext[d];
    }
    return CKPT_OK;
}

int ckpt_writer_commit(ckpt_writer *w)
{
    if (!w)
        return ckpt_error(CKPT_EINVAL, "ckpt_writer_commit: writer is NULL");
    int rc = w->failed ? ckpt_error(CKPT_EINVAL, "writer for '%s' failed earlier", w->path)
                       : w->ix ? CKPT_OK : plan(w);
    if (rc) {
        ckpt_writer_abort(w);
        return rc;
    }
    /* shared layout: every tensor has its dataset, also those without boxes (zero-size) */
    for (int64_t t = 0; rc == CKPT_OK && w->ix->layout == CKPT_LAYOUT_SHARED && t < w->ix->ntensors; t++)
        if (w->dsets[t] < 0)
            rc = tensor_dataset(w, t);
    char bs[512];
    for (int64_t bi = 0; rc == CKPT_OK && bi < w->ix->nboxes; bi++) {
        const ckpt_ibox *b = &w->ix->boxes[bi];
        for (int64_t k = 0; k < b->npieces; k++)
            if (!w->written[b->first_piece + k]) {
                rc = ckpt_error(CKPT_ECOVERAGE, "tensor '%s': piece %lld of box %s was never written",
                                w->ix->tensors[b->tensor].name, (long long)k, ckpt_box_str(&b->box, bs, sizeof bs));
                break;
            }
    }
    if (rc == CKPT_OK) {
        ckpt_h5_lock();
        int shared = w->ix->layout == CKPT_LAYOUT_SHARED;
        int64_t nd = shared ? w->ix->ntensors : w->ix->nboxes;
        for (int64_t i = 0; i < nd; i++) {
            if (w->dsets[i] < 0)
                continue;
            int64_t sz = (int64_t)H5Dget_storage_size(w->dsets[i]);
            if (shared)
                w->ix->tensors[i].stored_bytes = sz;
            else {
                w->ix->boxes[i].stored_bytes = sz;
                w->ix->tensors[w->ix->boxes[i].tensor].stored_bytes += sz;
            }
            H5Dclose(w->dsets[i]);
            w->dsets[i] = -1;
        }
        for (int i = 0; i < w->ix->nfiles; i++) {
            if (w->files[i] >= 0 && H5Fclose(w->files[i]) < 0 && rc == CKPT_OK)
                rc = ckpt_error(CKPT_EIO, "cannot close '%s/%s'", w->tmp, w->ix->files[i]);
            w->files[i] = -1;
        }
        ckpt_h5_unlock();
        for (int i = 0; rc == CKPT_OK && w->o.fsync && i < w->ix->nfiles; i++) {
            char fpath[4200];
            snprintf(fpath, sizeof fpath, "%s/%s", w->tmp, w->ix->files[i]);
            if (ckpt_fsync_path(fpath) != 0)
                rc = ckpt_error(CKPT_EIO, "fsync of '%s' failed", fpath);
        }
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
