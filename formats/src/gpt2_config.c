/* The GPT-2 configuration: checked, read from / written to a trainer checkpoint's attributes and
 * a Hugging Face config.json (through jansson). */
#include "ckptfmt.h"
#include "error.h"
#include "internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_JSON_MAX (1 << 20)

int ckptfmt_gpt2_config_check(const ckptfmt_gpt2_config *c)
{
    if (!c)
        return fmt_error(CKPTFMT_EINVAL, "no configuration");
    if (c->n_layer < 0 || c->n_layer > 4096)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "n_layer %d is outside 0..4096", c->n_layer);
    if (c->n_embd < 1 || c->n_embd > 65536)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "n_embd %d is outside 1..65536", c->n_embd);
    if (c->n_head < 1 || c->n_embd % c->n_head != 0)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "n_head %d does not divide n_embd %d", c->n_head, c->n_embd);
    if (c->n_ctx < 1 || c->n_ctx > (1 << 20))
        return fmt_error(CKPTFMT_EUNSUPPORTED, "n_positions %d is outside 1..1048576", c->n_ctx);
    if (c->vocab < 1 || c->vocab > (1 << 24))
        return fmt_error(CKPTFMT_EUNSUPPORTED, "vocab_size %d is outside 1..16777216", c->vocab);
    if (!(c->layer_norm_epsilon > 0) || !isfinite(c->layer_norm_epsilon))
        return fmt_error(CKPTFMT_EUNSUPPORTED, "layer_norm_epsilon %g is not a positive number",
                         c->layer_norm_epsilon);
    if (c->bos_token_id < 0 || c->bos_token_id >= c->vocab)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "bos_token_id %d is outside the vocabulary of %d", c->bos_token_id,
                         c->vocab);
    if (c->eos_token_id < 0 || c->eos_token_id >= c->vocab)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "eos_token_id %d is outside the vocabulary of %d", c->eos_token_id,
                         c->vocab);
    return fmt_ok();
}

int gpt2_config_trainer_check(const ckptfmt_gpt2_config *c)
{
    int s = ckptfmt_gpt2_config_check(c);
    if (s != CKPTFMT_OK)
        return s;
    if (c->vocab < 256)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "vocab_size %d is below the trainer's 256 byte tokens", c->vocab);
    if (c->layer_norm_epsilon != CKPTFMT_GPT2_LN_EPS)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "layer_norm_epsilon %g differs from the trainer model's %g",
                         c->layer_norm_epsilon, CKPTFMT_GPT2_LN_EPS);
    return fmt_ok();
}

static const char *const attr_keys[5] = {"config/n_layer", "config/n_head", "config/n_embd", "config/max_seq",
                                         "config/vocab"};

int ckptfmt_gpt2_config_from_attrs(const ckpt_state *attrs, ckptfmt_gpt2_config *cfg)
{
    if (!attrs || !cfg)
        return fmt_error(CKPTFMT_EINVAL, "no attributes");
    int64_t v[5];
    for (int k = 0; k < 5; k++) {
        int s = ckpt_state_get_int(attrs, attr_keys[k], &v[k]);
        if (s == CKPT_ENOTFOUND)
            return fmt_error(CKPTFMT_ENOTFOUND, "no int attribute '%s' (not a shard-train checkpoint)", attr_keys[k]);
        if (s != CKPT_OK)
            return fmt_error(CKPTFMT_EMALFORMED, "attribute '%s' is not an int", attr_keys[k]);
        if (v[k] < 0 || v[k] > (1 << 24))
            return fmt_error(CKPTFMT_EUNSUPPORTED, "attribute '%s' = %lld is out of range", attr_keys[k],
                             (long long)v[k]);
    }
    *cfg = (ckptfmt_gpt2_config){.n_layer = (int)v[0],
                                 .n_head = (int)v[1],
                                 .n_embd = (int)v[2],
                                 .n_ctx = (int)v[3],
                                 .vocab = (int)v[4],
                                 .layer_norm_epsilon = CKPTFMT_GPT2_LN_EPS,
                                 .bos_token_id = CKPTFMT_GPT2_BYTE_BOS,
                                 .eos_token_id = CKPTFMT_GPT2_BYTE_EOS};
    return ckptfmt_gpt2_config_check(cfg);
}

int ckptfmt_gpt2_config_to_attrs(const ckptfmt_gpt2_config *cfg, ckpt_state *attrs)
{
    int s = ckptfmt_gpt2_config_check(cfg);
    if (s != CKPTFMT_OK)
        return s;
    const int v[5] = {cfg->n_layer, cfg->n_head, cfg->n_embd, cfg->n_ctx, cfg->vocab};
    for (int k = 0; k < 5; k++)
        if (ckpt_state_set_int(attrs, attr_keys[k], v[k]) != CKPT_OK)
            return fmt_error(CKPTFMT_ECKPT, "cannot set attribute '%s': %s", attr_keys[k], ckpt_errmsg());
    return fmt_ok();
}

int ckptfmt_gpt2_config_write_json(const ckptfmt_gpt2_config *cfg, const char *torch_dtype, const char *path)
{
    int s = ckptfmt_gpt2_config_check(cfg);
    if (s != CKPTFMT_OK)
        return s;
    json_t *o = json_object();
    json_t *arch = json_array();
    if (!o || !arch) {
        json_decref(o);
        json_decref(arch);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    json_array_append_new(arch, json_string("GPT2LMHeadModel"));
    /* jansson sorts keys with JSON_SORT_KEYS: the file lists them alphabetically, as
     * transformers' save_pretrained does */
    json_object_set_new(o, "activation_function", json_string("gelu_new"));
    json_object_set_new(o, "architectures", arch);
    json_object_set_new(o, "attn_pdrop", json_real(0.0)); /* the trainer uses no dropout */
    json_object_set_new(o, "bos_token_id", json_integer(cfg->bos_token_id));
    json_object_set_new(o, "embd_pdrop", json_real(0.0));
    json_object_set_new(o, "eos_token_id", json_integer(cfg->eos_token_id));
    json_object_set_new(o, "initializer_range", json_real(0.02));
    json_object_set_new(o, "layer_norm_epsilon", json_real(cfg->layer_norm_epsilon));
    json_object_set_new(o, "model_type", json_string("gpt2"));
    json_object_set_new(o, "n_ctx", json_integer(cfg->n_ctx));
    json_object_set_new(o, "n_embd", json_integer(cfg->n_embd));
    json_object_set_new(o, "n_head", json_integer(cfg->n_head));
    json_object_set_new(o, "n_inner", json_null());
    json_object_set_new(o, "n_layer", json_integer(cfg->n_layer));
    json_object_set_new(o, "n_positions", json_integer(cfg->n_ctx));
    json_object_set_new(o, "resid_pdrop", json_real(0.0));
    json_object_set_new(o, "scale_attn_weights", json_true());
    json_object_set_new(o, "tie_word_embeddings", json_true());
    json_object_set_new(o, "torch_dtype", json_string(torch_dtype ? torch_dtype : "float32"));
    json_object_set_new(o, "use_cache", json_true());
    json_object_set_new(o, "vocab_size", json_integer(cfg->vocab));
    /* 16 significant digits print 1e-05 as people write it; 17 only where 16 would not round-trip */
    char probe[64];
    snprintf(probe, sizeof probe, "%.16g", cfg->layer_norm_epsilon);
    int prec = strtod(probe, NULL) == cfg->layer_norm_epsilon ? 16 : 17;
    s = write_json_file(o, path, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(prec));
    json_decref(o);
    return s;
}

/* *out = the integer at key (required: -1 = missing is an error). */
static int get_int(json_t *o, const char *path, const char *key, int required, int *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required)
            return fmt_error(CKPTFMT_EMALFORMED, "%s: no \"%s\"", path, key);
        return CKPTFMT_ENOTFOUND;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1 << 24))
        return fmt_error(CKPTFMT_EMALFORMED, "%s: \"%s\" is not an integer in 0..16777216", path, key);
    *out = (int)json_integer_value(v);
    return CKPTFMT_OK;
}

static int expect_bool(json_t *o, const char *path, const char *key, int want)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return CKPTFMT_OK;
    if (!json_is_boolean(v))
        return fmt_error(CKPTFMT_EMALFORMED, "%s: \"%s\" is not true or false", path, key);
    if (json_is_true(v) != want)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "%s: \"%s\": %s is not what the trainer's GPT-2 computes", path, key,
                         want ? "false" : "true");
    return CKPTFMT_OK;
}

int ckptfmt_gpt2_config_read_json(const char *path, ckptfmt_gpt2_config *cfg)
{
    json_t *o = NULL;
    int s = read_json_file(path, CONFIG_JSON_MAX, &o);
    if (s != CKPTFMT_OK)
        return s;
    ckptfmt_gpt2_config c = {.layer_norm_epsilon = CKPTFMT_GPT2_LN_EPS,
                             .bos_token_id = CKPTFMT_GPT2_BYTE_BOS,
                             .eos_token_id = CKPTFMT_GPT2_BYTE_EOS};
    json_t *v;
    if (!json_is_object(o)) {
        s = fmt_error(CKPTFMT_EMALFORMED, "%s: not a JSON object", path);
        goto out;
    }
    v = json_object_get(o, "model_type");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "gpt2") != 0)) {
        s = fmt_error(CKPTFMT_EUNSUPPORTED, "%s: \"model_type\" is not \"gpt2\"", path);
        goto out;
    }
    v = json_object_get(o, "activation_function");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "gelu_new") != 0)) {
        s = fmt_error(CKPTFMT_EUNSUPPORTED,
                      "%s: \"activation_function\" is not \"gelu_new\" (the trainer's GELU is the tanh approximation)",
                      path);
        goto out;
    }
    if ((s = get_int(o, path, "vocab_size", 1, &c.vocab)) != CKPTFMT_OK ||
        (s = get_int(o, path, "n_embd", 1, &c.n_embd)) != CKPTFMT_OK ||
        (s = get_int(o, path, "n_layer", 1, &c.n_layer)) != CKPTFMT_OK ||
        (s = get_int(o, path, "n_head", 1, &c.n_head)) != CKPTFMT_OK ||
        (s = get_int(o, path, "n_positions", 1, &c.n_ctx)) != CKPTFMT_OK)
        goto out;
    int n;
    if ((s = get_int(o, path, "n_ctx", 0, &n)) == CKPTFMT_OK && n != c.n_ctx) {
        s = fmt_error(CKPTFMT_EUNSUPPORTED, "%s: \"n_ctx\" %d differs from \"n_positions\" %d", path, n, c.n_ctx);
        goto out;
    }
    if (s == CKPTFMT_EMALFORMED)
        goto out;
    if ((s = get_int(o, path, "n_inner", 0, &n)) == CKPTFMT_OK && n != 4 * c.n_embd) {
        s = fmt_error(CKPTFMT_EUNSUPPORTED, "%s: \"n_inner\" %d is not 4 * n_embd (%d)", path, n, 4 * c.n_embd);
        goto out;
    }
    if (s == CKPTFMT_EMALFORMED)
        goto out;
    if ((s = get_int(o, path, "bos_token_id", 0, &c.bos_token_id)) == CKPTFMT_EMALFORMED ||
        (s = get_int(o, path, "eos_token_id", 0, &c.eos_token_id)) == CKPTFMT_EMALFORMED)
        goto out;
    v = json_object_get(o, "layer_norm_epsilon");
    if (v) {
        if (!json_is_number(v)) {
            s = fmt_error(CKPTFMT_EMALFORMED, "%s: \"layer_norm_epsilon\" is not a number", path);
            goto out;
        }
        c.layer_norm_epsilon = json_number_value(v);
    }
    if ((s = expect_bool(o, path, "tie_word_embeddings", 1)) != CKPTFMT_OK ||
        (s = expect_bool(o, path, "scale_attn_weights", 1)) != CKPTFMT_OK ||
        (s = expect_bool(o, path, "scale_attn_by_inverse_layer_idx", 0)) != CKPTFMT_OK ||
        (s = expect_bool(o, path, "reorder_and_upcast_attn", 0)) != CKPTFMT_OK)
        goto out;
    if ((s = ckptfmt_gpt2_config_check(&c)) != CKPTFMT_OK) {
        fmt_error_prefix("%s: ", path);
        goto out;
    }
    *cfg = c;
    s = fmt_ok();
out:
    json_decref(o);
    return s;
}
