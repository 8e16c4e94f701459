/* meta_io.c -- index.h5: encode (format version 2), decode (versions 1 and 2). Every table and
 * attribute read from the file is checked for rank, type and size before anything is allocated
 * from it; the contents are then checked by ckpt_index_validate. */
#include "meta.h"
#include "dtype.h"
#include "error.h"
#include "h5util.h"
#include "name.h"
#include "sysio.h"
#include "vfd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- records ---- */

typedef struct rec_tensor {
    char *name;
    char *dtype;
    int32_t ndim;
    int32_t sharding;
    int64_t shape[CKPT_MAX_NDIM];
    int64_t chunk[CKPT_MAX_NDIM];
    int64_t writer0;
    int64_t stride[CKPT_MAX_NDIM];
    int64_t first_box, nboxes, first_row, first_piece, piece_stride, raw_bytes, stored_bytes;
} rec_tensor;

typedef struct rec_box {
    int32_t tensor, writer;
    int64_t offset[CKPT_MAX_NDIM], extent[CKPT_MAX_NDIM];
    int64_t first_piece;
} rec_box;

typedef struct rec_group {
    int64_t first_rank, nranks, group;
} rec_group;

/* version 1 */
typedef struct rec_tensor_v1 {
    char *name;
    char *dtype;
    int32_t ndim;
    int64_t shape[CKPT_MAX_NDIM];
    int64_t first_box, nboxes, raw_bytes, stored_bytes;
} rec_tensor_v1;

typedef struct rec_box_v1 {
    int32_t tensor, file, writer, piece_dim;
    int64_t offset[CKPT_MAX_NDIM], extent[CKPT_MAX_NDIM];
    int64_t piece_len, first_piece, npieces, stored_bytes;
    char *dataset;
} rec_box_v1;

typedef struct field {
    const char *name;
    size_t offset;
    hid_t type; /* 0: the vlen string, 1: int64[8] */
} field;

#define F_STR ((hid_t)0)
#define F_ARR ((hid_t)1)

static const field tensor_fields[] = {
    {"name", offsetof(rec_tensor, name), F_STR},
    {"dtype", offsetof(rec_tensor, dtype), F_STR},
    {"ndim", offsetof(rec_tensor, ndim), -2},
    {"sharding", offsetof(rec_tensor, sharding), -2},
    {"shape", offsetof(rec_tensor, shape), F_ARR},
    {"chunk", offsetof(rec_tensor, chunk), F_ARR},
    {"writer0", offsetof(rec_tensor, writer0), -3},
    {"stride", offsetof(rec_tensor, stride), F_ARR},
    {"first_box", offsetof(rec_tensor, first_box), -3},
    {"nboxes", offsetof(rec_tensor, nboxes), -3},
    {"first_row", offsetof(rec_tensor, first_row), -3},
    {"first_piece", offsetof(rec_tensor, first_piece), -3},
    {"piece_stride", offsetof(rec_tensor, piece_stride), -3},
    {"raw_bytes", offsetof(rec_tensor, raw_bytes), -3},
    {"stored_bytes", offsetof(rec_tensor, stored_bytes), -3},
};
static const field box_fields[] = {
    {"tensor", offsetof(rec_box, tensor), -2},
    {"writer", offsetof(rec_box, writer), -2},
    {"offset", offsetof(rec_box, offset), F_ARR},
    {"extent", offsetof(rec_box, extent), F_ARR},
    {"first_piece", offsetof(rec_box, first_piece), -3},
};
static const field group_fields[] = {
    {"first_rank", offsetof(rec_group, first_rank), -3},
    {"nranks", offsetof(rec_group, nranks), -3},
    {"group", offsetof(rec_group, group), -3},
};
static const field tensor_fields_v1[] = {
    {"name", offsetof(rec_tensor_v1, name), F_STR},
    {"dtype", offsetof(rec_tensor_v1, dtype), F_STR},
    {"ndim", offsetof(rec_tensor_v1, ndim), -2},
    {"shape", offsetof(rec_tensor_v1, shape), F_ARR},
    {"first_box", offsetof(rec_tensor_v1, first_box), -3},
    {"nboxes", offsetof(rec_tensor_v1, nboxes), -3},
    {"raw_bytes", offsetof(rec_tensor_v1, raw_bytes), -3},
    {"stored_bytes", offsetof(rec_tensor_v1, stored_bytes), -3},
};
static const field box_fields_v1[] = {
    {"tensor", offsetof(rec_box_v1, tensor), -2},
    {"file", offsetof(rec_box_v1, file), -2},
    {"writer", offsetof(rec_box_v1, writer), -2},
    {"piece_dim", offsetof(rec_box_v1, piece_dim), -2},
    {"offset", offsetof(rec_box_v1, offset), F_ARR},
    {"extent", offsetof(rec_box_v1, extent), F_ARR},
    {"piece_len", offsetof(rec_box_v1, piece_len), -3},
    {"first_piece", offsetof(rec_box_v1, first_piece), -3},
    {"npieces", offsetof(rec_box_v1, npieces), -3},
    {"stored_bytes", offsetof(rec_box_v1, stored_bytes), -3},
    {"dataset", offsetof(rec_box_v1, dataset), F_STR},
};
#define NF(a) (sizeof(a) / sizeof((a)[0]))

/* The memory type of a record: -2 int32, -3 int64, F_STR vlen string, F_ARR int64[8]. */
static hid_t record_type(const field *f, size_t n, size_t size, hid_t str)
{
    hsize_t dims = CKPT_MAX_NDIM;
    hid_t arr = H5Tarray_create2(H5T_NATIVE_INT64, 1, &dims);
    hid_t t = H5Tcreate(H5T_COMPOUND, size);
    for (size_t i = 0; i < n; i++) {
        hid_t ft = f[i].type == F_STR ? str : f[i].type == F_ARR ? arr
                 : f[i].type == -2    ? H5T_NATIVE_INT32 : H5T_NATIVE_INT64;
        H5Tinsert(t, f[i].name, f[i].offset, ft);
    }
    H5Tclose(arr);
    return t;
}

/* ---- writing ---- */

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
    rec_box *rb = calloc((size_t)ix->nrows + 1, sizeof *rb);
    rec_group *rg = calloc((size_t)ix->ngroups + 1, sizeof *rg);
    hid_t f = -1, g = -1, str = -1, tt = -1, bt = -1, gt = -1;
    int dirfd = -1;
    if (!rt || !rb || !rg) {
        rc = ckpt_error(CKPT_ENOMEM, "out of memory writing the index");
        goto out;
    }
    for (int64_t i = 0; i < ix->ntensors; i++) {
        const ckpt_itensor *t = &ix->tensors[i];
        rt[i].name = t->name;
        rt[i].dtype = (char *)ckpt_dtype_name(t->dtype);
        rt[i].ndim = t->ndim;
        rt[i].sharding = (int32_t)t->sharding;
        memcpy(rt[i].shape, t->shape, sizeof rt[i].shape);
        if (t->sharding == CKPT_SHARDING_GRID) {
            memcpy(rt[i].chunk, t->grid.chunk, sizeof rt[i].chunk);
            memcpy(rt[i].stride, t->grid.stride, sizeof rt[i].stride);
            rt[i].writer0 = t->grid.writer0;
        }
        rt[i].first_box = t->first_box;
        rt[i].nboxes = t->nboxes;
        rt[i].first_row = t->first_row;
        rt[i].first_piece = t->first_piece;
        rt[i].piece_stride = t->piece_stride;
        rt[i].raw_bytes = t->raw_bytes;
        rt[i].stored_bytes = t->stored_bytes;
    }
    for (int64_t i = 0; i < ix->nrows; i++) {
        const ckpt_irow *r = &ix->rows[i];
        rb[i].tensor = r->tensor;
        rb[i].writer = r->writer;
        memcpy(rb[i].offset, r->box.off, sizeof rb[i].offset);
        memcpy(rb[i].extent, r->box.ext, sizeof rb[i].extent);
        rb[i].first_piece = r->first_piece;
    }
    for (int64_t i = 0; i < ix->ngroups; i++) {
        rg[i].first_rank = ix->groups[i].first_rank;
        rg[i].nranks = ix->groups[i].nranks;
        rg[i].group = ix->groups[i].group;
    }
    /* through the library's driver, inside the (temporary) directory: counted, fault-injectable,
     * and a full disk reported by the close */
    {
        char dir[4096];
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        dirfd = ckpt_sys_open_dir(dir[0] ? dir : "/", 1);
        if (dirfd < 0) {
            rc = ckpt_error(CKPT_EIO, "cannot write index file '%s': %s", path, strerror(-dirfd));
            goto out;
        }
        hid_t fapl = ckpt_vfd_fapl(dirfd);
        f = fapl < 0 ? -1 : H5Fcreate(slash ? slash + 1 : path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (f < 0) { /* before another HDF5 call clears the error stack */
            char detail[300];
            ckpt_error_hdf5_detail(detail, sizeof detail);
            rc = ckpt_error(CKPT_EIO, "cannot write index file '%s'%s", path, detail);
        }
        if (fapl >= 0)
            H5Pclose(fapl);
        if (f < 0)
            goto out;
    }
    if (ckpt_h5_attr_str(f, "format", "ckpt") < 0 || ckpt_h5_attr_i64(f, "format_version", CKPT_FORMAT_VERSION) < 0 ||
        ckpt_h5_attr_str(f, "library_version", ix->library_version) < 0 ||
        ckpt_h5_attr_str(f, "layout", ckpt_layout_name(ix->layout)) < 0 ||
        ckpt_h5_attr_i64(f, "world_size", ix->world_size) < 0 || ckpt_h5_attr_str(f, "checksum", "xxh3-64") < 0 ||
        ckpt_h5_attr_i64(f, "piece_bytes", ix->piece_bytes) < 0 ||
        ckpt_h5_attr_str(f, "compression", ix->compression[0] ? ix->compression : "none") < 0)
        goto h5fail;
    g = H5Gcreate2(f, "index", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    str = ckpt_h5_vlen_str();
    tt = record_type(tensor_fields, NF(tensor_fields), sizeof(rec_tensor), str);
    bt = record_type(box_fields, NF(box_fields), sizeof(rec_box), str);
    gt = record_type(group_fields, NF(group_fields), sizeof(rec_group), str);
    if (g < 0 || write_table(g, "tensors", tt, (hsize_t)ix->ntensors, rt) < 0 ||
        write_table(g, "boxes", bt, (hsize_t)ix->nrows, rb) < 0 ||
        (ix->layout == CKPT_LAYOUT_GROUP && write_table(g, "groups", gt, (hsize_t)ix->ngroups, rg) < 0))
        goto h5fail;
    if (write_attrs(f, ix->attrs) < 0) {
        rc = CKPT_EIO;
        goto out;
    }
    {
        char why[600];
        int crc = ckpt_h5_close_file(f, why, sizeof why);
        f = -1;
        if (crc < 0) {
            rc = ckpt_error(CKPT_EIO, "cannot write index file '%s'%s", path, why);
            goto out;
        }
    }
    goto out;
h5fail : {
    char detail[300];
    ckpt_error_hdf5_detail(detail, sizeof detail);
    rc = ckpt_error(CKPT_EIO, "cannot write index file '%s'%s", path, detail);
}
out:
    if (gt >= 0) H5Tclose(gt);
    if (bt >= 0) H5Tclose(bt);
    if (tt >= 0) H5Tclose(tt);
    if (str >= 0) H5Tclose(str);
    if (g >= 0) H5Gclose(g);
    if (f >= 0)
        ckpt_h5_close_file(f, NULL, 0);
    if (dirfd >= 0)
        ckpt_sys_close(dirfd);
    free(rt);
    free(rb);
    free(rg);
    ckpt_h5_unlock();
    return rc;
}

/* ---- reading ---- */

typedef struct reader_ctx {
    const char *path;
    size_t image_len;
    ckpt_index *ix;
    int rc;
} reader_ctx;

static int bad(reader_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(reader_ctx *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ckpt_error(CKPT_ECORRUPT, "index '%s' is malformed: %s", c->path, msg);
}

/* Objects of the index are reached through hard links only: a soft, external or user-defined
 * link could take the decoder into another file (or another part of this one). `what` names the
 * object. */
static int hard_link(reader_ctx *c, hid_t loc, const char *name, const char *what)
{
    H5L_info_t li;
    if (H5Lget_info(loc, name, &li, H5P_DEFAULT) < 0)
        return bad(c, "%s cannot be examined", what);
    if (li.type != H5L_TYPE_HARD)
        return bad(c, "%s is a%s link, not an object of the index: links out of the index are refused", what,
                   li.type == H5L_TYPE_EXTERNAL ? "n external" : li.type == H5L_TYPE_SOFT ? " soft" : " user-defined");
    return CKPT_OK;
}

/* An index dataset's bytes are in the index itself, unfiltered (the writer never filters). */
static int stored_plainly(reader_ctx *c, hid_t d, const char *what)
{
    const char *elsewhere = ckpt_h5_data_elsewhere(d);
    if (elsewhere)
        return bad(c, "%s %s: refused", what, elsewhere);
    hid_t dcpl = H5Dget_create_plist(d);
    int nf = dcpl < 0 ? -1 : H5Pget_nfilters(dcpl);
    unsigned flags, cd[8];
    size_t ncd = 8;
    H5Z_filter_t id = nf > 0 ? H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL) : -1;
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (nf != 0)
        return bad(c, "%s passes through HDF5 filter %d, which an index never uses: refused", what, (int)id);
    return CKPT_OK;
}

/* The file type must hold every field with a compatible class (the memory type converts). */
static int check_fields(reader_ctx *c, const char *table, hid_t ftype, const field *f, size_t n)
{
    if (H5Tget_class(ftype) != H5T_COMPOUND)
        return bad(c, "%s is not a table of records", table);
    for (size_t i = 0; i < n; i++) {
        int k = H5Tget_member_index(ftype, f[i].name);
        if (k < 0)
            return bad(c, "%s has no field '%s'", table, f[i].name);
        hid_t mt = H5Tget_member_type(ftype, (unsigned)k);
        H5T_class_t cls = H5Tget_class(mt);
        int ok;
        if (f[i].type == F_STR)
            ok = cls == H5T_STRING && H5Tis_variable_str(mt) > 0;
        else if (f[i].type == F_ARR) {
            hsize_t dims[2] = {0, 0};
            ok = cls == H5T_ARRAY && H5Tget_array_ndims(mt) == 1 && H5Tget_array_dims2(mt, dims) == 1 &&
                 dims[0] == CKPT_MAX_NDIM;
            if (ok) {
                hid_t base = H5Tget_super(mt);
                ok = H5Tget_class(base) == H5T_INTEGER;
                H5Tclose(base);
            }
        } else
            ok = cls == H5T_INTEGER;
        H5Tclose(mt);
        if (!ok)
            return bad(c, "%s field '%s' has the wrong type", table, f[i].name);
    }
    return CKPT_OK;
}

/* Opens a 1-D table; checks its record type and that the file holds storage for all its rows
 * (so a table claiming billions of rows is refused before any allocation). *n = rows. */
static int open_table(reader_ctx *c, hid_t g, const char *name, const field *f, size_t nf, hid_t atom,
                      hid_t *dout, int64_t *n)
{
    char table[64];
    snprintf(table, sizeof table, "/index/%s", name);
    *dout = -1;
    *n = 0;
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0)
        return bad(c, "%s is missing", table);
    int rc = hard_link(c, g, name, table);
    if (rc)
        return rc;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET)
        return bad(c, "%s is not a dataset", table);
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0)
        return bad(c, "%s cannot be opened", table);
    hid_t sp = H5Dget_space(d), ft = H5Dget_type(d);
    rc = stored_plainly(c, d, table);
    if (rc == CKPT_OK && (sp < 0 || ft < 0 || H5Sget_simple_extent_ndims(sp) != 1))
        rc = bad(c, "%s is not a 1-D table", table);
    if (rc == CKPT_OK && f)
        rc = check_fields(c, table, ft, f, nf);
    if (rc == CKPT_OK && !f) {
        int ok = H5Tget_class(ft) == H5Tget_class(atom);
        if (ok && H5Tget_class(atom) == H5T_STRING)
            ok = H5Tis_variable_str(ft) > 0;
        if (!ok)
            rc = bad(c, "%s has the wrong element type", table);
    }
    if (rc == CKPT_OK) {
        hssize_t cnt = H5Sget_simple_extent_npoints(sp);
        size_t rec = H5Tget_size(ft);
        hsize_t stored = H5Dget_storage_size(d);
        if (cnt < 0 || rec == 0 || (cnt > 0 && (hsize_t)cnt > stored / rec) || (hsize_t)cnt > c->image_len / rec)
            rc = bad(c, "%s claims %lld rows of %zu bytes but the file holds %llu bytes of them", table,
                     (long long)cnt, rec, (unsigned long long)stored);
        else
            *n = (int64_t)cnt;
    }
    if (ft >= 0)
        H5Tclose(ft);
    if (sp >= 0)
        H5Sclose(sp);
    if (rc)
        H5Dclose(d);
    else
        *dout = d;
    return rc;
}

/* Reads an opened table (n rows) into a malloc'd array of records of memtype. */
static int read_table(reader_ctx *c, hid_t d, const char *name, hid_t memtype, size_t recsize, int64_t n, void **buf)
{
    *buf = calloc((size_t)n + 1, recsize);
    if (!*buf)
        return ckpt_error(CKPT_ENOMEM, "out of memory reading /index/%s of '%s' (%lld rows)", name, c->path,
                          (long long)n);
    if (n > 0 && H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *buf) < 0) {
        char detail[300];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        return ckpt_error(CKPT_ECORRUPT, "index '%s': cannot read /index/%s%s", c->path, name, detail);
    }
    return CKPT_OK;
}

/* Frees a table with the strings HDF5 allocated inside its records. */
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

/* One link below /attributes: a hard link (anything else is refused) to a group, walked into, or to
 * a dataset, whose `type` attribute says what it holds; its dataspace and HDF5 type must agree
 * before anything is read into memory. */
static herr_t attr_visit(hid_t obj, const char *name, const H5L_info_t *info, void *arg)
{
    reader_ctx *c = arg;
    char key[CKPT_MAX_NAME + 64], what[CKPT_MAX_NAME + 80], tname[32], tshow[160];
    ckpt_index_printable(name, key, sizeof key);
    snprintf(what, sizeof what, "attribute '%s'", key);
    (void)info;
    H5O_info_t oi;
    if ((c->rc = hard_link(c, obj, name, what)) != CKPT_OK)
        return 1;
    if (H5Oget_info_by_name(obj, name, &oi, H5P_DEFAULT) < 0) {
        c->rc = bad(c, "%s cannot be examined", what);
        return 1;
    }
    if (oi.type != H5O_TYPE_DATASET)
        return 0;
    if (ckpt_index_check_name(name, "attribute key") != CKPT_OK) {
        c->rc = bad(c, "%s", ckpt_errmsg());
        return 1;
    }
    hid_t d = H5Dopen2(obj, name, H5P_DEFAULT);
    if (d < 0 || ckpt_h5_read_attr_str(d, "type", tname, sizeof tname) < 0) {
        if (d >= 0)
            H5Dclose(d);
        c->rc = bad(c, "%s has no readable type", what);
        return 1;
    }
    ckpt_index_printable(tname, tshow, sizeof tshow);
    if ((c->rc = stored_plainly(c, d, what)) != CKPT_OK) {
        H5Dclose(d);
        return 1;
    }
    hid_t sp = H5Dget_space(d), ft = H5Dget_type(d);
    H5S_class_t scls = sp >= 0 ? H5Sget_simple_extent_type(sp) : H5S_NO_CLASS;
    H5T_class_t tcls = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
    int rc = -1;
    const char *why = "a scalar of that type";
    if (strcmp(tname, "int") == 0) {
        int64_t v;
        if (scls == H5S_SCALAR && tcls == H5T_INTEGER && H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0)
            rc = ckpt_state_set_int(c->ix->attrs, name, v);
    } else if (strcmp(tname, "double") == 0) {
        double v;
        if (scls == H5S_SCALAR && tcls == H5T_FLOAT && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0)
            rc = ckpt_state_set_double(c->ix->attrs, name, v);
    } else if (strcmp(tname, "string") == 0) {
        if (scls == H5S_SCALAR && tcls == H5T_STRING && H5Tis_variable_str(ft) > 0) {
            hid_t str = ckpt_h5_vlen_str();
            char *v = NULL;
            if (H5Dread(d, str, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0 && v) {
                rc = ckpt_state_set_string(c->ix->attrs, name, v);
                H5free_memory(v);
            }
            H5Tclose(str);
        }
    } else if (strcmp(tname, "bytes") == 0) {
        why = "a 1-D array of bytes";
        hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        int ok = tcls == H5T_INTEGER && H5Tget_size(ft) == 1 && n >= 0 &&
                 (scls == H5S_SIMPLE ? H5Sget_simple_extent_ndims(sp) == 1 : scls == H5S_NULL) &&
                 (hsize_t)n <= c->image_len && (n == 0 || H5Dget_storage_size(d) >= (hsize_t)n);
        unsigned char *v = ok ? malloc((size_t)n + 1) : NULL;
        if (v && (n == 0 || H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0))
            rc = ckpt_state_set_bytes(c->ix->attrs, name, v, (size_t)n);
        free(v);
    } else {
        why = "one of the types int, double, string, bytes";
    }
    if (ft >= 0)
        H5Tclose(ft);
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(d);
    if (rc != CKPT_OK) {
        if (rc == CKPT_ENOMEM)
            c->rc = CKPT_ENOMEM;
        else
            c->rc = bad(c, "%s (type '%s') is not %s", what, tshow, why);
        return 1;
    }
    return 0;
}

static int layout_from_name(const char *s, ckpt_layout *out)
{
    for (int l = CKPT_LAYOUT_PER_RANK; l <= CKPT_LAYOUT_GROUP; l++)
        if (strcmp(s, ckpt_layout_name((ckpt_layout)l)) == 0) {
            *out = (ckpt_layout)l;
            return 0;
        }
    return -1;
}

static int read_dtype(reader_ctx *c, const char *tname, const char *s, ckpt_dtype *out)
{
    if (!s || ckpt_dtype_from_name(s, out) != CKPT_OK)
        return ckpt_error(CKPT_EVERSION, "index '%s': tensor '%s' has dtype '%s' this library does not know",
                          c->path, tname, s ? s : "");
    return CKPT_OK;
}

static int decode_v2(reader_ctx *c, hid_t g)
{
    ckpt_index *ix = c->ix;
    hid_t str = ckpt_h5_vlen_str();
    hid_t tt = record_type(tensor_fields, NF(tensor_fields), sizeof(rec_tensor), str);
    hid_t bt = record_type(box_fields, NF(box_fields), sizeof(rec_box), str);
    hid_t gt = record_type(group_fields, NF(group_fields), sizeof(rec_group), str);
    hid_t dt = -1, db = -1, dg = -1;
    rec_tensor *rt = NULL;
    rec_box *rb = NULL;
    rec_group *rg = NULL;
    int64_t nt = 0, nb = 0, ng = 0;
    int rc = open_table(c, g, "tensors", tensor_fields, NF(tensor_fields), 0, &dt, &nt);
    if (rc == CKPT_OK)
        rc = open_table(c, g, "boxes", box_fields, NF(box_fields), 0, &db, &nb);
    if (rc == CKPT_OK && ix->layout == CKPT_LAYOUT_GROUP)
        rc = open_table(c, g, "groups", group_fields, NF(group_fields), 0, &dg, &ng);
    if (rc == CKPT_OK)
        rc = read_table(c, dt, "tensors", tt, sizeof *rt, nt, (void **)&rt);
    if (rc == CKPT_OK)
        rc = read_table(c, db, "boxes", bt, sizeof *rb, nb, (void **)&rb);
    if (rc == CKPT_OK && dg >= 0)
        rc = read_table(c, dg, "groups", gt, sizeof *rg, ng, (void **)&rg);
    if (rc == CKPT_OK) {
        ix->tensors = calloc((size_t)nt + 1, sizeof *ix->tensors);
        ix->rows = calloc((size_t)nb + 1, sizeof *ix->rows);
        ix->groups = calloc((size_t)ng + 1, sizeof *ix->groups);
        if (!ix->tensors || !ix->rows || !ix->groups)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory reading index '%s'", c->path);
    }
    for (int64_t i = 0; rc == CKPT_OK && i < nt; i++) {
        ckpt_itensor *t = &ix->tensors[i];
        t->name = strdup(rt[i].name ? rt[i].name : "");
        ix->ntensors++;
        if (!t->name) {
            rc = ckpt_error(CKPT_ENOMEM, "out of memory reading index '%s'", c->path);
            break;
        }
        if ((rc = read_dtype(c, t->name, rt[i].dtype, &t->dtype)) != CKPT_OK)
            break;
        t->ndim = rt[i].ndim;
        t->sharding = (ckpt_sharding)rt[i].sharding;
        memcpy(t->shape, rt[i].shape, sizeof t->shape);
        memcpy(t->grid.chunk, rt[i].chunk, sizeof t->grid.chunk);
        memcpy(t->grid.stride, rt[i].stride, sizeof t->grid.stride);
        t->grid.writer0 = rt[i].writer0;
        t->first_box = rt[i].first_box;
        t->nboxes = rt[i].nboxes;
        t->first_row = rt[i].first_row;
        t->first_piece = rt[i].first_piece;
        t->piece_stride = rt[i].piece_stride;
        t->stored_bytes = rt[i].stored_bytes;
    }
    for (int64_t i = 0; rc == CKPT_OK && i < nb; i++) {
        ckpt_irow *r = &ix->rows[i];
        r->tensor = rb[i].tensor;
        r->writer = rb[i].writer;
        memcpy(r->box.off, rb[i].offset, sizeof r->box.off);
        memcpy(r->box.ext, rb[i].extent, sizeof r->box.ext);
        r->box.ndim = r->tensor >= 0 && r->tensor < nt ? ix->tensors[r->tensor].ndim : 0;
        r->first_piece = rb[i].first_piece;
        ix->nrows++;
    }
    for (int64_t i = 0; rc == CKPT_OK && i < ng; i++) {
        ix->groups[i].first_rank = rg[i].first_rank;
        ix->groups[i].nranks = rg[i].nranks;
        ix->groups[i].group = rg[i].group;
        ix->ngroups++;
    }
    free_table(tt, nt, rt);
    free(rb);
    free(rg);
    if (dt >= 0) H5Dclose(dt);
    if (db >= 0) H5Dclose(db);
    if (dg >= 0) H5Dclose(dg);
    H5Tclose(gt);
    H5Tclose(bt);
    H5Tclose(tt);
    H5Tclose(str);
    return rc;
}

static int decode_v1(reader_ctx *c, hid_t g)
{
    ckpt_index *ix = c->ix;
    hid_t str = ckpt_h5_vlen_str();
    hid_t tt = record_type(tensor_fields_v1, NF(tensor_fields_v1), sizeof(rec_tensor_v1), str);
    hid_t bt = record_type(box_fields_v1, NF(box_fields_v1), sizeof(rec_box_v1), str);
    hid_t dt = -1, db = -1, dc = -1, df = -1;
    rec_tensor_v1 *rt = NULL;
    rec_box_v1 *rb = NULL;
    char **files = NULL;
    int64_t nt = 0, nb = 0, nc = 0, nf = 0;
    int rc = open_table(c, g, "tensors", tensor_fields_v1, NF(tensor_fields_v1), 0, &dt, &nt);
    if (rc == CKPT_OK)
        rc = open_table(c, g, "boxes", box_fields_v1, NF(box_fields_v1), 0, &db, &nb);
    if (rc == CKPT_OK)
        rc = open_table(c, g, "checksums", NULL, 0, H5T_NATIVE_UINT64, &dc, &nc);
    if (rc == CKPT_OK)
        rc = open_table(c, g, "files", NULL, 0, str, &df, &nf);
    if (rc == CKPT_OK && nf > INT32_MAX)
        rc = bad(c, "/index/files has %lld rows", (long long)nf);
    if (rc == CKPT_OK)
        rc = read_table(c, dt, "tensors", tt, sizeof *rt, nt, (void **)&rt);
    if (rc == CKPT_OK)
        rc = read_table(c, db, "boxes", bt, sizeof *rb, nb, (void **)&rb);
    if (rc == CKPT_OK)
        rc = read_table(c, dc, "checksums", H5T_NATIVE_UINT64, sizeof(uint64_t), nc, (void **)&ix->checksums);
    if (rc == CKPT_OK) {
        ix->npieces = nc;
        rc = read_table(c, df, "files", str, sizeof(char *), nf, (void **)&files);
    }
    if (rc == CKPT_OK) {
        ix->tensors = calloc((size_t)nt + 1, sizeof *ix->tensors);
        ix->rows = calloc((size_t)nb + 1, sizeof *ix->rows);
        ix->files = calloc((size_t)nf + 1, sizeof *ix->files);
        if (!ix->tensors || !ix->rows || !ix->files)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory reading index '%s'", c->path);
    }
    for (int64_t i = 0; rc == CKPT_OK && i < nf; i++) {
        ix->files[i] = strdup(files[i] ? files[i] : "");
        ix->nfiles++;
        if (!ix->files[i])
            rc = ckpt_error(CKPT_ENOMEM, "out of memory reading index '%s'", c->path);
        else if (!ix->files[i][0] || strchr(ix->files[i], '/') || !strcmp(ix->files[i], ".") ||
                 !strcmp(ix->files[i], "..") || ckpt_index_check_name(ix->files[i], "file name") != CKPT_OK) {
            char shown[300];
            ckpt_index_printable(ix->files[i], shown, sizeof shown);
            rc = bad(c, "/index/files row %lld ('%s') is not a plain file name", (long long)i, shown);
        }
    }
    for (int64_t i = 0; rc == CKPT_OK && i < nt; i++) {
        ckpt_itensor *t = &ix->tensors[i];
        t->name = strdup(rt[i].name ? rt[i].name : "");
        ix->ntensors++;
        if (!t->name) {
            rc = ckpt_error(CKPT_ENOMEM, "out of memory reading index '%s'", c->path);
            break;
        }
        if ((rc = read_dtype(c, t->name, rt[i].dtype, &t->dtype)) != CKPT_OK)
            break;
        t->ndim = rt[i].ndim;
        t->sharding = CKPT_SHARDING_EXPLICIT;
        memcpy(t->shape, rt[i].shape, sizeof t->shape);
        t->first_box = t->first_row = rt[i].first_box;
        t->nboxes = rt[i].nboxes;
        t->stored_bytes = rt[i].stored_bytes;
    }
    for (int64_t i = 0; rc == CKPT_OK && i < nb; i++) {
        ckpt_irow *r = &ix->rows[i];
        r->tensor = rb[i].tensor;
        r->writer = rb[i].writer;
        r->file = rb[i].file;
        r->piece_dim = rb[i].piece_dim;
        r->piece_len = rb[i].piece_len;
        memcpy(r->box.off, rb[i].offset, sizeof r->box.off);
        memcpy(r->box.ext, rb[i].extent, sizeof r->box.ext);
        r->box.ndim = r->tensor >= 0 && r->tensor < nt ? ix->tensors[r->tensor].ndim : 0;
        r->first_piece = rb[i].first_piece;
        r->stored_bytes = rb[i].stored_bytes;
        r->dataset = rb[i].dataset ? strdup(rb[i].dataset) : NULL;
        ix->nrows++;
        if (rb[i].dataset && !r->dataset)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory reading index '%s'", c->path);
        else if (!r->dataset)
            rc = bad(c, "/index/boxes row %lld has no dataset path", (long long)i);
        else if (r->dataset[0] != '/') {
            char shown[300];
            ckpt_index_printable(r->dataset, shown, sizeof shown);
            rc = bad(c, "/index/boxes row %lld: dataset '%s' is not an absolute path", (long long)i, shown);
        }
        else if (rb[i].npieces < 0)
            rc = bad(c, "/index/boxes row %lld has a negative piece count", (long long)i);
    }
    free_table(tt, nt, rt);
    free_table(bt, nb, rb);
    free_table(str, nf, files);
    if (dt >= 0) H5Dclose(dt);
    if (db >= 0) H5Dclose(db);
    if (dc >= 0) H5Dclose(dc);
    if (df >= 0) H5Dclose(df);
    H5Tclose(bt);
    H5Tclose(tt);
    H5Tclose(str);
    return rc;
}

/* A root attribute (section 3.1) that must be a scalar string: CKPT_OK, 1 when absent and
 * optional, else CKPT_ECORRUPT naming it. */
static int root_str(reader_ctx *c, hid_t f, const char *name, char *buf, size_t len, int optional)
{
    if (H5Aexists(f, name) <= 0)
        return optional ? 1 : bad(c, "root attribute '%s' is missing", name);
    if (ckpt_h5_read_attr_str(f, name, buf, len) < 0)
        return bad(c, "root attribute '%s' is not a scalar string", name);
    return CKPT_OK;
}

/* A root attribute that must be an integer in lo..hi. */
static int root_int(reader_ctx *c, hid_t f, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    if (H5Aexists(f, name) <= 0)
        return bad(c, "root attribute '%s' is missing", name);
    if (ckpt_h5_read_attr_i64(f, name, out) < 0)
        return bad(c, "root attribute '%s' is not an integer scalar", name);
    if (*out < lo || *out > hi)
        return bad(c, "root attribute '%s' is %lld, outside %lld..%lld", name, (long long)*out, (long long)lo,
                   (long long)hi);
    return CKPT_OK;
}

static int decode(reader_ctx *c, hid_t f)
{
    ckpt_index *ix = c->ix;
    char buf[64], shown[300];
    int64_t v;
    if (ckpt_h5_read_attr_str(f, "format", buf, sizeof buf) < 0 || strcmp(buf, "ckpt") != 0)
        return ckpt_error(CKPT_ECORRUPT, "'%s' is not a ckpt index (no format=\"ckpt\" attribute)", c->path);
    int rc = root_int(c, f, "format_version", INT64_MIN, INT64_MAX, &v);
    if (rc)
        return rc;
    if (v < 1 || v > CKPT_FORMAT_VERSION)
        return ckpt_error(CKPT_EVERSION,
                          "checkpoint index '%s' has format version %lld; this library (%s) reads versions 1..%d",
                          c->path, (long long)v, CKPT_VERSION_STRING, CKPT_FORMAT_VERSION);
    ix->format_version = (int)v;
    if ((rc = root_str(c, f, "library_version", ix->library_version, sizeof ix->library_version, 0)) != CKPT_OK ||
        (rc = root_str(c, f, "layout", buf, sizeof buf, 0)) != CKPT_OK)
        return rc;
    if (layout_from_name(buf, &ix->layout) < 0 || (ix->format_version < 2 && ix->layout == CKPT_LAYOUT_GROUP)) {
        ckpt_index_printable(buf, shown, sizeof shown);
        return bad(c, "root attribute 'layout' is '%s', not one of %s", shown,
                   ix->format_version < 2 ? "file-per-rank, shared (format version 1)"
                                          : "file-per-rank, shared, file-per-group");
    }
    if ((rc = root_int(c, f, "world_size", 1, INT32_MAX, &v)) != CKPT_OK)
        return rc;
    ix->world_size = (int)v;
    if ((rc = root_str(c, f, "checksum", buf, sizeof buf, 0)) != CKPT_OK)
        return rc;
    if (strcmp(buf, "xxh3-64") != 0) {
        ckpt_index_printable(buf, shown, sizeof shown);
        return bad(c, "unknown checksum algorithm '%s' (expected xxh3-64)", shown);
    }
    if ((rc = root_int(c, f, "piece_bytes", 1, CKPT_INDEX_MAX_PIECE_BYTES, &ix->piece_bytes)) != CKPT_OK)
        return rc;
    rc = root_str(c, f, "compression", ix->compression, sizeof ix->compression, 1);
    if (rc == 1)
        snprintf(ix->compression, sizeof ix->compression, "none");
    else if (rc)
        return rc;
    if (H5Lexists(f, "index", H5P_DEFAULT) <= 0)
        return bad(c, "the /index group is missing");
    if ((rc = hard_link(c, f, "index", "/index")) != CKPT_OK)
        return rc;
    hid_t g = H5Gopen2(f, "index", H5P_DEFAULT);
    if (g < 0)
        return bad(c, "/index is not a group");
    rc = ix->format_version < 2 ? decode_v1(c, g) : decode_v2(c, g);
    H5Gclose(g);
    if (rc == CKPT_OK)
        rc = ckpt_index_validate(ix, c->path);
    if (rc == CKPT_OK && H5Lexists(f, "attributes", H5P_DEFAULT) > 0 &&
        (rc = hard_link(c, f, "attributes", "/attributes")) == CKPT_OK) {
        hid_t ag = H5Gopen2(f, "attributes", H5P_DEFAULT);
        c->rc = CKPT_OK;
        if (ag < 0 || H5Lvisit(ag, H5_INDEX_NAME, H5_ITER_INC, attr_visit, c) < 0 || c->rc)
            rc = c->rc ? c->rc : bad(c, "cannot walk /attributes");
        if (ag >= 0)
            H5Gclose(ag);
    }
    return rc;
}

int ckpt_index_read_image(const void *image, size_t len, const char *path, ckpt_index **out)
{
    *out = NULL;
    ckpt_index *ix;
    int rc = ckpt_index_new(&ix);
    if (rc)
        return rc;
    reader_ctx c = {path, len, ix, CKPT_OK};
    ckpt_h5_lock();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), f = -1;
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_file_image(fapl, (void *)image, len) < 0) {
        rc = ckpt_error(CKPT_ENOMEM, "cannot set up an in-memory image of index '%s'", path);
    } else {
        /* the core driver refuses an image whose name exists on disk: give it one that cannot */
        char name[64];
        snprintf(name, sizeof name, "/nonexistent/ckpt-index-image-%p", image);
        f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
        if (f < 0) {
            char detail[300];
            ckpt_error_hdf5_detail(detail, sizeof detail);
            rc = ckpt_error(CKPT_ECORRUPT, "cannot open index '%s' (truncated or not HDF5?)%s", path, detail);
        } else {
            rc = decode(&c, f);
        }
    }
    if (f >= 0)
        H5Fclose(f);
    if (fapl >= 0)
        H5Pclose(fapl);
    ckpt_h5_unlock();
    if (rc) {
        ckpt_index_free(ix);
        return rc;
    }
    *out = ix;
    return CKPT_OK;
}

int ckpt_index_read_bytes(const char *path, unsigned char **image, size_t *len)
{
    *image = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ckpt_error(errno == ENOENT ? CKPT_ENOTFOUND : CKPT_EIO, "cannot open index '%s': %s", path,
                          strerror(errno));
    unsigned char *buf = NULL;
    size_t n, cap = 0;
    int rc = CKPT_OK;
    for (;;) {
        if (*len == cap) {
            size_t nc = cap ? cap * 2 : 1 << 16;
            unsigned char *b = realloc(buf, nc);
            if (!b) {
                rc = ckpt_error(CKPT_ENOMEM, "out of memory reading index '%s'", path);
                break;
            }
            buf = b;
            cap = nc;
        }
        n = fread(buf + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0) {
            if (ferror(f))
                rc = ckpt_error(CKPT_EIO, "cannot read index '%s': %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(buf);
        *len = 0;
        return rc;
    }
    *image = buf;
    return CKPT_OK;
}

int ckpt_index_read(const char *path, ckpt_index **out)
{
    *out = NULL;
    unsigned char *buf;
    size_t len;
    int rc = ckpt_index_read_bytes(path, &buf, &len);
    if (rc == CKPT_OK)
        rc = ckpt_index_read_image(buf, len, path, out);
    free(buf);
    return rc;
}
