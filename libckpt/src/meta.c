/* meta.c -- the index in memory: box resolution, region queries, file naming, validation. */
#include "meta.h"
#include "dtype.h"
#include "error.h"
#include "name.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ckpt_layout_name(ckpt_layout l)
{
    switch (l) {
    case CKPT_LAYOUT_PER_RANK: return "file-per-rank";
    case CKPT_LAYOUT_SHARED: return "shared";
    case CKPT_LAYOUT_GROUP: return "file-per-group";
    default: return "?";
    }
}

void ckpt_rank_file_name(int64_t rank, char *buf, size_t len) { snprintf(buf, len, "rank-%05" PRId64 ".h5", rank); }
void ckpt_group_file_name(int64_t group, char *buf, size_t len) { snprintf(buf, len, "group-%05" PRId64 ".h5", group); }
void ckpt_shared_dataset(const char *name, char *buf, size_t len) { snprintf(buf, len, "/tensors/%s", name); }

int ckpt_index_new(ckpt_index **out)
{
    ckpt_index *ix = calloc(1, sizeof *ix);
    if (!ix || ckpt_state_create(&ix->attrs) != CKPT_OK) {
        free(ix);
        return ckpt_error(CKPT_ENOMEM, "out of memory creating an index");
    }
    ix->format_version = CKPT_FORMAT_VERSION;
    snprintf(ix->library_version, sizeof ix->library_version, "%s", CKPT_VERSION_STRING);
    snprintf(ix->compression, sizeof ix->compression, "none");
    *out = ix;
    return CKPT_OK;
}

void ckpt_index_free(ckpt_index *ix)
{
    if (!ix)
        return;
    for (int i = 0; i < ix->nfiles; i++)
        free(ix->files[i]);
    free(ix->files);
    for (int64_t i = 0; i < ix->ntensors; i++) {
        free(ix->tensors[i].name);
        if (ix->tensors[i].finder) {
            ckpt_box_finder_free(ix->tensors[i].finder);
            free(ix->tensors[i].finder);
        }
    }
    free(ix->tensors);
    for (int64_t i = 0; i < ix->nrows; i++)
        free(ix->rows[i].dataset);
    free(ix->rows);
    free(ix->groups);
    free(ix->checksums);
    ckpt_state_free(ix->attrs);
    ckpt_strmap_free(&ix->by_name);
    free(ix);
}

int ckpt_index_build_lookup(ckpt_index *ix)
{
    ckpt_strmap_free(&ix->by_name);
    for (int64_t i = 0; i < ix->ntensors; i++) {
        if (ckpt_strmap_get(&ix->by_name, ix->tensors[i].name) >= 0)
            return ckpt_error(CKPT_ECORRUPT, "index lists tensor '%s' twice", ix->tensors[i].name);
        if (ckpt_strmap_put(&ix->by_name, ix->tensors[i].name, i) != 0)
            return ckpt_error(CKPT_ENOMEM, "out of memory indexing tensor names");
    }
    return CKPT_OK;
}

int64_t ckpt_index_file_of_writer(const ckpt_index *ix, int64_t writer)
{
    if (writer < 0 || writer >= ix->world_size)
        return -1;
    switch (ix->layout) {
    case CKPT_LAYOUT_SHARED: return 0;
    case CKPT_LAYOUT_GROUP: {
        int64_t lo = 0, hi = ix->ngroups; /* the run holding writer */
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (ix->groups[mid].first_rank <= writer)
                lo = mid;
            else
                hi = mid;
        }
        return ix->ngroups > 0 ? ix->groups[lo].group : -1;
    }
    default: return writer;
    }
}

void ckpt_index_file_name(const ckpt_index *ix, int64_t file, char *buf, size_t len)
{
    if (ix->format_version < 2)
        snprintf(buf, len, "%s", file >= 0 && file < ix->nfiles ? ix->files[file] : "?");
    else if (ix->layout == CKPT_LAYOUT_SHARED)
        snprintf(buf, len, "%s", CKPT_SHARED_FILE);
    else if (ix->layout == CKPT_LAYOUT_GROUP)
        ckpt_group_file_name(file, buf, len);
    else
        ckpt_rank_file_name(file, buf, len);
}

static void resolve_grid(const ckpt_index *ix, const ckpt_itensor *t, int64_t j, const ckpt_box *box,
                         ckpt_boxref *o)
{
    o->box = *box;
    o->writer = (int)ckpt_grid_writer(&t->grid, j);
    o->file = ckpt_index_file_of_writer(ix, o->writer);
    ckpt_pieces_of(t->ndim, box->ext, ckpt_dtype_size(t->dtype), ix->piece_bytes, &o->pieces);
    if (ix->layout == CKPT_LAYOUT_SHARED) {
        o->sums = CKPT_SUMS_SLOT;
        o->sum_base = t->first_piece + j * t->piece_stride;
    } else {
        o->sums = CKPT_SUMS_ATTR;
    }
}

static void resolve_row(const ckpt_index *ix, const ckpt_itensor *t, const ckpt_irow *r, ckpt_boxref *o)
{
    o->box = r->box;
    o->writer = r->writer;
    if (ix->format_version < 2) {
        o->file = r->file;
        ckpt_pieces_from(t->ndim, r->box.ext, r->piece_dim, r->piece_len, &o->pieces);
        o->sums = CKPT_SUMS_INDEX;
        o->sum_base = r->first_piece;
        o->dataset_v1 = r->dataset;
        return;
    }
    o->file = ckpt_index_file_of_writer(ix, r->writer);
    ckpt_pieces_of(t->ndim, r->box.ext, ckpt_dtype_size(t->dtype), ix->piece_bytes, &o->pieces);
    if (ix->layout == CKPT_LAYOUT_SHARED) {
        o->sums = CKPT_SUMS_SLOT;
        o->sum_base = t->first_piece + r->first_piece;
    } else {
        o->sums = CKPT_SUMS_ATTR;
    }
}

void ckpt_index_box(const ckpt_index *ix, int64_t ti, int64_t j, ckpt_boxref *out)
{
    const ckpt_itensor *t = &ix->tensors[ti];
    memset(out, 0, sizeof *out);
    out->tensor = ti;
    out->j = j;
    out->gid = t->first_box + j;
    if (t->sharding == CKPT_SHARDING_GRID) {
        ckpt_box b;
        ckpt_grid_box(&t->grid, j, &b);
        resolve_grid(ix, t, j, &b, out);
    } else {
        resolve_row(ix, t, &ix->rows[t->first_row + j], out);
    }
}

typedef struct query {
    const ckpt_index *ix;
    int64_t ti;
    ckpt_index_box_fn fn;
    void *arg;
} query;

static int grid_hit(int64_t j, const ckpt_box *box, void *arg)
{
    query *q = arg;
    const ckpt_itensor *t = &q->ix->tensors[q->ti];
    ckpt_boxref b;
    memset(&b, 0, sizeof b);
    b.tensor = q->ti;
    b.j = j;
    b.gid = t->first_box + j;
    resolve_grid(q->ix, t, j, box, &b);
    return q->fn(&b, q->arg);
}

static int row_hit(int64_t i, void *arg)
{
    query *q = arg;
    ckpt_boxref b;
    ckpt_index_box(q->ix, q->ti, i, &b);
    return q->fn(&b, q->arg);
}

int ckpt_index_foreach_in(ckpt_index *ix, int64_t ti, const ckpt_box *region, ckpt_index_box_fn fn, void *arg)
{
    ckpt_itensor *t = &ix->tensors[ti];
    query q = {ix, ti, fn, arg};
    if (t->nboxes == 0)
        return 0;
    if (t->ndim == 0) {
        ckpt_boxref b;
        ckpt_index_box(ix, ti, 0, &b);
        return fn(&b, arg);
    }
    if (t->sharding == CKPT_SHARDING_GRID)
        return ckpt_grid_foreach_in(&t->grid, region, grid_hit, &q);
    const ckpt_irow *rows = &ix->rows[t->first_row];
    if (!t->finder) {
        t->finder = calloc(1, sizeof *t->finder);
        if (!t->finder || ckpt_box_finder_init(t->finder, t->ndim, &rows[0].box, sizeof *rows, t->nboxes) != 0) {
            free(t->finder);
            t->finder = NULL;
            return ckpt_error(CKPT_ENOMEM, "out of memory indexing the boxes of tensor '%s'", t->name);
        }
    }
    return ckpt_box_finder_query(t->finder, &rows[0].box, sizeof *rows, region, row_hit, &q);
}

void ckpt_index_dataset(const ckpt_index *ix, const ckpt_boxref *b, char *buf, size_t len)
{
    if (b->dataset_v1)
        snprintf(buf, len, "%s", b->dataset_v1);
    else if (ix->layout == CKPT_LAYOUT_SHARED)
        ckpt_shared_dataset(ix->tensors[b->tensor].name, buf, len);
    else
        snprintf(buf, len, "/boxes/%" PRId64, b->gid);
}

void ckpt_index_dataset_box(const ckpt_index *ix, const ckpt_boxref *b, ckpt_box *out)
{
    *out = b->box;
    if (ix->layout == CKPT_LAYOUT_SHARED)
        ckpt_box_set(out, b->box.ndim, NULL, ix->tensors[b->tensor].shape);
}

/* ---- validation ---- */

void ckpt_index_printable(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    for (; *s && o + 5 < len; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f)
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
    }
    if (*s && o + 3 < len) /* cut: say so */
        o += (size_t)snprintf(buf + o, len - o, "...");
    if (len)
        buf[o < len ? o : len - 1] = '\0';
}

int ckpt_index_check_name(const char *name, const char *what)
{
    for (size_t i = 0; name[i]; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f) {
            char shown[256];
            ckpt_index_printable(name, shown, sizeof shown);
            return ckpt_error(CKPT_EINVAL, "%s '%s' contains control character 0x%02x at byte %zu", what, shown, ch, i);
        }
    }
    return ckpt_name_check(name, what);
}

static int corrupt(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int corrupt(const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ckpt_error(CKPT_ECORRUPT, "index '%s' is malformed: %s", path, msg);
}

/* Explicit rows of tensor t: in bounds, owned by it, and tiling it exactly. */
static int validate_rows(ckpt_index *ix, int64_t ti, const char *path)
{
    ckpt_itensor *t = &ix->tensors[ti];
    char bs[512], bs2[512];
    int64_t slot = 0;
    for (int64_t j = 0; j < t->nboxes; j++) {
        ckpt_irow *r = &ix->rows[t->first_row + j];
        r->box.ndim = t->ndim;
        if (r->tensor != ti)
            return corrupt(path, "/index/boxes row %" PRId64 " belongs to tensor row %d, not to '%s'",
                           t->first_row + j, r->tensor, t->name);
        if (r->writer < 0 || r->writer >= ix->world_size)
            return corrupt(path, "/index/boxes row %" PRId64 " (tensor '%s'): writer %d outside 0..%d",
                           t->first_row + j, t->name, r->writer, ix->world_size - 1);
        int ok = ckpt_box_in_shape(&r->box, t->shape);
        for (int d = 0; ok && d < t->ndim; d++)
            ok = r->box.ext[d] > 0;
        if (!ok) { /* offsets and extents as stored: their sums may not fit in int64 */
            char es[512];
            return corrupt(path, "/index/boxes row %" PRId64 ": the box of offset %s and extent %s lies outside the "
                           "shape %s of tensor '%s'", t->first_row + j, ckpt_shape_str(t->ndim, r->box.off, bs, sizeof bs),
                           ckpt_shape_str(t->ndim, r->box.ext, es, sizeof es),
                           ckpt_shape_str(t->ndim, t->shape, bs2, sizeof bs2), t->name);
        }
        ckpt_pieces pc;
        if (ix->format_version < 2) {
            int64_t row = t->first_row + j;
            if (r->file < 0 || r->file >= ix->nfiles)
                return corrupt(path, "/index/boxes row %" PRId64 " (tensor '%s'): file %d outside /index/files (%d rows)",
                               row, t->name, r->file, ix->nfiles);
            if (ckpt_pieces_from(t->ndim, r->box.ext, r->piece_dim, r->piece_len, &pc) != 0)
                return corrupt(path, "/index/boxes row %" PRId64 " (tensor '%s'): pieces of %" PRId64 " along dim %d "
                               "do not cut its box %s", row, t->name, r->piece_len, r->piece_dim,
                               ckpt_box_str(&r->box, bs, sizeof bs));
            /* first_piece + count is compared without forming it: it may not fit in int64 */
            if (r->first_piece < 0 || r->first_piece > ix->npieces || pc.count > ix->npieces - r->first_piece)
                return corrupt(path, "/index/boxes row %" PRId64 " (tensor '%s'): its %" PRId64 " checksums from "
                               "%" PRId64 " lie outside /index/checksums (%" PRId64 " rows)", row, t->name, pc.count,
                               r->first_piece, ix->npieces);
        } else if (ix->layout == CKPT_LAYOUT_SHARED) {
            ckpt_pieces_of(t->ndim, r->box.ext, ckpt_dtype_size(t->dtype), ix->piece_bytes, &pc);
            if (r->first_piece != slot)
                return corrupt(path, "/index/boxes row %" PRId64 " (tensor '%s'): first_piece %" PRId64
                               ", expected %" PRId64, t->first_row + j, t->name, r->first_piece, slot);
            slot += pc.count;
        }
    }
    if (ix->format_version >= 2 && ix->layout == CKPT_LAYOUT_SHARED)
        t->nslots = slot;
    ckpt_tiling_why why;
    ckpt_tiling_verdict v = ckpt_tiling_check(t->ndim, t->shape, &ix->rows[t->first_row].box, sizeof(ckpt_irow),
                                              t->nboxes, &why);
    if (v == CKPT_TILING_NOMEM)
        return ckpt_error(CKPT_ENOMEM, "out of memory checking the boxes of tensor '%s'", t->name);
    if (v == CKPT_TILING_OVERLAP)
        return corrupt(path, "tensor '%s': saved boxes %s and %s overlap", t->name,
                       ckpt_box_str(&ix->rows[t->first_row + why.a].box, bs, sizeof bs),
                       ckpt_box_str(&ix->rows[t->first_row + why.b].box, bs2, sizeof bs2));
    if (v == CKPT_TILING_GAP)
        return corrupt(path, "tensor '%s' %s: its saved boxes cover %" PRId64 " of its %" PRId64 " elements",
                       t->name, ckpt_shape_str(t->ndim, t->shape, bs, sizeof bs), why.covered, why.volume);
    return CKPT_OK;
}

int ckpt_index_validate(ckpt_index *ix, const char *path)
{
    char ss[512];
    if (ix->world_size < 1)
        return corrupt(path, "world_size %d is below 1", ix->world_size);
    if (ix->piece_bytes < 1 || ix->piece_bytes > CKPT_INDEX_MAX_PIECE_BYTES)
        return corrupt(path, "piece_bytes %" PRId64 " outside 1..%" PRId64, ix->piece_bytes, CKPT_INDEX_MAX_PIECE_BYTES);
    /* the group map: runs of ranks covering 0..world_size-1 in order */
    if (ix->layout == CKPT_LAYOUT_GROUP) {
        int64_t next = 0, maxg = -1;
        for (int64_t i = 0; i < ix->ngroups; i++) {
            const ckpt_igroup *g = &ix->groups[i];
            if (g->first_rank != next || g->nranks < 1 || g->nranks > ix->world_size - next || g->group < 0 ||
                g->group >= ix->world_size)
                return corrupt(path, "/index/groups row %" PRId64 " (ranks %" PRId64 "+%" PRId64 ", group %" PRId64
                               ") does not continue the map at rank %" PRId64, i, g->first_rank, g->nranks, g->group, next);
            next += g->nranks;
            if (g->group > maxg)
                maxg = g->group;
        }
        if (next != ix->world_size)
            return corrupt(path, "/index/groups covers ranks 0..%" PRId64 " of %d", next - 1, ix->world_size);
        ix->nfiles_v2 = maxg + 1;
    } else if (ix->ngroups != 0) {
        return corrupt(path, "/index/groups present in the %s layout", ckpt_layout_name(ix->layout));
    }
    int64_t next_box = 0, next_row = 0, next_piece = 0;
    for (int64_t i = 0; i < ix->ntensors; i++) {
        ckpt_itensor *t = &ix->tensors[i];
        if (ckpt_index_check_name(t->name, "tensor name") != CKPT_OK)
            return corrupt(path, "/index/tensors row %" PRId64 ": %s", i, ckpt_errmsg());
        if (i > 0 && strcmp(ix->tensors[i - 1].name, t->name) >= 0)
            return corrupt(path, "/index/tensors is not sorted by name at row %" PRId64 " ('%s')", i, t->name);
        if (t->ndim < 0 || t->ndim > CKPT_MAX_NDIM)
            return corrupt(path, "tensor '%s' has %d dims (0..%d allowed)", t->name, t->ndim, CKPT_MAX_NDIM);
        int64_t vol = 1, bytes;
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0 || __builtin_mul_overflow(vol, t->shape[d], &vol))
                return corrupt(path, "tensor '%s' has a negative or too large shape %s", t->name,
                               ckpt_shape_str(t->ndim, t->shape, ss, sizeof ss));
        if (__builtin_mul_overflow(vol, (int64_t)ckpt_dtype_size(t->dtype), &bytes))
            return corrupt(path, "tensor '%s' %s is too large", t->name, ckpt_shape_str(t->ndim, t->shape, ss, sizeof ss));
        t->raw_bytes = bytes;
        if (t->first_box != next_box || t->nboxes < 0)
            return corrupt(path, "tensor '%s': first_box %" PRId64 " / nboxes %" PRId64 " do not continue at box %" PRId64,
                           t->name, t->first_box, t->nboxes, next_box);
        if (t->sharding == CKPT_SHARDING_GRID) {
            t->grid.ndim = t->ndim;
            memcpy(t->grid.shape, t->shape, sizeof t->shape);
            if (ix->format_version < 2 || ckpt_grid_init(&t->grid, ix->world_size) != 0 || t->grid.nboxes != t->nboxes)
                return corrupt(path, "tensor '%s': its grid descriptor is invalid (chunks, box count or writers "
                               "outside the world of %d ranks)", t->name, ix->world_size);
            if (ix->layout == CKPT_LAYOUT_SHARED) {
                int64_t want = ckpt_grid_max_pieces(&t->grid, ckpt_dtype_size(t->dtype), ix->piece_bytes);
                if (t->piece_stride != want)
                    return corrupt(path, "tensor '%s': piece_stride %" PRId64 ", expected %" PRId64, t->name,
                                   t->piece_stride, want);
            }
        } else if (t->sharding == CKPT_SHARDING_EXPLICIT) {
            if (t->first_row != next_row || t->nboxes > ix->nrows - next_row)
                return corrupt(path, "tensor '%s': its boxes (rows %" PRId64 "+%" PRId64 ") are not the next rows of "
                               "/index/boxes (%" PRId64 " of %" PRId64 ")", t->name, t->first_row, t->nboxes, next_row,
                               ix->nrows);
            int rc = validate_rows(ix, i, path);
            if (rc)
                return rc;
            next_row += t->nboxes;
        } else {
            return corrupt(path, "tensor '%s' has sharding kind %d this library does not know", t->name,
                           (int)t->sharding);
        }
        if (vol == 0 && t->nboxes != 0)
            return corrupt(path, "zero-size tensor '%s' has %" PRId64 " boxes", t->name, t->nboxes);
        if (ix->format_version >= 2 && ix->layout == CKPT_LAYOUT_SHARED) {
            if (t->sharding == CKPT_SHARDING_GRID && __builtin_mul_overflow(t->nboxes, t->piece_stride, &t->nslots))
                return corrupt(path, "tensor '%s': checksum slots overflow", t->name);
            int64_t slots = t->nslots;
            if (t->first_piece != next_piece)
                return corrupt(path, "tensor '%s': first_piece %" PRId64 ", expected %" PRId64, t->name,
                               t->first_piece, next_piece);
            if (__builtin_add_overflow(next_piece, slots, &next_piece))
                return corrupt(path, "tensor '%s': checksum slots overflow", t->name);
        }
        if (__builtin_add_overflow(next_box, t->nboxes, &next_box))
            return corrupt(path, "box count overflows at tensor '%s'", t->name);
    }
    if (next_row != ix->nrows)
        return corrupt(path, "/index/boxes has %" PRId64 " rows, the tensors own %" PRId64, ix->nrows, next_row);
    ix->nboxes = next_box;
    return ckpt_index_build_lookup(ix);
}
