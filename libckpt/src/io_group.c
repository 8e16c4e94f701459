/* io_group.c -- one HDF5 file per group of ranks, written through MPI-IO. */
#include "io_group.h"
#include "io_shared.h"
#include "dtype.h"
#include "error.h"
#include "h5util.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What every member needs to create a dataset of another member's box. */
typedef struct gbox {
    int64_t gid;
    const char *tensor;
    int64_t dtype;
    ckpt_box box;
    ckpt_pieces pieces;
    int owner;   /* group rank */
    int64_t mine; /* index into the owner's items, -1 for others' */
    int64_t first_piece;
} gbox;

static int cmp_gbox(const void *a, const void *b)
{
    const gbox *x = a, *y = b;
    return x->gid < y->gid ? -1 : x->gid > y->gid;
}

static int h5fail(const char *what, const char *path)
{
    char detail[300];
    ckpt_error_hdf5_detail(detail, sizeof detail);
    return ckpt_error(CKPT_EIO, "%s '%s'%s", what, path, detail);
}

int ckpt_io_write_group(MPI_Comm group, const char *path, ckpt_write_item *items, const int64_t *gids, int64_t n,
                        const ckpt_io_codec *codec, int do_fsync)
{
    int grank, gsize, rc = CKPT_OK;
    MPI_Comm_rank(group, &grank);
    MPI_Comm_size(group, &gsize);
    /* 1. everyone's boxes */
    ckpt_wire w = {0};
    ckpt_wire_i64(&w, n);
    for (int64_t i = 0; i < n; i++) {
        const ckpt_write_item *it = &items[i];
        ckpt_wire_i64(&w, gids[i]);
        ckpt_wire_str(&w, it->tensor);
        ckpt_wire_i64(&w, it->dtype);
        ckpt_wire_i64(&w, it->box.ndim);
        for (int d = 0; d < it->box.ndim; d++) {
            ckpt_wire_i64(&w, it->box.off[d]);
            ckpt_wire_i64(&w, it->box.ext[d]);
        }
        ckpt_wire_i64(&w, it->pieces.dim);
        ckpt_wire_i64(&w, it->pieces.len);
    }
    int len = w.failed || w.len > INT32_MAX ? -1 : (int)w.len;
    int *lens = calloc((size_t)gsize, sizeof *lens), *displs = calloc((size_t)gsize, sizeof *displs);
    unsigned char *all = NULL;
    gbox *gb = NULL;
    int64_t ng = 0, total = 0;
    int mpi = lens && displs ? MPI_Allgather(&len, 1, MPI_INT, lens, 1, MPI_INT, group) : MPI_ERR_NO_MEM;
    int64_t sum = 0;
    for (int r = 0; mpi == MPI_SUCCESS && r < gsize; r++) {
        if (lens[r] < 0 || sum + lens[r] > INT32_MAX)
            mpi = MPI_ERR_COUNT;
        else {
            displs[r] = (int)sum;
            sum += lens[r];
        }
    }
    if (mpi == MPI_SUCCESS && !(all = malloc((size_t)sum + 1)))
        mpi = MPI_ERR_NO_MEM;
    if (mpi == MPI_SUCCESS)
        mpi = MPI_Allgatherv(w.buf ? w.buf : (unsigned char *)"", len, MPI_BYTE, all, lens, displs, MPI_BYTE, group);
    if (mpi != MPI_SUCCESS) {
        /* the group cannot even agree on its datasets: nobody creates the file */
        rc = ckpt_error(mpi == MPI_ERR_NO_MEM ? CKPT_ENOMEM : CKPT_EMPI,
                        "the ranks writing '%s' cannot exchange their boxes", path);
        goto out;
    }
    for (int r = 0; r < gsize; r++) {
        ckpt_wire v;
        ckpt_wire_view(&v, all + displs[r], (size_t)lens[r]);
        ng += ckpt_wire_get_i64(&v);
    }
    gb = calloc((size_t)ng + 1, sizeof *gb);
    if (!gb) {
        rc = ckpt_error(CKPT_ENOMEM, "out of memory planning '%s'", path);
        goto out;
    }
    int64_t k = 0;
    for (int r = 0; r < gsize; r++) {
        ckpt_wire v;
        ckpt_wire_view(&v, all + displs[r], (size_t)lens[r]);
        int64_t m = ckpt_wire_get_i64(&v);
        for (int64_t i = 0; i < m && k < ng && !v.failed; i++, k++) {
            gbox *g = &gb[k];
            g->gid = ckpt_wire_get_i64(&v);
            g->tensor = ckpt_wire_get_str(&v);
            g->dtype = ckpt_wire_get_i64(&v);
            g->box.ndim = (int)ckpt_wire_get_i64(&v);
            if (g->box.ndim < 0 || g->box.ndim > CKPT_MAX_NDIM)
                v.failed = 1;
            for (int d = 0; d < g->box.ndim && !v.failed; d++) {
                g->box.off[d] = ckpt_wire_get_i64(&v);
                g->box.ext[d] = ckpt_wire_get_i64(&v);
            }
            int dim = (int)ckpt_wire_get_i64(&v);
            int64_t plen = ckpt_wire_get_i64(&v);
            if (!v.failed && ckpt_pieces_from(g->box.ndim, g->box.ext, dim, plen, &g->pieces) != 0)
                v.failed = 1;
            g->owner = r;
            g->mine = r == grank ? i : -1;
        }
        if (v.failed) {
            rc = ckpt_error(CKPT_ECORRUPT, "boxes received from a rank writing '%s' are malformed", path);
            goto out;
        }
    }
    qsort(gb, (size_t)ng, sizeof *gb, cmp_gbox);
    for (int64_t i = 0; i < ng; i++) {
        gb[i].first_piece = total;
        total += gb[i].pieces.count;
        if (gb[i].mine >= 0)
            items[gb[i].mine].first_piece = gb[i].first_piece;
    }
    /* 2. the file and its datasets (collective metadata), then the data */
    ckpt_h5_lock();
    {
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), dxpl = H5Pcreate(H5P_DATASET_XFER);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST);
        H5Pset_fapl_mpio(fapl, group, MPI_INFO_NULL);
        H5Pset_all_coll_metadata_ops(fapl, 1);
        H5Pset_coll_metadata_write(fapl, 1);
        int zstd = codec && codec->compress == CKPT_COMPRESS_ZSTD;
        if (zstd) /* HDF5 writes filtered datasets in parallel only collectively */
            H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
        hid_t f = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
        if (f < 0)
            rc = h5fail("cannot create group data file", path);
        else
            ckpt_io_mpiio_fault("creating group data file", path, &rc);
        { /* a create that failed on some members only: nobody goes on into the collectives */
            int bad = f < 0, anybad = bad;
            MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, group);
            if (anybad && f >= 0) {
                H5Fclose(f);
                f = -1;
                if (rc == CKPT_OK)
                    rc = ckpt_error(CKPT_EIO, "another rank could not create group data file '%s'", path);
            }
        }
        /* every member runs every collective call below, even after a local failure */
        for (int64_t i = 0; f >= 0 && i < ng; i++) {
            gbox *g = &gb[i];
            char dsname[48];
            snprintf(dsname, sizeof dsname, "/boxes/%lld", (long long)g->gid);
            ckpt_write_item it;
            memset(&it, 0, sizeof it);
            it.tensor = g->tensor;
            it.dataset = dsname;
            it.dtype = (ckpt_dtype)g->dtype;
            it.box = g->box;
            it.pieces = g->pieces;
            it.first_piece = g->first_piece;
            hid_t ds = -1;
            int crc = ckpt_io_create_box_dataset_parallel(f, &it, codec, path, &ds);
            if (crc && rc == CKPT_OK)
                rc = crc;
            ckpt_write_item *own = g->mine >= 0 ? &items[g->mine] : NULL;
            if (ds >= 0 && (own || zstd)) {
                hid_t type = ckpt_h5_type(it.dtype);
                herr_t e;
                if (own) {
                    e = H5Dwrite(ds, type, H5S_ALL, H5S_ALL, dxpl, own->data);
                } else { /* a collective round another member writes */
                    hid_t fs = H5Dget_space(ds), ms = H5Scopy(fs);
                    H5Sselect_none(fs);
                    H5Sselect_none(ms);
                    static const char dummy[8];
                    e = H5Dwrite(ds, type, ms, fs, dxpl, dummy);
                    H5Sclose(ms);
                    H5Sclose(fs);
                }
                if (e < 0 && rc == CKPT_OK) {
                    rc = h5fail("cannot write a dataset of", path);
                    ckpt_error_prefix("tensor '%s': ", g->tensor);
                }
                ckpt_io_mpiio_fault("writing a dataset of", path, &rc);
                if (own && e >= 0) {
                    ckpt_io_checksum_item(own);
                    own->stored_bytes = (int64_t)H5Dget_storage_size(ds);
                }
            }
            if (ds >= 0)
                H5Dclose(ds);
        }
        /* 3. the checksum table: each member writes its own boxes' slots */
        if (f >= 0) {
            int crc = ckpt_io_write_checksum_slots(f, total, items, n, 1, path);
            if (rc == CKPT_OK)
                rc = crc;
            /* collective: every member flushes, also after a local failure */
            if (do_fsync && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 && rc == CKPT_OK)
                rc = h5fail("cannot flush", path);
            if (do_fsync)
                ckpt_io_mpiio_fault("flushing", path, &rc);
            if (H5Fclose(f) < 0 && rc == CKPT_OK)
                rc = h5fail("cannot close", path);
            ckpt_io_mpiio_fault("closing", path, &rc);
        }
        H5Pclose(dxpl);
        H5Pclose(fapl);
    }
    ckpt_h5_unlock();
    if (rc == CKPT_OK && do_fsync && grank == 0) {
        int err = ckpt_fsync_path(path);
        if (err)
            rc = ckpt_error(CKPT_EIO, "fsync of '%s' failed: %s", path, strerror(-err));
    }
out:
    free(gb);
    free(all);
    free(lens);
    free(displs);
    ckpt_wire_free(&w);
    return rc;
}
