/* bench-convert-ckpt -- writes a shard-train-shaped checkpoint of a GPT-2 with about SIZE MiB of
  * model weights (the model/ tensors only, f32, the trainer's own initialisation gpt_init_param:
 * N(0, 0.02) values), Shard(0) over 2 ranks, with the config/ attributes shard-convert reads.
 *
 *   bench-convert-ckpt OUT [SIZE_MIB] */
#include <ckpt.h>
#include <gpt.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what)
{
    fprintf(stderr, "bench-convert-ckpt: %s: %s\n", what, ckpt_errmsg());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-convert-ckpt OUT [SIZE_MIB]\n");
        return 2;
    }
    double mib = argc > 2 ? atof(argv[2]) : 1024;
    /* C = 1024, T = 1024, V = 256: 12.6M parameters per block; as many blocks as fit */
    gpt_config cfg = {.n_layer = 1, .n_head = 16, .n_embd = 1024, .max_seq = 1024, .vocab = 256};
    while ((double)gpt_num_elements(&cfg) * 4 < mib * 1048576.0 - 12.0 * 1024 * 1024 * 4)
        cfg.n_layer++;
    int n = gpt_num_tensors(&cfg);
    gpt_param_info *t = calloc((size_t)n, sizeof *t);
    gpt_param_table(&cfg, t);
    ckpt_save_options so;
    ckpt_save_options_init(&so);
    ckpt_writer *w;
    if (ckpt_writer_open(argv[1], 2, &so, &w) != CKPT_OK)
        return fail("open");
    char name[64];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "model/%s", t[i].name);
        if (ckpt_writer_add_tensor(w, name, CKPT_F32, t[i].ndim, t[i].shape) != CKPT_OK)
            return fail("add");
        for (int r = 0; r < 2; r++) {
            int64_t off[2], ext[2];
            ckpt_shard_box(t[i].ndim, t[i].shape, 0, r, 2, off, ext);
            if (ext[0] > 0 && ckpt_writer_add_box(w, name, off, ext, r) != CKPT_OK)
                return fail("box");
        }
    }
    ckpt_state *a;
    ckpt_state_create(&a);
    ckpt_state_set_int(a, "config/n_layer", cfg.n_layer);
    ckpt_state_set_int(a, "config/n_head", cfg.n_head);
    ckpt_state_set_int(a, "config/n_embd", cfg.n_embd);
    ckpt_state_set_int(a, "config/max_seq", cfg.max_seq);
    ckpt_state_set_int(a, "config/vocab", cfg.vocab);
    ckpt_state_set_int(a, "step", 1000);
    ckpt_writer_set_attrs(w, a);
    ckpt_state_free(a);
    float *buf = malloc((size_t)so.piece_bytes);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "model/%s", t[i].name);
        int64_t nb;
        if (ckpt_writer_num_boxes(w, name, &nb) != CKPT_OK)
            return fail("plan");
        for (int64_t j = 0; j < nb; j++) {
            int64_t np, off[2], ext[2];
            ckpt_writer_box_piece(w, name, j, -1, NULL, NULL, &np);
            for (int64_t k = 0; k < np; k++) {
                ckpt_writer_box_piece(w, name, j, k, off, ext, NULL);
                int64_t cols = t[i].ndim == 2 ? t[i].shape[1] : 1, count = ext[0] * (t[i].ndim == 2 ? ext[1] : 1);
                int64_t first = off[0] * cols + (t[i].ndim == 2 ? off[1] : 0);
                gpt_init_param(&cfg, t[i].name, first, count, buf, 1337);
                if (ckpt_writer_write(w, name, off, ext, buf) != CKPT_OK)
                    return fail("write");
            }
        }
    }
    free(buf);
    free(t);
    if (ckpt_writer_commit(w) != CKPT_OK)
        return fail("commit");
    printf("%s: GPT-2 L%d H%d C%d T%d V%d, %lld parameters, %.1f MiB\n", argv[1], cfg.n_layer, cfg.n_head,
           cfg.n_embd, cfg.max_seq, cfg.vocab, (long long)gpt_num_elements(&cfg),
           (double)gpt_num_elements(&cfg) * 4 / 1048576.0);
    return 0;
}
