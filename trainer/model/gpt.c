/* Configuration, parameter table / units / views, activation allocation, and the single-process
 * full-model forward/backward assembled from the per-unit functions. */
#include "gpt.h"
#include "layers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- configuration */

int gpt_config_preset(const char *name, gpt_config *out)
{
    if (strcmp(name, "tiny") == 0) {
        *out = (gpt_config){.n_layer = 2, .n_head = 2, .n_embd = 32, .max_seq = 32, .vocab = 256};
        return 0;
    }
    if (strcmp(name, "default") == 0) {
        *out = (gpt_config){.n_layer = 4, .n_head = 4, .n_embd = 256, .max_seq = 256, .vocab = 256};
        return 0;
    }
    return -1;
}

int gpt_config_check(const gpt_config *cfg)
{
    if (!cfg || cfg->n_layer < 0 || cfg->n_head < 1 || cfg->n_embd < 1 || cfg->max_seq < 1 || cfg->vocab < 1)
        return -1;
    if (cfg->n_embd % cfg->n_head != 0)
        return -1;
    /* keep every tensor and every (B,T,4C)-sized row index comfortably in range */
    if (cfg->n_embd > (1 << 16) || cfg->max_seq > (1 << 20) || cfg->vocab > (1 << 24) || cfg->n_layer > 4096)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- parameter table */

static const char *const block_suffix[GPT_BLOCK_NPARAMS] = {
    "ln1.w", "ln1.b", "attn.qkv.w", "attn.qkv.b", "attn.proj.w", "attn.proj.b",
    "ln2.w", "ln2.b", "mlp.fc.w",   "mlp.fc.b",   "mlp.proj.w",  "mlp.proj.b",
};

/* shape of block tensor j, in units of C: rows = r * C, cols = c * C (c == 0: 1-D) */
static const int block_rows[GPT_BLOCK_NPARAMS] = {1, 1, 3, 3, 1, 1, 1, 1, 4, 4, 1, 1};
static const int block_cols[GPT_BLOCK_NPARAMS] = {0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 0};

int gpt_num_tensors(const gpt_config *cfg)
{
    return 4 + GPT_BLOCK_NPARAMS * cfg->n_layer;
}

int gpt_num_units(const gpt_config *cfg)
{
    return cfg->n_layer + 2;
}

static int64_t block_numel(const gpt_config *cfg)
{
    const int64_t C = cfg->n_embd;
    return 12 * C * C + 13 * C;
}

static void set_info(gpt_param_info *o, const char *name, int64_t rows, int64_t cols, int unit, int64_t offset)
{
    snprintf(o->name, sizeof o->name, "%s", name);
    o->ndim = cols > 0 ? 2 : 1;
    o->shape[0] = rows;
    o->shape[1] = cols > 0 ? cols : 1;
    o->numel = rows * o->shape[1];
    o->is_matrix = cols > 0;
    o->unit = unit;
    o->offset = offset;
}

int gpt_tensor_info(const gpt_config *cfg, int index, gpt_param_info *out)
{
    if (gpt_config_check(cfg) != 0 || index < 0 || index >= gpt_num_tensors(cfg))
        return -1;
    const int64_t C = cfg->n_embd, L = cfg->n_layer;
    const int64_t embed = ((int64_t)cfg->vocab + cfg->max_seq) * C;
    if (index == 0) {
        set_info(out, "wte", cfg->vocab, C, 0, 0);
        return 0;
    }
    if (index == 1) {
        set_info(out, "wpe", cfg->max_seq, C, 0, (int64_t)cfg->vocab * C);
        return 0;
    }
    int b = index - 2;
    if (b < GPT_BLOCK_NPARAMS * L) {
        int l = b / GPT_BLOCK_NPARAMS, j = b % GPT_BLOCK_NPARAMS;
        int64_t off = embed + l * block_numel(cfg);
        for (int i = 0; i < j; i++)
            off += (int64_t)block_rows[i] * C * (block_cols[i] ? block_cols[i] * C : 1);
        char name[GPT_PARAM_NAME_MAX];
        snprintf(name, sizeof name, "h.%d.%s", l, block_suffix[j]);
        set_info(out, name, block_rows[j] * C, (int64_t)block_cols[j] * C, 1 + l, off);
        return 0;
    }
    int64_t off = embed + L * block_numel(cfg);
    if (b == GPT_BLOCK_NPARAMS * L)
        set_info(out, "lnf.w", C, 0, (int)L + 1, off);
    else
        set_info(out, "lnf.b", C, 0, (int)L + 1, off + C);
    return 0;
}

int gpt_param_table(const gpt_config *cfg, gpt_param_info *out)
{
    if (gpt_config_check(cfg) != 0)
        return -1;
    int n = gpt_num_tensors(cfg);
    for (int i = 0; i < n; i++)
        gpt_tensor_info(cfg, i, &out[i]);
    return n;
}

int64_t gpt_num_elements(const gpt_config *cfg)
{
    const int64_t C = cfg->n_embd;
    return ((int64_t)cfg->vocab + cfg->max_seq) * C + cfg->n_layer * block_numel(cfg) + 2 * C;
}

int gpt_find_tensor(const gpt_config *cfg, const char *name)
{
    if (gpt_config_check(cfg) != 0 || !name)
        return -1;
    if (strcmp(name, "wte") == 0)
        return 0;
    if (strcmp(name, "wpe") == 0)
        return 1;
    if (strcmp(name, "lnf.w") == 0)
        return 2 + GPT_BLOCK_NPARAMS * cfg->n_layer;
    if (strcmp(name, "lnf.b") == 0)
        return 3 + GPT_BLOCK_NPARAMS * cfg->n_layer;
    if (name[0] != 'h' || name[1] != '.' || name[2] < '0' || name[2] > '9')
        return -1;
    char *end;
    long l = strtol(name + 2, &end, 10);
    if (*end != '.' || l < 0 || l >= cfg->n_layer || (name[2] == '0' && end != name + 3))
        return -1;
    for (int j = 0; j < GPT_BLOCK_NPARAMS; j++)
        if (strcmp(end + 1, block_suffix[j]) == 0)
            return 2 + GPT_BLOCK_NPARAMS * (int)l + j;
    return -1;
}

void gpt_unit_tensors(const gpt_config *cfg, int unit, int *first, int *count)
{
    if (unit == 0) {
        *first = 0;
        *count = 2;
    } else if (unit <= cfg->n_layer) {
        *first = 2 + GPT_BLOCK_NPARAMS * (unit - 1);
        *count = GPT_BLOCK_NPARAMS;
    } else if (unit == cfg->n_layer + 1) {
        *first = 2 + GPT_BLOCK_NPARAMS * cfg->n_layer;
        *count = 2;
    } else {
        *first = 0;
        *count = 0;
    }
}

int64_t gpt_unit_numel(const gpt_config *cfg, int unit)
{
    const int64_t C = cfg->n_embd;
    if (unit == 0)
        return ((int64_t)cfg->vocab + cfg->max_seq) * C;
    if (unit >= 1 && unit <= cfg->n_layer)
        return block_numel(cfg);
    if (unit == cfg->n_layer + 1)
        return 2 * C;
    return 0;
}

/* ---------------------------------------------------------------- views */

void gpt_embed_view(const gpt_config *cfg, float *base, gpt_embed_params *out)
{
    out->wte = base;
    out->wpe = base + (size_t)cfg->vocab * cfg->n_embd;
}

void gpt_block_view(const gpt_config *cfg, float *base, gpt_block_params *out)
{
    const size_t C = (size_t)cfg->n_embd;
    float *p = base;
    for (int j = 0; j < GPT_BLOCK_NPARAMS; j++) {
        out->t[j] = p;
        p += block_rows[j] * C * (block_cols[j] ? block_cols[j] * C : 1);
    }
}

void gpt_lnf_view(const gpt_config *cfg, float *base, gpt_lnf_params *out)
{
    out->w = base;
    out->b = base + cfg->n_embd;
}

/* ---------------------------------------------------------------- activations */

/* carve consecutive 64-byte-aligned float buffers out of one allocation; with mem == NULL it only counts */
typedef struct carver {
    float *mem;
    size_t used;
} carver;

static float *carve(carver *c, size_t n)
{
    float *p = c->mem ? c->mem + c->used : NULL;
    c->used += (n + 15) & ~(size_t)15;
    return p;
}

static void layout_acts(const gpt_config *cfg, gpt_acts *a, carver *c)
{
    const size_t B = (size_t)a->max_B, T = (size_t)a->max_T, C = (size_t)cfg->n_embd;
    const size_t H = (size_t)cfg->n_head, V = (size_t)cfg->vocab, N = B * T;
    a->embed_out = carve(c, N * C);
    for (int l = 0; l < cfg->n_layer; l++) {
        gpt_block_acts *s = &a->blocks[l];
        s->ln1 = carve(c, N * C);
        s->ln1_mean = carve(c, N);
        s->ln1_rstd = carve(c, N);
        s->qkv = carve(c, 3 * N * C);
        s->att = carve(c, B * H * T * T);
        s->atty = carve(c, N * C);
        s->res2 = carve(c, N * C);
        s->ln2 = carve(c, N * C);
        s->ln2_mean = carve(c, N);
        s->ln2_rstd = carve(c, N);
        s->fch = carve(c, 4 * N * C);
        s->fch_gelu = carve(c, 4 * N * C);
        s->out = carve(c, N * C);
    }
    a->head.lnf = carve(c, N * C);
    a->head.lnf_mean = carve(c, N);
    a->head.lnf_rstd = carve(c, N);
    a->head.logits = carve(c, N * V);
    a->head.probs = carve(c, N * V);
    a->head.losses = carve(c, N);
    a->dresid = carve(c, N * C);
    a->ws.dln = carve(c, N * C);
    a->ws.dqkv = carve(c, 3 * N * C);
    a->ws.datt = carve(c, B * H * T * T);
    a->ws.datty = carve(c, N * C);
    a->ws.dres2 = carve(c, N * C);
    a->ws.dfch = carve(c, 4 * N * C);
    a->ws.dlogits = carve(c, N * V);
}

gpt_acts *gpt_acts_create(const gpt_config *cfg, int max_B, int max_T)
{
    if (gpt_config_check(cfg) != 0 || max_B < 1 || max_T < 1)
        return NULL;
    if (max_T > cfg->max_seq)
        max_T = cfg->max_seq;
    gpt_acts *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->max_B = max_B;
    a->max_T = max_T;
    a->blocks = calloc(cfg->n_layer > 0 ? (size_t)cfg->n_layer : 1, sizeof *a->blocks);
    a->tokens = malloc(sizeof(int32_t) * (size_t)max_B * (size_t)max_T);
    a->targets = malloc(sizeof(int32_t) * (size_t)max_B * (size_t)max_T);
    if (!a->blocks || !a->tokens || !a->targets) {
        gpt_acts_free(a);
        return NULL;
    }
    carver count = {NULL, 0};
    layout_acts(cfg, a, &count);
    a->mem_floats_ = count.used;
    a->mem_ = aligned_alloc(64, count.used * sizeof(float));
    if (!a->mem_) {
        gpt_acts_free(a);
        return NULL;
    }
    /* zero once: buffers are fully written before being read, this only makes first-touch explicit */
    memset(a->mem_, 0, count.used * sizeof(float));
    carver real = {a->mem_, 0};
    layout_acts(cfg, a, &real);
    return a;
}

void gpt_acts_free(gpt_acts *a)
{
    if (!a)
        return;
    free(a->mem_);
    free(a->blocks);
    free(a->tokens);
    free(a->targets);
    free(a);
}

float *gpt_block_input(const gpt_config *cfg, const gpt_acts *a, int layer)
{
    (void)cfg;
    return layer == 0 ? a->embed_out : a->blocks[layer - 1].out;
}

/* ---------------------------------------------------------------- single-process model */

gpt_model *gpt_model_create(const gpt_config *cfg, uint64_t seed)
{
    if (gpt_config_check(cfg) != 0)
        return NULL;
    gpt_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cfg = *cfg;
    m->n_tensors = gpt_num_tensors(cfg);
    m->n_elem = gpt_num_elements(cfg);
    size_t bytes = (((size_t)m->n_elem * sizeof(float)) + 63) & ~(size_t)63;
    m->table = calloc((size_t)m->n_tensors, sizeof *m->table);
    m->params = aligned_alloc(64, bytes);
    m->grads = aligned_alloc(64, bytes);
    size_t nb = cfg->n_layer > 0 ? (size_t)cfg->n_layer : 1;
    m->block = calloc(nb, sizeof *m->block);
    m->d_block = calloc(nb, sizeof *m->d_block);
    if (!m->table || !m->params || !m->grads || !m->block || !m->d_block) {
        gpt_model_free(m);
        return NULL;
    }
    gpt_param_table(cfg, m->table);
    for (int i = 0; i < m->n_tensors; i++)
        gpt_init_param(cfg, m->table[i].name, 0, m->table[i].numel, m->params + m->table[i].offset, seed);
    memset(m->grads, 0, bytes);
    gpt_embed_view(cfg, m->params, &m->embed);
    gpt_embed_view(cfg, m->grads, &m->d_embed);
    for (int l = 0; l < cfg->n_layer; l++) {
        int first, count;
        gpt_unit_tensors(cfg, 1 + l, &first, &count);
        gpt_block_view(cfg, m->params + m->table[first].offset, &m->block[l]);
        gpt_block_view(cfg, m->grads + m->table[first].offset, &m->d_block[l]);
    }
    int first, count;
    gpt_unit_tensors(cfg, cfg->n_layer + 1, &first, &count);
    gpt_lnf_view(cfg, m->params + m->table[first].offset, &m->lnf);
    gpt_lnf_view(cfg, m->grads + m->table[first].offset, &m->d_lnf);
    return m;
}

void gpt_model_free(gpt_model *m)
{
    if (!m)
        return;
    free(m->table);
    free(m->params);
    free(m->grads);
    free(m->block);
    free(m->d_block);
    free(m);
}

void gpt_zero_grad(gpt_model *m)
{
    memset(m->grads, 0, sizeof(float) * (size_t)m->n_elem);
}

int gpt_forward(gpt_model *m, gpt_acts *a, const int32_t *tokens, const int32_t *targets, int B, int T,
                float *loss)
{
    const gpt_config *cfg = &m->cfg;
    if (gpt_embed_forward(cfg, &m->embed, a, tokens, B, T) != 0)
        return -1;
    for (int l = 0; l < cfg->n_layer; l++)
        gpt_block_forward(cfg, &m->block[l], a, l);
    double ntok = 0.0;
    if (targets) {
        for (int n = 0; n < B * T; n++)
            ntok += targets[n] >= 0;
        if (ntok == 0.0)
            ntok = 1.0; /* everything ignored: loss 0, gradients 0 */
    }
    return gpt_head_forward(cfg, m->embed.wte, &m->lnf, a, targets, ntok, loss);
}

int gpt_backward(gpt_model *m, gpt_acts *a)
{
    const gpt_config *cfg = &m->cfg;
    if (gpt_head_backward(cfg, m->embed.wte, &m->lnf, m->d_embed.wte, &m->d_lnf, a) != 0)
        return -1;
    for (int l = cfg->n_layer - 1; l >= 0; l--)
        gpt_block_backward(cfg, &m->block[l], &m->d_block[l], a, l);
    gpt_embed_backward(cfg, &m->d_embed, a);
    return 0;
}

double gpt_flops_per_step(const gpt_config *cfg, int B, int T)
{
    const double C = cfg->n_embd, N = (double)B * T;
    const double matmul_weights = cfg->n_layer * 12.0 * C * C + (double)cfg->vocab * C;
    const double attention = cfg->n_layer * 12.0 * B * (double)T * T * C; /* 2 products x 2 flops x 3 passes */
    return 6.0 * N * matmul_weights + attention;
}

double gpt_flops_executed_per_step(const gpt_config *cfg, int B, int T)
{
    const double C = cfg->n_embd, N = (double)B * T;
    const double matmul_weights = cfg->n_layer * 12.0 * C * C + (double)cfg->vocab * C;
    /* each of the 6 attention products (2 forward, 4 backward) covers sum over tiles of tile * (keys up
     * to the tile's end) = sum_i i1 * m entries of the TxT square, 2 flops per entry per head dim */
    double covered = 0.0;
    for (int i0 = 0; i0 < T; i0 += GPT_ATT_TILE) {
        int i1 = i0 + GPT_ATT_TILE < T ? i0 + GPT_ATT_TILE : T;
        covered += (double)(i1 - i0) * i1;
    }
    const double attention = cfg->n_layer * 6.0 * 2.0 * B * covered * C;
    return 6.0 * N * matmul_weights + attention;
}
