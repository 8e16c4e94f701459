/* io_per_rank.c -- per-rank HDF5 data files: chunked datasets, one per box. */
#include "io_per_rank.h"
#include "dtype.h"
#include "error.h"
#include "h5util.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static int h5_error(const char *what, const char *path)
{
    char detail[300];
    ckpt_error_hdf5_detail(detail, sizeof detail);
    return ckpt_error(CKPT_EIO, "%s '%s'%s", what, path, detail);
}

static int write_item(hid_t f, ckpt_write_item *it, const char *path)
{
    int nd = it->box.ndim;
    hsize_t dims[CKPT_MAX_NDIM], chunk[CKPT_MAX_NDIM];
    for (int d = 0; d < nd; d++) {
        dims[d] = (hsize_t)it->box.ext[d];
        chunk[d] = d < it->pieces.dim ? 1 : d == it->pieces.dim ? (hsize_t)it->pieces.len : dims[d];
    }
    hid_t sp = nd ? H5Screate_simple(nd, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (nd)
        H5Pset_chunk(dcpl, nd, chunk);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_LATE);
    hid_t type = ckpt_h5_type(it->dtype);
    hid_t ds = H5Dcreate2(f, it->dataset, type, sp, lcpl, dcpl, H5P_DEFAULT);
    int rc = CKPT_OK;
    if (ds < 0) {
        rc = h5_error("cannot create a dataset in", path);
        goto out;
    }
    if (H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, it->data) < 0) {
        rc = h5_error("cannot write a dataset of", path);
        ckpt_error_prefix("tensor '%s': ", it->tensor);
        goto out;
    }
    /* self-description for plain HDF5 readers */
    if (ckpt_h5_attr_str(ds, "tensor", it->tensor) < 0 ||
        ckpt_h5_attr_str(ds, "dtype", ckpt_dtype_name(it->dtype)) < 0 ||
        ckpt_h5_attr_i64_array(ds, "offset", it->box.off, nd) < 0) {
        rc = h5_error("cannot write attributes in", path);
        goto out;
    }
    size_t es = ckpt_dtype_size(it->dtype);
    for (int64_t k = 0; k < it->pieces.count; k++) {
        ckpt_box pb;
        ckpt_piece_box(&it->box, &it->pieces, k, &pb);
        int64_t first[CKPT_MAX_NDIM];
        for (int d = 0; d < nd; d++)
            first[d] = pb.off[d];
        int64_t start = nd ? ckpt_box_linear(&it->box, first) : 0;
        int64_t count = ckpt_box_volume(&pb);
        it->checksums[k] = ckpt_piece_checksum((const char *)it->data + start * (int64_t)es, (size_t)(count * (int64_t)es));
    }
    it->stored_bytes = (int64_t)H5Dget_storage_size(ds);
out:
    if (ds >= 0)
        H5Dclose(ds);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return rc;
}

int ckpt_io_write_rank_file(const char *path, ckpt_write_item *items, int64_t n, int do_fsync)
{
    ckpt_h5_lock();
    int rc = CKPT_OK;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* 1.8-compatible format so older readers (and h5py builds) open it */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        rc = h5_error("cannot create data file", path);
        ckpt_h5_unlock();
        return rc;
    }
    for (int64_t i = 0; i < n && rc == CKPT_OK; i++)
        rc = write_item(f, &items[i], path);
    if (H5Fclose(f) < 0 && rc == CKPT_OK)
        rc = h5_error("cannot close (flush) data file", path);
    ckpt_h5_unlock();
    if (rc == CKPT_OK && do_fsync) {
        int err = ckpt_fsync_path(path);
        if (err)
            rc = ckpt_error(CKPT_EIO, "fsync of data file '%s' failed: %s", path, strerror(-err));
    }
    return rc;
}

int ckpt_io_open_read(const char *path, const char *display, int writer_rank, hid_t *out)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return ckpt_error(errno == ENOENT ? CKPT_ENOTFOUND : CKPT_EIO,
                          "data file '%s' (written by rank %d) is missing: %s", display, writer_rank,
                          strerror(errno));
    ckpt_h5_lock();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int rc = CKPT_OK;
    if (f < 0) {
        char detail[300];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        rc = ckpt_error(CKPT_ECORRUPT,
                        "data file '%s' (written by rank %d) cannot be opened: truncated or not HDF5%s",
                        display, writer_rank, detail);
    }
    ckpt_h5_unlock();
    *out = f;
    return rc;
}

int ckpt_io_open_dataset(hid_t file, const char *dataset, const ckpt_box *box, const char *display, hid_t *out)
{
    ckpt_h5_lock();
    int rc = CKPT_OK;
    int nd = box->ndim;
    hid_t ds = H5Dopen2(file, dataset, H5P_DEFAULT), fs = -1;
    if (ds < 0) {
        char detail[300];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        rc = ckpt_error(CKPT_ECORRUPT, "dataset '%s' is missing from data file '%s'%s", dataset, display, detail);
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
        char detail[300];
        ckpt_error_hdf5_detail(detail, sizeof detail);
        rc = ckpt_error(CKPT_ECORRUPT, "cannot read dataset '%s' of data file '%s' (truncated or damaged)%s",
                        dataset, display, detail);
    }
    H5Sclose(ms);
    H5Sclose(fs);
    ckpt_h5_unlock();
    return rc;
}
