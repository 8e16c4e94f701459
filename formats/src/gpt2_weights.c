/* A GPT-2's weights in the trainer's layout from a libckpt checkpoint or a Hugging Face
 * safetensors model: the one place that validates an HF GPT-2 against the map (names, dtypes,
 * shapes, tied head) and undoes Conv1D's transposition. The importer and the generator read
 * through it. */
#include "error.h"
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ckptfmt_gpt2_weights {
    ckptfmt_gpt2_config cfg;
    int64_t step;
    ckpt_reader *r;   /* a checkpoint, or */
    model_set set;    /* safetensors */
    int is_st;
    void *scratch;    /* one tensor of the file's dtype (safetensors) */
    size_t scratch_cap;
    float *turn;      /* one tensor in the file's layout, to transpose (reused: no page faults) */
    size_t turn_cap;
};

static int is_checkpoint_dir(const char *path)
{
    struct stat st;
    char p[8192];
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    snprintf(p, sizeof p, "%s/COMMITTED", path);
    if (stat(p, &st) == 0)
        return 1;
    snprintf(p, sizeof p, "%s/index.h5", path);
    return stat(p, &st) == 0;
}

static int64_t numel(const ckptfmt_gpt2_tensor *t) { return t->shape[0] * t->shape[1]; }

static int grow(ckptfmt_gpt2_weights *w, size_t n)
{
    if (n <= w->scratch_cap)
        return CKPTFMT_OK;
    void *p = realloc(w->scratch, n);
    if (!p)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory for a %zu-byte tensor", n);
    w->scratch = p;
    w->scratch_cap = n;
    return CKPTFMT_OK;
}

static int open_checkpoint(ckptfmt_gpt2_weights *w, const char *path)
{
    if (ckpt_reader_open(path, &w->r) != CKPT_OK)
        return fmt_error(CKPTFMT_ECKPT, "%s", ckpt_errmsg());
    int s = ckptfmt_gpt2_config_from_attrs(ckpt_reader_attrs(w->r), &w->cfg);
    if (s != CKPTFMT_OK) /* a checkpoint, but not of shard-train's GPT-2 */
        return fmt_error(s == CKPTFMT_ENOTFOUND ? CKPTFMT_EUNSUPPORTED : s, "checkpoint '%s': %s", path,
                         ckptfmt_errmsg());
    if ((s = gpt2_config_trainer_check(&w->cfg)) != CKPTFMT_OK)
        return fmt_error_prefix("checkpoint '%s': ", path);
    int64_t step;
    w->step = ckpt_state_get_int(ckpt_reader_attrs(w->r), "step", &step) == CKPT_OK ? step : -1;
    for (int i = 0; i < ckptfmt_gpt2_num_tensors(&w->cfg); i++) {
        ckptfmt_gpt2_tensor t;
        ckpt_tensor_info ti;
        int j;
        ckptfmt_gpt2_tensor_info(&w->cfg, i, &t);
        const char *nm = t.name[CKPTFMT_NAMES_TRAINER];
        if (ckpt_reader_find(w->r, nm, &j) != CKPT_OK || ckpt_reader_tensor_info(w->r, j, &ti) != CKPT_OK)
            return fmt_error(CKPTFMT_EMALFORMED, "checkpoint '%s' has no tensor '%s'", path, nm);
        if (!ckpt_dtype_can_cast(ti.dtype, CKPT_F32))
            return fmt_error(CKPTFMT_EUNSUPPORTED, "checkpoint '%s': tensor '%s' is %s, not a floating dtype", path, nm,
                             ckpt_dtype_name(ti.dtype));
        if (ti.ndim != t.ndim || ti.shape[0] != t.shape[0] || (t.ndim == 2 && ti.shape[1] != t.shape[1]))
            return fmt_error(CKPTFMT_EMALFORMED, "checkpoint '%s': tensor '%s' does not have the shape its config/ "
                             "attributes give", path, nm);
    }
    return CKPTFMT_OK;
}

static int float_st(ckptfmt_st_dtype d, ckpt_dtype *out)
{
    return (d == CKPTFMT_ST_F32 || d == CKPTFMT_ST_F16 || d == CKPTFMT_ST_BF16 || d == CKPTFMT_ST_F64) &&
           ckptfmt_st_dtype_to_ckpt(d, out) == CKPTFMT_OK;
}

/* The tensor of an HF name as f32 in the file's own layout into dst (numel floats). */
static int read_hf_f32(ckptfmt_gpt2_weights *w, const char *hf_name, int64_t n, float *dst)
{
    ckptfmt_st_file *f;
    int i, s;
    if ((s = model_set_find(&w->set, hf_name, &f, &i)) != CKPTFMT_OK)
        return s;
    ckptfmt_st_tensor t;
    ckptfmt_st_tensor_info(f, i, &t);
    ckpt_dtype cd;
    float_st(t.dtype, &cd);
    size_t nbytes = (size_t)(t.end - t.begin);
    if (cd == CKPT_F32)
        return ckptfmt_st_read(f, i, 0, dst, nbytes);
    if ((s = grow(w, nbytes)) != CKPTFMT_OK || (s = ckptfmt_st_read(f, i, 0, w->scratch, nbytes)) != CKPTFMT_OK)
        return s;
    if (ckpt_dtype_convert(cd, w->scratch, CKPT_F32, dst, (size_t)n) != CKPT_OK)
        return fmt_error(CKPTFMT_ECKPT, "%s", ckpt_errmsg());
    return CKPTFMT_OK;
}

/* An attn.bias / attn.masked_bias buffer of a block of this model (older transformers saved them). */
static int is_attn_buffer(const ckptfmt_gpt2_config *c, const char *name)
{
    const char *p = "transformer.h.";
    if (strncmp(name, p, strlen(p)) != 0)
        return 0;
    char *end;
    long l = strtol(name + strlen(p), &end, 10);
    if (end == name + strlen(p) || l < 0 || l >= c->n_layer)
        return 0;
    return strcmp(end, ".attn.bias") == 0 || strcmp(end, ".attn.masked_bias") == 0;
}

static int open_safetensors(ckptfmt_gpt2_weights *w, const char *path)
{
    int s = model_set_open(path, &w->set);
    if (s != CKPTFMT_OK)
        return s;
    w->is_st = 1;
    char cpath[8192];
    snprintf(cpath, sizeof cpath, "%s/config.json", w->set.files.dir);
    struct stat st;
    if (stat(cpath, &st) != 0)
        return fmt_error(CKPTFMT_ENOTFOUND, "no config.json beside '%s' (the model's shape, e.g. its number of heads, "
                         "is not in the safetensors file)", path);
    if ((s = ckptfmt_gpt2_config_read_json(cpath, &w->cfg)) != CKPTFMT_OK)
        return s;
    if ((s = gpt2_config_trainer_check(&w->cfg)) != CKPTFMT_OK)
        return fmt_error_prefix("%s: ", cpath);
    const char *step = ckptfmt_st_metadata(w->set.f[0], "step");
    char *end;
    long long v = step ? strtoll(step, &end, 10) : -1;
    w->step = step && *step && !*end && v >= 0 ? v : -1;
    const char *where = w->set.files.n == 1 ? w->set.files.paths[0] : w->set.files.dir;
    for (int i = 0; i < ckptfmt_gpt2_num_tensors(&w->cfg); i++) {
        ckptfmt_gpt2_tensor t;
        ckptfmt_gpt2_tensor_info(&w->cfg, i, &t);
        const char *nm = t.name[CKPTFMT_NAMES_HF];
        ckptfmt_st_file *f;
        int j;
        if (model_set_find(&w->set, nm, &f, &j) != CKPTFMT_OK)
            return fmt_error(CKPTFMT_EMALFORMED, "%s: no tensor '%s' (config.json gives %d layers)", where, nm,
                             w->cfg.n_layer);
        ckptfmt_st_tensor ti;
        ckptfmt_st_tensor_info(f, j, &ti);
        ckpt_dtype cd;
        if (!float_st(ti.dtype, &cd))
            return fmt_error(CKPTFMT_EUNSUPPORTED, "%s: tensor '%s': dtype %s is not F32, F16, BF16 or F64", where, nm,
                             ckptfmt_st_dtype_name(ti.dtype));
        int64_t hs[2];
        ckptfmt_gpt2_hf_shape(&t, hs);
        if (ti.ndim != t.ndim || ti.shape[0] != hs[0] || (t.ndim == 2 && ti.shape[1] != hs[1])) {
            char want[64], have[256];
            int k = snprintf(have, sizeof have, "[");
            for (int d = 0; d < ti.ndim && k < (int)sizeof have; d++)
                k += snprintf(have + k, sizeof have - (size_t)k, d ? ", %lld" : "%lld", (long long)ti.shape[d]);
            snprintf(have + k, sizeof have - (size_t)k, "]");
            if (t.ndim == 2)
                snprintf(want, sizeof want, "[%lld, %lld]", (long long)hs[0], (long long)hs[1]);
            else
                snprintf(want, sizeof want, "[%lld]", (long long)hs[0]);
            return fmt_error(CKPTFMT_EUNSUPPORTED, "%s: tensor '%s': shape %s, but config.json makes it %s", where, nm,
                             have, want);
        }
    }
    /* nothing else but the tied head and attention-mask buffers */
    for (int k = 0; k < w->set.files.n; k++)
        for (int i = 0; i < ckptfmt_st_num_tensors(w->set.f[k]); i++) {
            ckptfmt_st_tensor ti;
            int j;
            ckptfmt_st_tensor_info(w->set.f[k], i, &ti);
            if (ckptfmt_gpt2_find(&w->cfg, CKPTFMT_NAMES_HF, ti.name, &j) == CKPTFMT_OK ||
                is_attn_buffer(&w->cfg, ti.name) || strcmp(ti.name, CKPTFMT_GPT2_HF_LM_HEAD) == 0)
                continue;
            return fmt_error(CKPTFMT_EUNSUPPORTED, "%s: tensor '%s' is not part of a GPT-2 of this shape (%d layers)",
                             w->set.files.paths[k], ti.name, w->cfg.n_layer);
        }
    /* the trainer's head is tied: an lm_head.weight must be wte */
    ckptfmt_st_file *f;
    int j;
    if (model_set_find(&w->set, CKPTFMT_GPT2_HF_LM_HEAD, &f, &j) == CKPTFMT_OK) {
        ckptfmt_st_tensor ti;
        ckptfmt_st_tensor_info(f, j, &ti);
        ckpt_dtype cd;
        int64_t V = w->cfg.vocab, C = w->cfg.n_embd;
        if (!float_st(ti.dtype, &cd) || ti.ndim != 2 || ti.shape[0] != V || ti.shape[1] != C)
            return fmt_error(CKPTFMT_EUNSUPPORTED, "%s: '%s' is not a floating [%lld, %lld] tensor", where,
                             CKPTFMT_GPT2_HF_LM_HEAD, (long long)V, (long long)C);
        float *a = malloc(sizeof(float) * (size_t)(V * C)), *b = malloc(sizeof(float) * (size_t)(V * C));
        s = !a || !b ? fmt_error(CKPTFMT_ENOMEM, "out of memory") : CKPTFMT_OK;
        if (s == CKPTFMT_OK)
            s = read_hf_f32(w, "transformer.wte.weight", V * C, a);
        if (s == CKPTFMT_OK)
            s = read_hf_f32(w, CKPTFMT_GPT2_HF_LM_HEAD, V * C, b);
        if (s == CKPTFMT_OK && memcmp(a, b, sizeof(float) * (size_t)(V * C)) != 0)
            s = fmt_error(CKPTFMT_EUNSUPPORTED,
                          "%s: '%s' differs from transformer.wte.weight: the trainer's GPT-2 ties its head to the "
                          "embedding", where, CKPTFMT_GPT2_HF_LM_HEAD);
        free(a);
        free(b);
        if (s != CKPTFMT_OK)
            return s;
    }
    return CKPTFMT_OK;
}

int ckptfmt_gpt2_weights_open(const char *path, ckptfmt_gpt2_weights **out)
{
    if (!path || !out)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gpt2_weights_open: NULL argument");
    *out = NULL;
    ckptfmt_gpt2_weights *w = calloc(1, sizeof *w);
    if (!w)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    int s = is_checkpoint_dir(path) ? open_checkpoint(w, path) : open_safetensors(w, path);
    if (s != CKPTFMT_OK) {
        ckptfmt_gpt2_weights_close(w);
        return s;
    }
    *out = w;
    return fmt_ok();
}

void ckptfmt_gpt2_weights_close(ckptfmt_gpt2_weights *w)
{
    if (!w)
        return;
    ckpt_reader_close(w->r);
    if (w->is_st)
        model_set_close(&w->set);
    free(w->scratch);
    free(w->turn);
    free(w);
}

const ckptfmt_gpt2_config *ckptfmt_gpt2_weights_config(const ckptfmt_gpt2_weights *w) { return &w->cfg; }

const char *ckptfmt_gpt2_weights_kind(const ckptfmt_gpt2_weights *w)
{
    return w->is_st ? "safetensors" : "checkpoint";
}

int64_t ckptfmt_gpt2_weights_step(const ckptfmt_gpt2_weights *w) { return w->step; }

int ckptfmt_gpt2_weights_read(ckptfmt_gpt2_weights *w, int i, float *dst)
{
    ckptfmt_gpt2_tensor t;
    int s;
    if (!w || !dst || (s = ckptfmt_gpt2_tensor_info(&w->cfg, i, &t)) != CKPTFMT_OK)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gpt2_weights_read: bad argument");
    if (!w->is_st) {
        int64_t off[2] = {0, 0};
        if (ckpt_reader_read(w->r, t.name[CKPTFMT_NAMES_TRAINER], CKPT_F32, off, t.shape, dst, 1) != CKPT_OK)
            return fmt_error(CKPTFMT_ECKPT, "%s", ckpt_errmsg());
        return CKPTFMT_OK;
    }
    if (!t.hf_transposed)
        return read_hf_f32(w, t.name[CKPTFMT_NAMES_HF], numel(&t), dst);
    /* Conv1D [in, out] -> [out, in]: the file's layout into a scratch f32 buffer, transposed into dst */
    size_t nb = sizeof(float) * (size_t)numel(&t);
    if (nb > w->turn_cap) {
        float *p = realloc(w->turn, nb);
        if (!p)
            return fmt_error(CKPTFMT_ENOMEM, "out of memory for a %zu-byte tensor", nb);
        w->turn = p;
        w->turn_cap = nb;
    }
    s = read_hf_f32(w, t.name[CKPTFMT_NAMES_HF], numel(&t), w->turn);
    if (s == CKPTFMT_OK)
        ckptfmt_transpose(dst, w->turn, t.shape[1], t.shape[0], sizeof(float));
    return s;
}
