/* comm.h -- the library's private communicator and the collective helpers the save and load
 * paths use: error agreement, gather to rank 0, broadcast from rank 0. MPI is called only by
 * the collective entry points (save, saver, load, manager, preempt), io_shared (the MPI-IO
 * driver) and this file; the readers, writer and everything below never do. Without MPI (not initialised, or MPI_COMM_NULL) a comm is a
 * one-rank stand-in and every helper is local. */
#ifndef CKPT_COMM_H
#define CKPT_COMM_H

#include "wire.h"

#include <mpi.h>
#include <stddef.h>

typedef struct ckpt_comm {
    MPI_Comm comm; /* a dup of the caller's, errors returned; MPI_COMM_NULL when inactive */
    int rank, size;
    int active;
} ckpt_comm;

/* Dups `user` (collective) when MPI is initialised and user != MPI_COMM_NULL. */
int ckpt_comm_open(MPI_Comm user, ckpt_comm *c);
void ckpt_comm_close(ckpt_comm *c);

/* Every rank passes its status; all return the status of the lowest failing rank, whose
 * message (prefixed "rank N: ") becomes every rank's last error. CKPT_OK when all succeeded. */
int ckpt_comm_agree(ckpt_comm *c, int status);

/* Like agree, for a status every rank computed from the same data: when all ranks have the same
 * status it is returned with each rank's own (identical) message, unprefixed; otherwise as agree. */
int ckpt_comm_agree_common(ckpt_comm *c, int status);

/* Like agree, for a decision rank 0 made for everyone: rank 0's status and message (not
 * prefixed) go to every rank. */
int ckpt_comm_share_root(ckpt_comm *c, int status);

/* Gathers every rank's wire to rank 0: there, *all holds size buffers back to back and
 * lens[r] the length of rank r's. Other ranks get NULLs. Caller frees both. */
int ckpt_comm_gather(ckpt_comm *c, const ckpt_wire *mine, unsigned char **all, size_t **lens);

/* Broadcasts rank 0's wire (w on rank 0) into w on every other rank (reset first). */
int ckpt_comm_bcast(ckpt_comm *c, ckpt_wire *w);

/* Broadcasts rank 0's status and, when it is CKPT_OK, its n bytes at *buf (on the other ranks
 * *buf is malloc'ed, *n set); for an index image read by one rank for all. */
int ckpt_comm_bcast_bytes(ckpt_comm *c, int status, unsigned char **buf, size_t *n);

/* Reduces n int64s elementwise over all ranks (op MPI_MAX, MPI_MIN or MPI_SUM), in place. */
int ckpt_comm_allreduce_i64(ckpt_comm *c, int64_t *v, int64_t n, MPI_Op op);

/* Reduces every rank's wire to rank 0 along a binary tree (log2(size) rounds of point-to-point
 * messages; no rank ever holds more than two inputs at once): merge(a, b, out) combines two.
 * On rank 0 *w becomes the result. Every rank returns the same status. */
typedef int (*ckpt_wire_merge_fn)(const ckpt_wire *a, const ckpt_wire *b, ckpt_wire *out);
int ckpt_comm_tree_reduce(ckpt_comm *c, ckpt_wire *w, ckpt_wire_merge_fn merge);

/* The inverse of ckpt_comm_gather: rank 0 holds size buffers back to back in all (lengths in
 * lens); each rank receives its own into *mine (reset first). */
int ckpt_comm_scatter(ckpt_comm *c, const unsigned char *all, const size_t *lens, ckpt_wire *mine);

#endif
