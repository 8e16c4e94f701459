/* io_shared.c -- one HDF5 file written by all ranks through MPI-IO, collective hyperslab writes. */
#include "io_shared.h"
#include "codec_zstd.h"
#include "dtype.h"
#include "error.h"
#include "fault.h"
#include "h5util.h"
#include "piece.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void ckpt_shared_chunk(int ndim, const int64_t *shape, size_t esize, const ckpt_box *boxes, int64_t n,
                       const int64_t *grid_cell, int64_t piece_bytes, int64_t *chunk)
{
    int64_t cell[CKPT_MAX_NDIM];
    for (int d = 0; d < ndim; d++) {
        int64_t g = 0;
        for (int64_t i = 0; !grid_cell && i < n; i++) {
            g = gcd64(g, boxes[i].off[d]);
            int64_t end = boxes[i].off[d] + boxes[i].ext[d];
            if (end != shape[d])
                g = gcd64(g, end);
        }
        if (grid_cell) /* a grid's box boundaries are the multiples of its cell */
            g = grid_cell[d] < shape[d] ? grid_cell[d] : 0;
        cell[d] = g ? g : shape[d];
        chunk[d] = 0;
    }
    for (int d = 0; d < ndim; d++)
        if (shape[d] == 0)
            return; /* zero-size: contiguous */
    ckpt_pieces pc;
    ckpt_pieces_of(ndim, cell, esize, piece_bytes, &pc);
    int64_t len = pc.len;
    while (len > 1 && cell[pc.dim] % len)
        len--; /* a divisor, so chunks stay inside boxes */
    int64_t slab = (int64_t)esize;
    for (int d = pc.dim + 1; d < ndim; d++)
        slab *= cell[d];
    if (len * slab * 16 < piece_bytes && pc.len * slab >= piece_bytes / 2) {
        /* the boxes only allow tiny aligned chunks: give up alignment, keep chunks large */
        ckpt_pieces_of(ndim, shape, esize, piece_bytes, &pc);
        for (int d = 0; d < ndim; d++)
            chunk[d] = d < pc.dim ? 1 : d == pc.dim ? pc.len : shape[d];
        return;
    }
    for (int d = 0; d < ndim; d++)
        chunk[d] = d < pc.dim ? 1 : d == pc.dim ? len : cell[d];
}

void ckpt_io_mpiio_fault(const char *what, const char *path, int *rc)
{
    ckpt_fault_action a = ckpt_fault_next(CKPT_IO_MPIIO, path);
    if (a.err && *rc == CKPT_OK)
        *rc = ckpt_error(CKPT_EIO, "%s '%s' failed: %s (injected: CKPT_FAULT mpiio)", what, path, strerror(a.err));
    ckpt_fault_after(&a);
}

static int h5fail(const char *what, const char *path)
{
    char detail[300];
    ckpt_error_hdf5_detail(detail, sizeof detail);
    return ckpt_error(CKPT_EIO, "%s '%s'%s", what, path, detail);
}

int ckpt_io_write_shared(MPI_Comm comm, const char *path, const ckpt_shared_tensor *tensors, int64_t nt,
                         ckpt_write_item *items, const int64_t *item_tensor, const int *item_round, int64_t nitems,
                         int64_t nslots, const ckpt_io_codec *codec, int do_fsync, int64_t *stored)
{
    ckpt_h5_lock();
    int rc = CKPT_OK, parallel = comm != MPI_COMM_NULL;
    int rank = 0;
    if (parallel)
        MPI_Comm_rank(comm, &rank);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), dxpl = H5Pcreate(H5P_DATASET_XFER), f = -1;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST);
    if (parallel) {
        H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
        H5Pset_all_coll_metadata_ops(fapl, 1);
        H5Pset_coll_metadata_write(fapl, 1);
        H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    }
    f = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    if (f < 0)
        rc = h5fail("cannot create shared data file", path);
    if (parallel) { /* a create that failed on some ranks only: nobody goes on into the collectives */
        int bad = f < 0, anybad = bad;
        MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, comm);
        if (anybad && rc == CKPT_OK)
            rc = ckpt_error(CKPT_EIO, "another rank could not create shared data file '%s'", path);
        if (anybad)
            goto out;
    } else if (f < 0) {
        goto out;
    }
    if (parallel)
        ckpt_io_mpiio_fault("creating shared data file", path, &rc);
    /* keep every rank in the same sequence of collective calls even after a local error */
    for (int64_t t = 0; t < nt; t++) {
        const ckpt_shared_tensor *st = &tensors[t];
        int nd = st->ndim;
        hsize_t dims[CKPT_MAX_NDIM], chunk[CKPT_MAX_NDIM];
        int chunked = nd > 0 && st->chunk[0] > 0;
        for (int d = 0; d < nd; d++) {
            dims[d] = (hsize_t)st->shape[d];
            chunk[d] = (hsize_t)st->chunk[d];
        }
        hid_t sp = nd ? H5Screate_simple(nd, dims, NULL) : H5Screate(H5S_SCALAR);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
        if (chunked) {
            H5Pset_chunk(dcpl, nd, chunk);
            if (codec && codec->compress == CKPT_COMPRESS_ZSTD &&
                ckpt_codec_set_dcpl(dcpl, codec->level, codec->shuffle) < 0 && rc == CKPT_OK)
                rc = ckpt_error(CKPT_EINVAL, "cannot set up zstd level %d for '%s'", codec->level, st->name);
        }
        if (parallel)
            H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
        char dname[CKPT_MAX_NAME + 16];
        ckpt_shared_dataset(st->name, dname, sizeof dname);
        hid_t type = ckpt_h5_type(st->dtype);
        hid_t ds = H5Dcreate2(f, dname, type, sp, lcpl, dcpl, H5P_DEFAULT);
        if (rc == CKPT_OK && ds < 0)
            rc = h5fail("cannot create a dataset in", path);
        if (ds >= 0 && ckpt_h5_attr_str(ds, "dtype", ckpt_dtype_name(st->dtype)) < 0 && rc == CKPT_OK)
            rc = h5fail("cannot write attributes in", path);
        for (int r = 0; r < st->rounds; r++) {
            ckpt_write_item *it = NULL;
            for (int64_t i = 0; i < nitems; i++)
                if (item_tensor[i] == t && item_round[i] == r)
                    it = &items[i];
            hid_t fs = H5Scopy(sp), ms;
            static const char dummy[8];
            if (it && nd) {
                hsize_t start[CKPT_MAX_NDIM], count[CKPT_MAX_NDIM];
                for (int d = 0; d < nd; d++) {
                    start[d] = (hsize_t)it->box.off[d];
                    count[d] = (hsize_t)it->box.ext[d];
                }
                H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
                ms = H5Screate_simple(nd, count, NULL);
            } else if (it) {
                ms = H5Screate(H5S_SCALAR);
            } else {
                H5Sselect_none(fs);
                ms = H5Scopy(fs);
                H5Sselect_none(ms);
            }
            if (ds >= 0 && H5Dwrite(ds, type, ms, fs, dxpl, it ? it->data : dummy) < 0 && rc == CKPT_OK) {
                rc = h5fail("cannot write (collectively) to", path);
                ckpt_error_prefix("tensor '%s': ", st->name);
            }
            if (parallel)
                ckpt_io_mpiio_fault("collective write to", path, &rc);
            H5Sclose(ms);
            H5Sclose(fs);
        }
        if (ds >= 0) {
            if (stored && rank == 0)
                stored[t] = (int64_t)H5Dget_storage_size(ds);
            H5Dclose(ds);
        }
        H5Pclose(dcpl);
        H5Sclose(sp);
    }
    for (int64_t i = 0; i < nitems && rc == CKPT_OK; i++)
        ckpt_io_checksum_item(&items[i]);
    /* the checksum table: every rank writes its items' slots (collectively, even with none) */
    {
        int crc = ckpt_io_write_checksum_slots(f, nslots, items, nitems, parallel, path);
        if (rc == CKPT_OK)
            rc = crc;
    }
    /* collective: every rank flushes, also after a local failure */
    if (do_fsync && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 && rc == CKPT_OK)
        rc = h5fail("cannot flush", path);
    if (parallel && do_fsync)
        ckpt_io_mpiio_fault("flushing", path, &rc);
out:
    if (f >= 0 && H5Fclose(f) < 0 && rc == CKPT_OK)
        rc = h5fail("cannot close", path);
    if (f >= 0 && parallel)
        ckpt_io_mpiio_fault("closing", path, &rc);
    H5Pclose(lcpl);
    H5Pclose(dxpl);
    H5Pclose(fapl);
    ckpt_h5_unlock();
    if (rc == CKPT_OK && do_fsync && rank == 0) {
        int err = ckpt_fsync_path(path);
        if (err)
            rc = ckpt_error(CKPT_EIO, "fsync of '%s' failed: %s", path, strerror(-err));
    }
    return rc;
}
