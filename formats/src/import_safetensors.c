/* safetensors (file, index or model directory) -> a committed libckpt checkpoint sharded Shard(0)
 * for M ranks, through ckpt_writer: hf-gpt2 reads each tensor in the trainer's layout through
 * ckptfmt_gpt2_weights (validation and transposition in one place); as-is copies every tensor,
 * piece by piece, each piece read by offset from the file. */
#include "error.h"
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ckptfmt_import_options_init(ckptfmt_import_options *o)
{
    memset(o, 0, sizeof *o);
    o->version = CKPTFMT_IMPORT_OPTIONS_VERSION;
    o->names = CKPTFMT_MODE_HF_GPT2;
    o->world_size = 1;
    ckpt_save_options_init(&o->save);
}

typedef struct importer {
    const ckptfmt_import_options *o;
    ckpt_writer *w;
    int64_t done, total;
    void *piece;       /* one checksum piece */
    size_t piece_cap;
} importer;

/* libckpt's refusal; an existing destination (found when the writer plans) keeps its meaning */
static int ckerr(void)
{
    return fmt_error(ckpt_errcode() == CKPT_EEXIST ? CKPTFMT_EEXIST : CKPTFMT_ECKPT, "%s", ckpt_errmsg());
}

/* Declares a tensor and its Shard(0) boxes over the world size (a 0-D tensor: rank 0 holds it). */
static int declare(importer *im, const char *name, ckpt_dtype dtype, int ndim, const int64_t *shape)
{
    if (ckpt_writer_add_tensor(im->w, name, dtype, ndim, shape) != CKPT_OK)
        return ckerr();
    int64_t vol = 1;
    for (int d = 0; d < ndim; d++)
        vol *= shape[d];
    if (vol == 0)
        return CKPTFMT_OK;
    if (ndim == 0) {
        if (ckpt_writer_add_box(im->w, name, NULL, NULL, 0) != CKPT_OK)
            return ckerr();
        return CKPTFMT_OK;
    }
    for (int r = 0; r < im->o->world_size; r++) {
        int64_t off[CKPT_MAX_NDIM], ext[CKPT_MAX_NDIM];
        ckpt_shard_box(ndim, shape, 0, r, im->o->world_size, off, ext);
        if (ext[0] > 0 && ckpt_writer_add_box(im->w, name, off, ext, r) != CKPT_OK)
            return ckerr();
    }
    return CKPTFMT_OK;
}

/* Row-major linear index of `off` in `shape`. */
static int64_t linear(int ndim, const int64_t *shape, const int64_t *off)
{
    int64_t lin = 0;
    for (int d = 0; d < ndim; d++)
        lin = lin * shape[d] + off[d];
    return lin;
}

/* Every piece of every saved box of `name`; a piece of a Shard(0) box is a contiguous run of the
 * tensor's row-major elements, handed to emit() as (first element, count). */
typedef int (*emit_fn)(importer *im, void *arg, const char *name, const int64_t *off, const int64_t *ext,
                       int64_t first, int64_t count);

static int each_piece(importer *im, const char *name, int ndim, const int64_t *shape, emit_fn emit, void *arg)
{
    int64_t nboxes;
    if (ckpt_writer_num_boxes(im->w, name, &nboxes) != CKPT_OK)
        return ckerr();
    for (int64_t j = 0; j < nboxes; j++) {
        int64_t np, off[CKPT_MAX_NDIM], ext[CKPT_MAX_NDIM];
        if (ckpt_writer_box_piece(im->w, name, j, -1, NULL, NULL, &np) != CKPT_OK)
            return ckerr();
        for (int64_t k = 0; k < np; k++) {
            if (ckpt_writer_box_piece(im->w, name, j, k, off, ext, NULL) != CKPT_OK)
                return ckerr();
            int64_t count = 1;
            for (int d = 0; d < ndim; d++)
                count *= ext[d];
            int s = emit(im, arg, name, off, ext, linear(ndim, shape, off), count);
            if (s != CKPTFMT_OK)
                return s;
        }
    }
    return CKPTFMT_OK;
}

static int progress(importer *im, const char *name)
{
    if (im->o->progress && im->o->progress(im->o->progress_user, im->done, im->total, name))
        return fmt_error(CKPTFMT_EINTERRUPTED, "interrupted");
    return CKPTFMT_OK;
}

/* hf-gpt2: pieces out of the whole tensor in memory */
static int emit_from_memory(importer *im, void *arg, const char *name, const int64_t *off, const int64_t *ext,
                            int64_t first, int64_t count)
{
    const float *all = arg;
    if (ckpt_writer_write(im->w, name, off, ext, all + first) != CKPT_OK)
        return ckerr();
    im->done += count * (int64_t)sizeof(float);
    return CKPTFMT_OK;
}

static int import_hf(importer *im, const char *src, ckpt_state *attrs, ckptfmt_import_result *res)
{
    ckptfmt_gpt2_weights *gw;
    int s = ckptfmt_gpt2_weights_open(src, &gw);
    if (s != CKPTFMT_OK)
        return s;
    if (strcmp(ckptfmt_gpt2_weights_kind(gw), "safetensors") != 0) {
        ckptfmt_gpt2_weights_close(gw);
        return fmt_error(CKPTFMT_EINVAL, "'%s' is a libckpt checkpoint, not safetensors (shard-reshard rewrites "
                         "checkpoints)", src);
    }
    const ckptfmt_gpt2_config *cfg = ckptfmt_gpt2_weights_config(gw);
    res->config = *cfg;
    res->step = ckptfmt_gpt2_weights_step(gw);
    int n = ckptfmt_gpt2_num_tensors(cfg);
    int64_t largest = 0;
    for (int i = 0; i < n && s == CKPTFMT_OK; i++) {
        ckptfmt_gpt2_tensor t;
        ckptfmt_gpt2_tensor_info(cfg, i, &t);
        s = declare(im, t.name[CKPTFMT_NAMES_TRAINER], CKPT_F32, t.ndim, t.shape);
        int64_t ne = t.shape[0] * t.shape[1];
        largest = ne > largest ? ne : largest;
        im->total += ne * (int64_t)sizeof(float);
    }
    if (s == CKPTFMT_OK)
        s = ckptfmt_gpt2_config_to_attrs(cfg, attrs);
    if (s == CKPTFMT_OK && ckpt_state_set_string(attrs, "trainer/format", "shard-train/1") != CKPT_OK)
        s = ckerr();
    if (s == CKPTFMT_OK && res->step >= 0 && ckpt_state_set_int(attrs, "step", res->step) != CKPT_OK)
        s = ckerr();
    if (s == CKPTFMT_OK && ckpt_writer_set_attrs(im->w, attrs) != CKPT_OK)
        s = ckerr();
    float *buf = s == CKPTFMT_OK ? malloc(sizeof(float) * (size_t)(largest ? largest : 1)) : NULL;
    if (s == CKPTFMT_OK && !buf)
        s = fmt_error(CKPTFMT_ENOMEM, "out of memory for a %lld-element tensor", (long long)largest);
    for (int i = 0; i < n && s == CKPTFMT_OK; i++) {
        ckptfmt_gpt2_tensor t;
        ckptfmt_gpt2_tensor_info(cfg, i, &t);
        if ((s = ckptfmt_gpt2_weights_read(gw, i, buf)) == CKPTFMT_OK &&
            (s = each_piece(im, t.name[CKPTFMT_NAMES_TRAINER], t.ndim, t.shape, emit_from_memory, buf)) == CKPTFMT_OK)
            s = progress(im, t.name[CKPTFMT_NAMES_TRAINER]);
    }
    res->tensors = n;
    free(buf);
    ckptfmt_gpt2_weights_close(gw);
    return s;
}

/* as-is: each piece read from the file at its offset */
typedef struct file_tensor {
    ckptfmt_st_file *f;
    int i;
    size_t es;
} file_tensor;

static int emit_from_file(importer *im, void *arg, const char *name, const int64_t *off, const int64_t *ext,
                          int64_t first, int64_t count)
{
    const file_tensor *ft = arg;
    size_t nb = (size_t)count * ft->es;
    if (nb > im->piece_cap) {
        void *p = realloc(im->piece, nb);
        if (!p)
            return fmt_error(CKPTFMT_ENOMEM, "out of memory for a %zu-byte piece", nb);
        im->piece = p;
        im->piece_cap = nb;
    }
    int s = ckptfmt_st_read(ft->f, ft->i, (uint64_t)first * ft->es, im->piece, nb);
    if (s != CKPTFMT_OK)
        return s;
    if (ckpt_writer_write(im->w, name, off, ext, im->piece) != CKPT_OK)
        return ckerr();
    im->done += (int64_t)nb;
    return CKPTFMT_OK;
}

static int import_as_is(importer *im, const char *src, ckpt_state *attrs, ckptfmt_import_result *res)
{
    model_set set;
    int s = model_set_open(src, &set);
    if (s != CKPTFMT_OK)
        return s;
    res->step = -1;
    for (int k = 0; k < set.files.n && s == CKPTFMT_OK; k++)
        for (int i = 0; i < ckptfmt_st_num_tensors(set.f[k]) && s == CKPTFMT_OK; i++) {
            ckptfmt_st_tensor t;
            ckpt_dtype cd;
            ckptfmt_st_tensor_info(set.f[k], i, &t);
            if (ckptfmt_st_dtype_to_ckpt(t.dtype, &cd) != CKPTFMT_OK) {
                s = fmt_error(CKPTFMT_EUNSUPPORTED, "%s: tensor '%s': dtype %s has no libckpt equivalent",
                              set.files.paths[k], t.name, ckptfmt_st_dtype_name(t.dtype));
                break;
            }
            if ((s = declare(im, t.name, cd, t.ndim, t.shape)) != CKPTFMT_OK)
                fmt_error_prefix("%s: tensor '%s': ", set.files.paths[k], t.name);
            im->total += (int64_t)(t.end - t.begin);
            res->tensors++;
        }
    const char *step = set.files.n ? ckptfmt_st_metadata(set.f[0], "step") : NULL;
    char *end;
    long long v = step ? strtoll(step, &end, 10) : -1;
    if (step && *step && !*end && v >= 0)
        res->step = v;
    if (s == CKPTFMT_OK && res->step >= 0 && ckpt_state_set_int(attrs, "step", res->step) != CKPT_OK)
        s = ckerr();
    if (s == CKPTFMT_OK && ckpt_writer_set_attrs(im->w, attrs) != CKPT_OK)
        s = ckerr();
    for (int k = 0; k < set.files.n && s == CKPTFMT_OK; k++)
        for (int i = 0; i < ckptfmt_st_num_tensors(set.f[k]) && s == CKPTFMT_OK; i++) {
            ckptfmt_st_tensor t;
            ckpt_dtype cd;
            ckptfmt_st_tensor_info(set.f[k], i, &t);
            ckptfmt_st_dtype_to_ckpt(t.dtype, &cd);
            file_tensor ft = {set.f[k], i, ckpt_dtype_size(cd)};
            if (t.end > t.begin)
                s = each_piece(im, t.name, t.ndim, t.shape, emit_from_file, &ft);
            if (s == CKPTFMT_OK)
                s = progress(im, t.name);
        }
    model_set_close(&set);
    return s;
}

int ckptfmt_import_safetensors(const char *src, const char *out, const ckptfmt_import_options *o,
                               ckptfmt_import_result *res)
{
    ckptfmt_import_options def;
    if (!o) {
        ckptfmt_import_options_init(&def);
        o = &def;
    }
    if (!src || !out || o->version != CKPTFMT_IMPORT_OPTIONS_VERSION || o->world_size < 1)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_import_safetensors: bad argument or options version");
    importer im;
    memset(&im, 0, sizeof im);
    im.o = o;
    ckptfmt_import_result r;
    memset(&r, 0, sizeof r);
    r.step = -1;
    ckpt_state *attrs = NULL;
    if (ckpt_state_create(&attrs) != CKPT_OK)
        return ckerr();
    int s = ckpt_state_set_string(attrs, "import/source", src) == CKPT_OK ? CKPTFMT_OK : ckerr();
    if (s == CKPTFMT_OK && ckpt_writer_open(out, o->world_size, &o->save, &im.w) != CKPT_OK)
        s = ckerr();
    if (s == CKPTFMT_OK)
        s = o->names == CKPTFMT_MODE_HF_GPT2 ? import_hf(&im, src, attrs, &r) : import_as_is(&im, src, attrs, &r);
    if (s == CKPTFMT_OK) {
        int c = ckpt_writer_commit(im.w);
        im.w = NULL;
        if (c != CKPT_OK)
            s = ckerr();
    }
    if (im.w)
        ckpt_writer_abort(im.w);
    ckpt_state_free(attrs);
    free(im.piece);
    if (s == CKPTFMT_OK) {
        r.bytes = im.done;
        if (res)
            *res = r;
        return fmt_ok();
    }
    return s;
}
