/* A shard-train checkpoint as a GGUF file llama.cpp runs as its "gpt2" architecture: the
 * hyperparameters, the byte-level tokenizer and the GPT-2 map's tensors (GGUF names, ggml dims:
 * the trainer's row-major [out, in] bytes are ggml's [in, out], no transposition), plus
 * output.weight, the tied embedding written a second time. One tensor at a time through
 * ckptfmt_gpt2_weights (for a checkpoint: the library's reader, every piece verified). */
#define _GNU_SOURCE
#include "ckptfmt.h"
#include "error.h"
#include "internal.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* llama.cpp's general.file_type (enum llama_ftype) and GGML_QNT_VERSION. */
#define FTYPE_ALL_F32 0
#define FTYPE_MOSTLY_F16 1
#define FTYPE_MOSTLY_Q8_0 7
#define QUANT_VERSION 2
/* tokenizer.ggml.token_type: LLAMA_TOKEN_TYPE_NORMAL */
#define TOKEN_NORMAL 1

void ckptfmt_gguf_options_init(ckptfmt_gguf_options *o)
{
    memset(o, 0, sizeof *o);
    o->version = CKPTFMT_GGUF_OPTIONS_VERSION;
    o->type = CKPTFMT_GGML_F32;
    o->fsync = 1;
    o->buffer_bytes = 4 << 20;
}

typedef struct out_tensor {
    int map;                 /* index in the GPT-2 map (wte for output.weight) */
    const char *name;        /* GGUF name */
    ckptfmt_ggml_type type;
    uint64_t ne[2];
    int n_dims;
    uint64_t numel, nbytes;
} out_tensor;

/* The type llama.cpp's converter gives a tensor: 1-D and position_embd in f32, 2-D weights in the
 * file's type, q8_0 falling back to f16 for rows that are not whole blocks. */
static ckptfmt_ggml_type tensor_type(const ckptfmt_gpt2_tensor *t, const uint64_t ne[2], ckptfmt_ggml_type want)
{
    if (t->ndim == 1 || strcmp(t->name[CKPTFMT_NAMES_GGUF], "position_embd.weight") == 0)
        return CKPTFMT_GGML_F32;
    if (want == CKPTFMT_GGML_Q8_0 && ne[0] % CKPTFMT_Q8_0_BLOCK)
        return CKPTFMT_GGML_F16;
    return want;
}

static int set_u32(ckptfmt_gguf_writer *w, const char *key, uint64_t v)
{
    return ckptfmt_gguf_writer_set(w, key, (ckptfmt_gguf_value){.type = CKPTFMT_GGUF_UINT32, .u = v});
}

static int write_keys(ckptfmt_gguf_writer *w, const ckptfmt_gpt2_config *cfg, const ckptfmt_gguf_options *o,
                      const char *ckpt, int64_t step)
{
    char name[256];
    if (o->name)
        snprintf(name, sizeof name, "%s", o->name);
    else if (step >= 0)
        snprintf(name, sizeof name, "shard-train GPT-2 step %lld", (long long)step);
    else
        snprintf(name, sizeof name, "shard-train GPT-2");
    int ftype = o->type == CKPTFMT_GGML_F16 ? FTYPE_MOSTLY_F16 : o->type == CKPTFMT_GGML_Q8_0 ? FTYPE_MOSTLY_Q8_0
                                                                                            : FTYPE_ALL_F32;
    const char *tokens[256];
    int32_t types[256];
    for (int b = 0; b < 256; b++) {
        tokens[b] = ckptfmt_gguf_byte_token(b);
        types[b] = TOKEN_NORMAL;
    }
    int s;
    if ((s = ckptfmt_gguf_writer_set_string(w, "general.architecture", "gpt2")) ||
        (s = ckptfmt_gguf_writer_set_string(w, "general.name", name)) ||
        (s = set_u32(w, "general.file_type", (uint64_t)ftype)) ||
        (s = set_u32(w, "general.quantization_version", QUANT_VERSION)) ||
        (s = set_u32(w, "gpt2.context_length", (uint64_t)cfg->n_ctx)) ||
        (s = set_u32(w, "gpt2.embedding_length", (uint64_t)cfg->n_embd)) ||
        (s = set_u32(w, "gpt2.block_count", (uint64_t)cfg->n_layer)) ||
        (s = set_u32(w, "gpt2.feed_forward_length", 4 * (uint64_t)cfg->n_embd)) ||
        (s = set_u32(w, "gpt2.attention.head_count", (uint64_t)cfg->n_head)) ||
        (s = ckptfmt_gguf_writer_set(w, "gpt2.attention.layer_norm_epsilon",
                                     (ckptfmt_gguf_value){.type = CKPTFMT_GGUF_FLOAT32, .f = cfg->layer_norm_epsilon})) ||
        (s = ckptfmt_gguf_writer_set_string(w, "tokenizer.ggml.model", "gpt2")) ||
        (s = ckptfmt_gguf_writer_set_string(w, "tokenizer.ggml.pre", "gpt-2")) ||
        (s = ckptfmt_gguf_writer_set_string_array(w, "tokenizer.ggml.tokens", 256, tokens)) ||
        (s = ckptfmt_gguf_writer_set_array(w, "tokenizer.ggml.token_type", CKPTFMT_GGUF_INT32, 256, types)) ||
        (s = ckptfmt_gguf_writer_set_string_array(w, "tokenizer.ggml.merges", 0, NULL)) ||
        (s = set_u32(w, "tokenizer.ggml.bos_token_id", (uint64_t)cfg->bos_token_id)) ||
        (s = set_u32(w, "tokenizer.ggml.eos_token_id", (uint64_t)cfg->eos_token_id)) ||
        (s = ckptfmt_gguf_writer_set(w, "tokenizer.ggml.add_bos_token",
                                     (ckptfmt_gguf_value){.type = CKPTFMT_GGUF_BOOL, .b = 0})) ||
        (s = ckptfmt_gguf_writer_set(w, "tokenizer.ggml.add_eos_token",
                                     (ckptfmt_gguf_value){.type = CKPTFMT_GGUF_BOOL, .b = 0})) ||
        (s = ckptfmt_gguf_writer_set_string(w, "ckpt.source", o->source ? o->source : ckpt)))
        return s;
    if (step >= 0)
        return ckptfmt_gguf_writer_set(w, "ckpt.step", (ckptfmt_gguf_value){.type = CKPTFMT_GGUF_INT64, .i = step});
    return CKPTFMT_OK;
}

#define QUEUE_BUFFERS 3

/* the writer thread's side: the writer appends and pads in declaration order */
static int gguf_sink_write(void *w, const char *name, const void *buf, size_t n)
{
    (void)name;
    return ckptfmt_gguf_writer_write(w, buf, n);
}

static void gguf_sink_writeback(void *w)
{
    gguf_writer_writeback(w);
}

/* Hands n floats encoded as `type` to the writer thread in chunks of buf_elems elements, so the
 * thread's copy into the page cache overlaps the encoding and the next tensor's read. */
static int write_data(write_queue *q, ckptfmt_gguf_writer *w, const char *name, ckptfmt_ggml_type type,
                      const float *src, uint64_t n, uint64_t buf_elems)
{
    for (uint64_t at = 0; at < n; at += buf_elems) {
        uint64_t k = n - at < buf_elems ? n - at : buf_elems, bytes = 0;
        unsigned char *buf = wq_acquire(q);
        int s = CKPTFMT_OK;
        if (type == CKPTFMT_GGML_F32) {
            memcpy(buf, src + at, (size_t)k * sizeof(float));
            bytes = k * sizeof(float);
        } else if ((s = ckptfmt_ggml_encode(type, src + at, k, buf)) == CKPTFMT_OK) {
            s = ckptfmt_ggml_nbytes(type, k, &bytes);
        }
        if (s != CKPTFMT_OK) {
            wq_submit(q, w, name, buf, 0); /* the buffer back */
            return s;
        }
        if ((s = wq_submit(q, w, name, buf, (size_t)bytes)) != CKPTFMT_OK)
            return s;
    }
    return CKPTFMT_OK;
}

int ckptfmt_export_gguf(const char *ckpt, const char *out, const ckptfmt_gguf_options *o_in, ckptfmt_gguf_result *res)
{
    ckptfmt_gguf_options o;
    ckptfmt_gguf_options_init(&o);
    if (o_in) {
        if (o_in->version != CKPTFMT_GGUF_OPTIONS_VERSION)
            return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gguf_options version %u (expected %u)", o_in->version,
                             CKPTFMT_GGUF_OPTIONS_VERSION);
        o = *o_in;
    }
    if (!ckpt || !out)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_export_gguf: NULL path");
    if (o.type != CKPTFMT_GGML_F32 && o.type != CKPTFMT_GGML_F16 && o.type != CKPTFMT_GGML_Q8_0)
        return fmt_error(CKPTFMT_EINVAL, "GGUF export writes f32, f16 or q8_0, not ggml type %d", (int)o.type);
    if (o.buffer_bytes <= 0)
        o.buffer_bytes = 4 << 20;
    if (res)
        memset(res, 0, sizeof *res);

    ckptfmt_gpt2_weights *src_w = NULL;
    ckptfmt_gguf_writer *w = NULL;
    out_tensor *ot = NULL;
    float *src = NULL;
    write_queue *q = NULL;
    char tmp[4096] = "", file[4200] = "";
    int s;
    /* validates the configuration, every tensor's presence, shape and dtype */
    if ((s = ckptfmt_gpt2_weights_open(ckpt, &src_w)) != CKPTFMT_OK)
        return s;
    const ckptfmt_gpt2_config cfg = *ckptfmt_gpt2_weights_config(src_w);
    if (cfg.vocab != 256) {
        s = fmt_error(CKPTFMT_EUNSUPPORTED, "%s: vocabulary of %d tokens; the GGUF tokenizer written is the "
                      "256-token byte vocabulary", ckpt, cfg.vocab);
        goto done;
    }
    const int64_t step = ckptfmt_gpt2_weights_step(src_w);

    /* the file's tensors: the map's, with output.weight (a copy of wte) after token_embd */
    const int nmap = ckptfmt_gpt2_num_tensors(&cfg), nout = nmap + 1;
    ot = calloc((size_t)nout, sizeof *ot);
    if (!ot) {
        s = fmt_error(CKPTFMT_ENOMEM, "out of memory");
        goto done;
    }
    uint64_t max_numel = 0, total = 0;
    for (int i = 0, k = 0; i < nmap; i++) {
        ckptfmt_gpt2_tensor t;
        if ((s = ckptfmt_gpt2_tensor_info(&cfg, i, &t)) != CKPTFMT_OK)
            goto done;
        for (int copy = 0; copy < (i == 0 ? 2 : 1); copy++, k++) {
            out_tensor *e = &ot[k];
            e->map = i;
            e->name = copy ? CKPTFMT_GPT2_GGUF_OUTPUT : NULL;
            ckptfmt_gpt2_gguf_ne(&t, e->ne);
            e->n_dims = t.ndim;
            e->type = tensor_type(&t, e->ne, o.type);
            e->numel = e->ne[0] * e->ne[1];
            if ((s = ckptfmt_ggml_nbytes(e->type, e->numel, &e->nbytes)) != CKPTFMT_OK)
                goto done;
            max_numel = e->numel > max_numel ? e->numel : max_numel;
            total += e->nbytes;
        }
    }

    if ((s = ckptfmt_gguf_writer_create(&w)) != CKPTFMT_OK || (s = write_keys(w, &cfg, &o, ckpt, step)) != CKPTFMT_OK)
        goto done;
    for (int k = 0; k < nout; k++) {
        ckptfmt_gpt2_tensor t;
        ckptfmt_gpt2_tensor_info(&cfg, ot[k].map, &t);
        const char *name = ot[k].name ? ot[k].name : t.name[CKPTFMT_NAMES_GGUF];
        if ((s = ckptfmt_gguf_writer_add_tensor(w, name, ot[k].type, ot[k].n_dims, ot[k].ne)) != CKPTFMT_OK)
            goto done;
    }

    /* memory: the largest tensor in f32 plus the writer thread's buffers (whole q8_0 blocks) */
    uint64_t buf_elems = (uint64_t)o.buffer_bytes / sizeof(float) / CKPTFMT_Q8_0_BLOCK * CKPTFMT_Q8_0_BLOCK;
    if (buf_elems < CKPTFMT_Q8_0_BLOCK)
        buf_elems = CKPTFMT_Q8_0_BLOCK;
    src = malloc((size_t)max_numel * sizeof(float));
    if (!src) {
        s = fmt_error(CKPTFMT_ENOMEM, "out of memory for a tensor of %llu floats", (unsigned long long)max_numel);
        goto done;
    }
    if ((s = wq_create((size_t)buf_elems * sizeof(float), QUEUE_BUFFERS, gguf_sink_write,
                       o.fsync ? gguf_sink_writeback : NULL, &q)) != CKPTFMT_OK)
        goto done;

    if ((s = tmpdir_create(out, tmp, sizeof tmp)) != CKPTFMT_OK)
        goto done;
    snprintf(file, sizeof file, "%s/model.gguf", tmp);
    if ((s = ckptfmt_gguf_writer_begin(w, file)) != CKPTFMT_OK)
        goto done;
    int64_t done_bytes = 0, read_bytes = 0;
    for (int k = 0; k < nout; k++) {
        ckptfmt_gpt2_tensor t;
        ckptfmt_gpt2_tensor_info(&cfg, ot[k].map, &t);
        const char *name = ot[k].name ? ot[k].name : t.name[CKPTFMT_NAMES_GGUF];
        if (!ot[k].name) { /* output.weight reuses token_embd's floats */
            if ((s = ckptfmt_gpt2_weights_read(src_w, ot[k].map, src)) != CKPTFMT_OK)
                goto done;
            read_bytes += (int64_t)(ot[k].numel * sizeof(float));
        }
        if ((s = write_data(q, w, name, ot[k].type, src, ot[k].numel, buf_elems)) != CKPTFMT_OK)
            goto done;
        done_bytes += (int64_t)ot[k].nbytes;
        if (res)
            res->n_type[ot[k].type == CKPTFMT_GGML_F32 ? 0 : ot[k].type == CKPTFMT_GGML_F16 ? 1 : 2]++;
        if (o.progress && o.progress(o.progress_user, done_bytes, (int64_t)total, name)) {
            s = fmt_error(CKPTFMT_EINTERRUPTED, "%s: interrupted", out);
            goto done;
        }
    }
    if ((s = wq_drain(q)) != CKPTFMT_OK || (s = ckptfmt_gguf_writer_finish(w, o.fsync)) != CKPTFMT_OK)
        goto done;
    /* the file into place: never over an existing one; then the directory entry made durable */
    if ((s = tmpdir_commit(file, out, 0)) != CKPTFMT_OK)
        goto done;
    if (o.fsync) {
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", out);
        if ((s = fsync_path(dirname(parent), 1)) != CKPTFMT_OK)
            goto done;
    }
    if (res) {
        res->tensors = nout;
        res->file_bytes = (int64_t)ckptfmt_gguf_writer_file_size(w);
        res->read_bytes = read_bytes;
        res->step = step;
        res->config = cfg;
    }
    s = fmt_ok();
done:
    wq_free(q); /* joins the thread before the writer goes */
    ckptfmt_gguf_writer_free(w); /* removes an unfinished file */
    if (tmp[0])
        tmpdir_remove(tmp);
    ckptfmt_gpt2_weights_close(src_w);
    free(ot);
    free(src);
    return s;
}
