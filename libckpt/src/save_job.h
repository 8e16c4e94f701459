/* save_job.h -- a save split into its phases, shared by the synchronous ckpt_save and the
 * asynchronous saver: prepare (collective: check, plan, temporary directory, this rank's
 * items), write (this rank's data; collective only for the shared layout), finish (collective:
 * agree, checksums to rank 0, index, commit). */
#ifndef CKPT_SAVE_JOB_H
#define CKPT_SAVE_JOB_H

#include "comm.h"
#include "io_shared.h"
#include "meta.h"
#include "wire.h"

typedef struct ckpt_save_job {
    ckpt_comm c;
    ckpt_save_options o;
    char path[4096], tmp[4096];
    int have_tmp;                /* rank 0: tmp exists and must go on failure */
    ckpt_index *ix;              /* rank 0 */
    ckpt_wire plan;              /* broadcast plan (owns the shared tensors' names) */
    ckpt_shared_tensor *shared;  /* shared layout: every dataset */
    int64_t nshared;
    int64_t *stored;             /* shared layout, rank 0: storage per dataset */
    ckpt_write_item *items;      /* what this rank writes */
    int64_t nitems;
    char (*names)[32];
    int64_t *ids, *item_tensor;
    int *item_round;
    int *device;       /* item data is in GPU memory */
    void **host_copy;  /* host (pinned) copies of device items, owned */
} ckpt_save_job;

int ckpt_save_prepare(ckpt_save_job *j, MPI_Comm comm, const char *path, const ckpt_state *state,
                      const ckpt_save_options *opts);
/* Copies device-memory items to host buffers the job owns (synchronous writers). */
int ckpt_save_stage_device(ckpt_save_job *j);
int ckpt_save_stage_device_item(ckpt_save_job *j, int64_t i);
/* The shared-layout write (collective). */
int ckpt_save_write_shared(ckpt_save_job *j);
/* This rank's data file in the file-per-rank layout. */
void ckpt_save_rank_file(const ckpt_save_job *j, char *buf, size_t len);
/* Agrees on `rc` (this rank's write status) and commits; every rank returns the same status. */
int ckpt_save_finish(ckpt_save_job *j, int rc);
void ckpt_save_job_free(ckpt_save_job *j);

#endif
