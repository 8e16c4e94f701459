/* Checkpoint -> Hugging Face style safetensors model directory, streamed tensor by tensor: each
 * tensor is read whole (checksums verified) into one reused buffer, transposed and converted in
 * output-buffer-sized chunks, and written where the header puts it by a writer thread while the
 * next chunk is made (write_queue.c). */
#include "error.h"
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_BUFFER (4LL << 20)
#define QUEUE_BUFFERS 3

void ckptfmt_export_options_init(ckptfmt_export_options *o)
{
    memset(o, 0, sizeof *o);
    o->version = CKPTFMT_EXPORT_OPTIONS_VERSION;
    o->names = CKPTFMT_MODE_HF_GPT2;
    o->dtype = CKPT_F32;
    o->fsync = 1;
    o->buffer_bytes = DEFAULT_BUFFER;
}

/* One tensor of the export. */
typedef struct out_tensor {
    const char *src;      /* name in the checkpoint */
    char name[CKPT_MAX_NAME + 1];
    ckpt_dtype src_dtype, dtype;
    int ndim;
    int64_t src_shape[CKPT_MAX_NDIM], shape[CKPT_MAX_NDIM];
    int transposed;       /* 2-D, written as the transpose of the checkpoint's */
    int64_t numel;
    int64_t nbytes;       /* written */
    int shard;            /* file it goes to */
} out_tensor;

typedef struct exporter {
    const ckptfmt_export_options *o;
    ckpt_reader *r;
    out_tensor *t;
    int n;
    int nshards;
    char tmp[4096];
    void *in;             /* one whole tensor, source dtype */
    size_t in_cap;
    void *tbuf;           /* a transposed chunk before conversion */
    size_t buf_bytes;
    write_queue *q;       /* output chunks, written by its thread */
    int64_t done, total;  /* bytes written, to write */
    ckptfmt_export_result res;
} exporter;

static int is_float(ckpt_dtype d) { return d == CKPT_F32 || d == CKPT_F64 || d == CKPT_F16 || d == CKPT_BF16; }

static int plan_hf(exporter *x, const char *ckpt)
{
    ckptfmt_gpt2_config cfg;
    int s = ckptfmt_gpt2_config_from_attrs(ckpt_reader_attrs(x->r), &cfg);
    if (s != CKPTFMT_OK)
        return fmt_error_prefix("checkpoint '%s': ", ckpt) == CKPTFMT_ENOTFOUND
                   ? fmt_error(CKPTFMT_EUNSUPPORTED, "%s; --names as-is exports any checkpoint", ckptfmt_errmsg())
                   : s;
    /* a model/ tensor the map does not know would be silently lost */
    for (int i = 0; i < ckpt_reader_num_tensors(x->r); i++) {
        ckpt_tensor_info ti;
        int j;
        ckpt_reader_tensor_info(x->r, i, &ti);
        if (strncmp(ti.name, CKPTFMT_GPT2_TRAINER_PREFIX, strlen(CKPTFMT_GPT2_TRAINER_PREFIX)) == 0 &&
            ckptfmt_gpt2_find(&cfg, CKPTFMT_NAMES_TRAINER, ti.name, &j) != CKPTFMT_OK)
            return fmt_error(CKPTFMT_EUNSUPPORTED, "checkpoint '%s': tensor '%s' is not part of the GPT-2 its config/ "
                             "attributes describe; --names as-is exports every tensor", ckpt, ti.name);
    }
    x->n = ckptfmt_gpt2_num_tensors(&cfg);
    x->t = calloc((size_t)x->n, sizeof *x->t);
    if (!x->t)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    for (int i = 0; i < x->n; i++) {
        ckptfmt_gpt2_tensor g;
        ckpt_tensor_info ti;
        int j;
        ckptfmt_gpt2_tensor_info(&cfg, i, &g);
        out_tensor *t = &x->t[i];
        if (ckpt_reader_find(x->r, g.name[CKPTFMT_NAMES_TRAINER], &j) != CKPT_OK)
            return fmt_error(CKPTFMT_EMALFORMED, "checkpoint '%s' has no tensor '%s'", ckpt, g.name[CKPTFMT_NAMES_TRAINER]);
        ckpt_reader_tensor_info(x->r, j, &ti);
        if (ti.ndim != g.ndim || ti.shape[0] != g.shape[0] || (g.ndim == 2 && ti.shape[1] != g.shape[1]))
            return fmt_error(CKPTFMT_EMALFORMED, "checkpoint '%s': tensor '%s' does not have the shape its config/ "
                             "attributes give", ckpt, ti.name);
        if (!is_float(ti.dtype))
            return fmt_error(CKPTFMT_EUNSUPPORTED, "checkpoint '%s': tensor '%s' is %s, not a floating dtype", ckpt,
                             ti.name, ckpt_dtype_name(ti.dtype));
        t->src = ti.name;
        snprintf(t->name, sizeof t->name, "%s", g.name[CKPTFMT_NAMES_HF]);
        t->src_dtype = ti.dtype;
        t->dtype = x->o->dtype_set ? x->o->dtype : ti.dtype;
        t->ndim = g.ndim;
        t->src_shape[0] = g.shape[0];
        t->src_shape[1] = g.shape[1];
        ckptfmt_gpt2_hf_shape(&g, t->shape);
        t->transposed = g.hf_transposed;
    }
    return CKPTFMT_OK;
}

static int plan_as_is(exporter *x)
{
    x->n = ckpt_reader_num_tensors(x->r);
    x->t = calloc((size_t)(x->n ? x->n : 1), sizeof *x->t);
    if (!x->t)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    for (int i = 0; i < x->n; i++) {
        ckpt_tensor_info ti;
        ckpt_reader_tensor_info(x->r, i, &ti);
        out_tensor *t = &x->t[i];
        t->src = ti.name;
        snprintf(t->name, sizeof t->name, "%s", ti.name);
        t->src_dtype = ti.dtype;
        t->dtype = x->o->dtype_set && is_float(ti.dtype) ? x->o->dtype : ti.dtype;
        t->ndim = ti.ndim;
        memcpy(t->src_shape, ti.shape, sizeof ti.shape);
        memcpy(t->shape, ti.shape, sizeof ti.shape);
    }
    return CKPTFMT_OK;
}

/* the writer thread's side: chunks appended to one file of the export */
static int st_sink_write(void *w, const char *name, const void *buf, size_t n)
{
    return ckptfmt_st_writer_write(w, name, buf, n);
}

static void st_sink_writeback(void *w)
{
    st_writer_writeback(w);
}

/* sizes, and the files they go to: a new file when the next tensor would pass max_shard_size */
static int plan_shards(exporter *x)
{
    int64_t cur = 0;
    int shard = 0;
    size_t largest = 0;
    for (int i = 0; i < x->n; i++) {
        out_tensor *t = &x->t[i];
        t->numel = 1;
        for (int d = 0; d < t->ndim; d++)
            t->numel *= t->src_shape[d];
        t->nbytes = t->numel * (int64_t)ckpt_dtype_size(t->dtype);
        size_t in = (size_t)t->numel * ckpt_dtype_size(t->src_dtype);
        if (in > largest)
            largest = in;
        if (x->o->max_shard_size > 0 && cur > 0 && cur + t->nbytes > x->o->max_shard_size) {
            shard++;
            cur = 0;
        }
        cur += t->nbytes;
        t->shard = shard;
        x->total += t->nbytes;
    }
    x->nshards = x->o->max_shard_size > 0 ? shard + 1 : 1;
    if (x->nshards > 99999)
        return fmt_error(CKPTFMT_EINVAL, "--max-shard-size %lld makes %d files, more than 99999",
                         (long long)x->o->max_shard_size, x->nshards);
    x->in_cap = largest ? largest : 1;
    x->buf_bytes = (size_t)x->o->buffer_bytes;
    x->in = malloc(x->in_cap);
    x->tbuf = malloc(x->buf_bytes);
    if (!x->in || !x->tbuf)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory for a %zu-byte tensor buffer", x->in_cap);
    return wq_create(x->buf_bytes, QUEUE_BUFFERS, st_sink_write, x->o->fsync ? st_sink_writeback : NULL, &x->q);
}

static void shard_name(const exporter *x, int k, char *buf, size_t len)
{
    if (x->nshards == 1 && x->o->max_shard_size <= 0)
        snprintf(buf, len, "model.safetensors");
    else
        snprintf(buf, len, "model-%05d-of-%05d.safetensors", k + 1, x->nshards);
}

static int progress(exporter *x, const char *name)
{
    if (x->o->progress && x->o->progress(x->o->progress_user, x->done, x->total, name))
        return fmt_error(CKPTFMT_EINTERRUPTED, "interrupted");
    return CKPTFMT_OK;
}

/* Hands n elements of the source dtype at src, converted to t's dtype, to the writer thread in
 * buffer-sized chunks. */
static int write_converted(exporter *x, ckptfmt_st_writer *w, const out_tensor *t, const void *src, int64_t n)
{
    size_t ies = ckpt_dtype_size(t->src_dtype), oes = ckpt_dtype_size(t->dtype);
    int64_t per = (int64_t)(x->buf_bytes / (oes > ies ? oes : ies));
    for (int64_t e = 0; e < n; e += per) {
        int64_t m = n - e < per ? n - e : per;
        const char *from = (const char *)src + (size_t)e * ies;
        void *buf = wq_acquire(x->q);
        if (t->src_dtype == t->dtype)
            memcpy(buf, from, (size_t)m * ies);
        else if (ckpt_dtype_convert(t->src_dtype, from, t->dtype, buf, (size_t)m) != CKPT_OK) {
            wq_submit(x->q, w, t->name, buf, 0);
            return fmt_error(CKPTFMT_ECKPT, "tensor '%s': %s", t->src, ckpt_errmsg());
        }
        int s = wq_submit(x->q, w, t->name, buf, (size_t)m * oes);
        if (s != CKPTFMT_OK)
            return s;
    }
    return CKPTFMT_OK;
}

static int write_tensor(exporter *x, ckptfmt_st_writer *w, const out_tensor *t)
{
    int64_t zero[CKPT_MAX_NDIM] = {0};
    if (t->numel == 0)
        return CKPTFMT_OK;
    if (ckpt_reader_read(x->r, t->src, t->src_dtype, zero, t->src_shape, x->in, 1) != CKPT_OK)
        return fmt_error(CKPTFMT_ECKPT, "%s", ckpt_errmsg());
    x->res.read_bytes += t->numel * (int64_t)ckpt_dtype_size(t->src_dtype);
    if (!t->transposed)
        return write_converted(x, w, t, x->in, t->numel);
    /* [rows, cols] -> [cols, rows], a band of output rows at a time, straight into the output
     * buffer when no conversion follows */
    const int64_t rows = t->src_shape[0], cols = t->src_shape[1];
    size_t ies = ckpt_dtype_size(t->src_dtype), oes = ckpt_dtype_size(t->dtype);
    int64_t band = (int64_t)(x->buf_bytes / (oes > ies ? oes : ies)) / rows;
    if (band < 1)
        return fmt_error(CKPTFMT_EINVAL, "the %zu-byte output buffer is smaller than one %lld-element row of '%s'",
                         x->buf_bytes, (long long)rows, t->src);
    for (int64_t c0 = 0; c0 < cols; c0 += band) {
        int64_t c1 = c0 + band < cols ? c0 + band : cols;
        int s;
        if (t->src_dtype == t->dtype) {
            void *buf = wq_acquire(x->q);
            transpose_band(buf, x->in, rows, cols, c0, c1, ies);
            s = wq_submit(x->q, w, t->name, buf, (size_t)((c1 - c0) * rows) * oes);
        } else {
            transpose_band(x->tbuf, x->in, rows, cols, c0, c1, ies);
            s = write_converted(x, w, t, x->tbuf, (c1 - c0) * rows);
        }
        if (s != CKPTFMT_OK)
            return s;
    }
    return CKPTFMT_OK;
}

static int write_shard(exporter *x, int k, const char *ckpt, int64_t step)
{
    char fname[64], path[8192];
    shard_name(x, k, fname, sizeof fname);
    snprintf(path, sizeof path, "%s/%s", x->tmp, fname);
    ckptfmt_st_writer *w;
    int s = ckptfmt_st_writer_create(&w);
    if (s != CKPTFMT_OK)
        return s;
    for (int i = 0; i < x->n && s == CKPTFMT_OK; i++)
        if (x->t[i].shard == k)
            s = ckptfmt_st_writer_add(w, x->t[i].name, ckptfmt_st_dtype_from_ckpt(x->t[i].dtype), x->t[i].ndim,
                                      x->t[i].shape);
    char stepbuf[32];
    snprintf(stepbuf, sizeof stepbuf, "%" PRId64, step);
    if (s == CKPTFMT_OK)
        s = ckptfmt_st_writer_set_metadata(w, "format", "pt");
    if (s == CKPTFMT_OK)
        s = ckptfmt_st_writer_set_metadata(w, "source", x->o->source ? x->o->source : ckpt);
    if (s == CKPTFMT_OK && step >= 0)
        s = ckptfmt_st_writer_set_metadata(w, "step", stepbuf);
    if (s == CKPTFMT_OK)
        s = ckptfmt_st_writer_begin(w, path);
    /* in file order, so the file is written front to back */
    for (int q = 0; s == CKPTFMT_OK && q < ckptfmt_st_writer_num_tensors(w); q++) {
        const char *name;
        ckptfmt_st_writer_tensor(w, q, &name, NULL);
        int i = 0;
        while (i < x->n && (x->t[i].shard != k || strcmp(x->t[i].name, name) != 0))
            i++;
        s = write_tensor(x, w, &x->t[i]);
        x->done += x->t[i].nbytes;
        if (s == CKPTFMT_OK)
            s = progress(x, x->t[i].src);
    }
    /* the writer thread is done with this file before it is closed (or removed) */
    int d = wq_drain(x->q);
    if (s == CKPTFMT_OK)
        s = d;
    if (s == CKPTFMT_OK)
        s = ckptfmt_st_writer_finish(w, x->o->fsync);
    if (s == CKPTFMT_OK)
        x->res.file_bytes += (int64_t)ckptfmt_st_writer_file_size(w);
    ckptfmt_st_writer_free(w);
    return s;
}

static int write_index(exporter *x)
{
    const char **names = malloc(sizeof *names * (size_t)(x->n ? x->n : 1));
    const char **files = malloc(sizeof *files * (size_t)(x->n ? x->n : 1));
    char (*fn)[64] = malloc(sizeof *fn * (size_t)x->nshards);
    int s = !names || !files || !fn ? fmt_error(CKPTFMT_ENOMEM, "out of memory") : CKPTFMT_OK;
    for (int k = 0; s == CKPTFMT_OK && k < x->nshards; k++)
        shard_name(x, k, fn[k], sizeof fn[k]);
    for (int i = 0; s == CKPTFMT_OK && i < x->n; i++) {
        names[i] = x->t[i].name;
        files[i] = fn[x->t[i].shard];
    }
    char path[8192];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", x->tmp);
    if (s == CKPTFMT_OK)
        s = ckptfmt_st_index_write(path, x->n, names, files, (uint64_t)x->total);
    struct stat st;
    if (s == CKPTFMT_OK && stat(path, &st) == 0)
        x->res.file_bytes += st.st_size;
    free(names);
    free(files);
    free(fn);
    return s;
}

static const char *torch_dtype(ckpt_dtype d)
{
    return d == CKPT_F16 ? "float16" : d == CKPT_BF16 ? "bfloat16" : d == CKPT_F64 ? "float64" : "float32";
}

int ckptfmt_export_safetensors(const char *ckpt, const char *out, const ckptfmt_export_options *o,
                               ckptfmt_export_result *res)
{
    ckptfmt_export_options def;
    if (!o) {
        ckptfmt_export_options_init(&def);
        o = &def;
    }
    if (!ckpt || !out || o->version != CKPTFMT_EXPORT_OPTIONS_VERSION)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_export_safetensors: bad argument or options version");
    if (o->dtype_set && o->dtype != CKPT_F32 && o->dtype != CKPT_F16 && o->dtype != CKPT_BF16)
        return fmt_error(CKPTFMT_EINVAL, "export dtype must be f32, f16 or bf16");
    if (o->buffer_bytes < 64 || o->max_shard_size < 0)
        return fmt_error(CKPTFMT_EINVAL, "export buffer below 64 bytes or negative shard size");
    exporter x;
    memset(&x, 0, sizeof x);
    x.o = o;
    x.res.step = -1;
    struct stat st;
    if (lstat(out, &st) == 0)
        return fmt_error(CKPTFMT_EEXIST, "'%s' already exists (nothing is overwritten)", out);
    int s;
    if (ckpt_reader_open(ckpt, &x.r) != CKPT_OK) {
        s = fmt_error(CKPTFMT_ECKPT, "%s", ckpt_errmsg());
        goto done;
    }
    int64_t step;
    if (ckpt_state_get_int(ckpt_reader_attrs(x.r), "step", &step) == CKPT_OK)
        x.res.step = step;
    s = o->names == CKPTFMT_MODE_HF_GPT2 ? plan_hf(&x, ckpt) : plan_as_is(&x);
    if (s == CKPTFMT_OK)
        s = plan_shards(&x);
    if (s == CKPTFMT_OK)
        s = tmpdir_create(out, x.tmp, sizeof x.tmp);
    if (s != CKPTFMT_OK) {
        x.tmp[0] = 0;
        goto done;
    }
    for (int k = 0; s == CKPTFMT_OK && k < x.nshards; k++)
        s = write_shard(&x, k, ckpt, x.res.step);
    if (s == CKPTFMT_OK && o->max_shard_size > 0)
        s = write_index(&x);
    if (s == CKPTFMT_OK && o->names == CKPTFMT_MODE_HF_GPT2) {
        ckptfmt_gpt2_config cfg;
        char path[8192];
        snprintf(path, sizeof path, "%s/config.json", x.tmp);
        ckptfmt_gpt2_config_from_attrs(ckpt_reader_attrs(x.r), &cfg);
        s = ckptfmt_gpt2_config_write_json(&cfg, torch_dtype(x.n ? x.t[0].dtype : CKPT_F32), path);
        if (s == CKPTFMT_OK && stat(path, &st) == 0)
            x.res.file_bytes += st.st_size;
    }
    if (s == CKPTFMT_OK)
        s = tmpdir_commit(x.tmp, out, o->fsync);
    if (s == CKPTFMT_OK) {
        x.tmp[0] = 0;
        x.res.tensors = x.n;
        x.res.files = x.nshards;
        x.res.data_bytes = x.total;
        if (res)
            *res = x.res;
        s = fmt_ok();
    }
done:
    if (x.tmp[0])
        tmpdir_remove(x.tmp);
    ckpt_reader_close(x.r);
    free(x.t);
    free(x.in);
    free(x.tbuf);
    wq_free(x.q);
    return s;
}
