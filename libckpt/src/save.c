/* save.c -- ckpt_save: the collective save (validate, plan, write, agree, commit). */
#include "ckpt.h"
#include "comm.h"
#include "commit.h"
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
    if (o->layout != CKPT_LAYOUT_PER_RANK)
        return ckpt_error(CKPT_EINVAL, "unknown layout %d", (int)o->layout);
    if (o->piece_bytes < CKPT_MIN_PIECE_BYTES || o->piece_bytes > CKPT_MAX_PIECE_BYTES)
        return ckpt_error(CKPT_EINVAL, "piece_bytes %lld outside %d..%lld", (long long)o->piece_bytes,
                          CKPT_MIN_PIECE_BYTES, (long long)CKPT_MAX_PIECE_BYTES);
    return CKPT_OK;
}

/* This rank's part of the write: the boxes the plan assigned to it. */
static int write_local(const ckpt_comm *c, const char *tmp, const ckpt_state *s, const int64_t *assign,
                       const ckpt_save_options *o, ckpt_wire *result)
{
    int64_t nlocal = ckpt_plan_local_boxes(s), nitems = 0;
    ckpt_write_item *items = calloc((size_t)nlocal + 1, sizeof *items);
    char (*names)[32] = calloc((size_t)nlocal + 1, sizeof *names);
    int rc = CKPT_OK;
    if (!items || !names) {
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
    if (nitems > 0) {
        char file[64], fpath[4096];
        ckpt_plan_rank_file(c->rank, file, sizeof file);
        if ((rc = ckpt_path_join(fpath, sizeof fpath, tmp, file)) != CKPT_OK)
            goto out;
        rc = ckpt_io_write_rank_file(fpath, items, nitems, o->fsync);
        if (rc)
            goto out;
    }
    ckpt_wire_i64(result, nitems);
    for (int64_t i = 0; i < nitems; i++) {
        const ckpt_write_item *it = &items[i];
        ckpt_wire_i64(result, strtoll(it->dataset + 7, NULL, 10));
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
    return rc;
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
    int64_t *assign = NULL, *assign_off = NULL;
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
            if (plan.failed)
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
        int64_t off_me = 0, off_next = 0;
        for (int r = 0; r <= c.size; r++) {
            int64_t v = ckpt_wire_get_i64(&plan);
            if (r == c.rank)
                off_me = v;
            if (r == c.rank + 1)
                off_next = v;
        }
        int64_t total_prefix = off_me;
        int64_t *mine = malloc((size_t)(off_next - off_me + 1) * sizeof *mine);
        if (!mine || plan.failed || off_next - off_me != ckpt_plan_local_boxes(state)) {
            rc = ckpt_error(plan.failed || mine ? CKPT_ECORRUPT : CKPT_ENOMEM, "cannot decode the save plan");
        } else {
            plan.pos += (size_t)total_prefix * sizeof(int64_t);
            ckpt_wire_get_bytes(&plan, mine, (size_t)(off_next - off_me) * sizeof *mine);
            rc = plan.failed ? ckpt_error(CKPT_ECORRUPT, "cannot decode the save plan")
                             : write_local(&c, tmp, state, mine, opts, &result);
        }
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
    ckpt_wire_free(&decl);
    ckpt_wire_free(&plan);
    ckpt_wire_free(&result);
    ckpt_index_free(ix);
    ckpt_comm_close(&c);
    return rc;
}
