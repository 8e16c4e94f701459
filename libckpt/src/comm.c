/* comm.c -- error agreement and metadata exchange over a private dup of the caller's comm. */
#include "comm.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int mpi_fail(int err, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(err, s, &n);
    return ckpt_error(CKPT_EMPI, "%s failed: %.*s", what, n, s);
}

int ckpt_comm_open(MPI_Comm user, ckpt_comm *c)
{
    memset(c, 0, sizeof *c);
    c->comm = MPI_COMM_NULL;
    c->size = 1;
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    if (init)
        MPI_Finalized(&fin);
    if (!init || fin || user == MPI_COMM_NULL)
        return CKPT_OK;
    int rc = MPI_Comm_dup(user, &c->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Comm_dup");
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    c->active = 1;
    return CKPT_OK;
}

void ckpt_comm_close(ckpt_comm *c)
{
    if (c->active)
        MPI_Comm_free(&c->comm);
    c->active = 0;
}

typedef struct verdict {
    int code;
    char msg[CKPT_ERRMSG_MAX];
} verdict;

static int share_from(ckpt_comm *c, int root, int status, int prefix)
{
    verdict *v = calloc(1, sizeof *v);
    if (!v)
        return ckpt_error(CKPT_ENOMEM, "out of memory agreeing on an error");
    if (c->rank == root) {
        v->code = status;
        if (prefix)
            snprintf(v->msg, sizeof v->msg, "rank %d: %s", root, ckpt_errmsg());
        else
            snprintf(v->msg, sizeof v->msg, "%s", ckpt_errmsg());
    }
    int rc = MPI_Bcast(v, (int)sizeof *v, MPI_BYTE, root, c->comm);
    if (rc != MPI_SUCCESS) {
        free(v);
        return mpi_fail(rc, "MPI_Bcast of an error");
    }
    int code = v->code;
    if (code != CKPT_OK)
        ckpt_error(code, "%s", v->msg);
    free(v);
    return code;
}

int ckpt_comm_agree(ckpt_comm *c, int status)
{
    if (!c->active)
        return status;
    int mine = status != CKPT_OK ? c->rank : c->size, first = c->size;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Allreduce of the status");
    if (first == c->size)
        return CKPT_OK;
    return share_from(c, first, status, 1);
}

int ckpt_comm_agree_common(ckpt_comm *c, int status)
{
    if (!c->active)
        return status;
    int v[2] = {status, -status}, r[2];
    int rc = MPI_Allreduce(v, r, 2, MPI_INT, MPI_MIN, c->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Allreduce of the status");
    if (r[0] == -r[1])
        return status;
    return ckpt_comm_agree(c, status);
}

int ckpt_comm_share_root(ckpt_comm *c, int status)
{
    if (!c->active)
        return status;
    int code = status;
    int rc = MPI_Bcast(&code, 1, MPI_INT, 0, c->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Bcast of the status");
    if (code == CKPT_OK)
        return CKPT_OK;
    return share_from(c, 0, status, 0);
}

int ckpt_comm_gather(ckpt_comm *c, const ckpt_wire *mine, unsigned char **all, size_t **lens)
{
    *all = NULL;
    *lens = NULL;
    if (mine->len > (size_t)INT32_MAX)
        return ckpt_error(CKPT_EUNSUPPORTED, "rank %d's metadata is over 2 GiB", c->rank);
    if (!c->active) {
        *all = malloc(mine->len + 1);
        *lens = malloc(sizeof **lens);
        if (!*all || !*lens)
            return ckpt_error(CKPT_ENOMEM, "out of memory gathering metadata");
        if (mine->len)
            memcpy(*all, mine->buf, mine->len);
        (*lens)[0] = mine->len;
        return CKPT_OK;
    }
    int n = (int)mine->len;
    int *counts = NULL, *displs = NULL;
    if (c->rank == 0) {
        counts = calloc((size_t)c->size, sizeof *counts);
        displs = calloc((size_t)c->size, sizeof *displs);
    }
    int rc = MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, c->comm);
    if (rc != MPI_SUCCESS) {
        free(counts);
        free(displs);
        return mpi_fail(rc, "MPI_Gather of metadata sizes");
    }
    int64_t total = 0;
    if (c->rank == 0) {
        for (int r = 0; r < c->size; r++) {
            displs[r] = (int)total;
            total += counts[r] > 0 ? counts[r] : 0;
        }
        /* every rank must reach the Gatherv even when rank 0 cannot take it: gather nothing then */
        if (total < 0 || total > INT32_MAX)
            total = -1;
        else {
            *all = malloc((size_t)total + 1);
            *lens = calloc((size_t)c->size, sizeof **lens);
        }
    }
    int ok = c->rank != 0 || (total >= 0 && *all && *lens);
    int allok = 0;
    rc = MPI_Allreduce(&ok, &allok, 1, MPI_INT, MPI_MIN, c->comm);
    if (rc == MPI_SUCCESS && allok)
        rc = MPI_Gatherv(mine->buf, n, MPI_BYTE, *all, counts, displs, MPI_BYTE, 0, c->comm);
    if (c->rank == 0 && allok)
        for (int r = 0; r < c->size; r++)
            (*lens)[r] = (size_t)counts[r];
    free(counts);
    free(displs);
    if (rc != MPI_SUCCESS || !allok) {
        free(*all);
        free(*lens);
        *all = NULL;
        *lens = NULL;
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Gatherv of metadata");
        return ckpt_error(CKPT_ENOMEM, "rank 0 cannot hold the gathered metadata (over 2 GiB or out of memory)");
    }
    return CKPT_OK;
}

int ckpt_comm_bcast(ckpt_comm *c, ckpt_wire *w)
{
    if (!c->active)
        return CKPT_OK;
    int64_t n = (int64_t)w->len;
    int rc = MPI_Bcast(&n, 1, MPI_INT64_T, 0, c->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Bcast of a plan size");
    if (n > INT32_MAX)
        return ckpt_error(CKPT_EUNSUPPORTED, "plan of %lld bytes is over 2 GiB", (long long)n);
    int ok = 1;
    if (c->rank != 0) {
        ckpt_wire_free(w);
        w->buf = malloc((size_t)n + 1);
        ok = w->buf != NULL;
        w->len = w->cap = (size_t)n;
    }
    int allok = 0;
    rc = MPI_Allreduce(&ok, &allok, 1, MPI_INT, MPI_MIN, c->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Allreduce");
    if (!allok)
        return ckpt_error(CKPT_ENOMEM, "out of memory receiving a plan of %lld bytes", (long long)n);
    rc = MPI_Bcast(w->buf, (int)n, MPI_BYTE, 0, c->comm);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Bcast of a plan");
    w->pos = 0;
    return CKPT_OK;
}

int ckpt_comm_bcast_bytes(ckpt_comm *c, int status, unsigned char **buf, size_t *n)
{
    if (!c->active)
        return status;
    int rc = ckpt_comm_share_root(c, status);
    if (rc)
        return rc;
    ckpt_wire w = {0};
    if (c->rank == 0) {
        w.buf = *buf;
        w.len = w.cap = *n;
    }
    rc = ckpt_comm_bcast(c, &w);
    if (c->rank != 0) {
        *buf = w.buf;
        *n = w.len;
    }
    return rc;
}

int ckpt_comm_allreduce_i64(ckpt_comm *c, int64_t *v, int64_t n, MPI_Op op)
{
    if (!c->active || n == 0)
        return CKPT_OK;
    if (n > INT32_MAX)
        return ckpt_error(CKPT_EUNSUPPORTED, "a reduction of %lld values is too large", (long long)n);
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_INT64_T, op, c->comm);
    return rc == MPI_SUCCESS ? CKPT_OK : mpi_fail(rc, "MPI_Allreduce of planning data");
}

static int send_wire(ckpt_comm *c, const ckpt_wire *w, int to)
{
    int64_t n = w->failed ? -1 : (int64_t)w->len;
    if (n > INT32_MAX)
        n = -1;
    int rc = MPI_Send(&n, 1, MPI_INT64_T, to, 7101, c->comm);
    if (rc == MPI_SUCCESS && n > 0)
        rc = MPI_Send(w->buf, (int)n, MPI_BYTE, to, 7102, c->comm);
    return rc == MPI_SUCCESS ? CKPT_OK : mpi_fail(rc, "MPI_Send of planning data");
}

/* Receives a wire; *ok = 1, or 0 when the sender had none to give (it failed and reports why
 * itself), or -1 when this rank ran out of memory. */
static int recv_wire(ckpt_comm *c, ckpt_wire *w, int from, int *ok)
{
    int64_t n = 0;
    *ok = 0;
    int rc = MPI_Recv(&n, 1, MPI_INT64_T, from, 7101, c->comm, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Recv of planning data");
    memset(w, 0, sizeof *w);
    if (n <= 0) {
        *ok = n == 0;
        return CKPT_OK;
    }
    unsigned char *b = malloc((size_t)n);
    rc = MPI_Recv(b ? b : (unsigned char[1]){0}, b ? (int)n : 0, MPI_BYTE, from, 7102, c->comm, MPI_STATUS_IGNORE);
    if (!b) {
        *ok = -1;
        return CKPT_OK;
    }
    if (rc != MPI_SUCCESS) {
        free(b);
        return mpi_fail(rc, "MPI_Recv of planning data");
    }
    w->buf = b;
    w->len = w->cap = (size_t)n;
    *ok = 1;
    return CKPT_OK;
}

int ckpt_comm_tree_reduce(ckpt_comm *c, ckpt_wire *w, ckpt_wire_merge_fn merge)
{
    int status = w->failed ? ckpt_error(CKPT_ENOMEM, "out of memory encoding planning data") : CKPT_OK;
    if (!c->active)
        return status;
    int mpi = CKPT_OK;
    for (int bit = 1; bit < c->size && mpi == CKPT_OK; bit <<= 1) {
        if (c->rank & bit) {
            ckpt_wire none = {0};
            none.failed = 1;
            mpi = send_wire(c, status ? &none : w, c->rank - bit);
            break;
        }
        if (c->rank + bit >= c->size)
            continue;
        ckpt_wire in;
        int ok;
        mpi = recv_wire(c, &in, c->rank + bit, &ok);
        if (mpi == CKPT_OK && status == CKPT_OK && ok != 0) {
            if (ok < 0)
                status = ckpt_error(CKPT_ENOMEM, "out of memory receiving planning data from rank %d", c->rank + bit);
            else {
                ckpt_wire out = {0};
                status = merge(w, &in, &out);
                ckpt_wire_free(w);
                *w = out;
            }
        }
        ckpt_wire_free(&in);
    }
    if (mpi)
        return mpi;
    return ckpt_comm_agree(c, status);
}

int ckpt_comm_scatter(ckpt_comm *c, const unsigned char *all, const size_t *lens, ckpt_wire *mine)
{
    ckpt_wire_free(mine);
    if (!c->active) {
        ckpt_wire_bytes(mine, all, lens[0]);
        return mine->failed ? ckpt_error(CKPT_ENOMEM, "out of memory") : CKPT_OK;
    }
    int *counts = NULL, *displs = NULL, n = 0, ok = 1;
    if (c->rank == 0) {
        counts = calloc((size_t)c->size, sizeof *counts);
        displs = calloc((size_t)c->size, sizeof *displs);
        int64_t total = 0;
        for (int r = 0; counts && displs && r < c->size; r++) {
            displs[r] = (int)total;
            counts[r] = (int)lens[r];
            total += (int64_t)lens[r];
            if (total > INT32_MAX)
                ok = 0;
        }
        ok = ok && counts && displs;
    }
    int rc = MPI_Bcast(&ok, 1, MPI_INT, 0, c->comm);
    if (rc == MPI_SUCCESS && ok)
        rc = MPI_Scatter(counts, 1, MPI_INT, &n, 1, MPI_INT, 0, c->comm);
    if (rc == MPI_SUCCESS && ok) {
        mine->buf = malloc((size_t)n + 1);
        mine->len = mine->cap = (size_t)n;
        rc = MPI_Scatterv(all, counts, displs, MPI_BYTE, mine->buf ? mine->buf : (unsigned char[1]){0},
                          mine->buf ? n : 0, MPI_BYTE, 0, c->comm);
    }
    free(counts);
    free(displs);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "MPI_Scatterv of the plan");
    int mineok = ok && mine->buf != NULL;
    return ckpt_comm_agree(c, mineok ? CKPT_OK : ckpt_error(CKPT_ENOMEM, "out of memory receiving the plan"));
}
