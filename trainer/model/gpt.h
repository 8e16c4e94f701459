/* GPT-2 compute core: fp32, CPU, llm.c style.
 *
 * Architecture: token embedding wte (V,C) + learned position embedding wpe (Tmax,C); L pre-LayerNorm
 * blocks (LN -> causal multi-head self-attention with fused QKV -> residual, LN -> MLP 4C with GELU
 * (tanh approximation) -> residual); final LayerNorm; LM head tied to wte (logits = x wte^T);
 * softmax cross-entropy.
 *
 * Conventions
 *  - Linear weights follow PyTorch: W is (out, in), y = x W^T + b. Every parameter is its own row-major
 *    tensor; dim 0 is the dimension a sharding layer splits (Shard(0)).
 *  - Activations are (B,T,C) row-major; N = B*T rows.
 *  - Every backward ACCUMULATES (+=) into parameter-gradient buffers; the caller zeroes them.
 *  - Matmuls run through OpenBLAS cblas_sgemm, everything else is OpenMP-parallel over rows / (b,h).
 *    The model drives all parallelism through OpenMP (omp_get_max_threads() threads) and calls BLAS
 *    single-threaded from inside its parallel regions: each compute entry point temporarily sets
 *    openblas_set_num_threads(1) and restores the previous value on return. Results are deterministic
 *    for a fixed thread count.
 *
 * Units (the granularity a fully-sharded layer gathers/frees parameters at):
 *    unit 0       embeddings: wte, wpe
 *    unit 1..L    transformer block l = unit-1: its 12 tensors
 *    unit L+1     final LayerNorm: lnf.w, lnf.b
 *  Tied head: the LM head (unit L+1) reads wte, which belongs to unit 0. gpt_head_forward/backward
 *  therefore take the (gathered) wte and its gradient buffer as explicit extra arguments next to the lnf
 *  parameters. A sharded caller keeps unit 0's gathered wte (or gathers it again) while running the
 *  head, and accumulates the head's dwte contribution into the same full-size wte gradient buffer that
 *  gpt_embed_backward adds to later; unit 0's gradients are complete (ready to reduce-scatter) only after
 *  gpt_embed_backward, which is the last backward call of a step.
 *
 * Per-unit execution order for one training step (what gpt_forward/gpt_backward do):
 *    gpt_embed_forward -> gpt_block_forward(l = 0..L-1) -> gpt_head_forward
 *    gpt_head_backward -> gpt_block_backward(l = L-1..0) -> gpt_embed_backward
 *  All saved activations, the copied tokens/targets and the backward workspace live in a gpt_acts
 *  allocated once for a maximum (B,T) and reused every step. The residual-stream gradient travels
 *  between units in acts->dresid (head writes it, each block transforms it in place, embed reads it).
 */
#ifndef GPT_MODEL_GPT_H
#define GPT_MODEL_GPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- configuration */

typedef struct gpt_config {
    int n_layer; /* L */
    int n_head;  /* H; n_embd % n_head == 0 */
    int n_embd;  /* C */
    int max_seq; /* Tmax: rows of wpe, longest sequence */
    int vocab;   /* V: 256 for the byte vocabulary */
} gpt_config;

/* "tiny" (L2 H2 C32 T32 V256) or "default" (L4 H4 C256 T256 V256, ~3.3M parameters).
 * Returns 0, or -1 for an unknown name. */
int gpt_config_preset(const char *name, gpt_config *out);
/* 0 when every field is positive and n_embd % n_head == 0, else -1. */
int gpt_config_check(const gpt_config *cfg);

/* ---------------------------------------------------------------- parameter table */

#define GPT_PARAM_NAME_MAX 32
#define GPT_BLOCK_NPARAMS 12

typedef struct gpt_param_info {
    char name[GPT_PARAM_NAME_MAX]; /* "wte", "h.3.attn.qkv.w", "lnf.b", ... */
    int ndim;                      /* 1 or 2 */
    int64_t shape[2];              /* shape[1] == 1 when ndim == 1 */
    int64_t numel;
    int is_matrix;                 /* 2-D: gets weight decay */
    int unit;                      /* 0 = embeddings, 1..L = blocks, L+1 = lnf */
    int64_t offset;                /* element offset in a flat buffer holding all tensors in table order */
} gpt_param_info;

/* Number of parameter tensors: 2 + 12 L + 2. */
int gpt_num_tensors(const gpt_config *cfg);
/* Fills out[0 .. gpt_num_tensors()-1] in canonical order: wte, wpe, then for l = 0..L-1
 * h.l.ln1.w, h.l.ln1.b, h.l.attn.qkv.w, h.l.attn.qkv.b, h.l.attn.proj.w, h.l.attn.proj.b, h.l.ln2.w,
 * h.l.ln2.b, h.l.mlp.fc.w, h.l.mlp.fc.b, h.l.mlp.proj.w, h.l.mlp.proj.b, then lnf.w, lnf.b.
 * Returns the count, or -1 for an invalid config. */
int gpt_param_table(const gpt_config *cfg, gpt_param_info *out);
/* Total number of parameter elements (sum of numel). */
int64_t gpt_num_elements(const gpt_config *cfg);
/* Entry `index` of the table without building it. Returns 0, or -1 for an index out of range. */
int gpt_tensor_info(const gpt_config *cfg, int index, gpt_param_info *out);
/* Index of the tensor called name in the table, or -1. */
int gpt_find_tensor(const gpt_config *cfg, const char *name);

/* Units: L + 2 of them. gpt_unit_tensors gives the table index range [*first, *first + *count). */
int gpt_num_units(const gpt_config *cfg);
void gpt_unit_tensors(const gpt_config *cfg, int unit, int *first, int *count);
/* Elements of one unit (its tensors packed contiguously in table order). */
int64_t gpt_unit_numel(const gpt_config *cfg, int unit);

/* ---------------------------------------------------------------- parameter views */

/* Pointers to one unit's tensors (parameters or, with the same type, their gradients). The anonymous
 * struct names the tensors; t[] gives them in table order for generic code. */
typedef union gpt_embed_params {
    struct {
        float *wte; /* (V,C) */
        float *wpe; /* (Tmax,C) */
    };
    float *t[2];
} gpt_embed_params;

typedef union gpt_block_params {
    struct {
        float *ln1_w, *ln1_b;             /* (C), (C) */
        float *qkv_w, *qkv_b;             /* (3C,C), (3C): rows [0,C) Q, [C,2C) K, [2C,3C) V */
        float *attn_proj_w, *attn_proj_b; /* (C,C), (C) */
        float *ln2_w, *ln2_b;             /* (C), (C) */
        float *fc_w, *fc_b;               /* (4C,C), (4C) */
        float *mlp_proj_w, *mlp_proj_b;   /* (C,4C), (C) */
    };
    float *t[GPT_BLOCK_NPARAMS];
} gpt_block_params;

typedef union gpt_lnf_params {
    struct {
        float *w, *b; /* (C), (C) */
    };
    float *t[2];
} gpt_lnf_params;

/* Views over a unit's tensors packed contiguously in table order starting at base (e.g. a gathered
 * unit buffer, or flat_all + table[first].offset of a full flat buffer). */
void gpt_embed_view(const gpt_config *cfg, float *base, gpt_embed_params *out);
void gpt_block_view(const gpt_config *cfg, float *base, gpt_block_params *out);
void gpt_lnf_view(const gpt_config *cfg, float *base, gpt_lnf_params *out);

/* ---------------------------------------------------------------- initialisation */

/* Deterministic, split-independent GPT-2 initialisation: element k of tensor `name` is a pure function
 * of (seed, name, k) (SplitMix64 counter hash + Box-Muller), so any rank can fill any row range.
 * Fills out[0 .. count-1] with elements [first_elem, first_elem + count) of the tensor.
 * Weights ~ N(0, 0.02); attn.proj.w and mlp.proj.w ~ N(0, 0.02/sqrt(2L)); biases 0; LayerNorm weights 1.
 * Returns 0, or -1 for an unknown name or a range outside the tensor. */
int gpt_init_param(const gpt_config *cfg, const char *name, int64_t first_elem, int64_t count, float *out,
                   uint64_t seed);

/* ---------------------------------------------------------------- activations + workspace */

typedef struct gpt_block_acts {
    float *ln1;                /* (B,T,C)   LN1 output */
    float *ln1_mean, *ln1_rstd; /* (B,T) */
    float *qkv;                /* (B,T,3C) */
    float *att;                /* (B,H,T,T) causal softmax probabilities (zero above the diagonal) */
    float *atty;               /* (B,T,C)   attention output, heads concatenated, before projection */
    float *res2;               /* (B,T,C)   x + attn */
    float *ln2;                /* (B,T,C) */
    float *ln2_mean, *ln2_rstd; /* (B,T) */
    float *fch;                /* (B,T,4C)  fc output before GELU */
    float *fch_gelu;           /* (B,T,4C)  after GELU */
    float *out;                /* (B,T,C)   block output = res2 + mlp */
} gpt_block_acts;

typedef struct gpt_head_acts {
    float *lnf;                 /* (B,T,C) */
    float *lnf_mean, *lnf_rstd; /* (B,T) */
    float *logits;              /* (B,T,V) */
    float *probs;               /* (B,T,V) softmax (only when targets were given) */
    float *losses;              /* (B,T) per-token -log p(target), unscaled; 0 for ignored targets */
} gpt_head_acts;

/* Backward workspace shared by all blocks (contents are scratch between calls). */
typedef struct gpt_workspace {
    float *dln;   /* (B,T,C) */
    float *dqkv;  /* (B,T,3C) */
    float *datt;  /* (B,H,T,T) */
    float *datty; /* (B,T,C) */
    float *dres2; /* (B,T,C) */
    float *dfch;  /* (B,T,4C) */
    float *dlogits; /* (B,T,V) */
} gpt_workspace;

typedef struct gpt_acts {
    int max_B, max_T; /* capacity */
    int B, T;         /* shape of the current step (set by gpt_embed_forward) */
    int32_t *tokens;  /* (B,T) copy of the step's inputs */
    int32_t *targets; /* (B,T) copy of the step's targets; < 0 = ignored */
    int has_targets;
    double loss_scale_tokens; /* normaliser used by the last gpt_head_forward */
    float *embed_out;         /* (B,T,C) wte[tok] + wpe[t]: input of block 0 */
    gpt_block_acts *blocks;   /* [L] */
    gpt_head_acts head;
    float *dresid;            /* (B,T,C) residual-stream gradient passed between units */
    gpt_workspace ws;
    float *mem_;              /* single allocation behind every float buffer above */
    size_t mem_floats_;
} gpt_acts;

/* Allocates everything needed for steps with B <= max_B, T <= min(max_T, cfg->max_seq).
 * NULL on failure. */
gpt_acts *gpt_acts_create(const gpt_config *cfg, int max_B, int max_T);
void gpt_acts_free(gpt_acts *a);
/* Input of block l: acts->embed_out for l == 0, else acts->blocks[l-1].out. The head's input is
 * gpt_block_input(cfg, acts, L). */
float *gpt_block_input(const gpt_config *cfg, const gpt_acts *a, int layer);

/* ---------------------------------------------------------------- per-unit forward / backward */

/* Unit 0. tokens (B,T) in [0,V) -> acts->embed_out (B,T,C) = wte[tok] + wpe[t].
 * Starts a step: records (B,T) and copies tokens into acts. Returns 0, or -1 for a bad shape/token. */
int gpt_embed_forward(const gpt_config *cfg, const gpt_embed_params *p, gpt_acts *a, const int32_t *tokens,
                      int B, int T);
/* dresid (B,T,C) -> g->wte (V,C) +=, g->wpe (Tmax,C) +=. Reads acts->dresid. */
void gpt_embed_backward(const gpt_config *cfg, const gpt_embed_params *g, const gpt_acts *a);

/* Unit 1+layer. x = gpt_block_input(layer) (B,T,C) -> acts->blocks[layer].out (B,T,C). */
void gpt_block_forward(const gpt_config *cfg, const gpt_block_params *p, gpt_acts *a, int layer);
/* acts->dresid holds dL/d(block output) on entry and dL/d(block input) on return (in place).
 * g: the block's 12 gradient buffers, accumulated (+=). */
void gpt_block_backward(const gpt_config *cfg, const gpt_block_params *p, const gpt_block_params *g,
                        gpt_acts *a, int layer);

/* Unit L+1 (+ tied wte). x = gpt_block_input(L) (B,T,C) -> lnf -> logits (B,T,V) -> loss.
 * targets (B,T) in [0,V) or < 0 (ignored), or NULL for logits only (no loss, no backward).
 * *loss = sum over this call's tokens of -log p(target) / loss_scale_tokens; pass the GLOBAL number of
 * target tokens across ranks so summing losses (and gradients) over ranks gives the global mean.
 * Returns 0, or -1 for a target out of range or a non-positive loss_scale_tokens. */
int gpt_head_forward(const gpt_config *cfg, const float *wte, const gpt_lnf_params *p, gpt_acts *a,
                     const int32_t *targets, double loss_scale_tokens, float *loss);
/* d(loss)/d(.) of the loss returned by gpt_head_forward: dwte (V,C) +=, g->w/g->b (C) +=,
 * acts->dresid (B,T,C) = dL/dx (overwritten). Returns 0, or -1 if the forward had no targets. */
int gpt_head_backward(const gpt_config *cfg, const float *wte, const gpt_lnf_params *p, float *dwte,
                      const gpt_lnf_params *g, gpt_acts *a);

/* ---------------------------------------------------------------- single-process model */

typedef struct gpt_model {
    gpt_config cfg;
    int n_tensors;
    gpt_param_info *table; /* [n_tensors] */
    int64_t n_elem;
    float *params;         /* flat, table order (table[i].offset) */
    float *grads;          /* same layout */
    gpt_embed_params embed, d_embed;
    gpt_block_params *block, *d_block; /* [L] */
    gpt_lnf_params lnf, d_lnf;
} gpt_model;

/* Allocates parameters + gradients (zeroed) and initialises every tensor with gpt_init_param(seed). */
gpt_model *gpt_model_create(const gpt_config *cfg, uint64_t seed);
void gpt_model_free(gpt_model *m);
void gpt_zero_grad(gpt_model *m);

/* Full forward from the unit functions. targets may be NULL (logits only; *loss = 0). The loss is the
 * mean over non-ignored targets. Returns 0 or -1 (bad shape/token/target). */
int gpt_forward(gpt_model *m, gpt_acts *a, const int32_t *tokens, const int32_t *targets, int B, int T,
                float *loss);
/* Full backward of the last gpt_forward (accumulates into m->grads). Returns 0 or -1 (no targets). */
int gpt_backward(gpt_model *m, gpt_acts *a);

/* Floating-point operations of one forward+backward at (B,T): matmuls (6 per weight per token, LM head
 * included) plus attention QK^T and att.V counted over the full TxT square (what the kernels execute). */
double gpt_flops_per_step(const gpt_config *cfg, int B, int T);
/* The same with attention counted as executed: the products are block-causal (64-row tiles), so
 * about 5/8 of the square at T = 256. */
double gpt_flops_executed_per_step(const gpt_config *cfg, int B, int T);

/* ---------------------------------------------------------------- sampling */

/* Samples a token from logits (V) at the given temperature (<= 0: argmax), drawing one uniform from
 * the caller's SplitMix64 state (advanced in place). Deterministic for a given state. */
int gpt_sample_token(const float *logits, int V, float temperature, uint64_t *rng_state);

#ifdef __cplusplus
}
#endif
#endif /* GPT_MODEL_GPT_H */
