/* io_per_rank.c -- per-rank HDF5 data files: chunked datasets, one per box. */
#include "io_per_rank.h"
#include "codec_zstd.h"
#include "fault.h"
#include "dtype.h"
#include "error.h"
#include "filecache.h"
#include "h5util.h"
#include "sysio.h"
#include "vfd.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>

static int h5_error(const char *what, const char *path)
{
    char detail[300];
    ckpt_error_hdf5_detail(detail, sizeof detail);
    return ckpt_error(CKPT_EIO, "%s '%s'%s", what, path, detail);
}

void ckpt_io_checksum_item(ckpt_write_item *it)
{
    int nd = it->box.ndim;
    size_t es = ckpt_dtype_size(it->dtype);
    for (int64_t k = 0; k < it->pieces.count; k++) {
        ckpt_box pb;
        ckpt_piece_box(&it->box, &it->pieces, k, &pb);
        int64_t start = nd ? ckpt_box_linear(&it->box, pb.off) : 0;
        int64_t count = ckpt_box_volume(&pb);
        it->checksums[k] = ckpt_piece_checksum((const char *)it->data + start * (int64_t)es, (size_t)(count * (int64_t)es));
    }
}

/* One chunk being compressed by a worker thread. */
typedef struct zjob {
    const ckpt_write_item *it;
    const ckpt_io_codec *codec;
    ckpt_zstd_ctx *ctx;
    int64_t k;          /* piece */
    size_t chunk_bytes; /* full (padded) chunk */
    unsigned char *pad; /* chunk_bytes, for edge chunks */
    unsigned char *out; /* compressed */
    size_t out_cap, out_len;
    int started; /* on a thread of its own */
} zjob;

static void *compress_one(void *arg)
{
    zjob *j = arg;
    const ckpt_write_item *it = j->it;
    size_t es = ckpt_dtype_size(it->dtype);
    ckpt_box pb;
    ckpt_piece_box(&it->box, &it->pieces, j->k, &pb);
    int64_t start = ckpt_box_linear(&it->box, pb.off);
    size_t n = (size_t)(ckpt_box_volume(&pb) * (int64_t)es);
    const unsigned char *src = (const unsigned char *)it->data + start * (int64_t)es;
    if (n < j->chunk_bytes) { /* edge chunk: HDF5 wants the full chunk, padded */
        memcpy(j->pad, src, n);
        memset(j->pad + n, 0, j->chunk_bytes - n);
        src = j->pad;
    }
    j->out_len = ckpt_codec_zstd_compress_chunk(j->ctx, j->codec->level, j->codec->shuffle ? es : 0, src,
                                                j->chunk_bytes, j->out, j->out_cap);
    return NULL;
}

/* Compresses the pieces of `it` (threads at a time) and stores them as chunks of ds. */
static int write_compressed(hid_t ds, const ckpt_write_item *it, const ckpt_io_codec *codec, const char *path)
{
    int nt = codec->threads < 1 ? 1 : codec->threads > 64 ? 64 : codec->threads;
    size_t es = ckpt_dtype_size(it->dtype);
    int nd = it->box.ndim, p = it->pieces.dim;
    size_t chunk_bytes = (size_t)it->pieces.len * es;
    for (int d = p + 1; d < nd; d++)
        chunk_bytes *= (size_t)it->box.ext[d];
    zjob *jobs = calloc((size_t)nt, sizeof *jobs);
    pthread_t *tids = calloc((size_t)nt, sizeof *tids);
    int rc = CKPT_OK;
    if (!jobs || !tids) {
        rc = ckpt_error(CKPT_ENOMEM, "out of memory compressing '%s'", it->tensor);
        goto out;
    }
    for (int t = 0; t < nt; t++) {
        jobs[t].it = it;
        jobs[t].codec = codec;
        jobs[t].chunk_bytes = chunk_bytes;
        jobs[t].out_cap = ckpt_codec_zstd_chunk_bound(chunk_bytes);
        jobs[t].ctx = ckpt_codec_zstd_ctx_new();
        jobs[t].pad = malloc(chunk_bytes);
        jobs[t].out = malloc(jobs[t].out_cap ? jobs[t].out_cap : 1);
        if (!jobs[t].ctx || !jobs[t].pad || !jobs[t].out) {
            rc = ckpt_error(CKPT_ENOMEM, "out of memory compressing '%s'", it->tensor);
            goto out;
        }
    }
    for (int64_t k0 = 0; k0 < it->pieces.count && rc == CKPT_OK; k0 += nt) {
        int n = (int)(it->pieces.count - k0 < nt ? it->pieces.count - k0 : nt);
        for (int t = 0; t < n; t++) {
            jobs[t].k = k0 + t;
            jobs[t].started = t < n - 1 && pthread_create(&tids[t], NULL, compress_one, &jobs[t]) == 0;
            if (!jobs[t].started) /* the last one (or any that cannot get a thread) runs here */
                compress_one(&jobs[t]);
        }
        for (int t = 0; t < n; t++)
            if (jobs[t].started)
                pthread_join(tids[t], NULL);
        for (int t = 0; t < n && rc == CKPT_OK; t++) {
            if (jobs[t].out_len == 0) {
                rc = ckpt_error(CKPT_EIO, "zstd could not compress piece %lld of tensor '%s'", (long long)jobs[t].k,
                                it->tensor);
                break;
            }
            ckpt_box pb;
            ckpt_piece_box(&it->box, &it->pieces, jobs[t].k, &pb);
            hsize_t off[CKPT_MAX_NDIM];
            for (int d = 0; d < nd; d++)
                off[d] = (hsize_t)(pb.off[d] - it->box.off[d]);
            if (H5Dwrite_chunk(ds, H5P_DEFAULT, 0, off, jobs[t].out_len, jobs[t].out) < 0)
                rc = h5_error("cannot write a compressed chunk to", path);
        }
    }
out:
    if (jobs)
        for (int t = 0; t < nt; t++) {
            ckpt_codec_zstd_ctx_free(jobs[t].ctx);
            free(jobs[t].pad);
            free(jobs[t].out);
        }
    free(jobs);
    free(tids);
    return rc;
}

static int create_box_dataset(hid_t f, const ckpt_write_item *it, const ckpt_io_codec *codec, const char *path,
                              int parallel, hid_t *out)
{
    int nd = it->box.ndim;
    hsize_t dims[CKPT_MAX_NDIM], chunk[CKPT_MAX_NDIM];
    for (int d = 0; d < nd; d++) {
        dims[d] = (hsize_t)it->box.ext[d];
        chunk[d] = d < it->pieces.dim ? 1 : d == it->pieces.dim ? (hsize_t)it->pieces.len : dims[d];
    }
    int zstd = codec && codec->compress == CKPT_COMPRESS_ZSTD && nd > 0;
    hid_t sp = nd ? H5Screate_simple(nd, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (nd)
        H5Pset_chunk(dcpl, nd, chunk);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    if (parallel)
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    hid_t ds = -1;
    int rc = CKPT_OK;
    if (zstd && ckpt_codec_set_dcpl(dcpl, codec->level, codec->shuffle) < 0) {
        rc = ckpt_error(CKPT_EINVAL, "cannot set up zstd level %d for '%s'", codec->level, it->tensor);
        goto out;
    }
    ds = H5Dcreate2(f, it->dataset, ckpt_h5_type(it->dtype), sp, lcpl, dcpl, H5P_DEFAULT);
    if (ds < 0) {
        rc = h5_error("cannot create a dataset in", path);
        goto out;
    }
    /* self-description for plain HDF5 readers, and where the box's checksums are */
    if (ckpt_h5_attr_str(ds, "tensor", it->tensor) < 0 || ckpt_h5_attr_str(ds, "dtype", ckpt_dtype_name(it->dtype)) < 0 ||
        ckpt_h5_attr_i64_array(ds, "offset", it->box.off, nd) < 0 ||
        ckpt_h5_attr_i64(ds, "first_piece", it->first_piece) < 0) {
        rc = h5_error("cannot write attributes in", path);
        H5Dclose(ds);
        ds = -1;
    }
out:
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    *out = ds;
    return rc;
}

int ckpt_io_create_box_dataset(hid_t f, const ckpt_write_item *it, const ckpt_io_codec *codec, const char *path,
                               hid_t *out)
{
    return create_box_dataset(f, it, codec, path, 0, out);
}

int ckpt_io_create_box_dataset_parallel(hid_t f, const ckpt_write_item *it, const ckpt_io_codec *codec,
                                        const char *path, hid_t *out)
{
    return create_box_dataset(f, it, codec, path, 1, out);
}

static int write_item(hid_t f, ckpt_write_item *it, const ckpt_io_codec *codec, const char *path)
{
    hid_t ds;
    int rc = ckpt_io_create_box_dataset(f, it, codec, path, &ds);
    if (rc)
        return ckpt_error_prefix("tensor '%s': ", it->tensor);
    int zstd = codec && codec->compress == CKPT_COMPRESS_ZSTD && it->box.ndim > 0;
    if (ckpt_fault("io_write"))
        rc = ckpt_error(CKPT_EIO, "cannot write a dataset of '%s': injected I/O error (CKPT_FAULT=io_write)", path);
    else if (zstd)
        rc = write_compressed(ds, it, codec, path);
    else if (H5Dwrite(ds, ckpt_h5_type(it->dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, it->data) < 0)
        rc = h5_error("cannot write a dataset of", path);
    if (rc)
        ckpt_error_prefix("tensor '%s': ", it->tensor);
    else {
        ckpt_io_checksum_item(it);
        it->stored_bytes = (int64_t)H5Dget_storage_size(ds);
    }
    H5Dclose(ds);
    return rc;
}

int ckpt_io_write_checksums(hid_t f, const uint64_t *sums, int64_t n, const char *path)
{
    hsize_t dims = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dims, NULL);
    hid_t d = H5Dcreate2(f, CKPT_CHECKSUM_TABLE, H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = CKPT_OK;
    if (d < 0 || (n > 0 && H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, sums) < 0))
        rc = h5_error("cannot write the checksum table of", path);
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(sp);
    return rc;
}

static const ckpt_write_item *g_sort_items;
static int cmp_item_slot(const void *a, const void *b)
{
    int64_t x = g_sort_items[*(const int64_t *)a].first_piece, y = g_sort_items[*(const int64_t *)b].first_piece;
    return x < y ? -1 : x > y;
}

int ckpt_io_write_checksum_slots(hid_t f, int64_t nslots, const ckpt_write_item *items, int64_t n, int parallel,
                                 const char *path)
{
    int rc = CKPT_OK;
    hsize_t dims = (hsize_t)nslots;
    hid_t sp = H5Screate_simple(1, &dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (parallel) {
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
        H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    }
    hid_t ds = H5Dcreate2(f, CKPT_CHECKSUM_TABLE, H5T_STD_U64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    /* HDF5 fills a selection in increasing file offset, whatever order it was built in */
    int64_t cnt = 0, *ord = malloc(((size_t)n + 1) * sizeof *ord);
    for (int64_t i = 0; i < n; i++)
        cnt += items[i].pieces.count;
    uint64_t *buf = malloc(((size_t)cnt + 1) * sizeof *buf);
    hid_t fs = H5Scopy(sp);
    H5Sselect_none(fs);
    if (buf && ord) {
        for (int64_t i = 0; i < n; i++)
            ord[i] = i;
        g_sort_items = items; /* under the HDF5 lock: one sort at a time */
        qsort(ord, (size_t)n, sizeof *ord, cmp_item_slot);
        int64_t at = 0;
        for (int64_t i = 0; i < n; i++) {
            const ckpt_write_item *it = &items[ord[i]];
            hsize_t start = (hsize_t)it->first_piece, c = (hsize_t)it->pieces.count;
            if (c)
                H5Sselect_hyperslab(fs, H5S_SELECT_OR, &start, NULL, &c, NULL);
            memcpy(buf + at, it->checksums, (size_t)c * sizeof *buf);
            at += (int64_t)c;
        }
    }
    hsize_t m = (hsize_t)(buf && ord ? cnt : 0);
    hid_t ms = H5Screate_simple(1, &m, NULL);
    if (m == 0) {
        H5Sselect_none(ms);
        H5Sselect_none(fs);
    }
    if ((!buf || !ord) && rc == CKPT_OK)
        rc = ckpt_error(CKPT_ENOMEM, "out of memory writing the checksum table of '%s'", path);
    static const uint64_t none[1];
    if ((ds < 0 || H5Dwrite(ds, H5T_NATIVE_UINT64, ms, fs, dxpl, m ? buf : none) < 0) && rc == CKPT_OK)
        rc = h5_error("cannot write the checksum table of", path);
    free(buf);
    free(ord);
    H5Sclose(ms);
    H5Sclose(fs);
    if (ds >= 0)
        H5Dclose(ds);
    H5Pclose(dxpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return rc;
}

int ckpt_io_rank_open(const char *dir, const char *name, ckpt_rank_file *f)
{
    memset(f, 0, sizeof *f);
    f->h = -1;
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    f->dirfd = ckpt_sys_open_dir(dir, 1);
    if (f->dirfd < 0)
        return ckpt_error(CKPT_EIO, "cannot open directory '%s': %s", dir, strerror(-f->dirfd));
    ckpt_h5_lock();
    int rc = CKPT_OK;
    hid_t fapl = ckpt_h5_data_fapl(f->dirfd);
    f->h = fapl < 0 ? -1 : H5Fcreate(name, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    if (f->h < 0) /* before any other HDF5 call clears the error stack */
        rc = fapl < 0 ? ckpt_errcode() : h5_error("cannot create data file", f->path);
    if (fapl >= 0)
        H5Pclose(fapl);
    ckpt_h5_unlock();
    if (rc) {
        ckpt_sys_close(f->dirfd);
        f->dirfd = -1;
    }
    return rc;
}

/* The first write the driver could not make (a full disk), as an error naming the file. */
static int write_failure(ckpt_rank_file *f)
{
    char why[600];
    if (ckpt_vfd_error(f->h, why, sizeof why) >= 0)
        return CKPT_OK;
    return ckpt_error(CKPT_EIO, "cannot write data file '%s'%s", f->path, why);
}

int ckpt_io_rank_write(ckpt_rank_file *f, ckpt_write_item *it, const ckpt_io_codec *codec)
{
    ckpt_h5_lock();
    int rc = write_item(f->h, it, codec, f->path);
    if (rc == CKPT_OK && (rc = write_failure(f)) != CKPT_OK)
        ckpt_error_prefix("tensor '%s': ", it->tensor);
    ckpt_h5_unlock();
    return rc;
}

int ckpt_io_rank_close(ckpt_rank_file *f, int do_fsync, int rc, const ckpt_write_item *items, int64_t n)
{
    if (f->h < 0)
        return rc;
    ckpt_h5_lock();
    if (rc == CKPT_OK) {
        int64_t total = 0;
        for (int64_t i = 0; i < n; i++)
            total += items[i].pieces.count;
        uint64_t *sums = malloc(((size_t)total + 1) * sizeof *sums);
        if (!sums)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory writing the checksum table of '%s'", f->path);
        for (int64_t i = 0; sums && i < n; i++)
            memcpy(sums + items[i].first_piece, items[i].checksums, (size_t)items[i].pieces.count * sizeof *sums);
        if (rc == CKPT_OK)
            rc = ckpt_io_write_checksums(f->h, sums, total, f->path);
        free(sums);
    }
    char why[600];
    if (ckpt_h5_close_file(f->h, why, sizeof why) < 0 && rc == CKPT_OK)
        rc = ckpt_error(CKPT_EIO, "cannot write data file '%s'%s", f->path, why);
    f->h = -1;
    ckpt_h5_unlock();
    if (rc == CKPT_OK && do_fsync) {
        int err = ckpt_sys_fsync_in(f->dirfd, f->name);
        if (err)
            rc = ckpt_error(CKPT_EIO, "fsync of data file '%s' failed: %s", f->path, strerror(-err));
    }
    ckpt_sys_close(f->dirfd);
    f->dirfd = -1;
    return rc;
}

int ckpt_io_write_rank_file(const char *dir, const char *name, ckpt_write_item *items, int64_t n,
                            const ckpt_io_codec *codec, int do_fsync)
{
    ckpt_rank_file f;
    int rc = ckpt_io_rank_open(dir, name, &f);
    if (rc)
        return rc;
    int64_t slot = 0;
    for (int64_t i = 0; i < n && rc == CKPT_OK; i++) {
        items[i].first_piece = slot;
        slot += items[i].pieces.count;
        rc = ckpt_io_rank_write(&f, &items[i], codec);
    }
    return ckpt_io_rank_close(&f, do_fsync, rc, items, n);
}

int ckpt_io_open_read(int dirfd, const char *name, const char *display, int writer_rank, hid_t *out, int max_open)
{
    char who[64] = "";
    if (writer_rank >= 0)
        snprintf(who, sizeof who, " (written by rank %d)", writer_rank);
    *out = -1;
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return ckpt_error(errno == ENOENT ? CKPT_ENOTFOUND : CKPT_EIO, "data file '%s'%s is missing: %s", display, who,
                          strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ckpt_error(CKPT_ECORRUPT, "data file '%s'%s is not a regular file (a symbolic link or a directory "
                          "is never followed out of the checkpoint)", display, who);
    ckpt_h5_lock();
    hid_t fapl = ckpt_h5_data_fapl(dirfd);
    hid_t f = fapl < 0 ? -1 : H5Fopen(name, H5F_ACC_RDONLY, fapl);
    char detail[400] = "";
    if (f < 0) /* before any other HDF5 call clears the error stack */
        ckpt_error_hdf5_detail(detail, sizeof detail);
    if (fapl >= 0)
        H5Pclose(fapl);
    int rc = CKPT_OK;
    if (f < 0) {
        if (strstr(detail, "Too many open files") || strstr(detail, "EMFILE"))
            rc = ckpt_error(CKPT_EIO,
                            "cannot open data file '%s': out of file descriptors (Too many open files; this reader "
                            "keeps at most %d data files open: lower CKPT_MAX_OPEN_FILES or raise ulimit -n)",
                            display, max_open);
        else
            rc = ckpt_error(CKPT_ECORRUPT, "data file '%s'%s cannot be opened: truncated or not HDF5%s", display, who,
                            detail);
    }
    ckpt_h5_unlock();
    *out = f;
    return rc;
}

int ckpt_io_check_filters(hid_t ds, const char *dataset, const char *display)
{
    hid_t dcpl = H5Dget_create_plist(ds);
    int rc = CKPT_OK;
    int n = dcpl < 0 ? 0 : H5Pget_nfilters(dcpl);
    for (int i = 0; i < n && rc == CKPT_OK; i++) {
        unsigned flags, cd[8];
        size_t ncd = 8;
        char name[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof name, name, NULL);
        /* CKPT_FAULT=no_zstd plays a build without zstd, to test this message */
        int hidden = id == CKPT_FILTER_ZSTD && ckpt_fault("no_zstd");
        if (id == CKPT_FILTER_ZSTD && !hidden)
            ckpt_codec_zstd_register();
        if (id >= 0 && (hidden || H5Zfilter_avail(id) <= 0))
            rc = ckpt_error(CKPT_EUNSUPPORTED,
                            "dataset '%s' of '%s' is compressed with HDF5 filter %d (%s), which this build cannot "
                            "decode (set HDF5_PLUGIN_PATH to a folder holding the plugin)",
                            dataset, display, (int)id, name[0] ? name : "unknown");
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    return rc;
}

/* A dataset path is followed only through hard links of this file: an external link (another
 * file), a soft link or a user-defined link would take the read elsewhere. */
static int hard_links_only(hid_t file, const char *dataset, const char *display)
{
    char prefix[CKPT_MAX_NAME + 64];
    size_t n = strlen(dataset);
    if (n == 0 || n >= sizeof prefix || dataset[0] != '/')
        return ckpt_error(CKPT_ECORRUPT, "dataset path '%s' of data file '%s' is not absolute", dataset, display);
    for (size_t i = 1; i <= n; i++) {
        if (dataset[i] != '/' && dataset[i] != '\0')
            continue;
        memcpy(prefix, dataset, i);
        prefix[i] = '\0';
        H5L_info_t li;
        htri_t ex = H5Lexists(file, prefix, H5P_DEFAULT);
        if (ex <= 0 || H5Lget_info(file, prefix, &li, H5P_DEFAULT) < 0) {
            char detail[400];
            ckpt_error_hdf5_detail(detail, sizeof detail);
            return ckpt_error(ckpt_h5_failure_status(detail, CKPT_ECORRUPT),
                              "dataset '%s' %s data file '%s' (no '%s')%s", dataset,
                              ex == 0 ? "is missing from" : "cannot be looked up in", display, prefix, detail);
        }
        if (li.type != H5L_TYPE_HARD)
            return ckpt_error(CKPT_ECORRUPT,
                              "data file '%s': '%s' is a%s link, not an object of the file: links out of a data file "
                              "are refused", display, prefix,
                              li.type == H5L_TYPE_EXTERNAL ? "n external" : li.type == H5L_TYPE_SOFT ? " soft" : " user-defined");
    }
    return CKPT_OK;
}

/* The dataset's bytes must live in the file itself (no external raw storage, no virtual
 * dataset mapping other files) and pass only the filters a checkpoint declares (shuffle, zstd). */
static int storage_inside(hid_t ds, const char *dataset, const char *display)
{
    const char *elsewhere = ckpt_h5_data_elsewhere(ds);
    if (elsewhere)
        return ckpt_error(CKPT_ECORRUPT, "dataset '%s' of data file '%s' %s: refused", dataset, display, elsewhere);
    hid_t dcpl = H5Dget_create_plist(ds);
    int rc = CKPT_OK, nf = dcpl < 0 ? 0 : H5Pget_nfilters(dcpl);
    for (int i = 0; i < nf && rc == CKPT_OK; i++) {
        unsigned flags, cd[8];
        size_t ncd = 8;
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL);
        if (id != H5Z_FILTER_SHUFFLE && id != CKPT_FILTER_ZSTD)
            rc = ckpt_error(CKPT_ECORRUPT, "dataset '%s' of data file '%s' uses HDF5 filter %d, which a checkpoint "
                            "never declares: refused", dataset, display, (int)id);
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    return rc;
}

/* The HDF5 type of a dataset in words, for messages. */
static void type_words(hid_t t, char *buf, size_t len)
{
    size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        snprintf(buf, len, "%zu-bit %s integers", bits, H5Tget_sign(t) == H5T_SGN_NONE ? "unsigned" : "signed");
        break;
    case H5T_FLOAT: snprintf(buf, len, "%zu-bit floats", bits); break;
    case H5T_STRING: snprintf(buf, len, "strings"); break;
    case H5T_COMPOUND: snprintf(buf, len, "compound records"); break;
    case H5T_ARRAY: snprintf(buf, len, "arrays"); break;
    case H5T_ENUM: snprintf(buf, len, "enumerations"); break;
    case H5T_VLEN: snprintf(buf, len, "variable-length sequences"); break;
    case H5T_REFERENCE: snprintf(buf, len, "references"); break;
    case H5T_BITFIELD: snprintf(buf, len, "bit fields"); break;
    case H5T_OPAQUE: snprintf(buf, len, "opaque data"); break;
    default: snprintf(buf, len, "data of an unknown HDF5 type"); break;
    }
}

/* The dataset's elements are of the file type formats/SPEC.md section 4.2 gives the index's
 * dtype (class, size and sign; either byte order): HDF5 would otherwise convert whatever the
 * file holds into the caller's buffer. */
static int type_matches(hid_t ds, ckpt_dtype dtype, const char *dataset, const char *display)
{
    hid_t ft = H5Dget_type(ds), want = ckpt_h5_type(dtype);
    int ok = ft >= 0 && want >= 0 && H5Tget_class(ft) == H5Tget_class(want) && H5Tget_size(ft) == H5Tget_size(want);
    if (ok && H5Tget_class(want) == H5T_INTEGER)
        ok = H5Tget_sign(ft) == H5Tget_sign(want);
    int rc = CKPT_OK;
    if (!ok) {
        char got[64] = "data of an unreadable type", exp[64] = "?";
        if (ft >= 0)
            type_words(ft, got, sizeof got);
        if (want >= 0)
            type_words(want, exp, sizeof exp);
        rc = ckpt_error(CKPT_ECORRUPT, "dataset '%s' of data file '%s' holds %s, not the %s (%s) the index records",
                        dataset, display, got, ckpt_dtype_name(dtype) ? ckpt_dtype_name(dtype) : "?", exp);
    }
    if (ft >= 0)
        H5Tclose(ft);
    return rc;
}

int ckpt_io_open_dataset(hid_t file, const char *dataset, ckpt_dtype dtype, const ckpt_box *box, const char *display,
                         hid_t *out)
{
    ckpt_h5_lock();
    *out = -1;
    int rc = hard_links_only(file, dataset, display);
    if (rc) {
        ckpt_h5_unlock();
        return rc;
    }
    int nd = box->ndim;
    /* no chunk cache: reads take whole pieces (= chunks); a cache per open dataset would keep
     * up to 1 MiB each alive for checkpoints of many small tensors */
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_chunk_cache(dapl, 0, 0, 1.0);
    hid_t ds = H5Dopen2(file, dataset, dapl), fs = -1;
    char detail[400] = "";
    if (ds < 0) /* before another HDF5 call clears the error stack */
        ckpt_error_hdf5_detail(detail, sizeof detail);
    H5Pclose(dapl);
    if (ds < 0) {
        rc = ckpt_error(ckpt_h5_failure_status(detail, CKPT_ECORRUPT), "dataset '%s' of data file '%s' cannot be "
                        "opened%s", dataset, display, detail);
        goto out;
    }
    fs = H5Dget_space(ds);
    int fnd = H5Sget_simple_extent_ndims(fs);
    hsize_t fdims[CKPT_MAX_NDIM];
    H5Sget_simple_extent_dims(fs, fdims, NULL);
    int ok = fnd == nd;
    for (int d = 0; ok && d < nd; d++)
        ok = fdims[d] == (hsize_t)box->ext[d];
    if (!ok)
        rc = ckpt_error(CKPT_ECORRUPT, "dataset '%s' of data file '%s' does not have the shape the index records",
                        dataset, display);
    else if ((rc = storage_inside(ds, dataset, display)) == CKPT_OK &&
             (rc = type_matches(ds, dtype, dataset, display)) == CKPT_OK)
        rc = ckpt_io_check_filters(ds, dataset, display);
out:
    if (fs >= 0)
        H5Sclose(fs);
    if (rc && ds >= 0) {
        H5Dclose(ds);
        ds = -1;
    }
    ckpt_h5_unlock();
    *out = ds;
    return rc;
}

int ckpt_io_open_checksums(hid_t file, const char *display, hid_t *out, int64_t *n)
{
    ckpt_h5_lock();
    *out = -1;
    *n = 0;
    int rc = CKPT_OK;
    H5O_info_t oi;
    hid_t d = -1, sp = -1, ft = -1;
    htri_t ex = H5Lexists(file, CKPT_CHECKSUM_TABLE, H5P_DEFAULT);
    if (ex <= 0) {
        char detail[400];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        rc = ckpt_error(ckpt_h5_failure_status(detail, CKPT_ECORRUPT), "data file '%s' %s (%s)%s", display,
                        ex == 0 ? "has no checksum table" : "cannot be read for its checksum table", CKPT_CHECKSUM_TABLE,
                        detail);
        goto out;
    }
    if ((rc = hard_links_only(file, CKPT_CHECKSUM_TABLE, display)) != CKPT_OK)
        goto out;
    if (H5Oget_info_by_name(file, CKPT_CHECKSUM_TABLE, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET ||
        (d = H5Dopen2(file, CKPT_CHECKSUM_TABLE, H5P_DEFAULT)) < 0) {
        char detail[400];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        rc = ckpt_error(ckpt_h5_failure_status(detail, CKPT_ECORRUPT), "data file '%s': its checksum table (%s) "
                        "cannot be opened%s", display, CKPT_CHECKSUM_TABLE, detail);
        goto out;
    }
    if ((rc = storage_inside(d, CKPT_CHECKSUM_TABLE, display)) != CKPT_OK)
        goto out;
    sp = H5Dget_space(d);
    ft = H5Dget_type(d);
    hssize_t cnt = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (cnt < 0 || ft < 0 || H5Tget_class(ft) != H5T_INTEGER || H5Tget_size(ft) != 8 ||
        (cnt > 0 && H5Dget_storage_size(d) < (hsize_t)cnt * 8)) {
        rc = ckpt_error(CKPT_ECORRUPT, "the checksum table of data file '%s' is not a complete 1-D uint64 table",
                        display);
        goto out;
    }
    *n = (int64_t)cnt;
    *out = d;
    d = -1;
out:
    if (ft >= 0)
        H5Tclose(ft);
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    ckpt_h5_unlock();
    return rc;
}

int ckpt_io_read_checksums(hid_t sums, int64_t len, int64_t first, int64_t n, uint64_t *out, const char *display)
{
    if (first < 0 || n < 0 || first > len || n > len - first) /* first + n may not fit in int64 */
        return ckpt_error(CKPT_ECORRUPT, "data file '%s': %lld checksums from %lld lie outside its table of %lld",
                          display, (long long)n, (long long)first, (long long)len);
    if (n == 0)
        return CKPT_OK;
    ckpt_h5_lock();
    hsize_t start = (hsize_t)first, count = (hsize_t)n;
    hid_t fs = H5Dget_space(sums), ms = H5Screate_simple(1, &count, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
    int rc = CKPT_OK;
    if (H5Dread(sums, H5T_NATIVE_UINT64, ms, fs, H5P_DEFAULT, out) < 0) {
        char detail[400];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        rc = ckpt_error(ckpt_h5_failure_status(detail, CKPT_ECORRUPT),
                        "cannot read the checksum table of data file '%s'%s", display, detail);
    }
    H5Sclose(ms);
    H5Sclose(fs);
    ckpt_h5_unlock();
    return rc;
}

int ckpt_io_box_first_piece(hid_t ds, const char *dataset, const char *display, int64_t *out)
{
    ckpt_h5_lock();
    int rc = CKPT_OK;
    if (ckpt_h5_read_attr_i64(ds, "first_piece", out) < 0 || *out < 0) {
        char detail[400];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        rc = ckpt_error(ckpt_h5_failure_status(detail, CKPT_ECORRUPT),
                        "dataset '%s' of data file '%s' has no valid first_piece attribute%s", dataset, display, detail);
    }
    ckpt_h5_unlock();
    return rc;
}

int ckpt_io_read_region(hid_t ds, const char *dataset, ckpt_dtype dtype, const ckpt_box *box,
                        const ckpt_box *region, void *buf, const char *display)
{
    ckpt_h5_lock();
    int rc = CKPT_OK;
    int nd = box->ndim;
    hid_t fs = H5Dget_space(ds), ms;
    if (nd) {
        hsize_t start[CKPT_MAX_NDIM], count[CKPT_MAX_NDIM];
        for (int d = 0; d < nd; d++) {
            start[d] = (hsize_t)(region->off[d] - box->off[d]);
            count[d] = (hsize_t)region->ext[d];
        }
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        ms = H5Screate_simple(nd, count, NULL);
    } else {
        ms = H5Screate(H5S_SCALAR);
    }
    if (H5Dread(ds, ckpt_h5_type(dtype), ms, fs, H5P_DEFAULT, buf) < 0) {
        char detail[400];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        int st = ckpt_h5_failure_status(detail, CKPT_ECORRUPT);
        rc = ckpt_error(st, "cannot read dataset '%s' of data file '%s'%s%s", dataset, display,
                        st == CKPT_ECORRUPT ? " (truncated or damaged)" : "", detail);
    }
    H5Sclose(ms);
    H5Sclose(fs);
    ckpt_h5_unlock();
    return rc;
}
