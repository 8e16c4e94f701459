/* reader.c -- a committed checkpoint seen from one process: index, lazily opened files, and
 * region reads that touch only the overlapping pieces, verifying their checksums. */
#include "reader.h"
#include "box.h"
#include "codec_zstd.h"
#include "commit.h"
#include "dtype.h"
#include "error.h"
#include "gpu.h"
#include "h5util.h"
#include "io_per_rank.h"
#include "piece.h"
#include "state.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ckpt_reader_open(const char *path, ckpt_reader **out)
{
    if (!out)
        return ckpt_error(CKPT_EINVAL, "ckpt_reader_open: out is NULL");
    *out = NULL;
    int rc = ckpt_commit_check(path);
    if (rc)
        return rc;
    ckpt_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return ckpt_error(CKPT_ENOMEM, "out of memory opening '%s'", path);
    }
    char ipath[4096];
    rc = ckpt_path_join(ipath, sizeof ipath, path, CKPT_INDEX_FILE);
    if (rc == CKPT_OK)
        rc = ckpt_index_read(ipath, &r->ix);
    if (rc == CKPT_OK) {
        r->files = malloc(((size_t)r->ix->nfiles + 1) * sizeof *r->files);
        r->dsets = malloc(((size_t)r->ix->nboxes + 1) * sizeof *r->dsets);
        r->zinfo = malloc((size_t)r->ix->nboxes + 1);
        r->threads = 1;
        if (!r->files || !r->dsets || !r->zinfo)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory opening '%s'", path);
        else {
            for (int i = 0; i < r->ix->nfiles; i++)
                r->files[i] = -1;
            for (int64_t i = 0; i < r->ix->nboxes; i++) {
                r->dsets[i] = -1;
                r->zinfo[i] = -1;
            }
        }
    }
    if (rc) {
        ckpt_reader_close(r);
        return rc;
    }
    *out = r;
    return CKPT_OK;
}

void ckpt_reader_close(ckpt_reader *r)
{
    if (!r)
        return;
    ckpt_h5_lock();
    if (r->ix) {
        if (r->dsets)
            for (int64_t i = 0; i < r->ix->nboxes; i++)
                if (r->dsets[i] >= 0)
                    H5Dclose(r->dsets[i]);
        if (r->files)
            for (int i = 0; i < r->ix->nfiles; i++)
                if (r->files[i] >= 0)
                    H5Fclose(r->files[i]);
    }
    ckpt_h5_unlock();
    free(r->dsets);
    free(r->zinfo);
    free(r->files);
    ckpt_index_free(r->ix);
    free(r->buf);
    free(r->path);
    free(r);
}

const ckpt_index *ckpt_reader_index(const ckpt_reader *r) { return r ? r->ix : NULL; }
int ckpt_reader_format_version(const ckpt_reader *r) { return r ? r->ix->format_version : 0; }
const char *ckpt_reader_library_version(const ckpt_reader *r) { return r ? r->ix->library_version : ""; }
int ckpt_reader_world_size(const ckpt_reader *r) { return r ? r->ix->world_size : 0; }
ckpt_layout ckpt_reader_layout(const ckpt_reader *r) { return r ? r->ix->layout : CKPT_LAYOUT_PER_RANK; }
int ckpt_reader_num_tensors(const ckpt_reader *r) { return r ? (int)r->ix->ntensors : 0; }
const char *ckpt_reader_compression(const ckpt_reader *r) { return r ? r->ix->compression : ""; }
int64_t ckpt_reader_piece_bytes(const ckpt_reader *r) { return r ? r->ix->piece_bytes : 0; }
const ckpt_state *ckpt_reader_attrs(const ckpt_reader *r) { return r ? r->ix->attrs : NULL; }

int ckpt_reader_tensor_info(const ckpt_reader *r, int i, ckpt_tensor_info *info)
{
    if (!r || !info || i < 0 || i >= r->ix->ntensors)
        return ckpt_error(CKPT_EINVAL, "tensor index %d out of range", i);
    const ckpt_itensor *t = &r->ix->tensors[i];
    memset(info, 0, sizeof *info);
    info->name = t->name;
    info->dtype = t->dtype;
    info->ndim = t->ndim;
    memcpy(info->shape, t->shape, sizeof info->shape);
    info->nboxes = t->nboxes;
    info->raw_bytes = t->raw_bytes;
    info->stored_bytes = t->stored_bytes;
    return CKPT_OK;
}

int ckpt_reader_find(const ckpt_reader *r, const char *name, int *i)
{
    if (!r || !name || !i)
        return ckpt_error(CKPT_EINVAL, "ckpt_reader_find: NULL argument");
    int64_t k = ckpt_strmap_get(&r->ix->by_name, name);
    if (k < 0)
        return ckpt_error(CKPT_ENOTFOUND, "tensor '%s' is not in checkpoint '%s' (it has %lld tensors)", name,
                          r->path, (long long)r->ix->ntensors);
    *i = (int)k;
    return CKPT_OK;
}

int ckpt_reader_box_info(const ckpt_reader *r, int i, int64_t j, ckpt_box_info *info)
{
    if (!r || !info || i < 0 || i >= r->ix->ntensors || j < 0 || j >= r->ix->tensors[i].nboxes)
        return ckpt_error(CKPT_EINVAL, "box %lld of tensor %d out of range", (long long)j, i);
    const ckpt_ibox *b = &r->ix->boxes[r->ix->tensors[i].first_box + j];
    memset(info, 0, sizeof *info);
    memcpy(info->offset, b->box.off, sizeof info->offset);
    memcpy(info->extent, b->box.ext, sizeof info->extent);
    info->writer_rank = b->writer;
    info->file = r->ix->files[b->file];
    info->dataset = b->dataset;
    info->npieces = b->npieces;
    return CKPT_OK;
}

/* The part of the tensor the box's dataset holds: the box itself, or (shared layout) all of it. */
static void dataset_box(const ckpt_reader *r, const ckpt_ibox *b, ckpt_box *out)
{
    *out = b->box;
    if (r->ix->layout == CKPT_LAYOUT_SHARED)
        ckpt_box_set(out, b->box.ndim, NULL, r->ix->tensors[b->tensor].shape);
}

static int ensure_dataset(ckpt_reader *r, int64_t bi)
{
    if (r->dsets[bi] >= 0)
        return CKPT_OK;
    const ckpt_ibox *b = &r->ix->boxes[bi];
    char fpath[4200];
    int rc = ckpt_path_join(fpath, sizeof fpath, r->path, r->ix->files[b->file]);
    if (rc)
        return rc;
    if (r->files[b->file] < 0) {
        rc = ckpt_io_open_read(fpath, fpath, b->writer, &r->files[b->file]);
        if (rc)
            return rc;
    }
    ckpt_box dbox;
    dataset_box(r, b, &dbox);
    return ckpt_io_open_dataset(r->files[b->file], b->dataset, &dbox, fpath, &r->dsets[bi]);
}

static int ensure_buf(ckpt_reader *r, size_t n)
{
    if (n <= r->buf_cap)
        return CKPT_OK;
    unsigned char *b = realloc(r->buf, n);
    if (!b)
        return ckpt_error(CKPT_ENOMEM, "out of memory for a %zu-byte read buffer", n);
    r->buf = b;
    r->buf_cap = n;
    return CKPT_OK;
}

typedef struct read_job {
    ckpt_reader *r;
    int64_t bi;
    const ckpt_itensor *t;
    const ckpt_box *region; /* the caller's region (dest box) */
    void *dst;
    ckpt_dtype ddt;
    int verify;
    int64_t covered;
} read_job;

static int checksum_error(const ckpt_reader *r, int64_t bi, int64_t k, uint64_t exp, uint64_t got)
{
    const ckpt_ibox *b = &r->ix->boxes[bi];
    const ckpt_itensor *t = &r->ix->tensors[b->tensor];
    char bs[512];
    return ckpt_error(CKPT_ECORRUPT,
                      "checksum mismatch in tensor '%s', box %lld %s (written by rank %d), piece %lld of "
                      "%lld, file '%s/%s' dataset %s: stored xxh3 %016" PRIx64 ", data has %016" PRIx64,
                      t->name, (long long)(bi - t->first_box), ckpt_box_str(&b->box, bs, sizeof bs), b->writer,
                      (long long)k, (long long)b->npieces, r->path, r->ix->files[b->file], b->dataset, exp, got);
}

static int read_piece(int64_t k, const ckpt_box *piece, void *arg)
{
    read_job *j = arg;
    ckpt_reader *r = j->r;
    const ckpt_ibox *b = &r->ix->boxes[j->bi];
    const ckpt_itensor *t = j->t;
    size_t ss = ckpt_dtype_size(t->dtype), ds = ckpt_dtype_size(j->ddt);
    char fpath[4096];
    snprintf(fpath, sizeof fpath, "%s/%s", r->path, r->ix->files[b->file]);
    ckpt_box part;
    ckpt_box_intersect(piece, j->region, &part);
    if (t->ndim == 0)
        part = *piece;
    int64_t pvol = ckpt_box_volume(piece);
    const ckpt_box *want = j->verify ? piece : &part; /* with verify the whole piece is read */
    int direct = t->dtype == j->ddt && ckpt_box_contains(j->region, want) &&
                 ckpt_box_region_contiguous(j->region, want);
    unsigned char *target;
    if (direct) {
        int64_t lin = t->ndim ? ckpt_box_linear(j->region, want->off) : 0;
        target = (unsigned char *)j->dst + lin * (int64_t)ds;
    } else {
        int rc = ensure_buf(r, (size_t)(ckpt_box_volume(want) * (int64_t)ss));
        if (rc)
            return rc;
        target = r->buf;
    }
    ckpt_box dbox;
    dataset_box(r, b, &dbox);
    int rc = ckpt_io_read_region(r->dsets[j->bi], b->dataset, t->dtype, &dbox, want, target, fpath);
    if (rc)
        return ckpt_error_prefix("tensor '%s': ", t->name);
    if (j->verify) {
        uint64_t got = ckpt_piece_checksum(target, (size_t)(pvol * (int64_t)ss));
        uint64_t exp = r->ix->checksums[b->first_piece + k];
        if (got != exp)
            return checksum_error(r, j->bi, k, exp, got);
    }
    if (!direct)
        ckpt_box_copy(&part, want, target, t->dtype, j->region, j->dst, j->ddt);
    j->covered += ckpt_box_volume(&part);
    return CKPT_OK;
}

int ckpt_reader_set_threads(ckpt_reader *r, int threads)
{
    if (!r || threads < 1 || threads > 256)
        return ckpt_error(CKPT_EINVAL, "ckpt_reader_set_threads: need a reader and 1..256 threads");
    r->threads = threads;
    return CKPT_OK;
}

/* Whether box bi's dataset (file-per-rank: chunks = pieces) is plain zstd (1) or shuffle+zstd
 * (2), which this reader decompresses itself, in parallel; 0 leaves it to HDF5's pipeline. */
static int zstd_kind(ckpt_reader *r, int64_t bi)
{
    if (r->zinfo[bi] >= 0)
        return r->zinfo[bi];
    int kind = 0;
    if (r->ix->layout == CKPT_LAYOUT_PER_RANK && r->ix->tensors[r->ix->boxes[bi].tensor].ndim > 0) {
        ckpt_h5_lock();
        hid_t dcpl = H5Dget_create_plist(r->dsets[bi]);
        int n = dcpl < 0 ? -1 : H5Pget_nfilters(dcpl);
        unsigned flags, cd[8];
        size_t ncd = 8;
        if (n == 1 && H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL) == CKPT_FILTER_ZSTD)
            kind = 1;
        ncd = 8;
        if (n == 2 && H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL) == H5Z_FILTER_SHUFFLE) {
            ncd = 8;
            if (H5Pget_filter2(dcpl, 1, &flags, &ncd, cd, 0, NULL, NULL) == CKPT_FILTER_ZSTD)
                kind = 2;
        }
        if (dcpl >= 0)
            H5Pclose(dcpl);
        ckpt_h5_unlock();
    }
    r->zinfo[bi] = (signed char)kind;
    return kind;
}

typedef struct zpiece {
    int64_t k;
    ckpt_box piece;
} zpiece;

typedef struct zread {
    ckpt_reader *r;
    int64_t bi;
    int kind;
    const ckpt_box *region;
    void *dst;
    ckpt_dtype ddt;
    int verify;
    zpiece *pieces;
    int64_t n, next; /* work queue */
    size_t chunk_bytes;
    pthread_mutex_t mu;
    int rc;
    char msg[CKPT_ERRMSG_MAX];
    int64_t covered;
} zread;

static int collect_piece(int64_t k, const ckpt_box *piece, void *arg)
{
    zread *z = arg;
    z->pieces[z->n].k = k;
    z->pieces[z->n].piece = *piece;
    z->n++;
    return 0;
}

static void *zread_worker(void *arg)
{
    zread *z = arg;
    ckpt_reader *r = z->r;
    const ckpt_ibox *b = &r->ix->boxes[z->bi];
    const ckpt_itensor *t = &r->ix->tensors[b->tensor];
    size_t es = ckpt_dtype_size(t->dtype);
    size_t cap = z->chunk_bytes + 64;
    unsigned char *comp = malloc(cap), *raw = malloc(z->chunk_bytes + 1);
    ckpt_zstd_ctx *ctx = ckpt_codec_zstd_ctx_new();
    for (;;) {
        pthread_mutex_lock(&z->mu);
        int64_t i = z->rc ? z->n : z->next++;
        pthread_mutex_unlock(&z->mu);
        if (i >= z->n)
            break;
        const zpiece *zp = &z->pieces[i];
        int rc = (!comp || !raw || !ctx) ? ckpt_error(CKPT_ENOMEM, "out of memory decompressing '%s'", t->name)
                                         : CKPT_OK;
        hsize_t off[CKPT_MAX_NDIM], size = 0;
        for (int d = 0; d < t->ndim; d++)
            off[d] = (hsize_t)(zp->piece.off[d] - b->box.off[d]);
        uint32_t mask = 0;
        if (rc == CKPT_OK) {
            ckpt_h5_lock();
            if (H5Dget_chunk_storage_size(r->dsets[z->bi], off, &size) < 0 || size == 0) {
                rc = ckpt_error(CKPT_ECORRUPT,
                                "tensor '%s': cannot read dataset '%s' of data file '%s/%s' (truncated or damaged): "
                                "the chunk of piece %lld is missing", t->name, b->dataset, r->path,
                                r->ix->files[b->file], (long long)zp->k);
            } else if (size > cap) {
                unsigned char *nc = realloc(comp, size);
                if (!nc)
                    rc = ckpt_error(CKPT_ENOMEM, "out of memory decompressing '%s'", t->name);
                else {
                    comp = nc;
                    cap = size;
                }
            }
            if (rc == CKPT_OK && H5Dread_chunk(r->dsets[z->bi], H5P_DEFAULT, off, &mask, comp) < 0)
                rc = ckpt_error(CKPT_ECORRUPT,
                                "tensor '%s': cannot read dataset '%s' of data file '%s/%s' (truncated or damaged): "
                                "the chunk of piece %lld cannot be read", t->name, b->dataset, r->path,
                                r->ix->files[b->file], (long long)zp->k);
            ckpt_h5_unlock();
        }
        size_t n = (size_t)ckpt_box_volume(&zp->piece) * es;
        if (rc == CKPT_OK && mask != 0)
            rc = ckpt_error(CKPT_EUNSUPPORTED, "tensor '%s': chunk %lld of %s skips filters (mask 0x%x)", t->name,
                            (long long)zp->k, b->dataset, mask);
        if (rc == CKPT_OK &&
            ckpt_codec_zstd_decompress_chunk(ctx, z->kind == 2 ? es : 0, comp, size, raw, z->chunk_bytes) !=
                z->chunk_bytes)
            rc = ckpt_error(CKPT_ECORRUPT,
                            "tensor '%s': cannot read dataset '%s' of data file '%s/%s' (truncated or damaged): the "
                            "zstd chunk of piece %lld does not decompress", t->name, b->dataset, r->path,
                            r->ix->files[b->file], (long long)zp->k);
        if (rc == CKPT_OK && z->verify) {
            /* the piece is the chunk's leading n bytes (edge chunks are padded at their end) */
            uint64_t got = ckpt_piece_checksum(raw, n), exp = r->ix->checksums[b->first_piece + zp->k];
            if (got != exp)
                rc = checksum_error(r, z->bi, zp->k, exp, got);
        }
        ckpt_box part;
        if (rc == CKPT_OK) {
            ckpt_box_intersect(&zp->piece, z->region, &part);
            ckpt_box_copy(&part, &zp->piece, raw, t->dtype, z->region, z->dst, z->ddt);
        }
        pthread_mutex_lock(&z->mu);
        if (rc && !z->rc) {
            z->rc = rc;
            memcpy(z->msg, ckpt_errmsg(), sizeof z->msg);
        }
        if (rc == CKPT_OK)
            z->covered += ckpt_box_volume(&part);
        pthread_mutex_unlock(&z->mu);
    }
    free(comp);
    free(raw);
    ckpt_codec_zstd_ctx_free(ctx);
    return NULL;
}

/* Reads the pieces of box bi overlapping the region through our own zstd, r->threads at once. */
static int read_box_zstd(ckpt_reader *r, int64_t bi, int kind, const ckpt_box *region, void *dst, ckpt_dtype ddt,
                         int verify, int64_t *covered)
{
    const ckpt_ibox *b = &r->ix->boxes[bi];
    const ckpt_itensor *t = &r->ix->tensors[b->tensor];
    ckpt_pieces pc;
    ckpt_pieces_from(t->ndim, b->box.ext, b->piece_dim, b->piece_len, &pc);
    zread z;
    memset(&z, 0, sizeof z);
    z.r = r;
    z.bi = bi;
    z.kind = kind;
    z.region = region;
    z.dst = dst;
    z.ddt = ddt;
    z.verify = verify;
    z.chunk_bytes = (size_t)b->piece_len * ckpt_dtype_size(t->dtype);
    for (int d = b->piece_dim + 1; d < t->ndim; d++)
        z.chunk_bytes *= (size_t)b->box.ext[d];
    z.pieces = malloc(((size_t)pc.count + 1) * sizeof *z.pieces);
    if (!z.pieces)
        return ckpt_error(CKPT_ENOMEM, "out of memory reading '%s'", t->name);
    ckpt_pieces_foreach(&b->box, &pc, region, collect_piece, &z);
    pthread_mutex_init(&z.mu, NULL);
    int nt = r->threads < 1 ? 1 : r->threads;
    if (nt > z.n)
        nt = (int)(z.n ? z.n : 1);
    pthread_t tids[256];
    int started = 0;
    for (int i = 1; i < nt; i++)
        if (pthread_create(&tids[started], NULL, zread_worker, &z) == 0)
            started++;
    zread_worker(&z);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&z.mu);
    free(z.pieces);
    if (z.rc)
        return ckpt_error(z.rc, "%s", z.msg);
    *covered += z.covered;
    return CKPT_OK;
}

int ckpt_reader_read(ckpt_reader *r, const char *name, ckpt_dtype dtype, const int64_t *offset,
                     const int64_t *extent, void *buf, int verify)
{
    int ti;
    if (!r)
        return ckpt_error(CKPT_EINVAL, "ckpt_reader_read: reader is NULL");
    int rc = ckpt_reader_find(r, name, &ti);
    if (rc)
        return rc;
    const ckpt_itensor *t = &r->ix->tensors[ti];
    char bs[512], ss[256];
    if (!ckpt_dtype_can_cast(t->dtype, dtype))
        return ckpt_error(CKPT_EMISMATCH, "tensor '%s' is stored as %s and cannot be read as %s", name,
                          ckpt_dtype_name(t->dtype), ckpt_dtype_name(dtype) ? ckpt_dtype_name(dtype) : "?");
    if (t->ndim > 0 && (!offset || !extent))
        return ckpt_error(CKPT_EINVAL, "tensor '%s': offset or extent is NULL", name);
    ckpt_box region;
    ckpt_box_set(&region, t->ndim, offset, extent);
    if (!ckpt_box_in_shape(&region, t->shape))
        return ckpt_error(CKPT_ECOVERAGE, "tensor '%s': region %s lies outside its shape %s", name,
                          ckpt_box_str(&region, bs, sizeof bs), ckpt_shape_str(t->ndim, t->shape, ss, sizeof ss));
    int64_t vol = ckpt_box_volume(&region);
    if (vol == 0)
        return CKPT_OK;
    if (!buf)
        return ckpt_error(CKPT_EINVAL, "tensor '%s': buffer is NULL", name);
    read_job job = {r, 0, t, &region, buf, dtype, verify, 0};
    for (int64_t bi = t->first_box; bi < t->first_box + t->nboxes; bi++) {
        const ckpt_ibox *b = &r->ix->boxes[bi];
        if (t->ndim > 0 && !ckpt_box_intersect(&b->box, &region, NULL))
            continue;
        if ((rc = ensure_dataset(r, bi)) != CKPT_OK)
            return ckpt_error_prefix("tensor '%s': ", name);
        int kind = zstd_kind(r, bi);
        if (kind) {
            rc = read_box_zstd(r, bi, kind, &region, buf, dtype, verify, &job.covered);
            if (rc)
                return rc;
            continue;
        }
        ckpt_pieces pc;
        ckpt_pieces_from(t->ndim, b->box.ext, b->piece_dim, b->piece_len, &pc);
        job.bi = bi;
        rc = ckpt_pieces_foreach(&b->box, &pc, &region, read_piece, &job);
        if (rc)
            return rc;
        if (t->ndim == 0)
            break;
    }
    if (job.covered != vol)
        return ckpt_error(CKPT_ECORRUPT,
                          "tensor '%s': the saved boxes cover only %lld of the %lld elements of region %s (index of "
                          "'%s' damaged)", name, (long long)job.covered, (long long)vol,
                          ckpt_box_str(&region, bs, sizeof bs), r->path);
    return CKPT_OK;
}

int ckpt_reader_load(ckpt_reader *r, ckpt_state *s, const ckpt_load_options *opts)
{
    if (!r || !s)
        return ckpt_error(CKPT_EINVAL, "ckpt_reader_load: reader or state is NULL");
    ckpt_load_options defaults;
    ckpt_load_options_init(&defaults);
    if (!opts)
        opts = &defaults;
    if (opts->version != CKPT_LOAD_OPTIONS_VERSION)
        return ckpt_error(CKPT_EINVAL, "load options version %u; this library expects %d (call "
                          "ckpt_load_options_init)", opts->version, CKPT_LOAD_OPTIONS_VERSION);
    if (opts->threads < 1 || opts->threads > 256)
        return ckpt_error(CKPT_EINVAL, "load option threads %d outside 1..256", opts->threads);
    r->threads = opts->threads;
    char a[256], b[256];
    /* check everything before reading anything */
    for (int i = 0; i < s->ntensors; i++) {
        ckpt_stensor *st = &s->tensors[i];
        st->loaded = 0;
        int64_t k = ckpt_strmap_get(&r->ix->by_name, st->name);
        if (k < 0) {
            if (st->flags & CKPT_TENSOR_OPTIONAL)
                continue;
            return ckpt_error(CKPT_ENOTFOUND, "tensor '%s' is not in checkpoint '%s' (it has %lld tensors)",
                              st->name, r->path, (long long)r->ix->ntensors);
        }
        const ckpt_itensor *t = &r->ix->tensors[k];
        int same = t->ndim == st->ndim;
        for (int d = 0; same && d < t->ndim; d++)
            same = t->shape[d] == st->shape[d];
        if (!same)
            return ckpt_error(CKPT_EMISMATCH, "tensor '%s': checkpoint '%s' has shape %s, the state wants %s",
                              st->name, r->path, ckpt_shape_str(t->ndim, t->shape, a, sizeof a),
                              ckpt_shape_str(st->ndim, st->shape, b, sizeof b));
        if (!ckpt_dtype_can_cast(t->dtype, st->dtype))
            return ckpt_error(CKPT_EMISMATCH, "tensor '%s' is stored as %s and cannot be loaded as %s", st->name,
                              ckpt_dtype_name(t->dtype), ckpt_dtype_name(st->dtype));
    }
    for (int i = 0; i < s->ntensors; i++) {
        ckpt_stensor *st = &s->tensors[i];
        if (ckpt_strmap_get(&r->ix->by_name, st->name) < 0)
            continue;
        for (int64_t j = 0; j < st->nboxes; j++) {
            void *dst = st->boxes[j].data, *host = dst;
            size_t n = (size_t)(ckpt_box_volume(&st->boxes[j].box) * (int64_t)ckpt_dtype_size(st->dtype));
            int dev = n > 0 && ckpt_gpu_is_device(dst);
            if (dev && !(host = ckpt_gpu_host_alloc(n))) /* GPU memory: read into host, then copy */
                return ckpt_error(CKPT_ENOMEM, "out of memory staging tensor '%s' for the GPU", st->name);
            int rc = ckpt_reader_read(r, st->name, st->dtype, st->boxes[j].box.off, st->boxes[j].box.ext, host,
                                      opts->verify);
            if (rc == CKPT_OK && dev && (rc = ckpt_gpu_copy(dst, host, n)) != CKPT_OK)
                ckpt_error_prefix("tensor '%s': ", st->name);
            if (dev)
                ckpt_gpu_host_free(host);
            if (rc)
                return rc;
        }
        st->loaded = 1;
    }
    return ckpt_state_copy_attrs(s, r->ix->attrs);
}
