/* Units 1..L: one pre-LayerNorm transformer block.
 *   res2 = x + proj(attn(ln1(x)));  out = res2 + mlp_proj(gelu(fc(ln2(res2))))
 * All intermediate tensors are kept in acts->blocks[layer] for the backward pass. */
#include "gpt.h"
#include "layers.h"

// x (B,T,C) -> blocks[layer].out (B,T,C)
void gpt_block_forward(const gpt_config *cfg, const gpt_block_params *p, gpt_acts *a, int layer)
{
    const int C = cfg->n_embd, H = cfg->n_head, B = a->B, T = a->T, N = B * T;
    const float *x = gpt_block_input(cfg, a, layer);
    gpt_block_acts *s = &a->blocks[layer];
    int saved = blas_single_begin();
    layernorm_forward(s->ln1, s->ln1_mean, s->ln1_rstd, x, p->ln1_w, p->ln1_b, N, C); // x -> ln1 (N,C)
    linear_forward(s->qkv, NULL, s->ln1, p->qkv_w, p->qkv_b, NULL, N, C, 3 * C);       // ln1 -> qkv (N,3C)
    attention_forward(s->atty, s->att, s->qkv, B, T, C, H);                          // qkv -> atty (N,C)
    linear_forward(s->res2, NULL, s->atty, p->attn_proj_w, p->attn_proj_b, x, N, C, C); // x + atty W^T + b
    layernorm_forward(s->ln2, s->ln2_mean, s->ln2_rstd, s->res2, p->ln2_w, p->ln2_b, N, C);
    linear_forward(s->fch, s->fch_gelu, s->ln2, p->fc_w, p->fc_b, NULL, N, C, 4 * C); // -> fch, gelu (N,4C)
    linear_forward(s->out, NULL, s->fch_gelu, p->mlp_proj_w, p->mlp_proj_b, s->res2, N, 4 * C, C);
    blas_single_end(saved);
}

// dresid = dL/dout (B,T,C) -> dresid = dL/dx (in place); g +=
void gpt_block_backward(const gpt_config *cfg, const gpt_block_params *p, const gpt_block_params *g,
                        gpt_acts *a, int layer)
{
    const int C = cfg->n_embd, H = cfg->n_head, B = a->B, T = a->T, N = B * T;
    const float *x = gpt_block_input(cfg, a, layer);
    const gpt_block_acts *s = &a->blocks[layer];
    gpt_workspace *w = &a->ws;
    float *d = a->dresid;
    int saved = blas_single_begin();
    /* MLP branch: d -> dfch (through mlp.proj and GELU) -> dln (through fc) -> dres2 (LN2 + residual) */
    linear_backward(w->dfch, s->fch, g->mlp_proj_w, g->mlp_proj_b, d, s->fch_gelu, p->mlp_proj_w, N, 4 * C, C);
    linear_backward(w->dln, NULL, g->fc_w, g->fc_b, w->dfch, s->ln2, p->fc_w, N, C, 4 * C);
    layernorm_backward(w->dres2, d, g->ln2_w, g->ln2_b, w->dln, s->res2, p->ln2_w, s->ln2_mean, s->ln2_rstd, N, C);
    /* attention branch: dres2 -> datty (attn.proj) -> dqkv (attention) -> dln (qkv) -> d (LN1 + residual) */
    linear_backward(w->datty, NULL, g->attn_proj_w, g->attn_proj_b, w->dres2, s->atty, p->attn_proj_w, N, C, C);
    attention_backward(w->dqkv, w->datt, w->datty, s->qkv, s->att, B, T, C, H);
    linear_backward(w->dln, NULL, g->qkv_w, g->qkv_b, w->dqkv, s->ln1, p->qkv_w, N, C, 3 * C);
    layernorm_backward(d, w->dres2, g->ln1_w, g->ln1_b, w->dln, x, p->ln1_w, s->ln1_mean, s->ln1_rstd, N, C);
    blas_single_end(saved);
}
