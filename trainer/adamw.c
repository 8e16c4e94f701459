/* adamw: schedule, global grad norm, sharded AdamW update. */
#include "adamw.h"

#include <math.h>

void adamw_config_default(adamw_config *cfg)
{
    cfg->lr_max = 1e-3;
    cfg->lr_min = 1e-4;
    cfg->warmup_steps = 0;
    cfg->total_steps = 1;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.95;
    cfg->eps = 1e-8;
    cfg->weight_decay = 0.1;
    cfg->grad_clip = 1.0;
}

double adamw_lr(const adamw_config *cfg, int64_t step)
{
    if (step < cfg->warmup_steps)
        return cfg->lr_max * (double)(step + 1) / (double)cfg->warmup_steps;
    int64_t span = cfg->total_steps - cfg->warmup_steps;
    double p = (double)(step - cfg->warmup_steps) / (double)(span > 1 ? span : 1);
    if (p > 1.0)
        p = 1.0;
    return cfg->lr_min + (cfg->lr_max - cfg->lr_min) * 0.5 * (1.0 + cos(3.14159265358979323846 * p));
}

int adamw_grad_norm(shard_model *s, comm *c, double *norm)
{
    double sq = 0.0;
    const float *g = s->grads;
    for (int64_t k = 0; k < s->local_numel; k++)
        sq += (double)g[k] * (double)g[k];
    if (s->nranks > 1 && comm_all_reduce(c, &sq, 1, COMM_F64, COMM_SUM) != 0)
        return -1;
    *norm = sqrt(sq);
    return 0;
}

double adamw_clip_scale(const adamw_config *cfg, double norm)
{
    if (cfg->grad_clip > 0.0 && norm > cfg->grad_clip)
        return cfg->grad_clip / norm;
    return 1.0;
}

void adamw_update(shard_model *s, const adamw_config *cfg, int64_t t, double lr, double grad_scale)
{
    const float b1 = (float)cfg->beta1, b2 = (float)cfg->beta2, eps = (float)cfg->eps;
    const float bc1 = (float)(1.0 - pow(cfg->beta1, (double)t));
    const float bc2 = (float)(1.0 - pow(cfg->beta2, (double)t));
    const float flr = (float)lr, gs = (float)grad_scale;
    for (int i = 0; i < s->n_tensors; i++) {
        const int64_t n = s->nrows[i] * s->table[i].shape[1];
        const float wd = s->table[i].is_matrix ? (float)cfg->weight_decay : 0.0f;
        float *p = shard_local(s, s->params, i), *g = shard_local(s, s->grads, i);
        float *m = shard_local(s, s->m, i), *v = shard_local(s, s->v, i);
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < n; k++) {
            float gk = g[k] * gs;
            float mk = b1 * m[k] + (1.0f - b1) * gk;
            float vk = b2 * v[k] + (1.0f - b2) * gk * gk;
            m[k] = mk;
            v[k] = vk;
            float mhat = mk / bc1, vhat = vk / bc2;
            p[k] -= flr * (mhat / (sqrtf(vhat) + eps) + wd * p[k]);
        }
    }
}
