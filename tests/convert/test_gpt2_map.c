/* The GPT-2 naming map against the trainer's own parameter table (trainer/model/gpt.h): same
 * tensors, order and shapes; every name found back in all three namings; the transposition rule;
 * the configuration from a checkpoint's attributes and through config.json. */
#include "ckptfmt.h"
#include "gpt.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static const char *scratch;

static ckptfmt_gpt2_config cfg_of(int L, int H, int C, int T, int V)
{
    return (ckptfmt_gpt2_config){L, H, C, T, V, CKPTFMT_GPT2_LN_EPS, CKPTFMT_GPT2_BYTE_BOS, CKPTFMT_GPT2_BYTE_EOS};
}

static void assert_cfg_equal(const ckptfmt_gpt2_config *a, const ckptfmt_gpt2_config *b)
{
    assert_int_equal(a->n_layer, b->n_layer);
    assert_int_equal(a->n_head, b->n_head);
    assert_int_equal(a->n_embd, b->n_embd);
    assert_int_equal(a->n_ctx, b->n_ctx);
    assert_int_equal(a->vocab, b->vocab);
    assert_true(a->layer_norm_epsilon == b->layer_norm_epsilon);
    assert_int_equal(a->bos_token_id, b->bos_token_id);
    assert_int_equal(a->eos_token_id, b->eos_token_id);
}

static void test_matches_trainer_table(void **state)
{
    (void)state;
    const int shapes[][5] = {{2, 2, 32, 32, 256}, {4, 4, 256, 256, 256}, {0, 1, 8, 4, 300}, {12, 12, 768, 1024, 50257}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *v = shapes[s];
        ckptfmt_gpt2_config c = cfg_of(v[0], v[1], v[2], v[3], v[4]);
        gpt_config g = {.n_layer = v[0], .n_head = v[1], .n_embd = v[2], .max_seq = v[3], .vocab = v[4]};
        assert_int_equal(ckptfmt_gpt2_config_check(&c), CKPTFMT_OK);
        int n = ckptfmt_gpt2_num_tensors(&c);
        assert_int_equal(n, gpt_num_tensors(&g));
        for (int i = 0; i < n; i++) {
            ckptfmt_gpt2_tensor t;
            gpt_param_info p;
            assert_int_equal(ckptfmt_gpt2_tensor_info(&c, i, &t), CKPTFMT_OK);
            assert_int_equal(gpt_tensor_info(&g, i, &p), 0);
            char want[80];
            snprintf(want, sizeof want, "model/%s", p.name);
            assert_string_equal(t.name[CKPTFMT_NAMES_TRAINER], want);
            assert_int_equal(t.ndim, p.ndim);
            assert_int_equal(t.shape[0], p.shape[0]);
            assert_int_equal(t.shape[1], p.shape[1]);
            /* only 2-D weights of linear layers are transposed, and every one of them is */
            assert_int_equal(t.hf_transposed, t.role == CKPTFMT_GPT2_WEIGHT);
            assert_int_equal(t.hf_transposed, p.is_matrix && i >= 2);
            for (int nm = 0; nm < 3; nm++) {
                int j = -1;
                assert_int_equal(ckptfmt_gpt2_find(&c, (ckptfmt_naming)nm, t.name[nm], &j), CKPTFMT_OK);
                assert_int_equal(j, i);
            }
            int64_t hs[2];
            uint64_t ne[2];
            ckptfmt_gpt2_hf_shape(&t, hs);
            ckptfmt_gpt2_gguf_ne(&t, ne);
            if (t.ndim == 2) {
                assert_int_equal(hs[0], t.hf_transposed ? p.shape[1] : p.shape[0]);
                assert_int_equal(hs[1], t.hf_transposed ? p.shape[0] : p.shape[1]);
                assert_int_equal(ne[0], p.shape[1]);
                assert_int_equal(ne[1], p.shape[0]);
            } else {
                assert_int_equal(hs[0], p.shape[0]);
                assert_int_equal(ne[0], p.shape[0]);
                assert_int_equal(ne[1], 1);
            }
        }
    }
}

static void test_names(void **state)
{
    (void)state;
    ckptfmt_gpt2_config c = cfg_of(2, 2, 32, 32, 256);
    static const struct {
        ckptfmt_naming nm;
        const char *name;
        int index;
    } ok[] = {
        {CKPTFMT_NAMES_HF, "transformer.wte.weight", 0},
        {CKPTFMT_NAMES_HF, "transformer.wpe.weight", 1},
        {CKPTFMT_NAMES_HF, "transformer.h.0.ln_1.weight", 2},
        {CKPTFMT_NAMES_HF, "transformer.h.0.attn.c_attn.weight", 4},
        {CKPTFMT_NAMES_HF, "transformer.h.1.mlp.c_proj.bias", 25},
        {CKPTFMT_NAMES_HF, "transformer.ln_f.weight", 26},
        {CKPTFMT_NAMES_HF, "transformer.ln_f.bias", 27},
        {CKPTFMT_NAMES_GGUF, "token_embd.weight", 0},
        {CKPTFMT_NAMES_GGUF, "position_embd.weight", 1},
        {CKPTFMT_NAMES_GGUF, "blk.1.attn_qkv.weight", 16},
        {CKPTFMT_NAMES_GGUF, "blk.0.ffn_down.weight", 12},
        {CKPTFMT_NAMES_GGUF, "output_norm.bias", 27},
        {CKPTFMT_NAMES_TRAINER, "model/h.1.mlp.fc.w", 22},
        {CKPTFMT_NAMES_TRAINER, "model/lnf.b", 27},
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        int i = -1;
        assert_int_equal(ckptfmt_gpt2_find(&c, ok[k].nm, ok[k].name, &i), CKPTFMT_OK);
        assert_int_equal(i, ok[k].index);
    }
    static const struct {
        ckptfmt_naming nm;
        const char *name;
    } bad[] = {
        {CKPTFMT_NAMES_HF, "lm_head.weight"},          {CKPTFMT_NAMES_HF, "transformer.h.2.ln_1.weight"},
        {CKPTFMT_NAMES_HF, "transformer.h.01.ln_1.weight"}, {CKPTFMT_NAMES_HF, "transformer.h.0.attn.bias"},
        {CKPTFMT_NAMES_HF, "transformer.h..ln_1.weight"}, {CKPTFMT_NAMES_HF, "wte"},
        {CKPTFMT_NAMES_GGUF, "output.weight"},         {CKPTFMT_NAMES_GGUF, "blk.9999999999999.attn_qkv.weight"},
        {CKPTFMT_NAMES_TRAINER, "h.0.ln1.w"},          {CKPTFMT_NAMES_TRAINER, "optim/m/wte"},
        {CKPTFMT_NAMES_TRAINER, "model/h.0.ln1.w.x"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int i = -7;
        assert_int_equal(ckptfmt_gpt2_find(&c, bad[k].nm, bad[k].name, &i), CKPTFMT_ENOTFOUND);
        assert_int_equal(i, -7);
    }
    int i;
    assert_int_equal(ckptfmt_gpt2_find(&c, CKPTFMT_NAMES_HF, "transformer.h.2.ln_1.weight", &i), CKPTFMT_ENOTFOUND);
    assert_string_equal(ckptfmt_errmsg(), "'transformer.h.2.ln_1.weight' is not a tensor of this GPT-2 (2 layers)");
}

static void test_config_check(void **state)
{
    (void)state;
    ckptfmt_gpt2_config c = cfg_of(2, 3, 32, 32, 256);
    assert_int_equal(ckptfmt_gpt2_config_check(&c), CKPTFMT_EUNSUPPORTED);
    assert_string_equal(ckptfmt_errmsg(), "n_head 3 does not divide n_embd 32");
    c = cfg_of(2, 2, 32, 32, 256);
    c.eos_token_id = 256;
    assert_int_equal(ckptfmt_gpt2_config_check(&c), CKPTFMT_EUNSUPPORTED);
    assert_string_equal(ckptfmt_errmsg(), "eos_token_id 256 is outside the vocabulary of 256");
    c = cfg_of(5000, 2, 32, 32, 256);
    assert_int_equal(ckptfmt_gpt2_config_check(&c), CKPTFMT_EUNSUPPORTED);
    assert_string_equal(ckptfmt_errmsg(), "n_layer 5000 is outside 0..4096");
}

static void test_config_attrs(void **state)
{
    (void)state;
    ckpt_state *a;
    assert_int_equal(ckpt_state_create(&a), CKPT_OK);
    ckptfmt_gpt2_config c = cfg_of(3, 4, 64, 128, 256), back;
    assert_int_equal(ckptfmt_gpt2_config_to_attrs(&c, a), CKPTFMT_OK);
    int64_t v;
    assert_int_equal(ckpt_state_get_int(a, "config/max_seq", &v), CKPT_OK);
    assert_int_equal(v, 128);
    assert_int_equal(ckptfmt_gpt2_config_from_attrs(a, &back), CKPTFMT_OK);
    assert_cfg_equal(&c, &back);
    ckpt_state_free(a);
    assert_int_equal(ckpt_state_create(&a), CKPT_OK);
    ckpt_state_set_int(a, "config/n_layer", 2);
    assert_int_equal(ckptfmt_gpt2_config_from_attrs(a, &back), CKPTFMT_ENOTFOUND);
    assert_string_equal(ckptfmt_errmsg(), "no int attribute 'config/n_head' (not a shard-train checkpoint)");
    ckpt_state_free(a);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_config_json(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", scratch);
    unlink(path);
    ckptfmt_gpt2_config c = cfg_of(2, 2, 32, 32, 256), back;
    assert_int_equal(ckptfmt_gpt2_config_write_json(&c, "bfloat16", path), CKPTFMT_OK);
    assert_int_equal(ckptfmt_gpt2_config_read_json(path, &back), CKPTFMT_OK);
    assert_cfg_equal(&c, &back);
    /* an existing file is not replaced */
    assert_int_equal(ckptfmt_gpt2_config_write_json(&c, NULL, path), CKPTFMT_EEXIST);

    static const struct {
        const char *json;
        int status;
        const char *msg; /* after "PATH: " */
    } cases[] = {
        {"{\"model_type\": \"llama\"}", CKPTFMT_EUNSUPPORTED, "\"model_type\" is not \"gpt2\""},
        {"{\"model_type\": \"gpt2\", \"activation_function\": \"relu\"}", CKPTFMT_EUNSUPPORTED,
         "\"activation_function\" is not \"gelu_new\" (the trainer's GELU is the tanh approximation)"},
        {"{\"vocab_size\": 256, \"n_embd\": 32, \"n_layer\": 2, \"n_head\": 2}", CKPTFMT_EMALFORMED,
         "no \"n_positions\""},
        {"{\"vocab_size\": 256, \"n_embd\": 32, \"n_layer\": 2, \"n_head\": 2, \"n_positions\": 32, \"n_ctx\": 16}",
         CKPTFMT_EUNSUPPORTED, "\"n_ctx\" 16 differs from \"n_positions\" 32"},
        {"{\"vocab_size\": 256, \"n_embd\": 32, \"n_layer\": 2, \"n_head\": 2, \"n_positions\": 32, \"n_inner\": 64}",
         CKPTFMT_EUNSUPPORTED, "\"n_inner\" 64 is not 4 * n_embd (128)"},
        {"{\"vocab_size\": 256, \"n_embd\": 32, \"n_layer\": 2, \"n_head\": 2, \"n_positions\": 32, "
         "\"tie_word_embeddings\": false}",
         CKPTFMT_EUNSUPPORTED, "\"tie_word_embeddings\": false is not what the trainer's GPT-2 computes"},
        {"{\"vocab_size\": 256, \"n_embd\": 32, \"n_layer\": 2, \"n_head\": 5, \"n_positions\": 32}",
         CKPTFMT_EUNSUPPORTED, "n_head 5 does not divide n_embd 32"},
        {"{\"vocab_size\": -1, \"n_embd\": 32, \"n_layer\": 2, \"n_head\": 2, \"n_positions\": 32}",
         CKPTFMT_EMALFORMED, "\"vocab_size\" is not an integer in 0..16777216"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        unlink(path);
        write_file(path, cases[k].json);
        assert_int_equal(ckptfmt_gpt2_config_read_json(path, &back), cases[k].status);
        char want[8192];
        snprintf(want, sizeof want, "%s: %s", path, cases[k].msg);
        assert_string_equal(ckptfmt_errmsg(), want);
    }
    unlink(path);
    write_file(path, "{\"n_embd\": 1, \"n_embd\": 2}");
    assert_int_equal(ckptfmt_gpt2_config_read_json(path, &back), CKPTFMT_EMALFORMED);
    char want[8192];
    snprintf(want, sizeof want, "'%s' is not valid JSON: duplicate object key near '\"n_embd\"' (line 1, column 22)",
             path);
    assert_string_equal(ckptfmt_errmsg(), want);
}

static void test_transpose(void **state)
{
    (void)state;
    const int64_t dims[][2] = {{1, 1}, {1, 70}, {70, 1}, {33, 65}, {128, 96}, {3, 200}, {130, 67}, {64, 64}, {9, 8}};
    for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++) {
        int64_t R = dims[s][0], K = dims[s][1];
        uint32_t *a = malloc(sizeof *a * (size_t)(R * K)), *t = malloc(sizeof *t * (size_t)(R * K));
        uint16_t *a16 = malloc(2 * (size_t)(R * K)), *t16 = malloc(2 * (size_t)(R * K));
        for (int64_t i = 0; i < R * K; i++) {
            a[i] = (uint32_t)(i * 2654435761u);
            a16[i] = (uint16_t)a[i];
        }
        ckptfmt_transpose(t, a, R, K, 4);
        ckptfmt_transpose(t16, a16, R, K, 2);
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = 0; c < K; c++) {
                assert_int_equal(t[c * R + r], a[r * K + c]);
                assert_int_equal(t16[c * R + r], a16[r * K + c]);
            }
        free(a);
        free(t);
        free(a16);
        free(t16);
    }
}

int main(int argc, char **argv)
{
    scratch = argc > 1 ? argv[1] : "/tmp/convert-gpt2_map";
    mkdir(scratch, 0755);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_trainer_table), cmocka_unit_test(test_names),
        cmocka_unit_test(test_config_check),          cmocka_unit_test(test_config_attrs),
        cmocka_unit_test(test_config_json),           cmocka_unit_test(test_transpose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
