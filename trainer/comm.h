/* comm: the few collectives the sharded trainer needs, behind a table of function pointers.
 *
 * The model and the sharding code only ever call the comm_* wrappers below. A backend fills a
 * comm_ops table; comm_create_mpi() is the MPI (CPU) backend. A later NCCL backend implements the same
 * seven entries (all-gather with per-rank counts can be a padded ncclAllGather) and plugs in without
 * touching the model, the shard storage or the loop.
 *
 * Conventions
 *  - Every call is collective over the communicator: all ranks call it, in the same order.
 *  - Counts are element counts; per-rank arrays (counts, displs) have comm->size entries.
 *  - Every call returns 0 or -1 (the backend failed; comm_errmsg(c) says why). The MPI backend runs
 *    with MPI_ERRORS_RETURN on its own duplicate of the communicator.
 *  - The wrappers time themselves: comm->seconds accumulates the wall time spent inside collectives,
 *    comm->calls and comm->bytes count them (bytes this rank sent), for the "share of time in
 *    communication" the loop reports. */
#ifndef TRAINER_COMM_H
#define TRAINER_COMM_H

#include <stddef.h>
#include <stdint.h>

typedef enum comm_dtype { COMM_F32 = 0, COMM_F64 = 1, COMM_I32 = 2, COMM_I64 = 3, COMM_U8 = 4 } comm_dtype;
typedef enum comm_op { COMM_SUM = 0, COMM_MAX = 1, COMM_MIN = 2 } comm_op;
typedef enum comm_backend { COMM_BACKEND_MPI = 0 } comm_backend;

typedef struct comm comm;

typedef struct comm_ops {
    const char *name;
    /* send (sendcount f32) from every rank -> recv: rank r's block at recv + displs[r], counts[r]
     * elements (sendcount == counts[rank]). */
    int (*all_gather)(comm *c, const float *send, int sendcount, float *recv, const int *counts,
                      const int *displs);
    /* send holds sum(counts) f32 ordered by destination rank; recv (counts[rank]) = the sum over ranks
     * of this rank's block. */
    int (*reduce_scatter)(comm *c, const float *send, float *recv, const int *counts);
    /* in place */
    int (*all_reduce)(comm *c, void *buf, int count, comm_dtype dtype, comm_op op);
    int (*broadcast)(comm *c, void *buf, size_t bytes, int root);
    int (*barrier)(comm *c);
    void (*destroy)(comm *c);
} comm_ops;

struct comm {
    const comm_ops *ops;
    comm_backend backend;
    int rank, size;
    int local_rank, local_size; /* ranks on this node (shared-memory domain) */
    void *impl;                 /* backend state */
    double seconds;             /* time inside collectives since creation / comm_reset_stats */
    int64_t calls, bytes;
    char errmsg[256];
};

/* MPI backend over a duplicate of `mpi_comm` (an MPI_Comm passed as a pointer so this header needs no
 * mpi.h: &MPI_COMM_WORLD). NULL on failure. */
comm *comm_create_mpi(const void *mpi_comm);
void comm_destroy(comm *c);
/* The MPI communicator of an MPI-backed comm (for libckpt calls), as a pointer to MPI_Comm. */
const void *comm_mpi_handle(const comm *c);

int comm_all_gather(comm *c, const float *send, int sendcount, float *recv, const int *counts, const int *displs);
int comm_reduce_scatter(comm *c, const float *send, float *recv, const int *counts);
int comm_all_reduce(comm *c, void *buf, int count, comm_dtype dtype, comm_op op);
int comm_broadcast(comm *c, void *buf, size_t bytes, int root);
int comm_barrier(comm *c);

/* Agreement helper: every rank passes its own code, every rank gets the maximum. */
int comm_agree_max(comm *c, int code);

void comm_reset_stats(comm *c);
const char *comm_errmsg(const comm *c);

#endif /* TRAINER_COMM_H */
