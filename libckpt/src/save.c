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
#include "io_per_rank.h"
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

#define CKPT_MIN_PIECE_BYTES 64
#define CKPT_MAX_PIECE_BYTES (1LL << 30)

void ckpt_save_options_init(ckpt_save_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->version = CKPT_SAVE_OPTIONS_VERSION;
    o->layout = CKPT_LAYOUT_PER_RANK;
    o->overwrite = 0;
    o->fsync = 1;
    o->piece_bytes = 4 << 20;
    o->compress = CKPT_COMPRESS_NONE;
    o->level = 1;
    o->shuffle = 1;
    o->threads = 1;
}

static int check_args(const char *path, const ckpt_state *s, const ckpt_save_options *o)
{
    if (!path || !path[0])
        return ckpt_error(CKPT_EINVAL, "ckpt_save: path is empty");
    if (!s)
        return ckpt_error(CKPT_EINVAL, "ckpt_save: state is NULL");
    if (o->version != CKPT_SAVE_OPTIONS_VERSION)
        return ckpt_error(CKPT_EINVAL, "save options version %u; this library expects %d (call ckpt_save_options_init)",
                          o->version, CKPT_SAVE_OPTIONS_VERSION);
    if (o->layout != CKPT_LAYOUT_PER_RANK && o->layout != CKPT_LAYOUT_SHARED)
        return ckpt_error(CKPT_EINVAL, "unknown layout %d", (int)o->layout);
    if (o->compress != CKPT_COMPRESS_NONE && o->compress != CKPT_COMPRESS_ZSTD)
        return ckpt_error(CKPT_EINVAL, "unknown compression %d", (int)o->compress);
    if (o->compress == CKPT_COMPRESS_ZSTD && !ckpt_codec_zstd_level_valid(o->level))
        return ckpt_error(CKPT_EINVAL, "zstd level %d is outside %d..%d", o->level, ZSTD_minCLevel(), ZSTD_maxCLevel());
    if (o->threads < 1 || o->threads > 64)
        return ckpt_error(CKPT_EINVAL, "threads %d outside 1..64", o->threads);
    if (o->piece_bytes < CKPT_MIN_PIECE_BYTES || o->piece_bytes > CKPT_MAX_PIECE_BYTES)
        return ckpt_error(CKPT_EINVAL, "piece_bytes %lld outside %d..%lld", (long long)o->piece_bytes,
                          CKPT_MIN_PIECE_BYTES, (long long)CKPT_MAX_PIECE_BYTES);
    return CKPT_OK;
}

/* This rank's items: the boxes the plan assigned to it, pointing at the caller's memory. */
static int build_items(ckpt_save_job *j, const ckpt_state *s, const int64_t *assign)
{
    int64_t nlocal = ckpt_plan_local_boxes(s);
    j->items = calloc((size_t)nlocal + 1, sizeof *j->items);
    j->names = calloc((size_t)nlocal + 1, sizeof *j->names);
    j->ids = calloc((size_t)nlocal + 1, sizeof *j->ids);
    j->item_tensor = calloc((size_t)nlocal + 1, sizeof *j->item_tensor);
    j->item_round = calloc((size_t)nlocal + 1, sizeof *j->item_round);
    j->device = calloc((size_t)nlocal + 1, sizeof *j->device);
    j->host_copy = calloc((size_t)nlocal + 1, sizeof *j->host_copy);
    int *rounds = calloc((size_t)j->nshared + 1, sizeof *rounds);
    ckpt_strmap tindex = {0};
    int rc = CKPT_OK;
    for (int64_t t = 0; t < j->nshared && rc == CKPT_OK; t++)
        if (ckpt_strmap_put(&tindex, j->shared[t].name, t) != 0)
            rc = CKPT_ENOMEM;
    if (!j->items || !j->names || !j->ids || !j->item_tensor || !j->item_round || !j->device || !j->host_copy ||
        !rounds || rc) {
        rc = ckpt_error(CKPT_ENOMEM, "out of memory preparing the write");
        goto out;
    }
    int64_t k = 0;
    for (int i = 0; i < s->ntensors; i++) {
        const ckpt_stensor *t = &s->tensors[i];
        for (int64_t b = 0; b < t->nboxes; b++) {
            if (ckpt_box_volume(&t->boxes[b].box) == 0)
                continue;
            int64_t id = assign[k++];
            if (id < 0)
                continue;
            int64_t n = j->nitems;
            ckpt_write_item *it = &j->items[n];
            snprintf(j->names[n], sizeof j->names[n], "/boxes/%lld", (long long)id);
            j->ids[n] = id;
            if (j->shared) {
                j->item_tensor[n] = ckpt_strmap_get(&tindex, t->name);
                if (j->item_tensor[n] < 0) {
                    rc = ckpt_error(CKPT_ECORRUPT, "the save plan lacks tensor '%s'", t->name);
                    goto out;
                }
                j->item_round[n] = rounds[j->item_tensor[n]]++;
            }
            it->tensor = strdup(t->name); /* an async save outlives the caller's state */
            it->dataset = j->names[n];
            it->dtype = t->dtype;
            it->box = t->boxes[b].box;
            it->data = t->boxes[b].data;
            j->device[n] = ckpt_gpu_is_device(it->data);
            ckpt_pieces_of(t->ndim, it->box.ext, ckpt_dtype_size(t->dtype), j->o.piece_bytes, &it->pieces);
            it->checksums = calloc((size_t)it->pieces.count + 1, sizeof *it->checksums);
            j->nitems++;
            if (!it->checksums || !it->tensor) {
                rc = ckpt_error(CKPT_ENOMEM, "out of memory preparing the write");
                goto out;
            }
        }
    }
out:
    free(rounds);
    ckpt_strmap_free(&tindex);
    return rc;
}

/* Rank 0: the dataset list every rank needs for the collective shared-file write. */
static int encode_shared(const ckpt_index *ix, int64_t piece_bytes, ckpt_wire *w)
{
    int *count = calloc((size_t)ix->world_size + 1, sizeof *count);
    ckpt_box *boxes = calloc((size_t)ix->nboxes + 1, sizeof *boxes);
    if (!count || !boxes) {
        free(count);
        free(boxes);
        return ckpt_error(CKPT_ENOMEM, "out of memory planning the shared file");
    }
    ckpt_wire_i64(w, ix->ntensors);
    for (int64_t t = 0; t < ix->ntensors; t++) {
        const ckpt_itensor *it = &ix->tensors[t];
        int rounds = 0;
        memset(count, 0, (size_t)ix->world_size * sizeof *count);
        for (int64_t j = 0; j < it->nboxes; j++) {
            const ckpt_ibox *b = &ix->boxes[it->first_box + j];
            boxes[j] = b->box;
            if (++count[b->writer] > rounds)
                rounds = count[b->writer];
        }
        int64_t chunk[CKPT_MAX_NDIM] = {0};
        if (it->ndim > 0)
            ckpt_shared_chunk(it->ndim, it->shape, ckpt_dtype_size(it->dtype), boxes, it->nboxes, piece_bytes, chunk);
        ckpt_wire_str(w, it->name);
        ckpt_wire_i64(w, it->dtype);
        ckpt_wire_i64(w, it->ndim);
        for (int d = 0; d < it->ndim; d++) {
            ckpt_wire_i64(w, it->shape[d]);
            ckpt_wire_i64(w, chunk[d]);
        }
        ckpt_wire_i64(w, rounds);
    }
    free(count);
    free(boxes);
    return w->failed ? ckpt_error(CKPT_ENOMEM, "out of memory planning the shared file") : CKPT_OK;
}

static int decode_shared(ckpt_wire *w, ckpt_shared_tensor **out, int64_t *n)
{
    *n = ckpt_wire_get_i64(w);
    if (w->failed || *n < 0)
        return ckpt_error(CKPT_ECORRUPT, "cannot decode the shared-file plan");
    *out = calloc((size_t)*n + 1, sizeof **out);
    if (!*out)
        return ckpt_error(CKPT_ENOMEM, "out of memory decoding the shared-file plan");
    for (int64_t t = 0; t < *n && !w->failed; t++) {
        ckpt_shared_tensor *st = &(*out)[t];
        st->name = ckpt_wire_get_str(w);
        st->dtype = (ckpt_dtype)ckpt_wire_get_i64(w);
        st->ndim = (int)ckpt_wire_get_i64(w);
        if (st->ndim < 0 || st->ndim > CKPT_MAX_NDIM)
            w->failed = 1;
        for (int d = 0; d < st->ndim && !w->failed; d++) {
            st->shape[d] = ckpt_wire_get_i64(w);
            st->chunk[d] = ckpt_wire_get_i64(w);
        }
        st->rounds = (int)ckpt_wire_get_i64(w);
    }
    return w->failed ? ckpt_error(CKPT_ECORRUPT, "cannot decode the shared-file plan") : CKPT_OK;
}

/* Rank 0: fold every rank's checksums and sizes into the index. */
static int absorb_results(ckpt_index *ix, const unsigned char *all, const size_t *lens, int nranks)
{
    size_t pos = 0;
    for (int r = 0; r < nranks; r++) {
        ckpt_wire w;
        ckpt_wire_view(&w, all + pos, lens[r]);
        pos += lens[r];
        int64_t n = ckpt_wire_get_i64(&w);
        for (int64_t i = 0; i < n && !w.failed; i++) {
            int64_t id = ckpt_wire_get_i64(&w), stored = ckpt_wire_get_i64(&w), cnt = ckpt_wire_get_i64(&w);
            if (w.failed || id < 0 || id >= ix->nboxes || ix->boxes[id].writer != r || cnt != ix->boxes[id].npieces) {
                w.failed = 1;
                break;
            }
            ckpt_ibox *b = &ix->boxes[id];
            b->stored_bytes = stored;
            ix->tensors[b->tensor].stored_bytes += stored;
            ckpt_wire_get_bytes(&w, ix->checksums + b->first_piece, (size_t)cnt * sizeof(uint64_t));
        }
        if (w.failed)
            return ckpt_error(CKPT_ECORRUPT, "write results received from rank %d are malformed", r);
    }
    return CKPT_OK;
}


int ckpt_save_prepare(ckpt_save_job *j, MPI_Comm comm, const char *path, const ckpt_state *state,
                      const ckpt_save_options *opts)
{
    memset(j, 0, sizeof *j);
    ckpt_error_clear();
    if (opts)
        j->o = *opts;
    else
        ckpt_save_options_init(&j->o);
    int rc = ckpt_comm_open(comm, &j->c);
    if (rc)
        return rc;
    ckpt_wire decl = {0};
    unsigned char *all = NULL;
    size_t *lens = NULL;
    int64_t *assign = NULL, *assign_off = NULL;

    /* 1. arguments, then every rank's declarations to rank 0 */
    rc = ckpt_comm_agree(&j->c, check_args(path, state, &j->o));
    if (rc)
        goto out;
    snprintf(j->path, sizeof j->path, "%s", path);
    ckpt_plan_encode_state(state, &decl);
    rc = decl.failed ? ckpt_error(CKPT_ENOMEM, "out of memory encoding the state") : CKPT_OK;
    if ((rc = ckpt_comm_agree(&j->c, rc)) != CKPT_OK)
        goto out;
    if ((rc = ckpt_comm_gather(&j->c, &decl, &all, &lens)) != CKPT_OK)
        goto out;

    /* 2. rank 0 plans and creates the temporary directory; everyone learns the verdict */
    if (j->c.rank == 0) {
        rc = ckpt_index_new(&j->ix);
        if (rc == CKPT_OK)
            rc = ckpt_plan_save(all, lens, j->c.size, j->o.piece_bytes, j->ix, &assign, &assign_off);
        if (rc == CKPT_OK)
            rc = ckpt_state_copy_attrs(j->ix->attrs, state);
        if (rc == CKPT_OK && j->o.layout == CKPT_LAYOUT_SHARED)
            rc = ckpt_plan_use_shared_file(j->ix);
        if (rc == CKPT_OK) {
            if (j->o.compress == CKPT_COMPRESS_ZSTD)
                snprintf(j->ix->compression, sizeof j->ix->compression, "zstd:%d%s", j->o.level,
                         j->o.shuffle ? "+shuffle" : "");
            else
                snprintf(j->ix->compression, sizeof j->ix->compression, "none");
        }
        if (rc == CKPT_OK) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
            rc = ckpt_commit_prepare(path, j->o.overwrite, nonce, j->tmp, sizeof j->tmp);
            j->have_tmp = rc == CKPT_OK;
        }
        if (rc == CKPT_OK) {
            ckpt_wire_str(&j->plan, j->tmp);
            for (int r = 0; r <= j->c.size; r++)
                ckpt_wire_i64(&j->plan, assign_off[r]);
            ckpt_wire_bytes(&j->plan, assign, (size_t)assign_off[j->c.size] * sizeof *assign);
            if (j->o.layout == CKPT_LAYOUT_SHARED)
                rc = encode_shared(j->ix, j->o.piece_bytes, &j->plan);
            if (rc == CKPT_OK && j->plan.failed)
                rc = ckpt_error(CKPT_ENOMEM, "out of memory encoding the plan");
        }
    }
    free(all);
    free(lens);
    all = NULL;
    lens = NULL;
    if ((rc = ckpt_comm_share_root(&j->c, rc)) != CKPT_OK)
        goto out;
    if ((rc = ckpt_comm_bcast(&j->c, &j->plan)) != CKPT_OK)
        goto out;

    /* 3. every rank decodes its assignment and lists what it writes */
    {
        const char *t = ckpt_wire_get_str(&j->plan);
        if (j->c.rank != 0)
            snprintf(j->tmp, sizeof j->tmp, "%s", t);
        int64_t off_me = 0, off_next = 0, total = 0;
        for (int r = 0; r <= j->c.size; r++) {
            int64_t v = ckpt_wire_get_i64(&j->plan);
            if (r == j->c.rank)
                off_me = v;
            if (r == j->c.rank + 1)
                off_next = v;
            if (r == j->c.size)
                total = v; /* all ranks' assignments: where the shared-file plan starts */
        }
        size_t assign_pos = j->plan.pos;
        int64_t *mine = malloc((size_t)(off_next - off_me + 1) * sizeof *mine);
        if (!mine || j->plan.failed || off_next - off_me != ckpt_plan_local_boxes(state) || total < 0) {
            rc = ckpt_error(j->plan.failed || mine ? CKPT_ECORRUPT : CKPT_ENOMEM, "cannot decode the save plan");
        } else {
            j->plan.pos = assign_pos + (size_t)off_me * sizeof(int64_t);
            ckpt_wire_get_bytes(&j->plan, mine, (size_t)(off_next - off_me) * sizeof *mine);
            j->plan.pos = assign_pos + (size_t)total * sizeof(int64_t);
            if (j->plan.failed)
                rc = ckpt_error(CKPT_ECORRUPT, "cannot decode the save plan");
            else if (j->o.layout == CKPT_LAYOUT_SHARED)
                rc = decode_shared(&j->plan, &j->shared, &j->nshared);
            if (rc == CKPT_OK) {
                j->stored = calloc((size_t)j->nshared + 1, sizeof *j->stored);
                rc = j->stored ? build_items(j, state, mine) : ckpt_error(CKPT_ENOMEM, "out of memory");
            }
        }
        free(mine);
    }
    rc = ckpt_comm_agree(&j->c, rc);
out:
    free(all);
    free(lens);
    free(assign);
    free(assign_off);
    ckpt_wire_free(&decl);
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

int ckpt_save_write_shared(ckpt_save_job *j)
{
    char fpath[4096];
    ckpt_io_codec codec = {j->o.compress, j->o.level, j->o.shuffle, j->o.threads};
    int rc = ckpt_path_join(fpath, sizeof fpath, j->tmp, CKPT_SHARED_FILE);
    /* collective: every rank takes part, even with nothing to write */
    if (rc == CKPT_OK)
        rc = ckpt_save_stage_device(j);
    if (rc == CKPT_OK)
        rc = ckpt_io_write_shared(j->c.active ? j->c.comm : MPI_COMM_NULL, fpath, j->shared, j->nshared, j->items,
                                  j->item_tensor, j->item_round, j->nitems, &codec, j->o.fsync, j->stored);
    return rc;
}

void ckpt_save_rank_file(const ckpt_save_job *j, char *buf, size_t len)
{
    char file[64];
    ckpt_plan_rank_file(j->c.rank, file, sizeof file);
    snprintf(buf, len, "%s/%s", j->tmp, file);
}

static int write_per_rank(ckpt_save_job *j)
{
    if (j->nitems == 0)
        return CKPT_OK;
    char fpath[4200];
    ckpt_save_rank_file(j, fpath, sizeof fpath);
    ckpt_io_codec codec = {j->o.compress, j->o.level, j->o.shuffle, j->o.threads};
    int rc = ckpt_save_stage_device(j);
    return rc ? rc : ckpt_io_write_rank_file(fpath, j->items, j->nitems, &codec, j->o.fsync);
}

int ckpt_save_finish(ckpt_save_job *j, int rc)
{
    ckpt_wire result = {0};
    unsigned char *all = NULL;
    size_t *lens = NULL;
    if (rc == CKPT_OK) {
        ckpt_wire_i64(&result, j->nitems);
        for (int64_t i = 0; i < j->nitems; i++) {
            const ckpt_write_item *it = &j->items[i];
            ckpt_wire_i64(&result, j->ids[i]);
            ckpt_wire_i64(&result, it->stored_bytes);
            ckpt_wire_i64(&result, it->pieces.count);
            ckpt_wire_bytes(&result, it->checksums, (size_t)it->pieces.count * sizeof(uint64_t));
        }
        if (result.failed)
            rc = ckpt_error(CKPT_ENOMEM, "out of memory encoding write results");
    }
    if ((rc = ckpt_comm_agree(&j->c, rc)) != CKPT_OK)
        goto out;
    /* checksums to rank 0, which writes the index and commits */
    if ((rc = ckpt_comm_gather(&j->c, &result, &all, &lens)) != CKPT_OK)
        goto out;
    if (j->c.rank == 0) {
        char ipath[4096];
        rc = absorb_results(j->ix, all, lens, j->c.size);
        if (rc == CKPT_OK && j->o.layout == CKPT_LAYOUT_SHARED)
            for (int64_t t = 0; t < j->ix->ntensors; t++)
                j->ix->tensors[t].stored_bytes = j->stored[t];
        if (rc == CKPT_OK)
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
    free(all);
    free(lens);
    ckpt_wire_free(&result);
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
    free(j->ids);
    free(j->item_tensor);
    free(j->item_round);
    free(j->shared);
    free(j->stored);
    ckpt_wire_free(&j->plan);
    ckpt_index_free(j->ix);
    ckpt_comm_close(&j->c);
    memset(j, 0, sizeof *j);
}

int ckpt_save(MPI_Comm comm, const char *path, const ckpt_state *state, const ckpt_save_options *opts)
{
    ckpt_save_job j;
    int rc = ckpt_save_prepare(&j, comm, path, state, opts);
    if (rc == CKPT_OK) {
        rc = j.o.layout == CKPT_LAYOUT_SHARED ? ckpt_save_write_shared(&j) : write_per_rank(&j);
        rc = ckpt_save_finish(&j, rc);
    }
    ckpt_save_job_free(&j);
    return rc;
}
