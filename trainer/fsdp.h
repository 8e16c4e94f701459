/* fsdp: the fully-sharded forward / backward of the GPT model over shard.h storage.
 *
 * One step of one micro-batch (what fsdp_forward_backward does), per unit in model order:
 *   forward:  gather(unit 0)   -> embed_buf; embed forward     (embed_buf stays: the LM head is tied to wte)
 *             gather(unit 1+l) -> unit_buf;  block l forward    (unit_buf reused by the next unit)
 *             gather(unit L+1) -> unit_buf;  head forward (lnf + wte from embed_buf) -> per-token losses
 *   backward: head backward (unit_buf still holds lnf) -> dlnf in unit_grad, dwte into embed_grad;
 *                reduce-scatter(unit L+1)
 *             gather(unit 1+l) again -> unit_buf; block l backward -> unit_grad; reduce-scatter(unit 1+l)
 *             embed backward -> embed_grad (+= onto the head's dwte); reduce-scatter(unit 0)
 * Reduce-scatters ADD into the sharded grads (the loop zeroes them once per optimizer step, so
 * micro-batches accumulate). Gathered memory: embed_buf + embed_grad (unit 0, for the tied head) plus
 * unit_buf + unit_grad (the largest other unit) plus shard staging -- independent of L.
 *
 * A rank whose micro-batch is empty (B == 0: more ranks than sequences) runs every collective and no
 * compute, so all ranks stay in step. */
#ifndef TRAINER_FSDP_H
#define TRAINER_FSDP_H

#include <stdint.h>

#include "comm.h"
#include "gpt.h"
#include "shard.h"

typedef struct fsdp {
    shard_model *s;
    comm *c;
    gpt_config cfg;
    gpt_acts *acts;       /* NULL when max_B == 0 */
    int max_B, T;
    float *unit_buf;      /* gathered params of the current unit (units 1..L+1) */
    float *unit_grad;     /* full gradient of the current unit */
    float *embed_buf;     /* gathered unit 0 (wte, wpe) */
    float *embed_grad;    /* full gradient of unit 0 */
    double compute_s;     /* time in model compute */
} fsdp;

/* Activations sized for micro-batches of up to max_B sequences of T tokens (max_B may be 0). */
fsdp *fsdp_create(shard_model *s, comm *c, int max_B, int T);
void fsdp_free(fsdp *f);

/* Forward + backward of this rank's B sequences (B <= max_B, may be 0), loss normalised by
 * global_tokens (target tokens of the whole global batch, over all ranks and micro-batches). Adds the
 * reduced gradients to s->grads; *loss_sum += sum of this rank's per-token losses (unnormalised).
 * Returns 0, -1 (communication failed: comm_errmsg) or -2 (the model refused the batch). */
int fsdp_forward_backward(fsdp *f, const int32_t *tokens, const int32_t *targets, int B, double global_tokens,
                          double *loss_sum);

/* Forward only with targets (evaluation): *loss_sum += sum of per-token losses. Same codes. */
int fsdp_forward_loss(fsdp *f, const int32_t *tokens, const int32_t *targets, int B, double *loss_sum);

/* Forward without targets of one sequence of T tokens (1 <= T <= max_seq); the logits of its last
 * position are copied to logits (V). Every rank must call it (the gathers are collective); only ranks
 * with compute != 0 run the model. Same codes. Needs max_B >= 1 on computing ranks. */
int fsdp_last_logits(fsdp *f, const int32_t *tokens, int T, int compute, float *logits);

/* Bytes of the gathered-unit buffers and shard staging on this rank (activations not included). */
int64_t fsdp_gathered_bytes(const fsdp *f);
/* Bytes of activations + backward workspace on this rank. */
int64_t fsdp_activation_bytes(const fsdp *f);

#endif /* TRAINER_FSDP_H */
