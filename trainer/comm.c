/* comm: timed wrappers over a backend table, and the MPI backend. */
#include "comm.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- MPI backend */

typedef struct mpi_impl {
    MPI_Comm comm;
    int *counts_i, *displs_i; /* [size] scratch for reduce-scatter */
} mpi_impl;

static MPI_Comm mcomm(const comm *c)
{
    return ((const mpi_impl *)c->impl)->comm;
}

static int mpi_fail(comm *c, const char *what, int err)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "error %d", err);
    snprintf(c->errmsg, sizeof c->errmsg, "%.40s failed on rank %d: %.160s", what, c->rank, msg);
    return -1;
}

static MPI_Datatype mpi_type(comm_dtype t)
{
    switch (t) {
    case COMM_F32: return MPI_FLOAT;
    case COMM_F64: return MPI_DOUBLE;
    case COMM_I32: return MPI_INT32_T;
    case COMM_I64: return MPI_INT64_T;
    default: return MPI_UINT8_T;
    }
}

static MPI_Op mpi_op(comm_op op)
{
    return op == COMM_MAX ? MPI_MAX : op == COMM_MIN ? MPI_MIN : MPI_SUM;
}

static int mpi_all_gather(comm *c, const float *send, int sendcount, float *recv, const int *counts,
                          const int *displs)
{
    /* MPI wants a valid pointer even for zero counts on some implementations */
    static float dummy;
    int err = MPI_Allgatherv(sendcount ? send : &dummy, sendcount, MPI_FLOAT, recv, counts, displs, MPI_FLOAT,
                             mcomm(c));
    return err == MPI_SUCCESS ? 0 : mpi_fail(c, "MPI_Allgatherv", err);
}

static int mpi_reduce_scatter(comm *c, const float *send, float *recv, const int *counts)
{
    static float dummy;
    int err = MPI_Reduce_scatter(send, counts[c->rank] ? recv : &dummy, counts, MPI_FLOAT, MPI_SUM, mcomm(c));
    return err == MPI_SUCCESS ? 0 : mpi_fail(c, "MPI_Reduce_scatter", err);
}

static int mpi_all_reduce(comm *c, void *buf, int count, comm_dtype dtype, comm_op op)
{
    int err = MPI_Allreduce(MPI_IN_PLACE, buf, count, mpi_type(dtype), mpi_op(op), mcomm(c));
    return err == MPI_SUCCESS ? 0 : mpi_fail(c, "MPI_Allreduce", err);
}

static int mpi_broadcast(comm *c, void *buf, size_t bytes, int root)
{
    char *p = buf;
    while (bytes > 0) { /* MPI counts are int */
        int n = bytes > (size_t)1 << 30 ? 1 << 30 : (int)bytes;
        int err = MPI_Bcast(p, n, MPI_BYTE, root, mcomm(c));
        if (err != MPI_SUCCESS)
            return mpi_fail(c, "MPI_Bcast", err);
        p += n;
        bytes -= (size_t)n;
    }
    return 0;
}

static int mpi_barrier(comm *c)
{
    int err = MPI_Barrier(mcomm(c));
    return err == MPI_SUCCESS ? 0 : mpi_fail(c, "MPI_Barrier", err);
}

static void mpi_destroy(comm *c)
{
    mpi_impl *m = c->impl;
    if (m) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin && m->comm != MPI_COMM_NULL)
            MPI_Comm_free(&m->comm);
        free(m->counts_i);
        free(m->displs_i);
        free(m);
    }
}

static const comm_ops mpi_ops = {
    .name = "mpi",
    .all_gather = mpi_all_gather,
    .reduce_scatter = mpi_reduce_scatter,
    .all_reduce = mpi_all_reduce,
    .broadcast = mpi_broadcast,
    .barrier = mpi_barrier,
    .destroy = mpi_destroy,
};

comm *comm_create_mpi(const void *mpi_comm)
{
    comm *c = calloc(1, sizeof *c);
    mpi_impl *m = calloc(1, sizeof *m);
    if (!c || !m) {
        free(c);
        free(m);
        return NULL;
    }
    c->ops = &mpi_ops;
    c->backend = COMM_BACKEND_MPI;
    c->impl = m;
    m->comm = MPI_COMM_NULL;
    if (MPI_Comm_dup(*(const MPI_Comm *)mpi_comm, &m->comm) != MPI_SUCCESS)
        goto fail;
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &c->rank);
    MPI_Comm_size(m->comm, &c->size);
    MPI_Comm node;
    if (MPI_Comm_split_type(m->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &c->local_rank);
        MPI_Comm_size(node, &c->local_size);
        MPI_Comm_free(&node);
    } else {
        c->local_rank = 0;
        c->local_size = 1;
    }
    m->counts_i = calloc((size_t)c->size, sizeof(int));
    m->displs_i = calloc((size_t)c->size, sizeof(int));
    if (!m->counts_i || !m->displs_i)
        goto fail;
    return c;
fail:
    mpi_destroy(c);
    free(c);
    return NULL;
}

const void *comm_mpi_handle(const comm *c)
{
    return c && c->backend == COMM_BACKEND_MPI ? (const void *)&((const mpi_impl *)c->impl)->comm : NULL;
}

void comm_destroy(comm *c)
{
    if (!c)
        return;
    if (c->ops && c->ops->destroy)
        c->ops->destroy(c);
    free(c);
}

/* ---------------------------------------------------------------- timed wrappers */

int comm_all_gather(comm *c, const float *send, int sendcount, float *recv, const int *counts, const int *displs)
{
    double t0 = now_s();
    int rc = c->ops->all_gather(c, send, sendcount, recv, counts, displs);
    c->seconds += now_s() - t0;
    c->calls++;
    c->bytes += (int64_t)sendcount * (int64_t)sizeof(float) * (c->size - 1);
    return rc;
}

int comm_reduce_scatter(comm *c, const float *send, float *recv, const int *counts)
{
    double t0 = now_s();
    int rc = c->ops->reduce_scatter(c, send, recv, counts);
    c->seconds += now_s() - t0;
    c->calls++;
    int64_t total = 0;
    for (int r = 0; r < c->size; r++)
        total += counts[r];
    c->bytes += (total - counts[c->rank]) * (int64_t)sizeof(float);
    return rc;
}

int comm_all_reduce(comm *c, void *buf, int count, comm_dtype dtype, comm_op op)
{
    double t0 = now_s();
    int rc = c->ops->all_reduce(c, buf, count, dtype, op);
    c->seconds += now_s() - t0;
    c->calls++;
    c->bytes += count * 8;
    return rc;
}

int comm_broadcast(comm *c, void *buf, size_t bytes, int root)
{
    double t0 = now_s();
    int rc = c->ops->broadcast(c, buf, bytes, root);
    c->seconds += now_s() - t0;
    c->calls++;
    c->bytes += c->rank == root ? (int64_t)bytes : 0;
    return rc;
}

int comm_barrier(comm *c)
{
    double t0 = now_s();
    int rc = c->ops->barrier(c);
    c->seconds += now_s() - t0;
    c->calls++;
    return rc;
}

int comm_agree_max(comm *c, int code)
{
    int32_t v = code;
    if (comm_all_reduce(c, &v, 1, COMM_I32, COMM_MAX) != 0)
        return code > 1 ? code : 1;
    return v;
}

void comm_reset_stats(comm *c)
{
    c->seconds = 0.0;
    c->calls = 0;
    c->bytes = 0;
}

const char *comm_errmsg(const comm *c)
{
    return c->errmsg;
}
