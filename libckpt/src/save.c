/* save.c -- ckpt_save: the collective save (validate, plan, write, agree, commit). */
#include "ckpt.h"
#include "codec_zstd.h"
#include "comm.h"
#include "commit.h"
#include "io_shared.h"
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

/* This rank's part of the write: the boxes the plan assigned to it. */
static int write_local(const ckpt_comm *c, const char *tmp, const ckpt_state *s, const int64_t *assign,
                       const ckpt_save_options *o, const ckpt_shared_tensor *shared, int64_t nshared,
                       int64_t *stored, ckpt_wire *result)
{
    int64_t nlocal = ckpt_plan_local_boxes(s), nitems = 0;
    ckpt_write_item *items = calloc((size_t)nlocal + 1, sizeof *items);
    char (*names)[32] = calloc((size_t)nlocal + 1, sizeof *names);
    int64_t *ids = calloc((size_t)nlocal + 1, sizeof *ids), *item_tensor = calloc((size_t)nlocal + 1, sizeof *item_tensor);
    int *item_round = calloc((size_t)nlocal + 1, sizeof *item_round), *rounds = calloc((size_t)nshared + 1, sizeof *rounds);
    ckpt_strmap tindex = {0};
    ckpt_io_codec codec = {o->compress, o->level, o->shuffle, o->threads};
    int rc = CKPT_OK;
    for (int64_t t = 0; t < nshared; t++)
        if (ckpt_strmap_put(&tindex, shared[t].name, t) != 0)
            rc = CKPT_ENOMEM;
    if (!items || !names || !ids || !item_tensor || !item_round || !rounds || rc) {
        rc = ckpt_error(CKPT_ENOMEM, "out of memory preparing the write");
        goto out;
    }
    int64_t k = 0;
    for (int i = 0; i < s->ntensors; i++) {
        const ckpt_stensor *t = &s->tensors[i];
        for (int64_t j = 0; j < t->nboxes; j++) {
            if (ckpt_box_volume(&t->boxes[j].box) == 0)
                continue;
            int64_t id = assign[k++];
            if (id < 0)
                continue;
            ckpt_write_item *it = &items[nitems];
            snprintf(names[nitems], sizeof names[nitems], "/boxes/%lld", (long long)id);
            ids[nitems] = id;
            if (shared) {
                item_tensor[nitems] = ckpt_strmap_get(&tindex, t->name);
                if (item_tensor[nitems] < 0) {
                    rc = ckpt_error(CKPT_ECORRUPT, "the save plan lacks tensor '%s'", t->name);
                    goto out;
                }
                item_round[nitems] = rounds[item_tensor[nitems]]++;
            }
            it->tensor = t->name;
            it->dataset = names[nitems];
            it->dtype = t->dtype;
            it->box = t->boxes[j].box;
            it->data = t->boxes[j].data;
            ckpt_pieces_of(t->ndim, it->box.ext, ckpt_dtype_size(t->dtype), o->piece_bytes, &it->pieces);
            it->checksums = calloc((size_t)it->pieces.count + 1, sizeof *it->checksums);
            nitems++;
            if (!it->checksums) {
                rc = ckpt_error(CKPT_ENOMEM, "out of memory preparing the write");
                goto out;
            }
        }
    }
    if (shared) {
        /* collective: every rank takes part, even with nothing to write */
        char fpath[4096];
        if ((rc = ckpt_path_join(fpath, sizeof fpath, tmp, CKPT_SHARED_FILE)) != CKPT_OK)
            goto out;
        rc = ckpt_io_write_shared(c->active ? c->comm : MPI_COMM_NULL, fpath, shared, nshared, items, item_tensor,
                                  item_round, nitems, &codec, o->fsync, stored);
        if (rc)
            goto out;
    } else if (nitems > 0) {
        char file[64], fpath[4096];
        ckpt_plan_rank_file(c->rank, file, sizeof file);
        if ((rc = ckpt_path_join(fpath, sizeof fpath, tmp, file)) != CKPT_OK)
            goto out;
        rc = ckpt_io_write_rank_file(fpath, items, nitems, &codec, o->fsync);
        if (rc)
            goto out;
    }
    ckpt_wire_i64(result, nitems);
    for (int64_t i = 0; i < nitems; i++) {
        const ckpt_write_item *it = &items[i];
        ckpt_wire_i64(result, ids[i]);
        ckpt_wire_i64(result, it->stored_bytes);
        ckpt_wire_i64(result, it->pieces.count);
        ckpt_wire_bytes(result, it->checksums, (size_t)it->pieces.count * sizeof(uint64_t));
    }
    if (result->failed)
        rc = ckpt_error(CKPT_ENOMEM, "out of memory encoding write results");
out:
    if (items)
        for (int64_t i = 0; i < nitems; i++)
            free(items[i].checksums);
    free(items);
    free(names);
    free(ids);
    free(item_tensor);
    free(item_round);
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

int ckpt_save(MPI_Comm comm, const char *path, const ckpt_state *state, const ckpt_save_options *opts)
{
    ckpt_error_clear();
    ckpt_save_options defaults;
    ckpt_save_options_init(&defaults);
    if (!opts)
        opts = &defaults;
    ckpt_comm c;
    int rc = ckpt_comm_open(comm, &c);
    if (rc)
        return rc;
    ckpt_index *ix = NULL;
    ckpt_wire decl = {0}, plan = {0}, result = {0};
    unsigned char *all = NULL;
    size_t *lens = NULL;
    int64_t *assign = NULL, *assign_off = NULL, *stored = NULL;
    char tmp[4096] = "";
    int have_tmp = 0;

    /* 1. arguments, then every rank's declarations to rank 0 */
    rc = ckpt_comm_agree(&c, check_args(path, state, opts));
    if (rc)
        goto out;
    ckpt_plan_encode_state(state, &decl);
    rc = decl.failed ? ckpt_error(CKPT_ENOMEM, "out of memory encoding the state") : CKPT_OK;
    if ((rc = ckpt_comm_agree(&c, rc)) != CKPT_OK)
        goto out;
    if ((rc = ckpt_comm_gather(&c, &decl, &all, &lens)) != CKPT_OK)
        goto out;

    /* 2. rank 0 plans and creates the temporary directory; everyone learns the verdict */
    if (c.rank == 0) {
        rc = ckpt_index_new(&ix);
        if (rc == CKPT_OK)
            rc = ckpt_plan_save(all, lens, c.size, opts->piece_bytes, ix, &assign, &assign_off);
        if (rc == CKPT_OK)
            rc = ckpt_state_copy_attrs(ix->attrs, state);
        if (rc == CKPT_OK && opts->layout == CKPT_LAYOUT_SHARED)
            rc = ckpt_plan_use_shared_file(ix);
        if (rc == CKPT_OK) {
            if (opts->compress == CKPT_COMPRESS_ZSTD)
                snprintf(ix->compression, sizeof ix->compression, "zstd:%d%s", opts->level,
                         opts->shuffle ? "+shuffle" : "");
            else
                snprintf(ix->compression, sizeof ix->compression, "none");
        }
        if (rc == CKPT_OK) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
            rc = ckpt_commit_prepare(path, opts->overwrite, nonce, tmp, sizeof tmp);
            have_tmp = rc == CKPT_OK;
        }
        if (rc == CKPT_OK) {
            ckpt_wire_str(&plan, tmp);
            for (int r = 0; r <= c.size; r++)
                ckpt_wire_i64(&plan, assign_off[r]);
            ckpt_wire_bytes(&plan, assign, (size_t)assign_off[c.size] * sizeof *assign);
            if (opts->layout == CKPT_LAYOUT_SHARED)
                rc = encode_shared(ix, opts->piece_bytes, &plan);
            if (rc == CKPT_OK && plan.failed)
                rc = ckpt_error(CKPT_ENOMEM, "out of memory encoding the plan");
        }
    }
    free(all);
    free(lens);
    all = NULL;
    lens = NULL;
    if ((rc = ckpt_comm_share_root(&c, rc)) != CKPT_OK)
        goto out;
    if ((rc = ckpt_comm_bcast(&c, &plan)) != CKPT_OK)
        goto out;

    /* 3. every rank writes its boxes */
    {
        const char *t = ckpt_wire_get_str(&plan);
        if (c.rank != 0)
            snprintf(tmp, sizeof tmp, "%s", t);
        int64_t off_me = 0, off_next = 0, total = 0;
        for (int r = 0; r <= c.size; r++) {
            int64_t v = ckpt_wire_get_i64(&plan);
            if (r == c.rank)
                off_me = v;
            if (r == c.rank + 1)
                off_next = v;
            if (r == c.size)
                total = v; /* all ranks' assignments: where the shared-file plan starts */
        }
        size_t assign_pos = plan.pos;
        int64_t *mine = malloc((size_t)(off_next - off_me + 1) * sizeof *mine);
        ckpt_shared_tensor *shared = NULL;
        int64_t nshared = 0;
        if (!mine || plan.failed || off_next - off_me != ckpt_plan_local_boxes(state) || total < 0) {
            rc = ckpt_error(plan.failed || mine ? CKPT_ECORRUPT : CKPT_ENOMEM, "cannot decode the save plan");
        } else {
            plan.pos = assign_pos + (size_t)off_me * sizeof(int64_t);
            ckpt_wire_get_bytes(&plan, mine, (size_t)(off_next - off_me) * sizeof *mine);
            plan.pos = assign_pos + (size_t)total * sizeof(int64_t);
            if (plan.failed)
                rc = ckpt_error(CKPT_ECORRUPT, "cannot decode the save plan");
            else if (opts->layout == CKPT_LAYOUT_SHARED)
                rc = decode_shared(&plan, &shared, &nshared);
            if (rc == CKPT_OK) {
                stored = calloc((size_t)nshared + 1, sizeof *stored);
                rc = stored ? write_local(&c, tmp, state, mine, opts, shared, nshared, stored, &result)
                            : ckpt_error(CKPT_ENOMEM, "out of memory");
            }
        }
        free(shared);
        free(mine);
    }
    if ((rc = ckpt_comm_agree(&c, rc)) != CKPT_OK)
        goto out;

    /* 4. checksums to rank 0, which writes the index and commits */
    if ((rc = ckpt_comm_gather(&c, &result, &all, &lens)) != CKPT_OK)
        goto out;
    if (c.rank == 0) {
        char ipath[4096];
        rc = absorb_results(ix, all, lens, c.size);
        if (opts->layout == CKPT_LAYOUT_SHARED)
            for (int64_t t = 0; t < ix->ntensors; t++)
                ix->tensors[t].stored_bytes = stored[t];
        if (rc == CKPT_OK)
            rc = ckpt_path_join(ipath, sizeof ipath, tmp, CKPT_INDEX_FILE);
        if (rc == CKPT_OK)
            rc = ckpt_index_write(ix, ipath);
        if (rc == CKPT_OK)
            rc = ckpt_commit_finish(tmp, path, opts->overwrite, opts->fsync);
        if (rc == CKPT_OK)
            have_tmp = 0;
    }
    rc = ckpt_comm_share_root(&c, rc);

out:
    if (c.rank == 0 && have_tmp)
        ckpt_remove_tree(tmp);
    free(all);
    free(lens);
    free(assign);
    free(assign_off);
    free(stored);
    ckpt_wire_free(&decl);
    ckpt_wire_free(&plan);
    ckpt_wire_free(&result);
    ckpt_index_free(ix);
    ckpt_comm_close(&c);
    return rc;
}
