/* make_ckpt -- small one-process checkpoints that differ in known ways, for the shard-diff and
 * shard-inspect tests. No MPI_Init: ckpt_save with MPI_COMM_NULL is a one-process job.
 *
 *   make_ckpt DIR VARIANT
 *
 *   base      w f32 [4, 5] (w[0][0] is a quiet NaN), b f64 [5], n i64 [3], h f16 [4];
 *             attributes step=7, lr=0.001, name="small", blob=3 bytes
 *   eps       base with b[2] + 1e-6
 *   nanbits   base with another NaN payload in w[0][0]
 *   negzero   base with b[0] = -0.0 instead of +0.0
 *   missing   base without n, with an extra tensor x; lr=0.002, no name attribute, step a string
 *   shape     base with w of shape [5, 4]
 *   dtype     base with b saved as f32
 *   big       one f32 tensor [1000, 1000] of i * 0.5 (4 MB, many pieces: --max-read tests)
 *   bigdiff   big with element [999, 998] + 1 and element [3, 7] + 0.25
 *   huge      one f32 tensor [4096, 4096] of (i % 4096) * 0.5 (64 MiB: memory-bound tests)
 *   avg-a     for shard-merge --average: w f32 [4, 5] = i * 0.25, d f64 [3], h bf16 [7], e f16 [4],
 *             s f32 0-D, n i64 [3], flag bool [2]; attribute step=1
 *   avg-b     the same structure with other float values (means known exactly); step=2
 *   avg-c     avg-b with n[1] = 1 instead of 0 (an integer tensor that differs)
 *
 *   make_ckpt ROOT latest
 *             prints "latest STEP NAME": what ckpt_manager_latest says of the manager root ROOT
 *             (which restores an interrupted overwrite), "latest none" when there is none */
#include <ckpt.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what)
{
    fprintf(stderr, "make_ckpt: %s: %s\n", what, ckpt_errmsg());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_ckpt DIR VARIANT\n");
        return 2;
    }
    const char *dir = argv[1], *v = argv[2];
    if (!strcmp(v, "latest")) {
        ckpt_manager *m = NULL;
        int64_t step = -1;
        char path[4200];
        if (ckpt_manager_open(MPI_COMM_NULL, dir, NULL, &m))
            return fail("manager");
        int lrc = ckpt_manager_latest(m, &step, path, sizeof path);
        ckpt_manager_close(m);
        if (lrc == CKPT_ENOTFOUND) {
            printf("latest none\n");
            return 0;
        }
        if (lrc)
            return fail("latest");
        printf("latest %lld %s\n", (long long)step, strrchr(path, '/') + 1);
        return 0;
    }
    ckpt_state *s;
    if (ckpt_state_create(&s))
        return fail("create");
    int rc = 0;
    float w[20];
    double b[5] = {0.0, 1.5, 2.25, -3.0, 1e10};
    float bf[5];
    int64_t n[3] = {-5, 0, INT64_C(9007199254740993)};
    uint16_t h[4] = {0x3c00, 0xc000, 0x7c00, 0x0001}; /* 1, -2, +inf, smallest subnormal */
    float *big = NULL;
    int64_t ws[2] = {4, 5}, bs[1] = {5}, ns[1] = {3}, hs[1] = {4}, bigs[2] = {1000, 1000};
    for (int i = 0; i < 20; i++)
        w[i] = (float)i * 0.25f;
    uint32_t qnan = 0x7fc00000u, other = 0x7fc00001u;
    memcpy(&w[0], strcmp(v, "nanbits") ? &qnan : &other, 4);
    if (!strcmp(v, "eps"))
        b[2] += 1e-6;
    if (!strcmp(v, "negzero"))
        b[0] = -0.0;
    if (!strncmp(v, "avg-", 4)) {
        int b_side = strcmp(v, "avg-a") != 0;
        float aw[20], as = b_side ? 6.0f : 2.0f;
        double ad[3];
        /* bf16 bits: a = 0.5 1 1.5 -2 3.25 100 1; b = 2.5 3 3.5 0 5.25 102 1.0078125 */
        uint16_t ah_a[7] = {0x3f00, 0x3f80, 0x3fc0, 0xc000, 0x4050, 0x42c8, 0x3f80};
        uint16_t ah_b[7] = {0x4020, 0x4040, 0x4060, 0x0000, 0x40a8, 0x42cc, 0x3f81};
        /* f16 bits: a = 1 -1 0.5 65504; b = 3 1 1.5 65504 */
        uint16_t ae_a[4] = {0x3c00, 0xbc00, 0x3800, 0x7bff};
        uint16_t ae_b[4] = {0x4200, 0x3c00, 0x3e00, 0x7bff};
        int64_t an[3] = {-5, !strcmp(v, "avg-c") ? 1 : 0, INT64_C(9007199254740993)};
        unsigned char flag[2] = {1, 0};
        int64_t s3[1] = {3}, s7[1] = {7}, s4[1] = {4}, s2[1] = {2};
        for (int i = 0; i < 20; i++)
            aw[i] = (float)i * 0.25f + (b_side ? 1.0f : 0.0f);
        for (int i = 0; i < 3; i++)
            ad[i] = (double)(i + 1) * (b_side ? 3.0 : 1.0);
        rc = ckpt_state_add_replicated(s, "w", CKPT_F32, 2, ws, aw);
        if (!rc)
            rc = ckpt_state_add_replicated(s, "d", CKPT_F64, 1, s3, ad);
        if (!rc)
            rc = ckpt_state_add_replicated(s, "h", CKPT_BF16, 1, s7, b_side ? ah_b : ah_a);
        if (!rc)
            rc = ckpt_state_add_replicated(s, "e", CKPT_F16, 1, s4, b_side ? ae_b : ae_a);
        if (!rc)
            rc = ckpt_state_add_replicated(s, "s", CKPT_F32, 0, NULL, &as);
        if (!rc)
            rc = ckpt_state_add_replicated(s, "n", CKPT_I64, 1, s3, an);
        if (!rc)
            rc = ckpt_state_add_replicated(s, "flag", CKPT_BOOL, 1, s2, flag);
        if (!rc)
            rc = ckpt_state_set_int(s, "step", b_side ? 2 : 1);
        if (rc) {
            ckpt_state_free(s);
            return fail("state");
        }
        ckpt_save_options o;
        ckpt_save_options_init(&o);
        o.fsync = 0;
        o.overwrite = 1;
        rc = ckpt_save(MPI_COMM_NULL, dir, s, &o); /* the buffers above live until here */
        ckpt_state_free(s);
        return rc ? fail("save") : 0;
    }
    if (!strcmp(v, "huge")) {
        int64_t hs2[2] = {4096, 4096};
        big = malloc(sizeof(float) * 4096 * 4096);
        if (!big)
            return fail("malloc");
        for (int64_t i = 0; i < 4096 * 4096; i++)
            big[i] = (float)(i % 4096) * 0.5f;
        rc = ckpt_state_add_replicated(s, "huge", CKPT_F32, 2, hs2, big);
    } else if (!strcmp(v, "big") || !strcmp(v, "bigdiff")) {
        big = malloc(sizeof(float) * 1000 * 1000);
        for (int i = 0; i < 1000 * 1000; i++)
            big[i] = (float)(i % 4096) * 0.5f;
        if (!strcmp(v, "bigdiff")) {
            big[999 * 1000 + 998] += 1.0f;
            big[3 * 1000 + 7] += 0.25f;
        }
        rc = ckpt_state_add_replicated(s, "big", CKPT_F32, 2, bigs, big);
    } else {
        if (!strcmp(v, "shape")) {
            ws[0] = 5;
            ws[1] = 4;
        }
        rc = ckpt_state_add_replicated(s, "w", CKPT_F32, 2, ws, w);
        if (!rc && !strcmp(v, "dtype")) {
            for (int i = 0; i < 5; i++)
                bf[i] = (float)b[i];
            rc = ckpt_state_add_replicated(s, "b", CKPT_F32, 1, bs, bf);
        } else if (!rc) {
            rc = ckpt_state_add_replicated(s, "b", CKPT_F64, 1, bs, b);
        }
        if (!rc && strcmp(v, "missing"))
            rc = ckpt_state_add_replicated(s, "n", CKPT_I64, 1, ns, n);
        if (!rc && !strcmp(v, "missing"))
            rc = ckpt_state_add_replicated(s, "x", CKPT_I64, 1, ns, n);
        if (!rc)
            rc = ckpt_state_add_replicated(s, "h", CKPT_F16, 1, hs, h);
        unsigned char blob[3] = {0xde, 0xad, 0x01};
        if (!rc && !strcmp(v, "missing"))
            rc = ckpt_state_set_string(s, "step", "seven");
        else if (!rc)
            rc = ckpt_state_set_int(s, "step", 7);
        if (!rc)
            rc = ckpt_state_set_double(s, "lr", strcmp(v, "missing") ? 0.001 : 0.002);
        if (!rc && strcmp(v, "missing"))
            rc = ckpt_state_set_string(s, "name", "small \"one\"");
        if (!rc)
            rc = ckpt_state_set_bytes(s, "blob", blob, sizeof blob);
    }
    if (rc) {
        ckpt_state_free(s);
        free(big);
        return fail("state");
    }
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.overwrite = 1;
    o.fsync = 0;
    o.piece_bytes = 64 * 1024;
    rc = ckpt_save(MPI_COMM_NULL, dir, s, &o);
    ckpt_state_free(s);
    free(big);
    return rc ? fail("save") : 0;
}
