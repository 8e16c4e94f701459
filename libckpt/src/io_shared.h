/* io_shared.h -- the shared-file layout: one HDF5 file (data.h5) opened by every rank with the
 * MPI-IO driver, one global dataset per tensor (/tensors/<name>, the full global shape), each
 * rank writing its boxes as hyperslabs with collective transfers. Chunks are aligned to the
 * boxes where the boxes allow it, so ranks write disjoint chunks. */
#ifndef CKPT_IO_SHARED_H
#define CKPT_IO_SHARED_H

#include "io_per_rank.h"
#include "meta.h"

#include <mpi.h>

typedef struct ckpt_shared_tensor {
    const char *name;
    ckpt_dtype dtype;
    int ndim;
    int64_t shape[CKPT_MAX_NDIM];
    int64_t chunk[CKPT_MAX_NDIM]; /* 0s: contiguous (0-D or zero-size tensors) */
    int rounds;                   /* most boxes of this tensor any one rank writes */
} ckpt_shared_tensor;

/* After a collective HDF5 call on an MPI-IO file: the fault layer's mpiio point (fault.h) may
 * report the call failed (it was made). Sets *rc (when still CKPT_OK) naming `what` and path. */
void ckpt_io_mpiio_fault(const char *what, const char *path, int *rc);

/* Chooses chunk dims for a tensor whose saved boxes are `boxes` (n of them) -- or, for a regular
 * grid, whose cells are `cell` (boxes NULL) -- : the largest cell that divides every box boundary,
 * cut down to at most piece_bytes along the outer dims. */
void ckpt_shared_chunk(int ndim, const int64_t *shape, size_t esize, const ckpt_box *boxes, int64_t n,
                       const int64_t *cell, int64_t piece_bytes, int64_t *chunk);

/*
 * Collective over comm (every rank passes the same tensors; MPI_COMM_NULL = one process with the
 * POSIX driver): creates `path`, creates every dataset, and writes this rank's items, round r of
 * tensor t being item_tensor[i] == t && item_round[i] == r. Fills each item's checksums and writes
 * them into the file's checksum table of `nslots` entries at the items' first_piece slots. On
 * rank 0 (or the only process) stored[t] receives each dataset's storage size.
 */
int ckpt_io_write_shared(MPI_Comm comm, const char *path, const ckpt_shared_tensor *tensors, int64_t nt,
                         ckpt_write_item *items, const int64_t *item_tensor, const int *item_round, int64_t nitems,
                         int64_t nslots, const ckpt_io_codec *codec, int do_fsync, int64_t *stored);

#endif
