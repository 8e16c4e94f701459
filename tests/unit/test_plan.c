/* test_plan.c -- unit tests of plan.h, driven over simulated ranks the way save_plan.c drives
 * them over MPI: declarations merged pairwise along the same binary tree, the three grid rounds
 * combined with MAX / MIN / SUM, irregular tensors planned explicitly, the index assembled.
 * Checks the union and its exact disagreement messages, which shardings become grids (with
 * which writers) and which stay explicit, replica dedupe, the exact overlap/gap messages, and
 * the shared layout's checksum slots. */
#include "unit.h"

#include "grid.h"
#include "meta.h"
#include "plan.h"
#include "state.h"
#include "wire.h"

static ckpt_state *new_state(void)
{
    ckpt_state *s;
    expect_ok(ckpt_state_create(&s));
    return s;
}

static void add(ckpt_state *s, const char *name, ckpt_dtype dt, int nd, const int64_t *shape)
{
    expect_ok(ckpt_state_add_tensor(s, name, dt, nd, shape, 0));
}

static char dummy[8];

static void box(ckpt_state *s, const char *name, const int64_t *off, const int64_t *ext)
{
    expect_ok(ckpt_state_add_box(s, name, off, ext, dummy));
}

static void shard(ckpt_state *s, const char *name, int nd, const int64_t *shape, int dim, int rank, int n)
{
    expect_ok(ckpt_state_add_shard(s, name, CKPT_F32, nd, shape, dim, rank, n, dummy));
}

static void free_states(ckpt_state **st, int n)
{
    for (int r = 0; r < n; r++)
        ckpt_state_free(st[r]);
}

/* The union along comm.c's tree: in round `bit`, rank r + bit's list merges into rank r's. */
static int merge_tree(ckpt_state **st, int n, ckpt_wire *out)
{
    ckpt_wire w[16];
    memset(w, 0, sizeof w);
    for (int r = 0; r < n; r++)
        ckpt_plan_encode_decls(st[r], r, &w[r]);
    int rc = CKPT_OK;
    for (int bit = 1; bit < n && rc == CKPT_OK; bit <<= 1)
        for (int r = 0; r + bit < n && rc == CKPT_OK; r += 2 * bit) {
            ckpt_wire m = {0};
            rc = ckpt_plan_merge_decls(&w[r], &w[r + bit], &m);
            ckpt_wire_free(&w[r]);
            w[r] = m;
        }
    *out = w[0];
    for (int r = 1; r < n; r++)
        ckpt_wire_free(&w[r]);
    return rc;
}

/* This rank's non-empty boxes of tensor `name`. */
static int64_t rank_boxes(const ckpt_state *s, const char *name, ckpt_box *out)
{
    const ckpt_stensor *t = ckpt_state_find(s, name);
    int64_t n = 0;
    for (int64_t b = 0; t && b < t->nboxes; b++)
        if (ckpt_box_volume(&t->boxes[b].box) > 0)
            out[n++] = t->boxes[b].box;
    return n;
}

/* Plans the save of n simulated ranks into *ix (the rank-0 view, rows included). */
static int plan_states(ckpt_state **st, int n, int64_t piece_bytes, ckpt_layout layout, ckpt_index **out)
{
    ckpt_index *ix;
    expect_ok(ckpt_index_new(&ix));
    *out = ix;
    ix->layout = layout;
    ix->world_size = n;
    ix->piece_bytes = piece_bytes;
    ckpt_wire u;
    int rc = merge_tree(st, n, &u);
    if (rc == CKPT_OK)
        rc = ckpt_plan_decode_decls(&u, ix);
    ckpt_wire_free(&u);
    if (rc)
        return rc;
    ckpt_box boxes[64];
    int64_t scratch[64];
    ckpt_plan_box all[256];
    int64_t nall = 0, assign[256];
    for (int64_t t = 0; t < ix->ntensors; t++) {
        ckpt_itensor *it = &ix->tensors[t];
        ckpt_grid_acc acc;
        ckpt_grid g;
        int ok = 0;
        for (int round = 1; round <= 3; round++) {
            ckpt_grid_acc_init(&acc, round);
            for (int r = 0; r < n; r++) {
                int64_t m = rank_boxes(st[r], it->name, boxes);
                if (round == 1)
                    ckpt_grid_round1(&acc, boxes, m);
                else if (round == 2)
                    ckpt_grid_round2(&acc, &g, r, boxes, m);
                else
                    ckpt_grid_round3(&acc, &g, r, boxes, m, scratch);
            }
            if (round == 1)
                ckpt_grid_propose(it, &acc, &g);
            else if (round == 2 && ckpt_grid_writers(&g, &acc, n) != 0)
                break;
            else if (round == 3)
                ok = ckpt_grid_holds(&g, &acc);
        }
        if (ok) {
            it->sharding = CKPT_SHARDING_GRID;
            it->grid = g;
            continue;
        }
        it->sharding = CKPT_SHARDING_EXPLICIT;
        for (int r = 0; r < n; r++) {
            int64_t m = rank_boxes(st[r], it->name, boxes);
            for (int64_t k = 0; k < m; k++, nall++)
                all[nall] = (ckpt_plan_box){boxes[k], (int32_t)t, r, nall};
        }
    }
    rc = ckpt_plan_explicit(ix, all, nall, assign);
    if (rc == CKPT_OK)
        rc = ckpt_plan_assemble(ix, "test", 1);
    return rc;
}

static const int64_t S46[2] = {4, 6};

/* ---- declarations ---- */

static void test_union(void **st)
{
    (void)st;
    ckpt_state *s[3] = {new_state(), new_state(), new_state()};
    int64_t v[1] = {5};
    shard(s[0], "b", 2, S46, 0, 0, 2);
    shard(s[1], "b", 2, S46, 0, 1, 2);
    add(s[1], "a", CKPT_I32, 1, v);
    int64_t z[1] = {0};
    box(s[1], "a", z, v);
    add(s[2], "c/d", CKPT_BF16, 0, NULL);
    box(s[2], "c/d", NULL, NULL);
    ckpt_index *ix;
    expect_ok(plan_states(s, 3, 1 << 20, CKPT_LAYOUT_PER_RANK, &ix));
    const char *names[3] = {"a", "b", "c/d"};
    const int64_t nboxes[3] = {1, 2, 1}, first[3] = {0, 1, 3}, writer0[3] = {1, 0, 2}, raw[3] = {20, 96, 2};
    assert_int_equal(ix->ntensors, 3);
    for (int i = 0; i < 3; i++) {
        const ckpt_itensor *t = &ix->tensors[i];
        assert_string_equal(t->name, names[i]);
        assert_int_equal(t->sharding, CKPT_SHARDING_GRID);
        assert_int_equal(t->nboxes, nboxes[i]);
        assert_int_equal(t->first_box, first[i]);
        assert_int_equal(t->grid.writer0, writer0[i]);
        assert_int_equal(t->raw_bytes, raw[i]);
        assert_int_equal(ckpt_strmap_get(&ix->by_name, names[i]), i);
    }
    assert_int_equal(ix->nboxes, 4);
    ckpt_index_free(ix);
    free_states(s, 3);
}

static void expect_mismatch(ckpt_dtype d2, int nd2, const int64_t *sh2, int r_first, int r_bad, const char *want)
{
    ckpt_state *s[3] = {new_state(), new_state(), new_state()};
    for (int r = 0; r < 3; r++) {
        if (r < r_first)
            continue;
        if (r == r_bad)
            add(s[r], "w", d2, nd2, sh2);
        else
            add(s[r], "w", CKPT_F32, 2, S46);
    }
    ckpt_index *ix;
    expect_err_exact(plan_states(s, 3, 1 << 20, CKPT_LAYOUT_PER_RANK, &ix), CKPT_EMISMATCH, want);
    ckpt_index_free(ix);
    free_states(s, 3);
}

static void test_mismatch(void **st)
{
    (void)st;
    int64_t s24[1] = {24}, s64[2] = {6, 4}, s1[1] = {1};
    expect_mismatch(CKPT_F64, 2, S46, 0, 2, "tensor 'w' is f32 [4, 6] on rank 0 but f64 [4, 6] on rank 2");
    expect_mismatch(CKPT_I32, 2, S46, 1, 2, "tensor 'w' is f32 [4, 6] on rank 1 but i32 [4, 6] on rank 2");
    expect_mismatch(CKPT_F32, 1, s24, 0, 0, "tensor 'w' is f32 [24] on rank 0 but f32 [4, 6] on rank 1");
    expect_mismatch(CKPT_F32, 2, s64, 0, 1, "tensor 'w' is f32 [4, 6] on rank 0 but f32 [6, 4] on rank 1");
    /* 0-D vs 1-D */
    ckpt_state *s[2] = {new_state(), new_state()};
    add(s[0], "s", CKPT_F32, 0, NULL);
    add(s[1], "s", CKPT_F32, 1, s1);
    ckpt_index *ix;
    expect_err_exact(plan_states(s, 2, 1 << 20, CKPT_LAYOUT_PER_RANK, &ix), CKPT_EMISMATCH,
                     "tensor 's' is f32 [] on rank 0 but f32 [1] on rank 1");
    ckpt_index_free(ix);
    free_states(s, 2);
}

static void test_merge_malformed(void **st)
{
    (void)st;
    ckpt_wire a = {0}, b = {0}, out = {0};
    ckpt_wire_i64(&a, 0);
    ckpt_wire_str(&a, "");
    ckpt_wire_i64(&a, 1); /* claims one declaration, has none */
    ckpt_wire_i64(&b, 0);
    ckpt_wire_str(&b, "");
    ckpt_wire_i64(&b, 0);
    expect_err(ckpt_plan_merge_decls(&a, &b, &out), CKPT_ECORRUPT, "malformed");
    ckpt_wire_free(&a);
    ckpt_wire_free(&out);
    /* a bad dtype / name is refused too */
    ckpt_wire_i64(&a, 0);
    ckpt_wire_str(&a, "");
    ckpt_wire_i64(&a, 1);
    ckpt_wire_str(&a, "x");
    ckpt_wire_i64(&a, 99);
    ckpt_wire_i64(&a, 0);
    ckpt_wire_i64(&a, 0);
    expect_err(ckpt_plan_merge_decls(&a, &b, &out), CKPT_ECORRUPT, "malformed");
    ckpt_wire_free(&a);
    ckpt_wire_free(&b);
    ckpt_wire_free(&out);
}

/* ---- grids ---- */

static ckpt_index *plan_ok(ckpt_state **s, int n)
{
    ckpt_index *ix;
    expect_ok(plan_states(s, n, 1 << 20, CKPT_LAYOUT_PER_RANK, &ix));
    return ix;
}

static void expect_grid(const ckpt_itensor *t, const int64_t *chunk, int64_t w0, const int64_t *stride, int64_t nboxes)
{
    assert_int_equal(t->sharding, CKPT_SHARDING_GRID);
    assert_int_equal(t->nboxes, nboxes);
    assert_int_equal(t->grid.writer0, w0);
    for (int d = 0; d < t->ndim; d++) {
        assert_int_equal(t->grid.chunk[d], chunk[d]);
        assert_int_equal(t->grid.stride[d], stride[d]);
    }
}

static void test_shard_grid(void **st)
{
    (void)st;
    /* Shard(0) of 10 rows over 4 ranks: 3,3,3,1; over 6 ranks: 2 each, the last empty */
    int64_t sh[2] = {10, 7};
    for (int n = 1; n <= 6; n++) {
        ckpt_state *s[6];
        for (int r = 0; r < n; r++) {
            s[r] = new_state();
            shard(s[r], "w", 2, sh, 0, r, n);
        }
        ckpt_index *ix = plan_ok(s, n);
        int64_t c = (10 + n - 1) / n, chunk[2] = {c, 7}, stride[2] = {n > 1, 0};
        expect_grid(&ix->tensors[0], chunk, 0, stride, (10 + c - 1) / c);
        for (int64_t j = 0; j < ix->tensors[0].nboxes; j++) {
            ckpt_boxref b;
            ckpt_index_box(ix, 0, j, &b);
            assert_int_equal(b.writer, j);
            assert_int_equal(b.file, j);
            assert_int_equal(b.gid, j);
        }
        assert_int_equal(ix->nrows, 0);
        ckpt_index_free(ix);
        free_states(s, n);
    }
}

static void test_2d_and_replicas(void **st)
{
    (void)st;
    /* 8 ranks = 2 data-parallel replicas x (2 TP x 2 FSDP): rank = dp*4 + tp*2 + f holds rows f, cols tp */
    int64_t sh[2] = {6, 8};
    ckpt_state *s[8];
    for (int r = 0; r < 8; r++) {
        s[r] = new_state();
        add(s[r], "w", CKPT_F32, 2, sh);
        int f = r % 2, tp = (r / 2) % 2;
        int64_t off[2] = {3 * f, 4 * tp}, ext[2] = {3, 4};
        box(s[r], "w", off, ext);
        add(s[r], "r", CKPT_F32, 2, sh); /* replicated on every rank */
        int64_t z[2] = {0, 0};
        box(s[r], "r", z, sh);
    }
    ckpt_index *ix = plan_ok(s, 8);
    int64_t c1[2] = {3, 4}, st1[2] = {1, 2}, c2[2] = {6, 8}, st2[2] = {0, 0};
    expect_grid(&ix->tensors[1], c1, 0, st1, 4); /* "w": the lowest holders 0..3 write */
    expect_grid(&ix->tensors[0], c2, 0, st2, 1); /* "r": rank 0 writes */
    ckpt_boxref b;
    ckpt_index_box(ix, 1, 3, &b); /* cell (1, 1): rank 0 + 1*1 + 1*2 */
    assert_int_equal(b.writer, 3);
    char bs[64];
    assert_string_equal(ckpt_box_str(&b.box, bs, sizeof bs), "[3:6, 4:8]");
    ckpt_index_free(ix);
    free_states(s, 8);
}

static void test_reversed_and_shifted(void **st)
{
    (void)st;
    int64_t sh[1] = {12};
    /* reversed rank order: cell i on rank 3 - i, a negative stride */
    ckpt_state *s[4];
    for (int r = 0; r < 4; r++) {
        s[r] = new_state();
        shard(s[r], "v", 1, sh, 0, 3 - r, 4);
    }
    ckpt_index *ix = plan_ok(s, 4);
    int64_t c[1] = {3}, stride[1] = {-1};
    expect_grid(&ix->tensors[0], c, 3, stride, 4);
    ckpt_index_free(ix);
    free_states(s, 4);
    /* looks regular but one rank's box is shifted: stored explicitly, same boxes */
    int64_t offs[4] = {0, 3, 7, 9}, exts[4] = {3, 4, 2, 3};
    for (int r = 0; r < 4; r++) {
        s[r] = new_state();
        add(s[r], "v", CKPT_F32, 1, sh);
        box(s[r], "v", &offs[r], &exts[r]);
    }
    ix = plan_ok(s, 4);
    assert_int_equal(ix->tensors[0].sharding, CKPT_SHARDING_EXPLICIT);
    assert_int_equal(ix->tensors[0].nboxes, 4);
    for (int j = 0; j < 4; j++) {
        assert_int_equal(ix->rows[j].box.off[0], offs[j]);
        assert_int_equal(ix->rows[j].writer, j);
    }
    ckpt_index_free(ix);
    free_states(s, 4);
}

static void test_duplicate_does_not_hide_gap(void **st)
{
    (void)st;
    /* 3 cells: rank 0 holds cell 0 twice, rank 1 cell 1, nobody cell 2 (the state API refuses a
     * rank's repeated box; a peer's declarations are still not trusted). Counting cell 0 twice
     * would make up for the missing cell; round 3 counts a rank's cell once: no grid */
    ckpt_itensor t;
    memset(&t, 0, sizeof t);
    t.ndim = 1;
    t.shape[0] = 9;
    ckpt_box b0 = {1, {0}, {3}}, b1 = {1, {3}, {3}};
    ckpt_box r0[2] = {b0, b0}, r1[1] = {b1};
    int64_t scratch[2];
    ckpt_grid_acc acc;
    ckpt_grid g;
    ckpt_grid_acc_init(&acc, 1);
    ckpt_grid_round1(&acc, r0, 2);
    ckpt_grid_round1(&acc, r1, 1);
    ckpt_grid_propose(&t, &acc, &g);
    assert_int_equal(g.chunk[0], 3);
    assert_int_equal(g.nboxes, 3);
    ckpt_grid_acc_init(&acc, 2);
    ckpt_grid_round2(&acc, &g, 0, r0, 2);
    ckpt_grid_round2(&acc, &g, 1, r1, 1);
    assert_int_equal(ckpt_grid_writers(&g, &acc, 3), 0);
    assert_int_equal(g.stride[0], 1);
    ckpt_grid_acc_init(&acc, 3);
    ckpt_grid_round3(&acc, &g, 0, r0, 2, scratch);
    ckpt_grid_round3(&acc, &g, 1, r1, 1, scratch);
    assert_int_equal(acc.claimed, 2);
    assert_int_equal(ckpt_grid_holds(&g, &acc), 0);
    /* and with the gap filled by rank 2 it holds */
    ckpt_box r2[1] = {{1, {6}, {3}}};
    ckpt_grid_round3(&acc, &g, 2, r2, 1, scratch);
    assert_int_equal(ckpt_grid_holds(&g, &acc), 1);
}

static void test_zero_size_and_scalar(void **st)
{
    (void)st;
    int64_t z[2] = {0, 4};
    ckpt_state *s[2] = {new_state(), new_state()};
    for (int r = 0; r < 2; r++) {
        shard(s[r], "z", 2, z, 0, r, 2);
        add(s[r], "s", CKPT_F64, 0, NULL);
    }
    box(s[1], "s", NULL, NULL); /* only rank 1 holds the scalar */
    ckpt_index *ix = plan_ok(s, 2);
    assert_int_equal(ix->tensors[0].sharding, CKPT_SHARDING_GRID); /* s */
    assert_int_equal(ix->tensors[0].nboxes, 1);
    assert_int_equal(ix->tensors[0].grid.writer0, 1);
    assert_int_equal(ix->tensors[1].sharding, CKPT_SHARDING_GRID); /* z */
    assert_int_equal(ix->tensors[1].nboxes, 0);
    ckpt_index_free(ix);
    free_states(s, 2);
    /* a scalar nobody holds is a gap */
    s[0] = new_state();
    add(s[0], "s", CKPT_F64, 0, NULL);
    expect_err_exact(plan_states(s, 1, 1 << 20, CKPT_LAYOUT_PER_RANK, &ix), CKPT_ECOVERAGE,
                     "tensor 's' []: the boxes of all ranks cover 0 of its 1 elements (a gap: some part is held by no rank)");
    ckpt_index_free(ix);
    ckpt_state_free(s[0]);
}

/* ---- explicit ---- */

static void expect_coverage(const int64_t (*off)[2], const int64_t (*ext)[2], const int *rank, int nb, int n,
                            const char *want)
{
    ckpt_state *s[4];
    for (int r = 0; r < n; r++) {
        s[r] = new_state();
        add(s[r], "w", CKPT_F32, 2, S46);
    }
    for (int b = 0; b < nb; b++)
        box(s[rank[b]], "w", off[b], ext[b]);
    ckpt_index *ix;
    int rc = plan_states(s, n, 1 << 20, CKPT_LAYOUT_PER_RANK, &ix);
    if (want)
        expect_err_exact(rc, CKPT_ECOVERAGE, want);
    else
        expect_ok(rc);
    ckpt_index_free(ix);
    free_states(s, n);
}

static void test_overlap_and_gap(void **st)
{
    (void)st;
    const int64_t o1[2][2] = {{0, 0}, {2, 0}}, e1[2][2] = {{3, 6}, {2, 6}};
    expect_coverage(o1, e1, (int[]){0, 1}, 2, 2, "tensor 'w': box [0:3, 0:6] of rank 0 overlaps box [2:4, 0:6] of rank 1");
    const int64_t o2[2][2] = {{0, 0}, {0, 0}}, e2[2][2] = {{4, 6}, {2, 6}};
    expect_coverage(o2, e2, (int[]){0, 1}, 2, 2, "tensor 'w': box [0:2, 0:6] of rank 1 overlaps box [0:4, 0:6] of rank 0");
    const int64_t o3[3][2] = {{0, 0}, {0, 1}, {1, 0}}, e3[3][2] = {{4, 1}, {1, 5}, {3, 6}};
    expect_coverage(o3, e3, (int[]){0, 1, 2}, 3, 3,
                    "tensor 'w': box [0:4, 0:1] of rank 0 overlaps box [1:4, 0:6] of rank 2");
    const int64_t o4[2][2] = {{0, 0}, {2, 1}}, e4[2][2] = {{2, 6}, {2, 5}};
    expect_coverage(o4, e4, (int[]){0, 1}, 2, 2,
                    "tensor 'w' [4, 6]: the boxes of all ranks cover 22 of its 24 elements (a gap: some part is held "
                    "by no rank)");
    /* overlap and gap of equal size: the volumes add up, the tiling proof does not */
    const int64_t o5[3][2] = {{0, 0}, {0, 3}, {1, 3}}, e5[3][2] = {{4, 3}, {2, 3}, {2, 3}};
    expect_coverage(o5, e5, (int[]){0, 1, 2}, 3, 3,
                    "tensor 'w': box [0:2, 3:6] of rank 1 overlaps box [1:3, 3:6] of rank 2");
    /* an irregular exact tiling (bricks) is fine */
    const int64_t o6[4][2] = {{0, 0}, {0, 4}, {2, 0}, {2, 2}}, e6[4][2] = {{2, 4}, {2, 2}, {2, 2}, {2, 4}};
    expect_coverage(o6, e6, (int[]){0, 1, 2, 3}, 4, 4, NULL);
}

static void test_replicas(void **st)
{
    (void)st;
    /* explicit boxes, two of them held by two ranks: the lowest writes */
    int64_t sh[1] = {10};
    int64_t o[3] = {0, 4, 5}, e[3] = {4, 1, 5};
    ckpt_state *s[3];
    for (int r = 0; r < 3; r++) {
        s[r] = new_state();
        add(s[r], "v", CKPT_F32, 1, sh);
    }
    box(s[2], "v", &o[0], &e[0]);
    box(s[1], "v", &o[0], &e[0]);
    box(s[1], "v", &o[1], &e[1]);
    box(s[0], "v", &o[2], &e[2]);
    box(s[2], "v", &o[2], &e[2]);
    ckpt_index *ix = plan_ok(s, 3);
    assert_int_equal(ix->tensors[0].sharding, CKPT_SHARDING_EXPLICIT);
    assert_int_equal(ix->nrows, 3);
    assert_int_equal(ix->rows[0].writer, 1); /* [0:4] by ranks 1 and 2 */
    assert_int_equal(ix->rows[1].writer, 1); /* [4:5] */
    assert_int_equal(ix->rows[2].writer, 0); /* [5:10] by ranks 0 and 2 */
    ckpt_index_free(ix);
    free_states(s, 3);
}

/* ---- assembly ---- */

static void test_shared_slots(void **st)
{
    (void)st;
    /* grid "a" [10, 4] f32 over 3 ranks with 32-byte pieces: cells of 4 rows = 2 pieces (edge: 1);
     * explicit "b": rows of 3 and 7 elements of f64 = 1 and 2 pieces */
    int64_t sa[2] = {10, 4}, sb[1] = {10}, o0[1] = {0}, o1[1] = {3}, e0[1] = {3}, e1[1] = {7};
    ckpt_state *s[3];
    for (int r = 0; r < 3; r++) {
        s[r] = new_state();
        shard(s[r], "a", 2, sa, 0, r, 3);
        add(s[r], "b", CKPT_F64, 1, sb);
    }
    box(s[0], "b", o1, e1);
    box(s[2], "b", o0, e0);
    ckpt_index *ix;
    expect_ok(plan_states(s, 3, 32, CKPT_LAYOUT_SHARED, &ix));
    const ckpt_itensor *a = &ix->tensors[0], *b = &ix->tensors[1];
    assert_int_equal(a->sharding, CKPT_SHARDING_GRID);
    assert_int_equal(a->first_piece, 0);
    assert_int_equal(a->piece_stride, 2);
    assert_int_equal(a->nslots, 6);
    assert_int_equal(b->sharding, CKPT_SHARDING_EXPLICIT);
    assert_int_equal(b->first_piece, 6);
    assert_int_equal(b->first_box, 3);
    assert_int_equal(b->nslots, 3);
    assert_int_equal(ix->rows[0].first_piece, 0);
    assert_int_equal(ix->rows[1].first_piece, 1);
    ckpt_boxref r;
    ckpt_index_box(ix, 1, 1, &r);
    assert_int_equal(r.sums, CKPT_SUMS_SLOT);
    assert_int_equal(r.sum_base, 7);
    assert_int_equal(r.gid, 4);
    ckpt_index_box(ix, 0, 2, &r);
    assert_int_equal(r.sum_base, 4);
    assert_int_equal(r.pieces.count, 1);
    ckpt_index_free(ix);
    free_states(s, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_union),
        cmocka_unit_test(test_mismatch),
        cmocka_unit_test(test_merge_malformed),
        cmocka_unit_test(test_shard_grid),
        cmocka_unit_test(test_2d_and_replicas),
        cmocka_unit_test(test_reversed_and_shifted),
        cmocka_unit_test(test_duplicate_does_not_hide_gap),
        cmocka_unit_test(test_zero_size_and_scalar),
        cmocka_unit_test(test_overlap_and_gap),
        cmocka_unit_test(test_replicas),
        cmocka_unit_test(test_shared_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
