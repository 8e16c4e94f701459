/* save.c -- ckpt_save: the collective save (validate, plan, write, agree, commit). */
#include "ckpt.h"
#include "codec_zstd.h"
#include "comm.h"
#include "commit.h"
#include "io_shared.h"
#include "save_job.h"
#include "fault.h"
#include "gpu.h"
#include "strmap.h"
#include "dtype.h"
#include "error.h"
#include "io_group.h"
#include "io_per_rank.h"
#include "options.h"
#include "meta.h"
#include "piece.h"
#include "plan.h"
#include "state.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

/* The options every rank passed must be rank 0's: a save whose ranks disagree on the layout or
 * the piece size would wait forever in a collective. Names the first option that differs. */
static int agree_options(ckpt_save_job *j, const char *path)
{
    if (!j->c.active)
        return CKPT_OK;
    ckpt_save_options root = j->o;
    char rpath[4096];
    snprintf(rpath, sizeof rpath, "%s", path);
    int rc = MPI_Bcast(&root, (int)sizeof root, MPI_BYTE, 0, j->c.comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Bcast(rpath, (int)sizeof rpath, MPI_BYTE, 0, j->c.comm);
    if (rc != MPI_SUCCESS)
        return ckpt_comm_agree(&j->c, ckpt_error(CKPT_EMPI, "MPI_Bcast of the save options failed"));
    const ckpt_save_options *o = &j->o;
    const char *what = NULL;
    char mine[64] = "", theirs[64] = "";
#define DIFF(field, fmt, cast)                                                                                  \
    if (!what && o->field != root.field) {                                                                   \
        what = #field;                                                                                         \
        snprintf(mine, sizeof mine, fmt, (cast)o->field);                                                      \
        snprintf(theirs, sizeof theirs, fmt, (cast)root.field);                                                \
    }
    DIFF(layout, "%d", int)
    DIFF(overwrite, "%d", int)
    DIFF(fsync, "%d", int)
    DIFF(piece_bytes, "%lld", long long)
    DIFF(compress, "%d", int)
    DIFF(level, "%d", int)
    DIFF(shuffle, "%d", int)
    DIFF(threads, "%d", int)
    DIFF(group_size, "%d", int)
#undef DIFF
    if (what && !strcmp(what, "layout")) {
        snprintf(mine, sizeof mine, "%s", ckpt_layout_name(o->layout));
        snprintf(theirs, sizeof theirs, "%s", ckpt_layout_name(root.layout));
    }
    int st = CKPT_OK;
    if (!what && strcmp(rpath, path) != 0)
        st = ckpt_error(CKPT_EINVAL, "ckpt_save: this rank saves to '%s', rank 0 to '%s' (every rank must pass the "
                        "same path)", path, rpath);
    else if (what)
        st = ckpt_error(CKPT_EINVAL, "ckpt_save: save option %s is %s on this rank but %s on rank 0 (every rank must "
                        "pass the same options)", what, mine, theirs);
    return ckpt_comm_agree(&j->c, st);
}

int ckpt_save_prepare(ckpt_save_job *j, MPI_Comm comm, const char *path, const ckpt_state *state,
                      const ckpt_save_options *opts)
{
    memset(j, 0, sizeof *j);
    j->group = MPI_COMM_NULL;
    ckpt_error_clear();
    int rc = ckpt_comm_open(comm, &j->c);
    if (rc)
        return rc;
    /* 1. arguments and options, the same on every rank */
    if (!path || !path[0])
        rc = ckpt_error(CKPT_EINVAL, "ckpt_save: path is empty");
    else if (!state)
        rc = ckpt_error(CKPT_EINVAL, "ckpt_save: state is NULL");
    else
        rc = ckpt_save_options_copy(&j->o, opts);
    if ((rc = ckpt_comm_agree(&j->c, rc)) != CKPT_OK)
        return rc;
    if ((rc = agree_options(j, path)) != CKPT_OK)
        return rc;
    snprintf(j->path, sizeof j->path, "%s", path);
    /* 2. the plan */
    if ((rc = ckpt_save_plan(j, state)) != CKPT_OK)
        return rc;
    if ((rc = ckpt_comm_agree(&j->c, ckpt_state_copy_attrs(j->ix->attrs, state))) != CKPT_OK)
        return rc; /* rank 0's are written */
    /* 3. rank 0 creates the temporary directory; everyone learns its name */
    ckpt_wire tmp = {0};
    if (j->c.rank == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
        rc = ckpt_commit_prepare(path, j->o.overwrite, nonce, j->tmp, sizeof j->tmp);
        j->have_tmp = rc == CKPT_OK;
        ckpt_wire_str(&tmp, j->tmp);
    }
    rc = ckpt_comm_share_root(&j->c, rc); /* rank 0's verdict, as it said it */
    if (rc == CKPT_OK)
        rc = ckpt_comm_bcast(&j->c, &tmp);
    if (rc == CKPT_OK) {
        if (j->c.rank != 0) {
            snprintf(j->tmp, sizeof j->tmp, "%s", ckpt_wire_get_str(&tmp));
            if (tmp.failed)
                rc = ckpt_error(CKPT_ECORRUPT, "cannot decode the temporary directory's name");
        }
        rc = ckpt_comm_agree(&j->c, rc);
    }
    ckpt_wire_free(&tmp);
    if (rc) {
        if (j->c.rank == 0 && j->have_tmp)
            ckpt_remove_tree(j->tmp);
        j->have_tmp = 0;
    }
    return rc;
}

int ckpt_save_stage_device_item(ckpt_save_job *j, int64_t i)
{
    if (!j->device[i] || j->host_copy[i])
        return CKPT_OK;
    ckpt_write_item *it = &j->items[i];
    size_t n = (size_t)(ckpt_box_volume(&it->box) * (int64_t)ckpt_dtype_size(it->dtype));
    j->host_copy[i] = ckpt_gpu_host_alloc(n);
    if (!j->host_copy[i])
        return ckpt_error(CKPT_ENOMEM, "out of memory staging tensor '%s' from the GPU", it->tensor);
    int rc = ckpt_gpu_copy(j->host_copy[i], it->data, n);
    if (rc)
        return ckpt_error_prefix("tensor '%s': ", it->tensor);
    it->data = j->host_copy[i];
    return CKPT_OK;
}

int ckpt_save_stage_device(ckpt_save_job *j)
{
    for (int64_t i = 0; i < j->nitems; i++) {
        int rc = ckpt_save_stage_device_item(j, i);
        if (rc)
            return rc;
    }
    return CKPT_OK;
}

int ckpt_save_write_collective(ckpt_save_job *j)
{
    char fpath[4200], name[64];
    ckpt_io_codec codec = {j->o.compress, j->o.level, j->o.shuffle, j->o.threads};
    if (j->o.layout == CKPT_LAYOUT_GROUP) {
        ckpt_group_file_name(j->group_id, name, sizeof name);
        snprintf(fpath, sizeof fpath, "%s/%s", j->tmp, name);
        int64_t *gids = malloc(((size_t)j->nitems + 1) * sizeof *gids);
        int rc = gids ? CKPT_OK : ckpt_error(CKPT_ENOMEM, "out of memory writing '%s'", fpath);
        for (int64_t i = 0; gids && i < j->nitems; i++)
            gids[i] = strtoll(j->names[i] + strlen("/boxes/"), NULL, 10);
        /* staging failures must not keep a member from the group's collective calls: agree first */
        if (rc == CKPT_OK)
            rc = ckpt_save_stage_device(j);
        if (j->group != MPI_COMM_NULL) {
            int mine = rc != CKPT_OK, any = 0;
            MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, j->group);
            if (any && rc == CKPT_OK)
                rc = ckpt_error(CKPT_EIO, "another rank writing '%s' failed before the write", fpath);
        }
        if (rc == CKPT_OK)
            rc = ckpt_io_write_group(j->group != MPI_COMM_NULL ? j->group : MPI_COMM_SELF, fpath, j->items, gids,
                                     j->nitems, &codec, j->o.fsync);
        free(gids);
        return rc;
    }
    int rc = ckpt_path_join(fpath, sizeof fpath, j->tmp, CKPT_SHARED_FILE);
    /* collective: every rank takes part, even with nothing to write */
    if (rc == CKPT_OK)
        rc = ckpt_save_stage_device(j);
    if (j->c.active) {
        int mine = rc != CKPT_OK, any = 0;
        MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, j->c.comm);
        if (any && rc == CKPT_OK)
            rc = ckpt_error(CKPT_EIO, "another rank failed before the collective write of '%s'", fpath);
    }
    if (rc == CKPT_OK)
        rc = ckpt_io_write_shared(j->c.active ? j->c.comm : MPI_COMM_NULL, fpath, j->shared, j->nshared, j->items,
                                  j->item_tensor, j->item_round, j->nitems, j->nslots, &codec, j->o.fsync, j->stored);
    return rc;
}

void ckpt_save_rank_file(const ckpt_save_job *j, char *buf, size_t len)
{
    ckpt_rank_file_name(j->c.rank, buf, len);
}

static int write_per_rank(ckpt_save_job *j)
{
    if (j->nitems == 0)
        return CKPT_OK;
    char name[64];
    ckpt_save_rank_file(j, name, sizeof name);
    ckpt_io_codec codec = {j->o.compress, j->o.level, j->o.shuffle, j->o.threads};
    int rc = ckpt_save_stage_device(j);
    return rc ? rc : ckpt_io_write_rank_file(j->tmp, name, j->items, j->nitems, &codec, j->o.fsync);
}

int ckpt_save_finish(ckpt_save_job *j, int rc)
{
    if ((rc = ckpt_comm_agree(&j->c, rc)) != CKPT_OK)
        goto out;
    /* storage per tensor to rank 0 (the checksums stay in the data files) */
    int64_t T = j->ix->ntensors;
    if (j->o.layout != CKPT_LAYOUT_SHARED) {
        for (int64_t i = 0; i < j->nitems; i++)
            j->stored[j->item_tensor[i]] += j->items[i].stored_bytes;
        if (j->c.active && T > 0) {
            int mpi = MPI_Reduce(j->c.rank == 0 ? MPI_IN_PLACE : j->stored, j->stored, (int)T, MPI_INT64_T, MPI_SUM, 0,
                                 j->c.comm);
            rc = ckpt_comm_agree(&j->c, mpi == MPI_SUCCESS ? CKPT_OK
                                                           : ckpt_error(CKPT_EMPI, "MPI_Reduce of storage sizes failed"));
            if (rc)
                goto out;
        }
    }
    if (j->c.rank == 0) {
        char ipath[4096];
        for (int64_t t = 0; t < T; t++)
            j->ix->tensors[t].stored_bytes = j->stored[t];
        rc = ckpt_path_join(ipath, sizeof ipath, j->tmp, CKPT_INDEX_FILE);
        if (rc == CKPT_OK)
            rc = ckpt_index_write(j->ix, ipath);
        if (rc == CKPT_OK && ckpt_fault("commit"))
            rc = ckpt_error(CKPT_EIO, "injected fault before committing '%s' (CKPT_FAULT=commit)", j->path);
        if (rc == CKPT_OK)
            rc = ckpt_commit_finish(j->tmp, j->path, j->o.overwrite, j->o.fsync);
        if (rc == CKPT_OK)
            j->have_tmp = 0;
    }
    rc = ckpt_comm_share_root(&j->c, rc);
out:
    if (j->c.rank == 0 && j->have_tmp)
        ckpt_remove_tree(j->tmp);
    j->have_tmp = 0;
    return rc;
}

void ckpt_save_job_free(ckpt_save_job *j)
{
    for (int64_t i = 0; i < j->nitems; i++) {
        free(j->items[i].checksums);
        free((char *)j->items[i].tensor);
        ckpt_gpu_host_free(j->host_copy[i]);
    }
    free(j->device);
    free(j->host_copy);
    free(j->items);
    free(j->names);
    free(j->item_tensor);
    free(j->item_round);
    free(j->shared);
    free(j->stored);
    ckpt_index_free(j->ix);
    if (j->group != MPI_COMM_NULL)
        MPI_Comm_free(&j->group);
    ckpt_comm_close(&j->c);
    memset(j, 0, sizeof *j);
    j->group = MPI_COMM_NULL;
}

int ckpt_save(MPI_Comm comm, const char *path, const ckpt_state *state, const ckpt_save_options *opts)
{
    ckpt_save_job j;
    int rc = ckpt_save_prepare(&j, comm, path, state, opts);
    if (rc == CKPT_OK) {
        rc = j.o.layout == CKPT_LAYOUT_PER_RANK ? write_per_rank(&j) : ckpt_save_write_collective(&j);
        rc = ckpt_save_finish(&j, rc);
    }
    ckpt_save_job_free(&j);
    return rc;
}
