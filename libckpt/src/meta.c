/* meta.c -- encode/decode the global index (index.h5) as HDF5 compound tables. */
#include "meta.h"
#include "dtype.h"
#include "error.h"
#include "h5util.h"
#include "name.h"
#include "piece.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec_tensor {
    char *name;
    char *dtype;
    int32_t ndim;
    int64_t shape[CKPT_MAX_NDIM];
    int64_t first_box, nboxes, raw_bytes, stored_bytes;
} rec_tensor;

typedef struct rec_box {
    int32_t tensor, file, writer, piece_dim;
    int64_t offset[CKPT_MAX_NDIM], extent[CKPT_MAX_NDIM];
    int64_t piece_len, first_piece, npieces, stored_bytes;
    char *dataset;
} rec_box;

const char *ckpt_layout_name(ckpt_layout l)
{
    switch (l) {
    case CKPT_LAYOUT_PER_RANK: return "file-per-rank";
    case CKPT_LAYOUT_SHARED: return "shared";
    default: return "?";
    }
}

static int layout_from_name(const char *s, ckpt_layout *out)
{
    if (strcmp(s, "file-per-rank") == 0) {
        *out = CKPT_LAYOUT_PER_RANK;
        return 0;
    }
    if (strcmp(s, "shared") == 0) {
        *out = CKPT_LAYOUT_SHARED;
        return 0;
    }
    return -1;
}

int ckpt_index_new(ckpt_index **out)
{
    ckpt_index *ix = calloc(1, sizeof *ix);
    if (!ix || ckpt_state_create(&ix->attrs) != CKPT_OK) {
        free(ix);
        return ckpt_error(CKPT_ENOMEM, "out of memory creating an index");
    }
    ix->format_version = CKPT_FORMAT_VERSION;
    snprintf(ix->library_version, sizeof ix->library_version, "%s", CKPT_VERSION_STRING);
    *out = ix;
    return CKPT_OK;
}

void ckpt_index_free(ckpt_index *ix)
{
    if (!ix)
        return;
    for (int i = 0; i < ix->nfiles; i++)
        free(ix->files[i]);
    free(ix->files);
    for (int64_t i = 0; i < ix->ntensors; i++)
        free(ix->tensors[i].name);
    free(ix->tensors);
    for (int64_t i = 0; i < ix->nboxes; i++)
        free(ix->boxes[i].dataset);
    free(ix->boxes);
    free(ix->checksums);
    ckpt_state_free(ix->attrs);
    ckpt_strmap_free(&ix->by_name);
    free(ix);
}

int ckpt_index_build_lookup(ckpt_index *ix)
{
    ckpt_strmap_free(&ix->by_name);
    for (int64_t i = 0; i < ix->ntensors; i++) {
        if (ckpt_strmap_get(&ix->by_name, ix->tensors[i].name) >= 0)
            return ckpt_error(CKPT_ECORRUPT, "index lists tensor '%s' twice", ix->tensors[i].name);
        if (ckpt_strmap_put(&ix->by_name, ix->tensors[i].name, i) != 0)
            return ckpt_error(CKPT_ENOMEM, "out of memory indexing tensor names");
    }
    return CKPT_OK;
}

/* ---- HDF5 types of the tables ---- */

static hid_t i64_array_type(void)
{
    hsize_t n = CKPT_MAX_NDIM;
    return H5Tarray_create2(H5T_NATIVE_INT64, 1, &n);
}

static hid_t tensor_mem_type(hid_t str)
{
    hid_t arr = i64_array_type();
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(rec_tensor));
    H5Tinsert(t, "name", HOFFSET(rec_tensor, name), str);
    H5Tinsert(t, "dtype", HOFFSET(rec_tensor, dtype), str);
    H5Tinsert(t, "ndim", HOFFSET(rec_tensor, ndim), H5T_NATIVE_INT32);
    H5Tinsert(t, "shape", HOFFSET(rec_tensor, shape), arr);
    H5Tinsert(t, "first_box", HOFFSET(rec_tensor, first_box), H5T_NATIVE_INT64);
    H5Tinsert(t, "nboxes", HOFFSET(rec_tensor, nboxes), H5T_NATIVE_INT64);
    H5Tinsert(t, "raw_bytes", HOFFSET(rec_tensor, raw_bytes), H5T_NATIVE_INT64);
    H5Tinsert(t, "stored_bytes", HOFFSET(rec_tensor, stored_bytes), H5T_NATIVE_INT64);
    H5Tclose(arr);
    return t;
}

static hid_t box_mem_type(hid_t str)
{
    hid_t arr = i64_array_type();
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(rec_box));
    H5Tinsert(t, "tensor", HOFFSET(rec_box, tensor), H5T_NATIVE_INT32);
    H5Tinsert(t, "file", HOFFSET(rec_box, file), H5T_NATIVE_INT32);
    H5Tinsert(t, "writer", HOFFSET(rec_box, writer), H5T_NATIVE_INT32);
    H5Tinsert(t, "piece_dim", HOFFSET(rec_box, piece_dim), H5T_NATIVE_INT32);
    H5Tinsert(t, "offset", HOFFSET(rec_box, offset), arr);
    H5Tinsert(t, "extent", HOFFSET(rec_box, extent), arr);
    H5Tinsert(t, "piece_len", HOFFSET(rec_box, piece_len), H5T_NATIVE_INT64);
    H5Tinsert(t, "first_piece", HOFFSET(rec_box, first_piece), H5T_NATIVE_INT64);
    H5Tinsert(t, "npieces", HOFFSET(rec_box, npieces), H5T_NATIVE_INT64);
    H5Tinsert(t, "stored_bytes", HOFFSET(rec_box, stored_bytes), H5T_NATIVE_INT64);
    H5Tinsert(t, "dataset", HOFFSET(rec_box, dataset), str);
    H5Tclose(arr);
    return t;
}

static int write_table(hid_t grp, const char *name, hid_t memtype, hsize_t n, const void *buf)
{
    hid_t ft = H5Tcopy(memtype);
    H5Tpack(ft);
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(grp, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 ? -1 : 0;
    if (d >= 0 && n > 0 && H5Dwrite(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = -1;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(ft);
    return rc;
}

static int write_attrs(hid_t file, const ckpt_state *attrs)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(file, "attributes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = g < 0 ? -1 : 0;
    hid_t str = ckpt_h5_vlen_str();
    for (int i = 0; rc == 0 && i < attrs->nattrs; i++) {
        const ckpt_attr *a = &attrs->attrs[i];
        hid_t sp, type, d;
        const void *buf;
        const char *tname;
        const char *sval = a->bytes;
        hsize_t n = a->len;
        switch (a->type) {
        case CKPT_ATTR_INT: sp = H5Screate(H5S_SCALAR); type = H5T_STD_I64LE; buf = &a->i; tname = "int"; break;
        case CKPT_ATTR_DOUBLE: sp = H5Screate(H5S_SCALAR); type = H5T_IEEE_F64LE; buf = &a->d; tname = "double"; break;
        case CKPT_ATTR_STRING: sp = H5Screate(H5S_SCALAR); type = str; buf = &sval; tname = "string"; break;
        default: sp = H5Screate_simple(1, &n, NULL); type = H5T_STD_U8LE; buf = a->bytes; tname = "bytes"; break;
        }
        d = H5Dcreate2(g, a->key, type, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (d < 0 || (H5Sget_simple_extent_npoints(sp) > 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) ||
            ckpt_h5_attr_str(d, "type", tname) < 0) {
            char detail[300];
            ckpt_error_hdf5_detail(detail, sizeof detail);
            ckpt_error(CKPT_EIO, "cannot write attribute '%s'%s", a->key, detail);
            rc = -1;
        }
        if (d >= 0)
            H5Dclose(d);
        H5Sclose(sp);
    }
    H5Tclose(str);
    if (g >= 0)
        H5Gclose(g);
    H5Pclose(lcpl);
    return rc;
}

int ckpt_index_write(const ckpt_index *ix, const char *path)
{
    ckpt_h5_lock();
    int rc = CKPT_OK;
    rec_tensor *rt = calloc((size_t)ix->ntensors + 1, sizeof *rt);
    rec_box *rb = calloc((size_t)ix->nboxes + 1, sizeof *rb);
    hid_t f = -1, g = -1, str = -1, tt = -1, bt = -1;
    if (!rt || !rb) {
        rc = ckpt_error(CKPT_ENOMEM, "out of memory writing the index");
        goto out;
    }
    for (int64_t i = 0; i < ix->ntensors; i++) {
        const ckpt_itensor *t = &ix->tensors[i];
        rt[i].name = t->name;
        rt[i].dtype = (char *)ckpt_dtype_name(t->dtype);
        rt[i].ndim = t->ndim;
        memcpy(rt[i].shape, t->shape, sizeof rt[i].shape);
        rt[i].first_box = t->first_box;
        rt[i].nboxes = t->nboxes;
        rt[i].raw_bytes = t->raw_bytes;
        rt[i].stored_bytes = t->stored_bytes;
    }
    for (int64_t i = 0; i < ix->nboxes; i++) {
        const ckpt_ibox *b = &ix->boxes[i];
        rb[i].tensor = b->tensor;
        rb[i].file = b->file;
        rb[i].writer = b->writer;
        rb[i].piece_dim = b->piece_dim;
        memcpy(rb[i].offset, b->box.off, sizeof rb[i].offset);
        memcpy(rb[i].extent, b->box.ext, sizeof rb[i].extent);
        rb[i].piece_len = b->piece_len;
        rb[i].first_piece = b->first_piece;
        rb[i].npieces = b->npieces;
        rb[i].stored_bytes = b->stored_bytes;
        rb[i].dataset = b->dataset;
    }
    f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        goto h5fail;
    if (ckpt_h5_attr_str(f, "format", "ckpt") < 0 ||
        ckpt_h5_attr_i64(f, "format_version", ix->format_version) < 0 ||
        ckpt_h5_attr_str(f, "library_version", ix->library_version) < 0 ||
        ckpt_h5_attr_str(f, "layout", ckpt_layout_name(ix->layout)) < 0 ||
        ckpt_h5_attr_i64(f, "world_size", ix->world_size) < 0 ||
        ckpt_h5_attr_str(f, "checksum", "xxh3-64") < 0 ||
        ckpt_h5_attr_i64(f, "piece_bytes", ix->piece_bytes) < 0 ||
        ckpt_h5_attr_str(f, "compression", ix->compression[0] ? ix->compression : "none") < 0)
        goto h5fail;
    g = H5Gcreate2(f, "index", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    str = ckpt_h5_vlen_str();
    tt = tensor_mem_type(str);
    bt = box_mem_type(str);
    if (g < 0 || write_table(g, "tensors", tt, (hsize_t)ix->ntensors, rt) < 0 ||
        write_table(g, "boxes", bt, (hsize_t)ix->nboxes, rb) < 0 ||
        write_table(g, "checksums", H5T_STD_U64LE, (hsize_t)ix->npieces, ix->checksums) < 0 ||
        write_table(g, "files", str, (hsize_t)ix->nfiles, ix->files) < 0)
        goto h5fail;
    if (write_attrs(f, ix->attrs) < 0) {
        rc = CKPT_EIO;
        goto out;
    }
    if (H5Fclose(f) < 0) {
        f = -1;
        goto h5fail;
    }
    f = -1;
    goto out;
h5fail : {
    char detail[300];
    ckpt_error_hdf5_detail(detail, sizeof detail);
    rc = ckpt_error(CKPT_EIO, "cannot write index file '%s'%s", path, detail);
}
out:
    if (bt >= 0) H5Tclose(bt);
    if (tt >= 0) H5Tclose(tt);
    if (str >= 0) H5Tclose(str);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    free(rt);
    free(rb);
    ckpt_h5_unlock();
    return rc;
}

/* ---- reading ---- */

typedef struct read_ctx {
    const char *path;
    ckpt_index *ix;
    int rc;
} read_ctx;

/* Reads a 1-D table dataset; *n gets its length; *buf a malloc'd array of n records. */
static int read_table(hid_t g, const char *name, hid_t memtype, size_t recsize, int64_t *n, void **buf)
{
    *buf = NULL;
    *n = 0;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t sp = H5Dget_space(d);
    int rc = -1;
    if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1) {
        hssize_t cnt = H5Sget_simple_extent_npoints(sp);
        *buf = calloc((size_t)cnt + 1, recsize);
        if (*buf && (cnt == 0 || H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *buf) >= 0)) {
            *n = cnt;
            rc = 0;
        }
    }
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(d);
    if (rc) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

/* Frees a table read by read_table, with the strings HDF5 allocated inside its records. */
static void free_table(hid_t memtype, int64_t n, void *buf)
{
    if (!buf)
        return;
    if (n > 0) {
        hsize_t dims = (hsize_t)n;
        hid_t sp = H5Screate_simple(1, &dims, NULL);
        H5Dvlen_reclaim(memtype, sp, H5P_DEFAULT, buf);
        H5Sclose(sp);
    }
    free(buf);
}

static herr_t attr_visit(hid_t obj, const char *name, const H5O_info_t *info, void *arg)
{
    read_ctx *c = arg;
    if (info->type != H5O_TYPE_DATASET)
        return 0;
    char tname[32];
    hid_t d = H5Dopen2(obj, name, H5P_DEFAULT);
    if (d < 0 || ckpt_h5_read_attr_str(d, "type", tname, sizeof tname) < 0) {
        if (d >= 0)
            H5Dclose(d);
        c->rc = ckpt_error(CKPT_ECORRUPT, "index '%s': attribute '%s' has no readable type", c->path, name);
        return 1;
    }
    int rc = -1;
    if (strcmp(tname, "int") == 0) {
        int64_t v;
        if (H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0)
            rc = ckpt_state_set_int(c->ix->attrs, name, v);
    } else if (strcmp(tname, "double") == 0) {
        double v;
        if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0)
            rc = ckpt_state_set_double(c->ix->attrs, name, v);
    } else if (strcmp(tname, "string") == 0) {
        hid_t str = ckpt_h5_vlen_str();
        char *v = NULL;
        if (H5Dread(d, str, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0 && v) {
            rc = ckpt_state_set_string(c->ix->attrs, name, v);
            H5free_memory(v);
        }
        H5Tclose(str);
    } else if (strcmp(tname, "bytes") == 0) {
        hid_t sp = H5Dget_space(d);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        unsigned char *v = malloc((size_t)n + 1);
        if (v && (n == 0 || H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0))
            rc = ckpt_state_set_bytes(c->ix->attrs, name, v, (size_t)n);
        free(v);
        H5Sclose(sp);
    }
    H5Dclose(d);
    if (rc != CKPT_OK) {
        c->rc = ckpt_error(CKPT_ECORRUPT, "index '%s': cannot read attribute '%s' (type '%s')", c->path,
                           name, tname);
        return 1;
    }
    return 0;
}

static int corrupt(const char *path, const char *what)
{
    return ckpt_error(CKPT_ECORRUPT, "index '%s' is malformed: %s", path, what);
}

static int validate(const char *path, ckpt_index *ix)
{
    char msg[512];
    int64_t next_box = 0;
    for (int64_t i = 0; i < ix->ntensors; i++) {
        ckpt_itensor *t = &ix->tensors[i];
        if (t->ndim < 0 || t->ndim > CKPT_MAX_NDIM || t->first_box != next_box || t->nboxes < 0 ||
            t->first_box + t->nboxes > ix->nboxes) {
            snprintf(msg, sizeof msg, "tensor '%s' has a bad ndim or box range", t->name);
            return corrupt(path, msg);
        }
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0) {
                snprintf(msg, sizeof msg, "tensor '%s' has a negative dim", t->name);
                return corrupt(path, msg);
            }
        if (i > 0 && strcmp(ix->tensors[i - 1].name, t->name) >= 0) {
            snprintf(msg, sizeof msg, "tensors are not sorted by name at '%s'", t->name);
            return corrupt(path, msg);
        }
        for (int64_t j = t->first_box; j < t->first_box + t->nboxes; j++) {
            ckpt_ibox *b = &ix->boxes[j];
            ckpt_pieces pc;
            b->box.ndim = t->ndim;
            if (b->tensor != i || b->file < 0 || b->file >= ix->nfiles || !b->dataset ||
                !ckpt_box_in_shape(&b->box, t->shape) || ckpt_box_volume(&b->box) <= 0 ||
                ckpt_pieces_from(t->ndim, b->box.ext, b->piece_dim, b->piece_len, &pc) != 0 ||
                pc.count != b->npieces || b->first_piece < 0 || b->first_piece + b->npieces > ix->npieces) {
                snprintf(msg, sizeof msg, "box %lld of tensor '%s' is inconsistent", (long long)j, t->name);
                return corrupt(path, msg);
            }
        }
        next_box += t->nboxes;
    }
    if (next_box != ix->nboxes)
        return corrupt(path, "boxes not owned by any tensor");
    return CKPT_OK;
}

int ckpt_index_read(const char *path, ckpt_index **out)
{
    *out = NULL;
    ckpt_index *ix;
    int rc = ckpt_index_new(&ix);
    if (rc)
        return rc;
    ckpt_h5_lock();
    hid_t f = -1, g = -1, str = -1, tt = -1, bt = -1;
    rec_tensor *rt = NULL;
    rec_box *rb = NULL;
    char **files = NULL;
    int64_t nt = 0, nb = 0, nf = 0;
    char buf[64];
    int64_t v;
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        char detail[300];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        rc = ckpt_error(CKPT_ECORRUPT, "cannot open index '%s' (truncated or not HDF5?)%s", path, detail);
        goto out;
    }
    if (ckpt_h5_read_attr_str(f, "format", buf, sizeof buf) < 0 || strcmp(buf, "ckpt") != 0) {
        rc = ckpt_error(CKPT_ECORRUPT, "'%s' is not a ckpt index (no format=\"ckpt\" attribute)", path);
        goto out;
    }
    if (ckpt_h5_read_attr_i64(f, "format_version", &v) < 0) {
        rc = corrupt(path, "no format_version");
        goto out;
    }
    if (v < 1 || v > CKPT_FORMAT_VERSION) {
        rc = ckpt_error(CKPT_EVERSION,
                        "checkpoint index '%s' has format version %lld; this library (%s) reads versions 1..%d",
                        path, (long long)v, CKPT_VERSION_STRING, CKPT_FORMAT_VERSION);
        goto out;
    }
    ix->format_version = (int)v;
    if (ckpt_h5_read_attr_str(f, "library_version", ix->library_version, sizeof ix->library_version) < 0 ||
        ckpt_h5_read_attr_str(f, "layout", buf, sizeof buf) < 0 || layout_from_name(buf, &ix->layout) < 0 ||
        ckpt_h5_read_attr_i64(f, "world_size", &v) < 0 || v < 1 || v > INT32_MAX) {
        rc = corrupt(path, "missing or bad library_version/layout/world_size attributes");
        goto out;
    }
    ix->world_size = (int)v;
    if (ckpt_h5_read_attr_str(f, "checksum", buf, sizeof buf) < 0 || strcmp(buf, "xxh3-64") != 0) {
        rc = corrupt(path, "unknown checksum algorithm (expected xxh3-64)");
        goto out;
    }
    if (ckpt_h5_read_attr_i64(f, "piece_bytes", &ix->piece_bytes) < 0 || ix->piece_bytes < 1) {
        rc = corrupt(path, "missing piece_bytes");
        goto out;
    }
    if (ckpt_h5_read_attr_str(f, "compression", ix->compression, sizeof ix->compression) < 0)
        snprintf(ix->compression, sizeof ix->compression, "none");
    g = H5Gopen2(f, "index", H5P_DEFAULT);
    str = ckpt_h5_vlen_str();
    tt = tensor_mem_type(str);
    bt = box_mem_type(str);
    if (g < 0 || read_table(g, "tensors", tt, sizeof *rt, &nt, (void **)&rt) < 0 ||
        read_table(g, "boxes", bt, sizeof *rb, &nb, (void **)&rb) < 0 ||
        read_table(g, "checksums", H5T_NATIVE_UINT64, sizeof(uint64_t), &ix->npieces, (void **)&ix->checksums) < 0 ||
        read_table(g, "files", str, sizeof(char *), &nf, (void **)&files) < 0) {
        char detail[300];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        rc = ckpt_error(CKPT_ECORRUPT, "index '%s': cannot read the /index tables%s", path, detail);
        goto out;
    }
    ix->tensors = calloc((size_t)nt + 1, sizeof *ix->tensors);
    ix->boxes = calloc((size_t)nb + 1, sizeof *ix->boxes);
    ix->files = calloc((size_t)nf + 1, sizeof *ix->files);
    if (!ix->tensors || !ix->boxes || !ix->files) {
        rc = ckpt_error(CKPT_ENOMEM, "out of memory reading index '%s'", path);
        goto out;
    }
    for (int64_t i = 0; i < nf; i++) {
        ix->files[i] = strdup(files[i] ? files[i] : "");
        ix->nfiles++;
        if (!ix->files[i] || strchr(ix->files[i], '/') || !ix->files[i][0]) {
            rc = corrupt(path, "a file name is empty or contains '/'");
            goto out;
        }
    }
    for (int64_t i = 0; i < nt; i++) {
        ckpt_itensor *t = &ix->tensors[i];
        t->name = strdup(rt[i].name ? rt[i].name : "");
        ix->ntensors++;
        if (!t->name || ckpt_name_check(t->name, "tensor name") != CKPT_OK) {
            rc = corrupt(path, "a tensor name is invalid");
            goto out;
        }
        if (!rt[i].dtype || ckpt_dtype_from_name(rt[i].dtype, &t->dtype) != CKPT_OK) {
            rc = ckpt_error(CKPT_EVERSION, "index '%s': tensor '%s' has dtype '%s' this library does not know",
                            path, t->name, rt[i].dtype ? rt[i].dtype : "");
            goto out;
        }
        t->ndim = rt[i].ndim;
        memcpy(t->shape, rt[i].shape, sizeof t->shape);
        t->first_box = rt[i].first_box;
        t->nboxes = rt[i].nboxes;
        t->raw_bytes = rt[i].raw_bytes;
        t->stored_bytes = rt[i].stored_bytes;
    }
    for (int64_t i = 0; i < nb; i++) {
        ckpt_ibox *b = &ix->boxes[i];
        b->tensor = rb[i].tensor;
        b->file = rb[i].file;
        b->writer = rb[i].writer;
        b->piece_dim = rb[i].piece_dim;
        memcpy(b->box.off, rb[i].offset, sizeof b->box.off);
        memcpy(b->box.ext, rb[i].extent, sizeof b->box.ext);
        b->piece_len = rb[i].piece_len;
        b->first_piece = rb[i].first_piece;
        b->npieces = rb[i].npieces;
        b->stored_bytes = rb[i].stored_bytes;
        b->dataset = rb[i].dataset ? strdup(rb[i].dataset) : NULL;
        ix->nboxes++;
    }
    rc = validate(path, ix);
    if (rc)
        goto out;
    if (H5Lexists(f, "attributes", H5P_DEFAULT) > 0) {
        read_ctx c = {path, ix, CKPT_OK};
        hid_t ag = H5Gopen2(f, "attributes", H5P_DEFAULT);
        if (ag < 0 || H5Ovisit(ag, H5_INDEX_NAME, H5_ITER_INC, attr_visit, &c) < 0 || c.rc) {
            rc = c.rc ? c.rc : corrupt(path, "cannot walk /attributes");
        }
        if (ag >= 0)
            H5Gclose(ag);
        if (rc)
            goto out;
    }
    rc = ckpt_index_build_lookup(ix);
out:
    free_table(tt, nt, rt);
    free_table(bt, nb, rb);
    free_table(str, nf, files);
    if (bt >= 0) H5Tclose(bt);
    if (tt >= 0) H5Tclose(tt);
    if (str >= 0) H5Tclose(str);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    ckpt_h5_unlock();
    if (rc) {
        ckpt_index_free(ix);
        return rc;
    }
    *out = ix;
    return CKPT_OK;
}
