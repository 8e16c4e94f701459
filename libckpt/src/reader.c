/* reader.c -- a committed checkpoint seen from one process: the index in memory, a bounded set of
 * open data files, and region reads that touch only the saved pieces overlapping the region,
 * fetching and verifying only their checksums. */
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
#include "sysio.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opens data file `id` of the checkpoint read-only. */
static int open_data_file(int64_t id, hid_t *out, void *arg)
{
    ckpt_reader *r = arg;
    char name[64], fpath[4200];
    ckpt_index_file_name(r->ix, id, name, sizeof name);
    snprintf(fpath, sizeof fpath, "%s/%s", r->path, name);
    if (r->dirfd < 0) {
        r->dirfd = ckpt_sys_open_dir(r->path, 0);
        if (r->dirfd < 0)
            return ckpt_error(CKPT_EIO, "cannot open checkpoint directory '%s': %s", r->path, strerror(-r->dirfd));
    }
    /* the writer of a per-rank file is its rank; other layouts name no single writer */
    int writer = r->ix->format_version >= 2 && r->ix->layout == CKPT_LAYOUT_PER_RANK ? (int)id : -1;
    if (r->ix->format_version < 2)
        for (int64_t i = 0; i < r->ix->nrows; i++)
            if (r->ix->rows[i].file == id) {
                writer = r->ix->rows[i].writer;
                break;
            }
    return ckpt_io_open_read(r->dirfd, name, fpath, writer, out, r->fc.cap);
}

int ckpt_reader_read_index(const char *path, unsigned char **image, size_t *len)
{
    *image = NULL;
    *len = 0;
    int rc = ckpt_commit_check(path);
    if (rc)
        return rc;
    char ipath[4096];
    if ((rc = ckpt_path_join(ipath, sizeof ipath, path, CKPT_INDEX_FILE)) != CKPT_OK)
        return rc;
    return ckpt_index_read_bytes(ipath, image, len);
}

int ckpt_reader_open_image(const char *path, const void *image, size_t len, ckpt_reader **out)
{
    *out = NULL;
    ckpt_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return ckpt_error(CKPT_ENOMEM, "out of memory opening '%s'", path);
    }
    r->threads = 1;
    r->dirfd = -1;
    char ipath[4200];
    snprintf(ipath, sizeof ipath, "%s/%s", path, CKPT_INDEX_FILE);
    int rc = ckpt_index_read_image(image, len, ipath, &r->ix);
    if (rc == CKPT_OK)
        rc = ckpt_fc_init(&r->fc, ckpt_fc_default_cap(), open_data_file, r, r->path);
    if (rc) {
        ckpt_reader_close(r);
        return rc;
    }
    *out = r;
    return CKPT_OK;
}

int ckpt_reader_open(const char *path, ckpt_reader **out)
{
    if (!out)
        return ckpt_error(CKPT_EINVAL, "ckpt_reader_open: out is NULL");
    *out = NULL;
    unsigned char *image;
    size_t len;
    int rc = ckpt_reader_read_index(path, &image, &len);
    if (rc == CKPT_OK)
        rc = ckpt_reader_open_image(path, image, len, out);
    free(image);
    return rc;
}

void ckpt_reader_close(ckpt_reader *r)
{
    if (!r)
        return;
    ckpt_fc_free(&r->fc);
    if (r->dirfd >= 0)
        ckpt_sys_close(r->dirfd);
    ckpt_index_free(r->ix);
    ckpt_strmap_free(&r->names);
    for (size_t i = 0; i < r->npool; i++)
        free(r->pool[i]);
    free(r->pool);
    free(r->buf);
    free(r->sums);
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

int ckpt_reader_set_max_open_files(ckpt_reader *r, int n)
{
    if (!r)
        return ckpt_error(CKPT_EINVAL, "ckpt_reader_set_max_open_files: reader is NULL");
    return ckpt_fc_set_cap(&r->fc, n);
}

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

/* A copy of s that lives as long as the reader (names handed to callers). */
static const char *intern(ckpt_reader *r, const char *s)
{
    int64_t k = ckpt_strmap_get(&r->names, s);
    if (k >= 0)
        return r->pool[k];
    if (r->npool == r->pool_cap) {
        size_t nc = r->pool_cap ? r->pool_cap * 2 : 64;
        char **p = realloc(r->pool, nc * sizeof *p);
        if (!p)
            return NULL;
        r->pool = p;
        r->pool_cap = nc;
    }
    char *c = strdup(s);
    if (!c || ckpt_strmap_put(&r->names, c, (int64_t)r->npool) != 0) {
        free(c);
        return NULL;
    }
    r->pool[r->npool++] = c;
    return c;
}

int ckpt_reader_box_info(const ckpt_reader *cr, int i, int64_t j, ckpt_box_info *info)
{
    ckpt_reader *r = (ckpt_reader *)cr; /* only the string pool changes */
    if (!r || !info || i < 0 || i >= r->ix->ntensors || j < 0 || j >= r->ix->tensors[i].nboxes)
        return ckpt_error(CKPT_EINVAL, "box %lld of tensor %d out of range", (long long)j, i);
    ckpt_boxref b;
    ckpt_index_box(r->ix, i, j, &b);
    char file[64], ds[CKPT_MAX_NAME + 32];
    ckpt_index_file_name(r->ix, b.file, file, sizeof file);
    ckpt_index_dataset(r->ix, &b, ds, sizeof ds);
    memset(info, 0, sizeof *info);
    memcpy(info->offset, b.box.off, sizeof info->offset);
    memcpy(info->extent, b.box.ext, sizeof info->extent);
    info->writer_rank = b.writer;
    info->file = intern(r, file);
    info->dataset = intern(r, ds);
    info->npieces = b.pieces.count;
    if (!info->file || !info->dataset)
        return ckpt_error(CKPT_ENOMEM, "out of memory describing box %lld of '%s'", (long long)j,
                          r->ix->tensors[i].name);
    return CKPT_OK;
}

/* ---- reading ---- */

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

/* Whether box b's dataset is plain zstd (1) or shuffle+zstd (2), chunked as its pieces, which
 * this reader decompresses itself, in parallel; 0 leaves it to HDF5's pipeline. */
static int zstd_kind(const ckpt_reader *r, const ckpt_itensor *t, hid_t ds)
{
    if (r->ix->layout == CKPT_LAYOUT_SHARED || t->ndim == 0)
        return 0;
    int kind = 0;
    ckpt_h5_lock();
    hid_t dcpl = H5Dget_create_plist(ds);
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
    return kind;
}

/* The open file and dataset of a saved box (opened on first use, bounded). */
typedef struct box_io {
    ckpt_fc_entry *e;
    hid_t ds;
    int kind;
    char file[64], dataset[CKPT_MAX_NAME + 32], display[4200];
} box_io;

static int open_box(ckpt_reader *r, const ckpt_boxref *b, box_io *io)
{
    const ckpt_itensor *t = &r->ix->tensors[b->tensor];
    ckpt_index_file_name(r->ix, b->file, io->file, sizeof io->file);
    ckpt_index_dataset(r->ix, b, io->dataset, sizeof io->dataset);
    snprintf(io->display, sizeof io->display, "%s/%s", r->path, io->file);
    int rc = ckpt_fc_get(&r->fc, b->file, &io->e);
    if (rc)
        return rc;
    int64_t key = r->ix->layout == CKPT_LAYOUT_SHARED ? b->tensor : b->gid;
    if (io->e->dset < 0 || io->e->dset_key != key) {
        ckpt_fc_drop_dataset(io->e);
        ckpt_box dbox;
        ckpt_index_dataset_box(r->ix, b, &dbox);
        hid_t ds;
        rc = ckpt_io_open_dataset(io->e->file, io->dataset, t->dtype, &dbox, io->display, &ds);
        if (rc)
            return rc;
        io->e->dset = ds;
        io->e->dset_key = key;
        io->e->dset_kind = zstd_kind(r, t, ds);
    }
    io->ds = io->e->dset;
    io->kind = io->e->dset_kind;
    return CKPT_OK;
}

/* Fetches the checksums of pieces [k0, k1] of box b into r->sums[0 .. k1 - k0]. */
static int fetch_sums(ckpt_reader *r, const ckpt_boxref *b, box_io *io, int64_t k0, int64_t k1)
{
    size_t n = (size_t)(k1 - k0 + 1);
    if (n > r->sums_cap) {
        uint64_t *s = realloc(r->sums, n * sizeof *s);
        if (!s)
            return ckpt_error(CKPT_ENOMEM, "out of memory for %zu checksums", n);
        r->sums = s;
        r->sums_cap = n;
    }
    if (b->sums == CKPT_SUMS_INDEX) {
        memcpy(r->sums, r->ix->checksums + b->sum_base + k0, n * sizeof *r->sums);
        return CKPT_OK;
    }
    int rc = CKPT_OK;
    int64_t base = b->sum_base;
    if (b->sums == CKPT_SUMS_ATTR) {
        if (io->e->dset_first_piece < 0)
            rc = ckpt_io_box_first_piece(io->ds, io->dataset, io->display, &io->e->dset_first_piece);
        base = io->e->dset_first_piece;
    }
    if (rc == CKPT_OK && io->e->sums < 0)
        rc = ckpt_io_open_checksums(io->e->file, io->display, &io->e->sums, &io->e->sums_len);
    /* the box's own range [first_piece, first_piece + npieces), compared without forming the sum */
    if (rc == CKPT_OK && b->sums == CKPT_SUMS_ATTR &&
        (base > io->e->sums_len || b->pieces.count > io->e->sums_len - base))
        rc = ckpt_error(CKPT_ECORRUPT,
                        "dataset '%s' of data file '%s': its %lld checksums from first_piece %lld lie outside the "
                        "file's checksum table (%lld entries)", io->dataset, io->display, (long long)b->pieces.count,
                        (long long)base, (long long)io->e->sums_len);
    if (rc == CKPT_OK)
        rc = ckpt_io_read_checksums(io->e->sums, io->e->sums_len, base + k0, (int64_t)n, r->sums, io->display);
    return rc;
}

static int checksum_error(const ckpt_reader *r, const ckpt_boxref *b, const box_io *io, int64_t k, uint64_t exp,
                          uint64_t got)
{
    const ckpt_itensor *t = &r->ix->tensors[b->tensor];
    char bs[512];
    return ckpt_error(CKPT_ECORRUPT,
                      "checksum mismatch in tensor '%s', box %lld %s (written by rank %d), piece %lld of "
                      "%lld, file '%s' dataset %s: stored xxh3 %016" PRIx64 ", data has %016" PRIx64,
                      t->name, (long long)b->j, ckpt_box_str(&b->box, bs, sizeof bs), b->writer, (long long)k,
                      (long long)b->pieces.count, io->display, io->dataset, exp, got);
}

typedef struct read_job {
    ckpt_reader *r;
    const ckpt_itensor *t;
    const ckpt_box *region; /* the caller's region (dest box) */
    void *dst;
    ckpt_dtype ddt;
    int verify;
    int64_t covered;
    /* the box being read */
    const ckpt_boxref *b;
    box_io *io;
    int64_t k0; /* r->sums[0] is piece k0's checksum */
} read_job;

static int piece_range(int64_t k, const ckpt_box *piece, void *arg)
{
    int64_t *kr = arg;
    (void)piece;
    if (kr[0] < 0)
        kr[0] = k;
    kr[1] = k;
    return 0;
}

static int read_piece(int64_t k, const ckpt_box *piece, void *arg)
{
    read_job *j = arg;
    ckpt_reader *r = j->r;
    const ckpt_boxref *b = j->b;
    const ckpt_itensor *t = j->t;
    size_t ss = ckpt_dtype_size(t->dtype), ds = ckpt_dtype_size(j->ddt);
    ckpt_box part;
    ckpt_box_intersect(piece, j->region, &part);
    if (t->ndim == 0)
        part = *piece;
    int64_t pvol = ckpt_box_volume(piece);
    const ckpt_box *want = j->verify ? piece : &part; /* with verify the whole piece is read */
    int direct = !j->verify && t->dtype == j->ddt && ckpt_box_contains(j->region, want) &&
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
    ckpt_index_dataset_box(r->ix, b, &dbox);
    int rc = ckpt_io_read_region(j->io->ds, j->io->dataset, t->dtype, &dbox, want, target, j->io->display);
    if (rc)
        return ckpt_error_prefix("tensor '%s': ", t->name);
    if (j->verify) {
        /* checked before a byte reaches the caller's buffer */
        uint64_t got = ckpt_piece_checksum(target, (size_t)(pvol * (int64_t)ss));
        uint64_t exp = r->sums[k - j->k0];
        if (got != exp)
            return checksum_error(r, b, j->io, k, exp, got);
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

typedef struct zpiece {
    int64_t k;
    ckpt_box piece;
} zpiece;

typedef struct zread {
    read_job *job;
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
    read_job *j = z->job;
    ckpt_reader *r = j->r;
    const ckpt_boxref *b = j->b;
    const ckpt_itensor *t = j->t;
    box_io *io = j->io;
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
            if (H5Dget_chunk_storage_size(io->ds, off, &size) < 0 || size == 0) {
                char detail[400];
                ckpt_error_hdf5_detail(detail, sizeof detail);
                rc = ckpt_error(ckpt_h5_failure_status(detail, CKPT_ECORRUPT),
                                "tensor '%s': cannot read dataset '%s' of data file '%s': the chunk of piece %lld is "
                                "missing (truncated or damaged)%s", t->name, io->dataset, io->display,
                                (long long)zp->k, detail);
            } else if (size > (hsize_t)ckpt_codec_zstd_chunk_bound(z->chunk_bytes) + 64) {
                rc = ckpt_error(CKPT_ECORRUPT,
                                "tensor '%s': dataset '%s' of data file '%s' is damaged: the chunk of piece %lld "
                                "claims %llu bytes", t->name, io->dataset, io->display, (long long)zp->k,
                                (unsigned long long)size);
            } else if (size > cap) {
                unsigned char *nc = realloc(comp, size);
                if (!nc)
                    rc = ckpt_error(CKPT_ENOMEM, "out of memory decompressing '%s'", t->name);
                else {
                    comp = nc;
                    cap = size;
                }
            }
            if (rc == CKPT_OK && H5Dread_chunk(io->ds, H5P_DEFAULT, off, &mask, comp) < 0) {
                char detail[400];
                ckpt_error_hdf5_detail(detail, sizeof detail);
                rc = ckpt_error(ckpt_h5_failure_status(detail, CKPT_ECORRUPT),
                                "tensor '%s': cannot read dataset '%s' of data file '%s': the chunk of piece %lld "
                                "cannot be read%s", t->name, io->dataset, io->display, (long long)zp->k, detail);
            }
            ckpt_h5_unlock();
        }
        size_t n = (size_t)ckpt_box_volume(&zp->piece) * es;
        if (rc == CKPT_OK && mask != 0)
            rc = ckpt_error(CKPT_EUNSUPPORTED, "tensor '%s': chunk %lld of %s skips filters (mask 0x%x)", t->name,
                            (long long)zp->k, io->dataset, mask);
        if (rc == CKPT_OK &&
            ckpt_codec_zstd_decompress_chunk(ctx, io->kind == 2 ? es : 0, comp, size, raw, z->chunk_bytes) !=
                z->chunk_bytes)
            rc = ckpt_error(CKPT_ECORRUPT,
                            "tensor '%s': cannot read dataset '%s' of data file '%s' (truncated or damaged): the "
                            "zstd chunk of piece %lld does not decompress", t->name, io->dataset, io->display,
                            (long long)zp->k);
        if (rc == CKPT_OK && j->verify) {
            /* the piece is the chunk's leading n bytes (edge chunks are padded at their end) */
            uint64_t got = ckpt_piece_checksum(raw, n), exp = r->sums[zp->k - j->k0];
            if (got != exp)
                rc = checksum_error(r, b, io, zp->k, exp, got);
        }
        ckpt_box part;
        if (rc == CKPT_OK) {
            ckpt_box_intersect(&zp->piece, j->region, &part);
            ckpt_box_copy(&part, &zp->piece, raw, t->dtype, j->region, j->dst, j->ddt);
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

/* Reads the pieces of the job's box overlapping the region through our own zstd, r->threads at once. */
static int read_box_zstd(read_job *j)
{
    const ckpt_boxref *b = j->b;
    const ckpt_itensor *t = j->t;
    zread z;
    memset(&z, 0, sizeof z);
    z.job = j;
    z.chunk_bytes = (size_t)b->pieces.len * ckpt_dtype_size(t->dtype);
    for (int d = b->pieces.dim + 1; d < t->ndim; d++)
        z.chunk_bytes *= (size_t)b->box.ext[d];
    z.pieces = malloc(((size_t)b->pieces.count + 1) * sizeof *z.pieces);
    if (!z.pieces)
        return ckpt_error(CKPT_ENOMEM, "out of memory reading '%s'", t->name);
    ckpt_pieces_foreach(&b->box, &b->pieces, j->region, collect_piece, &z);
    pthread_mutex_init(&z.mu, NULL);
    int nt = j->r->threads < 1 ? 1 : j->r->threads;
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
    j->covered += z.covered;
    return CKPT_OK;
}

/* One saved box overlapping the region: open it, fetch the checksums of the pieces it reads,
 * read them. */
static int read_saved_box(const ckpt_boxref *b, void *arg)
{
    read_job *j = arg;
    box_io io;
    int rc = open_box(j->r, b, &io);
    if (rc)
        return ckpt_error_prefix("tensor '%s': ", j->t->name);
    j->b = b;
    j->io = &io;
    j->k0 = 0;
    if (j->verify) {
        int64_t kr[2] = {-1, -1};
        ckpt_pieces_foreach(&b->box, &b->pieces, j->region, piece_range, kr);
        if (kr[0] < 0)
            return CKPT_OK;
        j->k0 = kr[0];
        if ((rc = fetch_sums(j->r, b, &io, kr[0], kr[1])) != CKPT_OK)
            return ckpt_error_prefix("tensor '%s': ", j->t->name);
    }
    if (io.kind)
        return read_box_zstd(j);
    return ckpt_pieces_foreach(&b->box, &b->pieces, j->region, read_piece, j);
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
    read_job job;
    memset(&job, 0, sizeof job);
    job.r = r;
    job.t = t;
    job.region = &region;
    job.dst = buf;
    job.ddt = dtype;
    job.verify = verify;
    rc = ckpt_index_foreach_in(r->ix, ti, &region, read_saved_box, &job);
    if (rc)
        return rc;
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
