/* The GPT-2 naming map: one table of the trainer's parameters with their Hugging Face and GGUF
 * names, shapes and the transposition rule (ckptfmt.h, section 2, has the full picture). */
#include "ckptfmt.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

/* One row per tensor of a block: names without the "h.N." / "transformer.h.N." / "blk.N." prefix;
 * shape in units: rows = r * C, cols = c * C (c == 0: 1-D). */
typedef struct block_row {
    const char *trainer, *hf, *gguf;
    int r, c;
    int transposed;
    ckptfmt_gpt2_role role;
} block_row;

static const block_row block_rows[12] = {
    {"ln1.w", "ln_1.weight", "attn_norm.weight", 1, 0, 0, CKPTFMT_GPT2_NORM},
    {"ln1.b", "ln_1.bias", "attn_norm.bias", 1, 0, 0, CKPTFMT_GPT2_NORM},
    {"attn.qkv.w", "attn.c_attn.weight", "attn_qkv.weight", 3, 1, 1, CKPTFMT_GPT2_WEIGHT},
    {"attn.qkv.b", "attn.c_attn.bias", "attn_qkv.bias", 3, 0, 0, CKPTFMT_GPT2_BIAS},
    {"attn.proj.w", "attn.c_proj.weight", "attn_output.weight", 1, 1, 1, CKPTFMT_GPT2_WEIGHT},
    {"attn.proj.b", "attn.c_proj.bias", "attn_output.bias", 1, 0, 0, CKPTFMT_GPT2_BIAS},
    {"ln2.w", "ln_2.weight", "ffn_norm.weight", 1, 0, 0, CKPTFMT_GPT2_NORM},
    {"ln2.b", "ln_2.bias", "ffn_norm.bias", 1, 0, 0, CKPTFMT_GPT2_NORM},
    {"mlp.fc.w", "mlp.c_fc.weight", "ffn_up.weight", 4, 1, 1, CKPTFMT_GPT2_WEIGHT},
    {"mlp.fc.b", "mlp.c_fc.bias", "ffn_up.bias", 4, 0, 0, CKPTFMT_GPT2_BIAS},
    {"mlp.proj.w", "mlp.c_proj.weight", "ffn_down.weight", 1, 4, 1, CKPTFMT_GPT2_WEIGHT},
    {"mlp.proj.b", "mlp.c_proj.bias", "ffn_down.bias", 1, 0, 0, CKPTFMT_GPT2_BIAS},
};

/* Tensors outside the blocks: wte, wpe (before them), lnf.w, lnf.b (after). */
typedef struct outer_row {
    const char *trainer, *hf, *gguf;
    ckptfmt_gpt2_role role;
} outer_row;

static const outer_row outer_rows[4] = {
    {"wte", "transformer.wte.weight", "token_embd.weight", CKPTFMT_GPT2_EMBEDDING},
    {"wpe", "transformer.wpe.weight", "position_embd.weight", CKPTFMT_GPT2_EMBEDDING},
    {"lnf.w", "transformer.ln_f.weight", "output_norm.weight", CKPTFMT_GPT2_NORM},
    {"lnf.b", "transformer.ln_f.bias", "output_norm.bias", CKPTFMT_GPT2_NORM},
};

int ckptfmt_gpt2_num_tensors(const ckptfmt_gpt2_config *cfg)
{
    if (!cfg || cfg->n_layer < 0 || cfg->n_layer > 4096)
        return -1;
    return 4 + 12 * cfg->n_layer;
}

int ckptfmt_gpt2_tensor_info(const ckptfmt_gpt2_config *cfg, int i, ckptfmt_gpt2_tensor *out)
{
    int n = ckptfmt_gpt2_num_tensors(cfg);
    if (n < 0 || !out || i < 0 || i >= n)
        return fmt_error(CKPTFMT_EINVAL, "GPT-2 map: no tensor %d", i);
    memset(out, 0, sizeof *out);
    const int64_t C = cfg->n_embd;
    const int L = cfg->n_layer;
    int b = i - 2;
    if (b >= 0 && b < 12 * L) {
        int l = b / 12;
        const block_row *row = &block_rows[b % 12];
        snprintf(out->name[CKPTFMT_NAMES_TRAINER], CKPTFMT_GPT2_NAME_MAX, CKPTFMT_GPT2_TRAINER_PREFIX "h.%d.%s", l,
                 row->trainer);
        snprintf(out->name[CKPTFMT_NAMES_HF], CKPTFMT_GPT2_NAME_MAX, "transformer.h.%d.%s", l, row->hf);
        snprintf(out->name[CKPTFMT_NAMES_GGUF], CKPTFMT_GPT2_NAME_MAX, "blk.%d.%s", l, row->gguf);
        out->ndim = row->c ? 2 : 1;
        out->shape[0] = row->r * C;
        out->shape[1] = row->c ? row->c * C : 1;
        out->hf_transposed = row->transposed;
        out->role = row->role;
        out->layer = l;
        return fmt_ok();
    }
    const outer_row *row = &outer_rows[i < 2 ? i : 2 + (b - 12 * L)];
    snprintf(out->name[CKPTFMT_NAMES_TRAINER], CKPTFMT_GPT2_NAME_MAX, CKPTFMT_GPT2_TRAINER_PREFIX "%s", row->trainer);
    snprintf(out->name[CKPTFMT_NAMES_HF], CKPTFMT_GPT2_NAME_MAX, "%s", row->hf);
    snprintf(out->name[CKPTFMT_NAMES_GGUF], CKPTFMT_GPT2_NAME_MAX, "%s", row->gguf);
    out->layer = -1;
    out->role = row->role;
    if (i < 2) {
        out->ndim = 2;
        out->shape[0] = i == 0 ? cfg->vocab : cfg->n_ctx;
        out->shape[1] = C;
    } else {
        out->ndim = 1;
        out->shape[0] = C;
        out->shape[1] = 1;
    }
    return fmt_ok();
}

/* Parses "<digits>." at s (no leading zeros, < n_layer) into *l; returns the rest or NULL. */
static const char *parse_layer(const char *s, int n_layer, int *l)
{
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
        return NULL;
    long v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        if (v >= n_layer)
            return NULL;
    }
    if (*s != '.')
        return NULL;
    *l = (int)v;
    return s + 1;
}

int ckptfmt_gpt2_find(const ckptfmt_gpt2_config *cfg, ckptfmt_naming naming, const char *name, int *i)
{
    int n = ckptfmt_gpt2_num_tensors(cfg);
    if (n < 0 || !name || !i || naming < CKPTFMT_NAMES_TRAINER || naming > CKPTFMT_NAMES_GGUF)
        return fmt_error(CKPTFMT_EINVAL, "GPT-2 map: bad lookup");
    const char *s = name;
    if (naming == CKPTFMT_NAMES_TRAINER) {
        size_t pl = strlen(CKPTFMT_GPT2_TRAINER_PREFIX);
        if (strncmp(s, CKPTFMT_GPT2_TRAINER_PREFIX, pl) != 0)
            return fmt_error(CKPTFMT_ENOTFOUND, "'%s' is not a GPT-2 tensor name", name);
        s += pl;
    }
    for (int k = 0; k < 4; k++) {
        const outer_row *row = &outer_rows[k];
        const char *want = naming == CKPTFMT_NAMES_TRAINER ? row->trainer
                           : naming == CKPTFMT_NAMES_HF    ? row->hf
                                                           : row->gguf;
        if (strcmp(s, want) == 0) {
            *i = k < 2 ? k : 2 + 12 * cfg->n_layer + (k - 2);
            return fmt_ok();
        }
    }
    static const char *const block_prefix[3] = {"h.", "transformer.h.", "blk."};
    size_t bl = strlen(block_prefix[naming]);
    int l;
    if (strncmp(s, block_prefix[naming], bl) == 0 && (s = parse_layer(s + bl, cfg->n_layer, &l)) != NULL) {
        for (int j = 0; j < 12; j++) {
            const block_row *row = &block_rows[j];
            const char *want = naming == CKPTFMT_NAMES_TRAINER ? row->trainer
                               : naming == CKPTFMT_NAMES_HF    ? row->hf
                                                               : row->gguf;
            if (strcmp(s, want) == 0) {
                *i = 2 + 12 * l + j;
                return fmt_ok();
            }
        }
    }
    return fmt_error(CKPTFMT_ENOTFOUND, "'%s' is not a tensor of this GPT-2 (%d layers)", name, cfg->n_layer);
}

void ckptfmt_gpt2_hf_shape(const ckptfmt_gpt2_tensor *t, int64_t shape[2])
{
    shape[0] = t->hf_transposed ? t->shape[1] : t->shape[0];
    shape[1] = t->hf_transposed ? t->shape[0] : t->shape[1];
}

void ckptfmt_gpt2_gguf_ne(const ckptfmt_gpt2_tensor *t, uint64_t ne[2])
{
    if (t->ndim == 2) {
        ne[0] = (uint64_t)t->shape[1];
        ne[1] = (uint64_t)t->shape[0];
    } else {
        ne[0] = (uint64_t)t->shape[0];
        ne[1] = 1;
    }
}
