/*
 * ckptfmt.h -- interchange formats for libckpt checkpoints: the GPT-2 naming map shared by every
 * exporter, importer and the generator, safetensors (writer, strict reader, sharded index), and
 * the conversions between a libckpt checkpoint and a Hugging Face style model directory.
 *
 * The one public header of the ckpt_formats library (formats/). Every name is prefixed
 * ckptfmt_ / CKPTFMT_. Sections:
 *   1. errors                 status codes, the thread's last message
 *   2. GPT-2 model map        configuration, one table trainer <-> Hugging Face <-> GGUF names,
 *                             the transposition rule, weights in the trainer's layout from any source
 *   3. safetensors            dtypes, writer, strict reader, model.safetensors.index.json
 *   4. conversions            checkpoint -> safetensors model directory, safetensors -> checkpoint
 *   5. GGUF                   value and ggml types, q8_0/f16 codecs, writer, strict reader, the
 *                             checkpoint -> GGUF export (llama.cpp's gpt2)
 *
 * Everything read from disk is untrusted: sizes and counts are validated before anything is
 * allocated, arithmetic is overflow-checked, and every refusal is a status with a message naming
 * the file, the tensor and the field at fault.
 *
 * Thread safety: distinct handles may be used from distinct threads; the last error is
 * thread-local.
 */
#ifndef CKPTFMT_H
#define CKPTFMT_H

#include <stddef.h>
#include <stdint.h>

#include <ckpt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------- */
/* 1. Errors                                                                  */
/* ------------------------------------------------------------------------- */

typedef enum ckptfmt_status {
    CKPTFMT_OK = 0,
    CKPTFMT_EINVAL = -1,       /* bad argument (NULL, out of range, bad option) */
    CKPTFMT_ENOMEM = -2,       /* allocation failed */
    CKPTFMT_EIO = -3,          /* the file system refused (open, read, write, rename, disk full) */
    CKPTFMT_ENOTFOUND = -4,    /* no such file, tensor, key */
    CKPTFMT_EMALFORMED = -5,   /* the input violates its format (the message names tensor and field) */
    CKPTFMT_EUNSUPPORTED = -6, /* valid input this code cannot handle (a dtype, a model shape) */
    CKPTFMT_EEXIST = -7,       /* the destination exists */
    CKPTFMT_ECKPT = -8,        /* libckpt refused (the message carries libckpt's) */
    CKPTFMT_EINTERRUPTED = -9  /* the caller's progress callback asked to stop */
} ckptfmt_status;

/* The calling thread's last error message ("" when none). Never NULL; valid until the next
 * ckptfmt call on this thread. */
const char *ckptfmt_errmsg(void);

/* The calling thread's last error status (CKPTFMT_OK when none). */
int ckptfmt_errcode(void);

/* A static name for a status, e.g. "CKPTFMT_EMALFORMED". */
const char *ckptfmt_status_name(int status);

/* ------------------------------------------------------------------------- */
/* 2. GPT-2 model map                                                         */
/* ------------------------------------------------------------------------- */

/*
 * The trainer's GPT-2 (trainer/model/gpt.h) is the architecture of Hugging Face's GPT2LMHeadModel
 * and of GGUF's "gpt2": token + learned position embeddings, pre-LayerNorm blocks (eps 1e-5),
 * causal attention with a fused QKV projection whose output rows are [Q | K | V] (each C wide,
 * heads contiguous: head h of Q is output rows h*hs .. h*hs+hs-1, as GPT-2 splits c_attn), GELU
 * with the tanh approximation ("gelu_new"), a final LayerNorm and the LM head tied to wte. Only
 * the storage differs:
 *
 *   trainer (libckpt checkpoint)   Hugging Face (safetensors)           GGUF gpt2
 *   model/wte          [V, C]      transformer.wte.weight    [V, C]     token_embd.weight     ne [C, V]
 *   model/wpe          [T, C]      transformer.wpe.weight    [T, C]     position_embd.weight  ne [C, T]
 *   model/h.N.ln1.w|b  [C]         transformer.h.N.ln_1.weight|bias     blk.N.attn_norm.weight|bias
 *   model/h.N.attn.qkv.w [3C, C]   transformer.h.N.attn.c_attn.weight [C, 3C] (T)
 *                                                                       blk.N.attn_qkv.weight ne [C, 3C]
 *   model/h.N.attn.qkv.b [3C]      transformer.h.N.attn.c_attn.bias     blk.N.attn_qkv.bias
 *   model/h.N.attn.proj.w [C, C]   transformer.h.N.attn.c_proj.weight (T) blk.N.attn_output.weight
 *   model/h.N.attn.proj.b          transformer.h.N.attn.c_proj.bias     blk.N.attn_output.bias
 *   model/h.N.ln2.w|b              transformer.h.N.ln_2.weight|bias     blk.N.ffn_norm.weight|bias
 *   model/h.N.mlp.fc.w [4C, C]     transformer.h.N.mlp.c_fc.weight [C, 4C] (T) blk.N.ffn_up.weight ne [C, 4C]
 *   model/h.N.mlp.fc.b [4C]        transformer.h.N.mlp.c_fc.bias        blk.N.ffn_up.bias
 *   model/h.N.mlp.proj.w [C, 4C]   transformer.h.N.mlp.c_proj.weight [4C, C] (T) blk.N.ffn_down.weight ne [4C, C]
 *   model/h.N.mlp.proj.b [C]       transformer.h.N.mlp.c_proj.bias      blk.N.ffn_down.bias
 *   model/lnf.w|b      [C]         transformer.ln_f.weight|bias         output_norm.weight|bias
 *   (tied: no tensor)              (tied: lm_head.weight not written)   output.weight = copy of wte
 *
 * The transposition rule: the trainer stores a linear layer's weight as PyTorch does, [out, in]
 * row-major (y = x W^T + b). Hugging Face's GPT-2 uses Conv1D, which stores [in, out] (y = x W + b):
 * the transpose, marked (T). GGUF lists dims fastest first (ne0 = the row length), so ggml's
 * [ne0, ne1] = [in, out] is exactly the trainer's row-major bytes: GGUF needs no transposition,
 * only the dims reversed. Embeddings and 1-D tensors are never transposed.
 *
 * API for the exporters (the GGUF module uses the same calls):
 *   ckptfmt_gpt2_config cfg;  ckptfmt_gpt2_config_from_attrs(ckpt_reader_attrs(r), &cfg);
 *   for (int i = 0; i < ckptfmt_gpt2_num_tensors(&cfg); i++) {
 *       ckptfmt_gpt2_tensor t;  ckptfmt_gpt2_tensor_info(&cfg, i, &t);
 *       // t.name[CKPTFMT_NAMES_TRAINER] "model/h.0.attn.qkv.w", t.name[CKPTFMT_NAMES_HF] ...,
 *       // t.name[CKPTFMT_NAMES_GGUF] "blk.0.attn_qkv.weight"; t.ndim, t.shape (trainer's);
 *       // t.hf_transposed; ckptfmt_gpt2_hf_shape(&t, s); ckptfmt_gpt2_gguf_ne(&t, ne);
 *   }
 * or, for data in the trainer's layout from a checkpoint OR a safetensors model alike,
 * ckptfmt_gpt2_weights_open / _read (below).
 */

/* The LayerNorm epsilon of the trainer's model (trainer/model/layernorm.c). */
#define CKPTFMT_GPT2_LN_EPS 1e-5
/* The byte vocabulary has no special tokens. bos and eos are declared (config.json, GGUF) as
 * token 0, the NUL byte, which text never contains; nothing is prepended to prompts. */
#define CKPTFMT_GPT2_BYTE_BOS 0
#define CKPTFMT_GPT2_BYTE_EOS 0
/* Tensors the map deliberately does not list (the tied head). */
#define CKPTFMT_GPT2_HF_LM_HEAD "lm_head.weight"
#define CKPTFMT_GPT2_GGUF_OUTPUT "output.weight"
/* The trainer's checkpoint tensors are "model/" + the model's parameter name. */
#define CKPTFMT_GPT2_TRAINER_PREFIX "model/"
/* Longest name the map produces, with the NUL. */
#define CKPTFMT_GPT2_NAME_MAX 64

typedef struct ckptfmt_gpt2_config {
    int n_layer;               /* L */
    int n_head;                /* H, divides n_embd */
    int n_embd;                /* C */
    int n_ctx;                 /* T: rows of wpe (the trainer's max_seq; HF n_positions = n_ctx) */
    int vocab;                 /* V */
    double layer_norm_epsilon; /* CKPTFMT_GPT2_LN_EPS for the trainer's model */
    int bos_token_id, eos_token_id;
} ckptfmt_gpt2_config;

/* CKPTFMT_OK when every field is in range: n_layer 0..4096, n_head >= 1 dividing n_embd,
 * n_embd 1..65536, n_ctx 1..2^20, vocab 1..2^24 (the trainer's limits), epsilon finite > 0, token
 * ids in [0, vocab). Else CKPTFMT_EUNSUPPORTED naming the field. */
int ckptfmt_gpt2_config_check(const ckptfmt_gpt2_config *cfg);

/* Reads a trainer checkpoint's model configuration from its attributes (config/n_layer,
 * config/n_head, config/n_embd, config/max_seq, config/vocab; epsilon and token ids are the
 * trainer's constants) and checks it. CKPTFMT_ENOTFOUND naming the first missing key. */
int ckptfmt_gpt2_config_from_attrs(const ckpt_state *attrs, ckptfmt_gpt2_config *cfg);

/* Writes the configuration as the trainer's config/ attributes (what shard-train --init-from
 * reads). */
int ckptfmt_gpt2_config_to_attrs(const ckptfmt_gpt2_config *cfg, ckpt_state *attrs);

/* Writes a Hugging Face GPT-2 config.json at path (model_type gpt2, GPT2LMHeadModel, vocab_size,
 * n_positions, n_ctx, n_embd, n_layer, n_head, n_inner null, activation_function gelu_new,
 * layer_norm_epsilon, bos/eos ids, tie_word_embeddings true, torch_dtype). `torch_dtype` is
 * "float32", "float16" or "bfloat16" (NULL: float32). */
int ckptfmt_gpt2_config_write_json(const ckptfmt_gpt2_config *cfg, const char *torch_dtype, const char *path);

/* Reads a Hugging Face GPT-2 config.json (at most 1 MiB). Refuses, naming the key, what the
 * trainer's model does not compute: model_type other than gpt2, activation_function other than
 * gelu_new, n_inner other than null or 4*n_embd, tie_word_embeddings false, scale_attn_weights
 * false, scale_attn_by_inverse_layer_idx or reorder_and_upcast_attn true; n_ctx, when present,
 * must equal n_positions. Missing bos/eos ids default to CKPTFMT_GPT2_BYTE_BOS/EOS. */
int ckptfmt_gpt2_config_read_json(const char *path, ckptfmt_gpt2_config *cfg);

typedef enum ckptfmt_naming {
    CKPTFMT_NAMES_TRAINER = 0, /* "model/h.0.attn.qkv.w" (as in the checkpoint) */
    CKPTFMT_NAMES_HF = 1,      /* "transformer.h.0.attn.c_attn.weight" */
    CKPTFMT_NAMES_GGUF = 2     /* "blk.0.attn_qkv.weight" */
} ckptfmt_naming;

typedef enum ckptfmt_gpt2_role {
    CKPTFMT_GPT2_EMBEDDING = 0, /* wte, wpe */
    CKPTFMT_GPT2_WEIGHT = 1,    /* a linear layer's weight matrix */
    CKPTFMT_GPT2_BIAS = 2,      /* a linear layer's bias */
    CKPTFMT_GPT2_NORM = 3       /* a LayerNorm's weight or bias */
} ckptfmt_gpt2_role;

typedef struct ckptfmt_gpt2_tensor {
    char name[3][CKPTFMT_GPT2_NAME_MAX]; /* indexed by ckptfmt_naming */
    int ndim;                            /* 1 or 2 */
    int64_t shape[2];                    /* the trainer's row-major shape ([out, in] for weights) */
    int hf_transposed;                   /* 1: Hugging Face stores the transpose, [in, out] */
    ckptfmt_gpt2_role role;
    int layer;                           /* block index, -1 outside the blocks */
} ckptfmt_gpt2_tensor;

/* Number of tensors of the model: 4 + 12 n_layer (the trainer's parameters, in its table order:
 * wte, wpe, the 12 of each block, lnf.w, lnf.b), or -1 for an invalid config. */
int ckptfmt_gpt2_num_tensors(const ckptfmt_gpt2_config *cfg);

/* Tensor i of the map. */
int ckptfmt_gpt2_tensor_info(const ckptfmt_gpt2_config *cfg, int i, ckptfmt_gpt2_tensor *out);

/* The index of the tensor called `name` in `naming`; CKPTFMT_ENOTFOUND when the map has no such
 * name (e.g. a layer beyond n_layer, or lm_head.weight). */
int ckptfmt_gpt2_find(const ckptfmt_gpt2_config *cfg, ckptfmt_naming naming, const char *name, int *i);

/* The Hugging Face shape of a tensor (the trainer's shape, reversed when hf_transposed). */
void ckptfmt_gpt2_hf_shape(const ckptfmt_gpt2_tensor *t, int64_t shape[2]);

/* The GGUF dims, fastest first: ne[0] = shape[ndim-1], ne[1] = shape[0] for 2-D; ne[1] = 1 for 1-D. */
void ckptfmt_gpt2_gguf_ne(const ckptfmt_gpt2_tensor *t, uint64_t ne[2]);

/* dst[c * rows + r] = src[r * cols + c] for elements of elem_size bytes (1, 2, 4 or 8), cache
 * blocked. src and dst must not overlap. */
void ckptfmt_transpose(void *dst, const void *src, int64_t rows, int64_t cols, size_t elem_size);

/*
 * A GPT-2's weights in the trainer's layout (f32, row-major, trainer shapes), whatever they are
 * stored in:
 *   - a libckpt checkpoint directory with trainer names (any world size, layout, compression;
 *     every piece checksum-verified; dtypes converted to f32 by the library);
 *   - a safetensors file with Hugging Face names (config.json beside it), a
 *     model.safetensors.index.json, or a model directory holding either; any float dtype
 *     (f32/f16/bf16/f64, converted to f32), Conv1D weights transposed back. An lm_head.weight, if
 *     present, must equal wte (the trainer's head is tied); attn.bias / attn.masked_bias buffers are
 *     ignored; any other tensor is an error naming it.
 * Memory: what the caller passes to _read; the safetensors source reads by offset (pread), one
 * tensor at a time.
 */
typedef struct ckptfmt_gpt2_weights ckptfmt_gpt2_weights;

int ckptfmt_gpt2_weights_open(const char *path, ckptfmt_gpt2_weights **out);
void ckptfmt_gpt2_weights_close(ckptfmt_gpt2_weights *w);
const ckptfmt_gpt2_config *ckptfmt_gpt2_weights_config(const ckptfmt_gpt2_weights *w);
/* "checkpoint" or "safetensors". */
const char *ckptfmt_gpt2_weights_kind(const ckptfmt_gpt2_weights *w);
/* The training step the weights come from (the checkpoint's "step", the safetensors metadata's
 * "step"), -1 when unknown. */
int64_t ckptfmt_gpt2_weights_step(const ckptfmt_gpt2_weights *w);
/* Fills dst (numel of tensor i floats) with map tensor i in the trainer's layout. */
int ckptfmt_gpt2_weights_read(ckptfmt_gpt2_weights *w, int i, float *dst);

/* ------------------------------------------------------------------------- */
/* 3. safetensors                                                             */
/* ------------------------------------------------------------------------- */

/*
 * The format (github.com/huggingface/safetensors): an 8-byte little-endian unsigned header length
 * N, N bytes of a UTF-8 JSON object, then the data. The object maps each tensor name to
 * {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]} (offsets relative to the data
 * start, END exclusive), plus an optional "__metadata__" object of string values. Data are
 * row-major, little-endian, contiguous: sorted by offset the tensors start at 0, each where the
 * previous ends, and the last one ends at the file's end. The reference writer sorts tensors by
 * dtype (descending in its order, i.e. 8-byte types first) and then by name, writes compact JSON
 * with "__metadata__" first, and pads the header with spaces to a multiple of 8. Headers above
 * 100,000,000 bytes are refused (the reference's limit).
 */
#define CKPTFMT_ST_MAX_HEADER 100000000ULL
#define CKPTFMT_ST_MAX_NDIM 8

/* In the reference's order (which its sort uses). */
typedef enum ckptfmt_st_dtype {
    CKPTFMT_ST_BOOL = 0,
    CKPTFMT_ST_F4,
    CKPTFMT_ST_F6_E2M3,
    CKPTFMT_ST_F6_E3M2,
    CKPTFMT_ST_U8,
    CKPTFMT_ST_I8,
    CKPTFMT_ST_F8_E5M2,
    CKPTFMT_ST_F8_E4M3,
    CKPTFMT_ST_F8_E8M0,
    CKPTFMT_ST_I16,
    CKPTFMT_ST_U16,
    CKPTFMT_ST_F16,
    CKPTFMT_ST_BF16,
    CKPTFMT_ST_I32,
    CKPTFMT_ST_U32,
    CKPTFMT_ST_F32,
    CKPTFMT_ST_C64,
    CKPTFMT_ST_F64,
    CKPTFMT_ST_I64,
    CKPTFMT_ST_U64,
    CKPTFMT_ST_DTYPE_COUNT
} ckptfmt_st_dtype;

/* "F32", "BF16", ...; NULL for a value out of range. */
const char *ckptfmt_st_dtype_name(ckptfmt_st_dtype d);
/* Bits per element (4 for F4, 6 for F6_*, 8..64 for the others), 0 when out of range. */
int ckptfmt_st_dtype_bits(ckptfmt_st_dtype d);
/* CKPTFMT_ENOTFOUND for a name the format does not define (names are case-sensitive). */
int ckptfmt_st_dtype_from_name(const char *name, ckptfmt_st_dtype *out);
/* libckpt's dtypes have a safetensors equivalent each (bool -> BOOL). */
ckptfmt_st_dtype ckptfmt_st_dtype_from_ckpt(ckpt_dtype d);
/* The libckpt dtype of a safetensors one; CKPTFMT_EUNSUPPORTED for those libckpt has no
 * equivalent of (U16, U32, U64, C64, F4, F6_*, F8_*). */
int ckptfmt_st_dtype_to_ckpt(ckptfmt_st_dtype d, ckpt_dtype *out);

/* -- writer: declare every tensor, begin (the header is written), then the data of each tensor
 *    in order, bytes appended front to back; finish checks completeness. The writer writes one
 *    file at the path it is given; atomic placement (temporary name + rename) is the caller's. */
typedef struct ckptfmt_st_writer ckptfmt_st_writer;

int ckptfmt_st_writer_create(ckptfmt_st_writer **out);
/* Declares a tensor. Names are unique, 1..4096 bytes, valid UTF-8, not "__metadata__". */
int ckptfmt_st_writer_add(ckptfmt_st_writer *w, const char *name, ckptfmt_st_dtype dtype, int ndim,
                          const int64_t *shape);
/* A "__metadata__" entry (both strings, copied); the header lists them sorted by key. */
int ckptfmt_st_writer_set_metadata(ckptfmt_st_writer *w, const char *key, const char *value);
/* Sorts the tensors as the reference writer does, creates `path` (O_EXCL: CKPTFMT_EEXIST when it
 * exists) and writes the header. */
int ckptfmt_st_writer_begin(ckptfmt_st_writer *w, const char *path);
/* Tensors in file order (valid after begin): the k-th tensor's name and byte size. */
int ckptfmt_st_writer_num_tensors(const ckptfmt_st_writer *w);
int ckptfmt_st_writer_tensor(const ckptfmt_st_writer *w, int k, const char **name, uint64_t *nbytes);
/* Bytes of the file once complete: 8 + header + data (valid after begin). */
uint64_t ckptfmt_st_writer_file_size(const ckptfmt_st_writer *w);
/* Appends n bytes to tensor `name`'s data (pwrite at its offset; tensors may be written in any
 * order, each front to back). More than the tensor holds is CKPTFMT_EINVAL. */
int ckptfmt_st_writer_write(ckptfmt_st_writer *w, const char *name, const void *data, size_t n);
/* Checks that every byte was written, optionally fsyncs, and closes the file. */
int ckptfmt_st_writer_finish(ckptfmt_st_writer *w, int do_fsync);
/* Frees the writer; a file begun but not finished is removed. */
void ckptfmt_st_writer_free(ckptfmt_st_writer *w);

/* -- strict reader */
typedef struct ckptfmt_st_tensor {
    const char *name;
    ckptfmt_st_dtype dtype;
    int ndim;
    int64_t shape[CKPTFMT_ST_MAX_NDIM];
    uint64_t begin, end; /* data_offsets, relative to the data start */
} ckptfmt_st_tensor;

typedef struct ckptfmt_st_file ckptfmt_st_file;

/*
 * Opens a safetensors file and validates its header against its size. Refusals
 * (CKPTFMT_EMALFORMED unless said otherwise), each with a message naming file, tensor and field:
 * a file shorter than 8 bytes; a header length over 100,000,000 or past the end of the file;
 * a header that is not a valid UTF-8 JSON object, or holds a duplicate name; a tensor entry that
 * is not an object of exactly dtype/shape/data_offsets, an unknown dtype, a shape that is not an
 * array of non-negative integers (more than CKPTFMT_ST_MAX_NDIM dims: CKPTFMT_EUNSUPPORTED), a
 * byte size overflowing 64 bits or not a whole number of bytes, data_offsets that are not two
 * integers BEGIN <= END, that do not match shape and dtype, reach past the end of the file,
 * overlap another tensor or leave a gap; __metadata__ not an object of strings; data not ending
 * exactly at the end of the file. Reads only the header; tensor data are read by offset later.
 */
int ckptfmt_st_open(const char *path, ckptfmt_st_file **out);

/* The same validation of a whole file image held in memory (tests, fuzzing); `label` names it in
 * messages. The memory must outlive the handle. */
int ckptfmt_st_open_memory(const void *data, size_t size, const char *label, ckptfmt_st_file **out);

void ckptfmt_st_close(ckptfmt_st_file *f);

/* Tensors in data-offset order. */
int ckptfmt_st_num_tensors(const ckptfmt_st_file *f);
int ckptfmt_st_tensor_info(const ckptfmt_st_file *f, int i, ckptfmt_st_tensor *info);
/* CKPTFMT_ENOTFOUND when absent. */
int ckptfmt_st_find(const ckptfmt_st_file *f, const char *name, int *i);
/* "__metadata__" entries, sorted by key; NULL when the key is absent. */
int ckptfmt_st_num_metadata(const ckptfmt_st_file *f);
int ckptfmt_st_metadata_at(const ckptfmt_st_file *f, int k, const char **key, const char **value);
const char *ckptfmt_st_metadata(const ckptfmt_st_file *f, const char *key);
/* The header length N (data start at 8 + N) and the file's size. */
uint64_t ckptfmt_st_header_len(const ckptfmt_st_file *f);
uint64_t ckptfmt_st_file_size(const ckptfmt_st_file *f);
/* Reads bytes [offset, offset + n) of tensor i's data into buf (pread). Out of the tensor's range
 * is CKPTFMT_EINVAL; a file that shrank since open is CKPTFMT_EIO. */
int ckptfmt_st_read(ckptfmt_st_file *f, int i, uint64_t offset, void *buf, size_t n);

/* -- model.safetensors.index.json: {"metadata": {"total_size": N}, "weight_map": {name: file}} */
typedef struct ckptfmt_st_index ckptfmt_st_index;

/* Reads an index (at most 100,000,000 bytes). File names must be plain names of files in the
 * index's directory (no '/', not "." or ".."), ending in ".safetensors"; names appear once.
 * total_size, when present, must be a non-negative integer. */
int ckptfmt_st_index_read(const char *path, ckptfmt_st_index **out);
void ckptfmt_st_index_free(ckptfmt_st_index *x);
/* The distinct shard files, sorted. */
int ckptfmt_st_index_num_files(const ckptfmt_st_index *x);
const char *ckptfmt_st_index_file(const ckptfmt_st_index *x, int k);
/* weight_map entries, sorted by tensor name; the file of each. */
int ckptfmt_st_index_num_tensors(const ckptfmt_st_index *x);
int ckptfmt_st_index_tensor(const ckptfmt_st_index *x, int i, const char **name, const char **file);
/* metadata.total_size, -1 when absent. */
int64_t ckptfmt_st_index_total_size(const ckptfmt_st_index *x);

/* Writes an index at path: names[i] lives in files[i] (n entries, any order; written sorted by
 * name), total_size = the tensors' data bytes. */
int ckptfmt_st_index_write(const char *path, int n, const char *const *names, const char *const *files,
                           uint64_t total_size);

/* ------------------------------------------------------------------------- */
/* 4. Conversions                                                             */
/* ------------------------------------------------------------------------- */

/* Called after each tensor (and between pieces of a large one) with the bytes done so far of
 * `total`; returning non-zero stops the conversion (CKPTFMT_EINTERRUPTED, nothing left behind). */
typedef int (*ckptfmt_progress_fn)(void *user, int64_t done, int64_t total, const char *tensor);

typedef enum ckptfmt_names_mode {
    CKPTFMT_MODE_HF_GPT2 = 0, /* the trainer's GPT-2 <-> Hugging Face GPT-2 names and layouts */
    CKPTFMT_MODE_AS_IS = 1    /* any checkpoint, every tensor, names and layouts unchanged */
} ckptfmt_names_mode;

#define CKPTFMT_EXPORT_OPTIONS_VERSION 1

typedef struct ckptfmt_export_options {
    unsigned version;           /* CKPTFMT_EXPORT_OPTIONS_VERSION */
    ckptfmt_names_mode names;   /* default CKPTFMT_MODE_HF_GPT2 */
    int dtype_set;              /* 1: write floating tensors as `dtype` (f32, f16 or bf16; rounded to
                                   nearest even by libckpt) */
    ckpt_dtype dtype;
    int64_t max_shard_size;     /* > 0: the sharded form, files of at most this many data bytes (a
                                   larger tensor gets a file of its own); 0: one model.safetensors */
    const char *source;         /* __metadata__ "source" (NULL: the checkpoint's path) */
    int fsync;                  /* fsync files and directories before the rename; default 1 */
    int64_t buffer_bytes;       /* the output buffer; default 4 MiB */
    ckptfmt_progress_fn progress;
    void *progress_user;
} ckptfmt_export_options;

void ckptfmt_export_options_init(ckptfmt_export_options *o);

typedef struct ckptfmt_export_result {
    int tensors;             /* tensors written */
    int files;               /* .safetensors files written */
    int64_t data_bytes;      /* tensor bytes written (the index's total_size) */
    int64_t file_bytes;      /* bytes of every file of the directory */
    int64_t read_bytes;      /* bytes read from the checkpoint */
    int64_t step;            /* the checkpoint's step, -1 when it has none */
} ckptfmt_export_result;

/*
 * Writes the model directory `out` from the committed checkpoint `ckpt`: model.safetensors (or
 * model-0000K-of-0000N.safetensors + model.safetensors.index.json with max_shard_size) and, in
 * CKPTFMT_MODE_HF_GPT2, config.json. Built in `out`.tmp-<hex> beside it and renamed into place:
 * nothing is left at `out` on failure; an existing `out` is CKPTFMT_EEXIST. Streams tensor by
 * tensor: memory is the largest tensor (read whole when it must be transposed, else in buffer-sized
 * slabs) plus the output buffer. `res` may be NULL.
 */
int ckptfmt_export_safetensors(const char *ckpt, const char *out, const ckptfmt_export_options *o,
                               ckptfmt_export_result *res);

#define CKPTFMT_IMPORT_OPTIONS_VERSION 1

typedef struct ckptfmt_import_options {
    unsigned version;         /* CKPTFMT_IMPORT_OPTIONS_VERSION */
    ckptfmt_names_mode names; /* default CKPTFMT_MODE_HF_GPT2 */
    int world_size;           /* ranks the checkpoint is sharded for (Shard(0)); default 1 */
    ckpt_save_options save;   /* layout, compression, piece size, fsync of the checkpoint */
    ckptfmt_progress_fn progress;
    void *progress_user;
} ckptfmt_import_options;

void ckptfmt_import_options_init(ckptfmt_import_options *o);

typedef struct ckptfmt_import_result {
    int tensors;
    int64_t bytes;   /* tensor bytes written to the checkpoint */
    int64_t step;    /* the step recorded (from __metadata__), -1 when none */
    ckptfmt_gpt2_config config; /* CKPTFMT_MODE_HF_GPT2: the model's configuration */
} ckptfmt_import_result;

/*
 * Writes a committed libckpt checkpoint at `out` (sharded Shard(0) for world_size ranks: what
 * world_size ranks of shard-train would have saved) from a safetensors file, an index.json or a
 * model directory. CKPTFMT_MODE_HF_GPT2: trainer names (model/...), f32, config/ attributes --
 * a checkpoint `shard-train --init-from` accepts; a model the trainer cannot run (config.json
 * refused, vocabulary below 256 bytes, shapes out of the trainer's limits) is
 * CKPTFMT_EUNSUPPORTED naming the field. CKPTFMT_MODE_AS_IS: every tensor with its name and dtype
 * (names must be valid libckpt names). Reads by offset, one tensor (hf-gpt2) or one checksum
 * piece (as-is) at a time. `res` may be NULL.
 */
int ckptfmt_import_safetensors(const char *src, const char *out, const ckptfmt_import_options *o,
                               ckptfmt_import_result *res);

/* ------------------------------------------------------------------------- */
/* 5. GGUF                                                                    */
/* ------------------------------------------------------------------------- */

/*
 * GGUF version 3 (github.com/ggerganov/ggml, docs/gguf.md), little-endian:
 *   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
 *   kv_count x  { string key | u32 value type | value }
 *   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset }
 *   padding to general.alignment (default 32), then the tensor data; each tensor's offset is
 *   relative to the data start and a multiple of the alignment.
 * A string is a u64 byte length and that many UTF-8 bytes (no NUL). An array is a u32 element type,
 * a u64 count and the elements. ne[0] is the fastest dimension: a row-major [rows, cols] matrix
 * has ne = [cols, rows].
 */

/* Value types of the key-value section. */
typedef enum ckptfmt_gguf_type {
    CKPTFMT_GGUF_UINT8 = 0,
    CKPTFMT_GGUF_INT8 = 1,
    CKPTFMT_GGUF_UINT16 = 2,
    CKPTFMT_GGUF_INT16 = 3,
    CKPTFMT_GGUF_UINT32 = 4,
    CKPTFMT_GGUF_INT32 = 5,
    CKPTFMT_GGUF_FLOAT32 = 6,
    CKPTFMT_GGUF_BOOL = 7,
    CKPTFMT_GGUF_STRING = 8,
    CKPTFMT_GGUF_ARRAY = 9,
    CKPTFMT_GGUF_UINT64 = 10,
    CKPTFMT_GGUF_INT64 = 11,
    CKPTFMT_GGUF_FLOAT64 = 12,
    CKPTFMT_GGUF_TYPE_COUNT = 13
} ckptfmt_gguf_type;

/* "UINT8", ..., "FLOAT64"; NULL out of range. */
const char *ckptfmt_gguf_type_name(ckptfmt_gguf_type t);
/* Bytes of a scalar value type (1..8), 0 for STRING, ARRAY or out of range. */
size_t ckptfmt_gguf_type_size(ckptfmt_gguf_type t);

/* ggml tensor types (the numbering of ggml.h). The reader knows the block geometry of all of
 * them; the encoder writes F32, F16, BF16 and Q8_0. */
typedef enum ckptfmt_ggml_type {
    CKPTFMT_GGML_F32 = 0,
    CKPTFMT_GGML_F16 = 1,
    CKPTFMT_GGML_Q4_0 = 2,
    CKPTFMT_GGML_Q4_1 = 3,
    CKPTFMT_GGML_Q5_0 = 6,
    CKPTFMT_GGML_Q5_1 = 7,
    CKPTFMT_GGML_Q8_0 = 8,
    CKPTFMT_GGML_Q8_1 = 9,
    CKPTFMT_GGML_Q2_K = 10,
    CKPTFMT_GGML_Q3_K = 11,
    CKPTFMT_GGML_Q4_K = 12,
    CKPTFMT_GGML_Q5_K = 13,
    CKPTFMT_GGML_Q6_K = 14,
    CKPTFMT_GGML_Q8_K = 15,
    CKPTFMT_GGML_IQ2_XXS = 16,
    CKPTFMT_GGML_IQ2_XS = 17,
    CKPTFMT_GGML_IQ3_XXS = 18,
    CKPTFMT_GGML_IQ1_S = 19,
    CKPTFMT_GGML_IQ4_NL = 20,
    CKPTFMT_GGML_IQ3_S = 21,
    CKPTFMT_GGML_IQ2_S = 22,
    CKPTFMT_GGML_IQ4_XS = 23,
    CKPTFMT_GGML_I8 = 24,
    CKPTFMT_GGML_I16 = 25,
    CKPTFMT_GGML_I32 = 26,
    CKPTFMT_GGML_I64 = 27,
    CKPTFMT_GGML_F64 = 28,
    CKPTFMT_GGML_IQ1_M = 29,
    CKPTFMT_GGML_BF16 = 30,
    CKPTFMT_GGML_Q4_0_4_4 = 31,
    CKPTFMT_GGML_Q4_0_4_8 = 32,
    CKPTFMT_GGML_Q4_0_8_8 = 33,
    CKPTFMT_GGML_TQ1_0 = 34,
    CKPTFMT_GGML_TQ2_0 = 35,
    CKPTFMT_GGML_TYPE_COUNT = 36
} ckptfmt_ggml_type;

/* Q8_0: blocks of 32 elements, each an f16 scale d followed by 32 int8 q; x = q * d. */
#define CKPTFMT_Q8_0_BLOCK 32
#define CKPTFMT_Q8_0_BYTES 34

/* The type's name ("F32", "Q8_0", ...), elements per block and bytes per block. CKPTFMT_EINVAL
 * for a number ggml does not define (4, 5 and >= 36). Any output pointer may be NULL. */
int ckptfmt_ggml_type_info(ckptfmt_ggml_type t, const char **name, int *block, int *block_bytes);
/* Parses "f32", "F16", "q8_0", ... (case-insensitive). CKPTFMT_ENOTFOUND when unknown. */
int ckptfmt_ggml_type_from_name(const char *name, ckptfmt_ggml_type *out);
/* Bytes of n elements of t; CKPTFMT_EMALFORMED when n is not a whole number of blocks or the
 * size overflows 64 bits. */
int ckptfmt_ggml_nbytes(ckptfmt_ggml_type t, uint64_t n, uint64_t *bytes);

/* Encodes n floats as t (F32, F16 and BF16 rounded to nearest even, Q8_0 exactly as ggml's
 * reference quantize_row_q8_0: d = max|x| / 127, q = round-half-away(x / d) computed with
 * 1/d in f32, d stored as f16). dst holds ckptfmt_ggml_nbytes(t, n). CKPTFMT_EUNSUPPORTED for
 * other types, CKPTFMT_EINVAL when n is not a whole number of blocks. */
int ckptfmt_ggml_encode(ckptfmt_ggml_type t, const float *src, uint64_t n, void *dst);
/* The inverse (F32, F16, BF16, Q8_0 to f32). */
int ckptfmt_ggml_decode(ckptfmt_ggml_type t, const void *src, uint64_t n, float *dst);

/* A scalar key value: `type` selects the member (u for UINT*, i for INT*, f for FLOAT*, b for
 * BOOL). */
typedef struct ckptfmt_gguf_value {
    ckptfmt_gguf_type type;
    union {
        uint64_t u;
        int64_t i;
        double f;
        int b;
    };
} ckptfmt_gguf_value;

/* The byte-level vocabulary's token for byte b (0..255), as GPT-2's byte-to-unicode table
 * writes it: printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves as the
 * code point of the same value, every other byte for code point 256 + its rank among them
 * (space is U+0120 'Ġ', newline U+010A 'Ċ'). Returns the NUL-terminated UTF-8 string (static). */
const char *ckptfmt_gguf_byte_token(int b);

/* -- writer: set keys and declare tensors, begin (the header is written), then the data of each
 *    tensor in declaration order. The writer writes one file at the path it is given; atomic
 *    placement (temporary name + rename) is the caller's. */
typedef struct ckptfmt_gguf_writer ckptfmt_gguf_writer;

int ckptfmt_gguf_writer_create(ckptfmt_gguf_writer **out);
void ckptfmt_gguf_writer_free(ckptfmt_gguf_writer *w);

/* Keys are 1..65535 bytes of printable ASCII, unique; values are copied. general.alignment is
 * set by the writer (32 unless ckptfmt_gguf_writer_set_alignment says otherwise). */
int ckptfmt_gguf_writer_set(ckptfmt_gguf_writer *w, const char *key, ckptfmt_gguf_value v);
int ckptfmt_gguf_writer_set_string(ckptfmt_gguf_writer *w, const char *key, const char *value);
/* An array of n scalars of elem_type, given as a C array of that type (uint8_t, int8_t, ...,
 * float, double; bool as uint8_t 0/1). n may be 0. */
int ckptfmt_gguf_writer_set_array(ckptfmt_gguf_writer *w, const char *key, ckptfmt_gguf_type elem_type,
                                  uint64_t n, const void *elems);
/* An array of n strings (valid UTF-8 each). n may be 0 (an empty array of STRING). */
int ckptfmt_gguf_writer_set_string_array(ckptfmt_gguf_writer *w, const char *key, uint64_t n,
                                         const char *const *strs);
/* A power of two, 8..65536 (default 32). Before begin. */
int ckptfmt_gguf_writer_set_alignment(ckptfmt_gguf_writer *w, uint32_t alignment);

/* Declares a tensor: name 1..63 bytes (ggml's limit), unique; 1..4 dims ne[0..n_dims-1] >= 1,
 * ne[0] a multiple of the type's block. */
int ckptfmt_gguf_writer_add_tensor(ckptfmt_gguf_writer *w, const char *name, ckptfmt_ggml_type type,
                                   int n_dims, const uint64_t *ne);
/* Creates `path` (O_EXCL: CKPTFMT_EEXIST when it exists) and writes header, key values and tensor
 * infos, offsets padded to the alignment. */
int ckptfmt_gguf_writer_begin(ckptfmt_gguf_writer *w, const char *path);
/* Appends n bytes of tensor data in declaration order (a call may span tensors); the padding
 * between tensors is inserted by the writer. More bytes than declared is CKPTFMT_EINVAL. */
int ckptfmt_gguf_writer_write(ckptfmt_gguf_writer *w, const void *data, size_t n);
/* Bytes of the file once complete (valid after begin). */
uint64_t ckptfmt_gguf_writer_file_size(const ckptfmt_gguf_writer *w);
/* Checks every tensor is complete, pads the file to the alignment, optionally fsyncs, closes.
 * A writer freed before finish removes its file. */
int ckptfmt_gguf_writer_finish(ckptfmt_gguf_writer *w, int do_fsync);

/* -- strict reader */
typedef struct ckptfmt_gguf_file ckptfmt_gguf_file;

typedef struct ckptfmt_gguf_kv {
    const char *key;               /* NUL-terminated copy */
    ckptfmt_gguf_type type;
    ckptfmt_gguf_type array_type;  /* ARRAY: the element type */
    uint64_t array_len;            /* ARRAY: the count */
} ckptfmt_gguf_kv;

#define CKPTFMT_GGUF_MAX_DIMS 4

typedef struct ckptfmt_gguf_tensor {
    const char *name;              /* NUL-terminated copy */
    ckptfmt_ggml_type type;
    int n_dims;
    uint64_t ne[CKPTFMT_GGUF_MAX_DIMS]; /* 1 beyond n_dims */
    uint64_t offset;               /* relative to the data start */
    uint64_t nbytes;
} ckptfmt_gguf_tensor;

/*
 * Opens a GGUF file (mapped read-only) and validates it. Refusals (CKPTFMT_EMALFORMED unless said
 * otherwise), each naming the file, the field and its byte offset: shorter than its header; bad
 * magic; a version other than 2 or 3 (CKPTFMT_EUNSUPPORTED); any string, array or count that
 * reaches past the end of the file; a key that is empty, longer than 65535 bytes, not printable
 * ASCII or repeated; an unknown value type; a nested array (CKPTFMT_EUNSUPPORTED); a string that
 * is not valid UTF-8; a BOOL other than 0 or 1; general.alignment that is not a UINT32 power of
 * two; a tensor name that is empty, longer than 64 bytes or repeated; n_dims outside 1..4; a
 * dimension of 0 or whose product overflows; an unknown ggml type; ne[0] not a multiple of the
 * type's block; an offset not a multiple of the alignment; tensor data that reach past the end of
 * the file or overlap another tensor's. Nothing is allocated before the bytes it describes have
 * been found in the file.
 */
int ckptfmt_gguf_open(const char *path, ckptfmt_gguf_file **out);
/* The same validation of a file image in memory (tests, fuzzing); `label` names it in messages.
 * The memory must outlive the handle. */
int ckptfmt_gguf_open_memory(const void *data, size_t size, const char *label, ckptfmt_gguf_file **out);
void ckptfmt_gguf_close(ckptfmt_gguf_file *f);

uint32_t ckptfmt_gguf_version(const ckptfmt_gguf_file *f);
uint32_t ckptfmt_gguf_alignment(const ckptfmt_gguf_file *f);
/* Byte offset of the data section, and the file's size. */
uint64_t ckptfmt_gguf_data_offset(const ckptfmt_gguf_file *f);
uint64_t ckptfmt_gguf_file_size(const ckptfmt_gguf_file *f);

/* Key values, in file order. */
int ckptfmt_gguf_num_kv(const ckptfmt_gguf_file *f);
int ckptfmt_gguf_kv_info(const ckptfmt_gguf_file *f, int i, ckptfmt_gguf_kv *kv);
/* CKPTFMT_ENOTFOUND when absent. */
int ckptfmt_gguf_find_key(const ckptfmt_gguf_file *f, const char *key, int *i);
/* A scalar value; CKPTFMT_EINVAL when kv i is a string or an array. */
int ckptfmt_gguf_kv_scalar(const ckptfmt_gguf_file *f, int i, ckptfmt_gguf_value *v);
/* A STRING value: pointer into the file (not NUL-terminated) and its length. */
int ckptfmt_gguf_kv_string(const ckptfmt_gguf_file *f, int i, const char **s, uint64_t *len);
/* Element j of an array of scalars / of strings. */
int ckptfmt_gguf_kv_array_scalar(const ckptfmt_gguf_file *f, int i, uint64_t j, ckptfmt_gguf_value *v);
int ckptfmt_gguf_kv_array_string(const ckptfmt_gguf_file *f, int i, uint64_t j, const char **s,
                                 uint64_t *len);

/* Tensors, in file (tensor info) order. */
int ckptfmt_gguf_num_tensors(const ckptfmt_gguf_file *f);
int ckptfmt_gguf_tensor_info(const ckptfmt_gguf_file *f, int i, ckptfmt_gguf_tensor *t);
int ckptfmt_gguf_find_tensor(const ckptfmt_gguf_file *f, const char *name, int *i);
/* Tensor i's bytes (pointer into the mapped file or the caller's memory). */
const void *ckptfmt_gguf_tensor_data(const ckptfmt_gguf_file *f, int i);

/* -- checkpoint -> GGUF (llama.cpp's "gpt2" architecture) */
#define CKPTFMT_GGUF_OPTIONS_VERSION 1

typedef struct ckptfmt_gguf_options {
    unsigned version;            /* CKPTFMT_GGUF_OPTIONS_VERSION */
    ckptfmt_ggml_type type;      /* F32 (default), F16 or Q8_0: the type of the 2-D weights, as
                                    llama.cpp's converter chooses: 1-D tensors and position_embd
                                    stay F32; Q8_0 falls back to F16 for a row that is not a whole
                                    number of blocks */
    const char *name;            /* general.name (NULL: "shard-train GPT-2 step N") */
    const char *source;          /* ckpt.source (NULL: the checkpoint's path) */
    int fsync;                   /* fsync the file and its directory before the rename; default 1 */
    int64_t buffer_bytes;        /* each of the writer thread's three buffers; default 4 MiB */
    ckptfmt_progress_fn progress;
    void *progress_user;
} ckptfmt_gguf_options;

void ckptfmt_gguf_options_init(ckptfmt_gguf_options *o);

typedef struct ckptfmt_gguf_result {
    int tensors;                 /* tensors written (the map's + output.weight) */
    int n_type[3];               /* of them F32, F16, Q8_0 */
    int64_t file_bytes;
    int64_t read_bytes;          /* bytes read from the checkpoint (f32) */
    int64_t step;                /* the checkpoint's step, -1 when it has none */
    ckptfmt_gpt2_config config;
} ckptfmt_gguf_result;

/*
 * Writes the GGUF file `out` from the committed shard-train checkpoint `ckpt` (any world size,
 * layout, compression; every piece checksum-verified), or from whatever else
 * ckptfmt_gpt2_weights_open reads (a Hugging Face GPT-2 safetensors model), with its validation
 * and messages; a model whose vocabulary is not the 256 bytes is CKPTFMT_EUNSUPPORTED. The file
 * holds general.architecture "gpt2", the gpt2.*
 * hyperparameters, the byte-level tokenizer (tokenizer.ggml.model "gpt2", the 256 byte tokens of
 * ckptfmt_gguf_byte_token so that token id = byte value, empty merges, token types all normal,
 * bos/eos, add_bos_token false), the tensors of the GPT-2 map with their GGUF names in ggml
 * dimension order, and output.weight, a copy of the tied embedding; general.name, general.file_type,
 * general.quantization_version, ckpt.source and ckpt.step besides. Streams tensor by tensor:
 * memory is the largest tensor (f32) plus three output buffers, written by a thread while the
 * next is filled. Built under `out`.tmp-<hex> and
 * linked into place: an existing `out` is CKPTFMT_EEXIST, nothing is left behind on failure.
 * `res` may be NULL.
 */
int ckptfmt_export_gguf(const char *ckpt, const char *out, const ckptfmt_gguf_options *o,
                        ckptfmt_gguf_result *res);

#ifdef __cplusplus
}
#endif
#endif /* CKPTFMT_H */
