/* ckptfmt_export_safetensors / ckptfmt_import_safetensors through the library: the output does not
 * depend on the chunking (a buffer of a few rows gives the same bytes as the default, through the
 * writer thread's queue), the weights read back equal the checkpoint's, an interrupt or a failure
 * leaves nothing behind, and the import writes what M ranks would have saved. */
#include "ckptfmt.h"
#include "convert_test.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char scratch[2048];
static char ckpt[2100];
/* n_embd 24: neither a multiple of 8 nor of 32, so every transposition has ragged edges */
static const ckptfmt_gpt2_config cfg = {2, 2, 24, 20, 256, CKPTFMT_GPT2_LN_EPS, 0, 0};

static void path_in(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", scratch, name); }

static void rm_rf(const char *p)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    assert_int_equal(system(cmd), 0);
}

static float value(int t, int64_t e) { return (float)((t + 1) * 0.001 + (double)(e % 997) * 1e-4 - 0.05); }

/* a shard-train-shaped checkpoint of cfg, Shard(0) over 3 ranks, plus an optimizer tensor */
static void make_ckpt(void)
{
    path_in(ckpt, sizeof ckpt, "ckpt");
    rm_rf(ckpt);
    ckpt_writer *w;
    assert_int_equal(ckpt_writer_open(ckpt, 3, NULL, &w), CKPT_OK);
    int n = ckptfmt_gpt2_num_tensors(&cfg);
    for (int i = 0; i <= n; i++) {
        ckptfmt_gpt2_tensor t;
        ckptfmt_gpt2_tensor_info(&cfg, i < n ? i : 0, &t);
        const char *name = i < n ? t.name[CKPTFMT_NAMES_TRAINER] : "optim/m/wte";
        assert_int_equal(ckpt_writer_add_tensor(w, name, CKPT_F32, t.ndim, t.shape), CKPT_OK);
        for (int r = 0; r < 3; r++) {
            int64_t off[2], ext[2];
            ckpt_shard_box(t.ndim, t.shape, 0, r, 3, off, ext);
            assert_int_equal(ckpt_writer_add_box(w, name, off, ext, r), CKPT_OK);
        }
    }
    ckpt_state *a;
    ckpt_state_create(&a);
    assert_int_equal(ckptfmt_gpt2_config_to_attrs(&cfg, a), CKPTFMT_OK);
    ckpt_state_set_int(a, "step", 5);
    ckpt_writer_set_attrs(w, a);
    ckpt_state_free(a);
    float *buf = malloc(sizeof(float) * 256 * 24);
    for (int i = 0; i <= n; i++) {
        ckptfmt_gpt2_tensor t;
        ckptfmt_gpt2_tensor_info(&cfg, i < n ? i : 0, &t);
        const char *name = i < n ? t.name[CKPTFMT_NAMES_TRAINER] : "optim/m/wte";
        int64_t nb;
        assert_int_equal(ckpt_writer_num_boxes(w, name, &nb), CKPT_OK);
        for (int64_t j = 0; j < nb; j++) {
            int64_t np, off[2], ext[2];
            ckpt_writer_box_piece(w, name, j, -1, NULL, NULL, &np);
            for (int64_t k = 0; k < np; k++) {
                ckpt_writer_box_piece(w, name, j, k, off, ext, NULL);
                int64_t cnt = ext[0] * (t.ndim == 2 ? ext[1] : 1), first = off[0] * (t.ndim == 2 ? t.shape[1] : 1);
                for (int64_t e = 0; e < cnt; e++)
                    buf[e] = value(i, first + e);
                assert_int_equal(ckpt_writer_write(w, name, off, ext, buf), CKPT_OK);
            }
        }
    }
    free(buf);
    assert_int_equal(ckpt_writer_commit(w), CKPT_OK);
}

static void assert_same_file(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    free(x);
    free(y);
}

/* nothing but `keep` in the scratch directory that starts with `prefix` */
static int leftovers(const char *prefix)
{
    DIR *d = opendir(scratch);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_chunking(void **state)
{
    (void)state;
    const ckpt_dtype dts[2] = {CKPT_F32, CKPT_BF16};
    for (int k = 0; k < 2; k++) {
        char a[4096], b[4096], fa[4200], fb[4200];
        path_in(a, sizeof a, "big-buffer");
        path_in(b, sizeof b, "small-buffer");
        rm_rf(a);
        rm_rf(b);
        ckptfmt_export_options o;
        ckptfmt_export_options_init(&o);
        o.dtype_set = 1;
        o.dtype = dts[k];
        o.fsync = k; /* with fsync: the writeback hints too */
        ckptfmt_export_result r1, r2;
        assert_int_equal(ckptfmt_export_safetensors(ckpt, a, &o, &r1), CKPTFMT_OK);
        o.buffer_bytes = 400; /* a few rows of every matrix per chunk: many bands, many queued writes */
        assert_int_equal(ckptfmt_export_safetensors(ckpt, b, &o, &r2), CKPTFMT_OK);
        assert_int_equal(r1.tensors, 28);
        assert_int_equal(r1.step, 5);
        assert_int_equal(r1.data_bytes, r2.data_bytes);
        assert_int_equal(r1.read_bytes, 4 * ((256 + 20) * 24 + 2 * (12 * 24 * 24 + 13 * 24) + 48));
        snprintf(fa, sizeof fa, "%s/model.safetensors", a);
        snprintf(fb, sizeof fb, "%s/model.safetensors", b);
        assert_same_file(fa, fb);
        snprintf(fa, sizeof fa, "%s/config.json", a);
        snprintf(fb, sizeof fb, "%s/config.json", b);
        assert_same_file(fa, fb);
        if (k == 0) {
            /* the weights read back from the export are the checkpoint's, in the trainer's layout */
            ckptfmt_gpt2_weights *wc, *ws;
            assert_int_equal(ckptfmt_gpt2_weights_open(ckpt, &wc), CKPTFMT_OK);
            assert_int_equal(ckptfmt_gpt2_weights_open(b, &ws), CKPTFMT_OK);
            assert_string_equal(ckptfmt_gpt2_weights_kind(wc), "checkpoint");
            assert_string_equal(ckptfmt_gpt2_weights_kind(ws), "safetensors");
            assert_int_equal(ckptfmt_gpt2_weights_step(ws), 5);
            float *x = malloc(sizeof(float) * 256 * 24), *y = malloc(sizeof(float) * 256 * 24);
            for (int i = 0; i < 28; i++) {
                ckptfmt_gpt2_tensor t;
                ckptfmt_gpt2_tensor_info(&cfg, i, &t);
                assert_int_equal(ckptfmt_gpt2_weights_read(wc, i, x), CKPTFMT_OK);
                assert_int_equal(ckptfmt_gpt2_weights_read(ws, i, y), CKPTFMT_OK);
                for (int64_t e = 0; e < t.shape[0] * t.shape[1]; e++)
                    assert_true(x[e] == value(i, e));
                assert_memory_equal(x, y, sizeof(float) * (size_t)(t.shape[0] * t.shape[1]));
            }
            free(x);
            free(y);
            ckptfmt_gpt2_weights_close(wc);
            ckptfmt_gpt2_weights_close(ws);
        }
    }
    assert_int_equal(leftovers("big-buffer.tmp"), 0);
}

static int stop_after(void *user, int64_t done, int64_t total, const char *tensor)
{
    int *calls = user;
    assert_true(done <= total);
    assert_non_null(tensor);
    return ++*calls >= 3;
}

static void test_failures(void **state)
{
    (void)state;
    char out[4096];
    path_in(out, sizeof out, "interrupted");
    rm_rf(out);
    ckptfmt_export_options o;
    ckptfmt_export_options_init(&o);
    int calls = 0;
    o.progress = stop_after;
    o.progress_user = &calls;
    o.max_shard_size = 3000; /* several files: the interrupt falls between files */
    assert_int_equal(ckptfmt_export_safetensors(ckpt, out, &o, NULL), CKPTFMT_EINTERRUPTED);
    assert_int_equal(calls, 3);
    assert_int_equal(access(out, F_OK), -1);
    assert_int_equal(leftovers("interrupted"), 0);

    ckptfmt_export_options_init(&o);
    o.buffer_bytes = 64; /* below one 96-element row of mlp.fc.w */
    assert_int_equal(ckptfmt_export_safetensors(ckpt, out, &o, NULL), CKPTFMT_EINVAL);
    assert_string_equal(ckptfmt_errmsg(),
                        "the 64-byte output buffer is smaller than one 72-element row of 'model/h.0.attn.qkv.w'");
    assert_int_equal(leftovers("interrupted"), 0);

    ckptfmt_export_options_init(&o);
    assert_int_equal(ckptfmt_export_safetensors(ckpt, ckpt, &o, NULL), CKPTFMT_EEXIST);
    char want[8192];
    snprintf(want, sizeof want, "'%s' already exists (nothing is overwritten)", ckpt);
    assert_string_equal(ckptfmt_errmsg(), want);
    path_in(out, sizeof out, "no/such/dir");
    assert_int_equal(ckptfmt_export_safetensors(ckpt, out, &o, NULL), CKPTFMT_ENOTFOUND);
    char missing[4096];
    path_in(missing, sizeof missing, "missing");
    path_in(out, sizeof out, "out");
    assert_int_equal(ckptfmt_export_safetensors(missing, out, &o, NULL), CKPTFMT_ECKPT);
    o.dtype_set = 1;
    o.dtype = CKPT_F64;
    assert_int_equal(ckptfmt_export_safetensors(ckpt, out, &o, NULL), CKPTFMT_EINVAL);
    assert_string_equal(ckptfmt_errmsg(), "export dtype must be f32, f16 or bf16");
}

static void test_import(void **state)
{
    (void)state;
    char st[4096], out[4096];
    path_in(st, sizeof st, "for-import");
    path_in(out, sizeof out, "imported");
    rm_rf(st);
    rm_rf(out);
    ckptfmt_export_options eo;
    ckptfmt_export_options_init(&eo);
    eo.max_shard_size = 10000;
    assert_int_equal(ckptfmt_export_safetensors(ckpt, st, &eo, NULL), CKPTFMT_OK);
    ckptfmt_import_options io;
    ckptfmt_import_options_init(&io);
    io.world_size = 5;
    io.save.layout = CKPT_LAYOUT_SHARED;
    io.save.piece_bytes = 256; /* many pieces per box */
    ckptfmt_import_result r;
    assert_int_equal(ckptfmt_import_safetensors(st, out, &io, &r), CKPTFMT_OK);
    assert_int_equal(r.tensors, 28);
    assert_int_equal(r.step, 5);
    assert_int_equal(r.config.n_embd, 24);
    ckpt_reader *rd;
    assert_int_equal(ckpt_reader_open(out, &rd), CKPT_OK);
    assert_int_equal(ckpt_reader_world_size(rd), 5);
    assert_int_equal(ckpt_reader_layout(rd), CKPT_LAYOUT_SHARED);
    assert_int_equal(ckpt_reader_num_tensors(rd), 28);
    const char *src;
    assert_int_equal(ckpt_state_get_string(ckpt_reader_attrs(rd), "import/source", &src), CKPT_OK);
    assert_string_equal(src, st);
    float *x = malloc(sizeof(float) * 256 * 24);
    for (int i = 0; i < 28; i++) {
        ckptfmt_gpt2_tensor t;
        ckptfmt_gpt2_tensor_info(&cfg, i, &t);
        int64_t off[2] = {0, 0};
        assert_int_equal(ckpt_reader_read(rd, t.name[CKPTFMT_NAMES_TRAINER], CKPT_F32, off, t.shape, x, 1), CKPT_OK);
        for (int64_t e = 0; e < t.shape[0] * t.shape[1]; e++)
            assert_true(x[e] == value(i, e));
        /* Shard(0) over 5 ranks: boxes of ceil(rows / 5) rows */
        ckpt_tensor_info ti;
        int j;
        ckpt_reader_find(rd, t.name[CKPTFMT_NAMES_TRAINER], &j);
        ckpt_reader_tensor_info(rd, j, &ti);
        int64_t per = (t.shape[0] + 4) / 5, want = (t.shape[0] + per - 1) / per;
        assert_int_equal(ti.nboxes, want);
    }
    free(x);
    ckpt_reader_close(rd);
    /* the same again: the destination exists */
    assert_int_equal(ckptfmt_import_safetensors(st, out, &io, &r), CKPTFMT_EEXIST);
}

int main(int argc, char **argv)
{
    snprintf(scratch, sizeof scratch, "%s", argc > 1 ? argv[1] : "/tmp/convert-export");
    mkdir(scratch, 0755);
    make_ckpt();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunking),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_import),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
