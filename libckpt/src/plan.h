/* plan.h -- save planning: check the declarations of all ranks against each other, check
 * that the boxes cover every tensor exactly once, drop replicas, assign writers, and lay out
 * the index. Pure computation on rank 0 over the gathered declarations: no MPI, no I/O. */
#ifndef CKPT_PLAN_H
#define CKPT_PLAN_H

#include "meta.h"
#include "state.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

/* Encodes what this rank holds (tensors and boxes of volume > 0, in state order). */
void ckpt_plan_encode_state(const ckpt_state *s, ckpt_wire *w);

/* Number of boxes ckpt_plan_encode_state sends for this state (the length of this rank's
 * assignment list). */
int64_t ckpt_plan_local_boxes(const ckpt_state *s);

/*
 * From the encodings of all nranks ranks (back to back in `all`, lengths in lens), fills
 * `ix` (tensors sorted by name, boxes grouped by tensor, writer/file/dataset/piece layout;
 * checksums left zero) and *assign: for each rank r, assign[assign_off[r] + k] is the global
 * box id that rank r writes for its k-th sent box, or -1 when another rank writes that
 * replica. assign_off has nranks+1 entries. Errors name tensor and ranks.
 */
int ckpt_plan_save(const unsigned char *all, const size_t *lens, int nranks, int64_t piece_bytes,
                   ckpt_index *ix, int64_t **assign, int64_t **assign_off);

/* Rewrites a planned index for the shared layout: one file (data.h5), every box's dataset the
 * tensor's global dataset /tensors/<name>. */
int ckpt_plan_use_shared_file(ckpt_index *ix);

/* The file name a rank writes in the file-per-rank layout. */
void ckpt_plan_rank_file(int rank, char *buf, size_t len);

#endif
