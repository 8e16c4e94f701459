/* plan.h -- save planning, the pure computation shared by the collective save (save_plan.c runs
 * it over MPI) and the one-process writer (runs it over its virtual ranks):
 *
 *   1. declarations: the union of every rank's tensors (name, dtype, shape), checked for
 *      agreement; merged pairwise, so a tree of merges gives the union in log2(N) rounds;
 *   2. regular shardings: per tensor, accumulators that every rank feeds with its own boxes and
 *      that combine across ranks with MAX / MIN / SUM (three rounds): the largest extents give
 *      the grid, the lowest holders of cell 0 and of the unit cells give the affine writer map,
 *      and the cells whose writer holds them are counted -- the boxes are the grid, and each
 *      cell is written by a rank that holds it, exactly when that count equals the cell count;
 *   3. everything else (irregular boxes, or boxes that only look regular) is planned
 *      explicitly from a list of all its boxes: replicas dropped (the lowest rank writes), the
 *      exact-cover rule proven (tiling.h), writers assigned;
 *   4. the index is assembled: global box ids and checksum slots.
 * No MPI, no I/O. */
#ifndef CKPT_PLAN_H
#define CKPT_PLAN_H

#include "meta.h"
#include "state.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

/* ---- 1. declarations ---- */

/* A rank's declarations in merge form: sorted by name, each with the lowest rank declaring it,
 * plus the first disagreement seen (status and message), which survives every later merge. */
void ckpt_plan_encode_decls(const ckpt_state *s, int rank, ckpt_wire *out);

/* Merges two encoded declaration lists into out (reset first). A name declared differently in
 * a and b records CKPT_EMISMATCH ("tensor 'w' is f32 [4, 6] on rank 0 but f64 [4, 6] on rank 2")
 * unless an earlier error is recorded. Returns CKPT_OK, or CKPT_ECORRUPT/CKPT_ENOMEM when an
 * input is malformed or memory runs out (errors of the merge itself, not of the declarations). */
int ckpt_plan_merge_decls(const ckpt_wire *a, const ckpt_wire *b, ckpt_wire *out);

/* Decodes a merged list into the index's tensors (sorted by name; sharding left to step 2) and
 * returns the recorded declaration error, if any (with its message). */
int ckpt_plan_decode_decls(const ckpt_wire *w, ckpt_index *ix);

/* ---- 2. regular shardings ---- */

#define CKPT_GRID_ACC_LEN (2 * CKPT_MAX_NDIM + 3)

/* Per-tensor accumulator, packed as CKPT_GRID_ACC_LEN int64s so that arrays of them travel in
 * one MPI reduction per round. */
typedef struct ckpt_grid_acc {
    int64_t maxext[CKPT_MAX_NDIM];     /* round 1, MAX */
    int64_t misfit;                    /* round 2, MAX: 1 when some box is not a cell */
    int64_t holder[CKPT_MAX_NDIM + 1]; /* round 2, MIN: lowest rank holding cell 0, and the unit cell along d */
    int64_t claimed;                   /* round 3, SUM: cells held by their writer */
} ckpt_grid_acc;

/* Identity values of round r (1..3) in acc. */
void ckpt_grid_acc_init(ckpt_grid_acc *acc, int round);

/* Feeds the boxes of one rank into round 1 (maxext): `boxes` are its non-empty boxes of tensor t. */
void ckpt_grid_round1(ckpt_grid_acc *acc, const ckpt_box *boxes, int64_t n);

/* After round 1: the grid the extents imply (chunk = largest extent; whole dims when no box). */
void ckpt_grid_propose(const ckpt_itensor *t, const ckpt_grid_acc *acc, ckpt_grid *g);

/* Round 2 for one rank's boxes of the tensor. */
void ckpt_grid_round2(ckpt_grid_acc *acc, const ckpt_grid *g, int rank, const ckpt_box *boxes, int64_t n);

/* After round 2: completes g with the writer map; 0 when it is a valid grid of `world` ranks,
 * -1 when the boxes are not (the tensor is then planned explicitly). */
int ckpt_grid_writers(ckpt_grid *g, const ckpt_grid_acc *acc, int64_t world);

/* Round 3 for one rank's boxes: counts the distinct cells it holds whose writer it is. `scratch`
 * must hold n entries. */
void ckpt_grid_round3(ckpt_grid_acc *acc, const ckpt_grid *g, int rank, const ckpt_box *boxes, int64_t n,
                      int64_t *scratch);

/* After round 3: 1 when the grid holds (every cell written by a holder), else 0. */
int ckpt_grid_holds(const ckpt_grid *g, const ckpt_grid_acc *acc);

/* ---- 3. explicit tensors ---- */

/* One box sent for explicit planning. */
typedef struct ckpt_plan_box {
    ckpt_box box;
    int32_t tensor; /* index row */
    int32_t rank;
    int64_t slot;   /* the sender's own numbering, for the assignment */
} ckpt_plan_box;

/* Plans the explicit tensors of ix from all their boxes (sorted in place): drops replicas (the
 * lowest rank writes), proves exact cover (errors name tensor, boxes and ranks as before:
 * "tensor 'w': box [0:3, 0:6] of rank 0 overlaps box [2:4, 0:6] of rank 1", "... cover 20 of its
 * 24 elements (a gap ...)"), and fills ix->rows and each explicit tensor's box count.
 * assign[k] receives, for the box whose slot is k, its row index within its tensor (= box
 * ordinal j) when that box's rank writes it, else -1 (a replica). */
int ckpt_plan_explicit(ckpt_index *ix, ckpt_plan_box *boxes, int64_t n, int64_t *assign);

/* ---- 4. assembly ---- */

/* Fills global box ids and the shared layout's checksum slots (first_piece, piece_stride; with
 * have_rows also the rows' relative slots and the explicit tensors' nslots, which are otherwise
 * already set from rank 0), then, with have_rows, validates the result (a plan that fails
 * validation is a bug: CKPT_ECORRUPT). */
int ckpt_plan_assemble(ckpt_index *ix, const char *path, int have_rows);

/* The compression description of the index ("none", "zstd:1+shuffle"). */
void ckpt_plan_compression(ckpt_index *ix, const ckpt_save_options *o);

#endif
