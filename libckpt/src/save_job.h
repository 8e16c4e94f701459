/* save_job.h -- a save split into its phases, shared by the synchronous ckpt_save and the
 * asynchronous saver: prepare (collective: options agreed, plan, temporary directory, this
 * rank's items), write (this rank's data; collective for the shared and file-per-group layouts),
 * finish (collective: agree, sizes to rank 0, index, commit). */
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
    ckpt_index *ix;              /* every rank: tensors and their sharding; rank 0 also the explicit rows */
    ckpt_shared_tensor *shared;  /* shared layout: every dataset */
    int64_t nshared;
    int64_t nslots;              /* shared layout: checksum slots of the file */
    int64_t *stored;             /* per tensor: storage of what this rank wrote (shared: rank 0, every dataset) */
    ckpt_write_item *items;      /* what this rank writes */
    int64_t nitems;
    char (*names)[32];
    int64_t *item_tensor;
    int *item_round;
    int *device;       /* item data is in GPU memory */
    void **host_copy;  /* host (pinned) copies of device items, owned */
    /* file-per-group layout */
    MPI_Comm group;    /* the ranks sharing this rank's file */
    int64_t group_id;
} ckpt_save_job;

/* Collective planning of a save (save_plan.c): fills j->ix (every rank) and this rank's items. */
int ckpt_save_plan(ckpt_save_job *j, const ckpt_state *state);

int ckpt_save_prepare(ckpt_save_job *j, MPI_Comm comm, const char *path, const ckpt_state *state,
                      const ckpt_save_options *opts);
/* Copies device-memory items to host buffers the job owns (synchronous writers). */
int ckpt_save_stage_device(ckpt_save_job *j);
int ckpt_save_stage_device_item(ckpt_save_job *j, int64_t i);
/* The collective writes of the shared and file-per-group layouts. */
int ckpt_save_write_collective(ckpt_save_job *j);
/* The name of this rank's data file in the file-per-rank layout (inside j->tmp). */
void ckpt_save_rank_file(const ckpt_save_job *j, char *buf, size_t len);
/* Agrees on `rc` (this rank's write status) and commits; every rank returns the same status. */
int ckpt_save_finish(ckpt_save_job *j, int rc);
void ckpt_save_job_free(ckpt_save_job *j);

#endif
