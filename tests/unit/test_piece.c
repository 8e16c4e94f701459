/* test_piece.c -- unit tests of piece.h: the piece geometry of stored boxes (hand-computed
 * from the definition in piece.h / formats/SPEC.md section 5), exact tiling of a box by its
 * pieces in memory order, ckpt_pieces_foreach against brute force, ckpt_pieces_from. */
#include "unit.h"

#include "piece.h"

#include <xxhash.h>

static void expect_pieces(int nd, const int64_t *ext, size_t es, int64_t pb, int dim, int64_t len,
                          int64_t per_outer, int64_t count)
{
    ckpt_pieces pc;
    memset(&pc, 0x5a, sizeof pc);
    ckpt_pieces_of(nd, ext, es, pb, &pc);
    if (pc.dim != dim || pc.len != len || pc.per_outer != per_outer || pc.count != count)
        fail_msg("pieces_of(ndim %d, esize %zu, piece_bytes %lld): dim %d len %lld per_outer %lld count %lld, "
                 "want %d %lld %lld %lld", nd, es, (long long)pb, pc.dim, (long long)pc.len,
                 (long long)pc.per_outer, (long long)pc.count, dim, (long long)len, (long long)per_outer,
                 (long long)count);
    /* the stored (dim, len) pair rebuilds the same geometry */
    if (count > 0) {
        ckpt_pieces back;
        assert_int_equal(ckpt_pieces_from(nd, ext, dim, len, &back), 0);
        assert_int_equal(back.dim, dim);
        assert_int_equal(back.len, len);
        assert_int_equal(back.per_outer, per_outer);
        assert_int_equal(back.count, count);
    }
}

static void test_pieces_of_by_hand(void **st)
{
    (void)st;
    /* [300,70] f32, 1000 B: slab of dim 0 is 70*4 = 280 <= 1000 -> p = 0, len = 1000/280 = 3,
     * ceil(300/3) = 100 pieces */
    expect_pieces(2, (const int64_t[]){300, 70}, 4, 1000, 0, 3, 100, 100);
    /* [2,1000000] f32, 4 MiB: slab of dim 0 is 4,000,000 <= 4,194,304 -> p = 0, len =
     * min(2, 4194304/4000000 = 1) = 1, 2 pieces */
    expect_pieces(2, (const int64_t[]){2, 1000000}, 4, 4 << 20, 0, 1, 2, 2);
    /* the boundary: a slab of exactly piece_bytes fits ("fits in" is <=) ... */
    expect_pieces(2, (const int64_t[]){2, 1000000}, 4, 4000000, 0, 1, 2, 2);
    /* ... one byte less and p moves in: slab 4, len 999999, ceil(1e6/999999) = 2 per row */
    expect_pieces(2, (const int64_t[]){2, 1000000}, 4, 3999999, 1, 999999, 2, 4);
    /* [2,2000000] f32, 4 MiB: slab of dim 0 is 8,000,000 > 4 MiB -> p = 1 (slab 4), len =
     * 1048576, ceil(2e6/1048576) = 2 per row, 2 rows -> 4 pieces */
    expect_pieces(2, (const int64_t[]){2, 2000000}, 4, 4 << 20, 1, 1048576, 2, 4);
    /* [5,3,4] bf16, 24 B: slabs are 2 (p=2), 8 (p=1), 24 (p=0) -> p = 0, len = 1, 5 pieces */
    expect_pieces(3, (const int64_t[]){5, 3, 4}, 2, 24, 0, 1, 5, 5);
    /* 23 B: slab 24 > 23 -> p = 1 (slab 8), len = min(3, 2) = 2, ceil(3/2) = 2, 5*2 = 10 pieces */
    expect_pieces(3, (const int64_t[]){5, 3, 4}, 2, 23, 1, 2, 2, 10);
    /* 7 B: slab 8 > 7 -> p = 2 (slab 2), len = 3, ceil(4/3) = 2, 5*3*2 = 30 pieces */
    expect_pieces(3, (const int64_t[]){5, 3, 4}, 2, 7, 2, 3, 2, 30);
    /* 1 B, smaller than an element: p = 2, len = max(1, 0) = 1, 60 pieces of one element */
    expect_pieces(3, (const int64_t[]){5, 3, 4}, 2, 1, 2, 1, 4, 60);
    /* 1 MiB for 10 f64: one piece with the whole box */
    expect_pieces(1, (const int64_t[]){10}, 8, 1 << 20, 0, 10, 1, 1);
    /* [7] u8, 3 B: len 3, pieces of 3, 3, 1 */
    expect_pieces(1, (const int64_t[]){7}, 1, 3, 0, 3, 3, 3);
    /* [4,1,6] f32, 24 B: slabs 4, 24, 24 -> p = 0, len 1, 4 pieces */
    expect_pieces(3, (const int64_t[]){4, 1, 6}, 4, 24, 0, 1, 4, 4);
    /* [3,5] i64, 1 GiB: whole box */
    expect_pieces(2, (const int64_t[]){3, 5}, 8, 1 << 30, 0, 3, 1, 1);
    /* [6,7] f32, 64 B: slab 28 -> p = 0, len 2, 3 pieces ; [7,7] -> 4 pieces */
    expect_pieces(2, (const int64_t[]){6, 7}, 4, 64, 0, 2, 3, 3);
    expect_pieces(2, (const int64_t[]){7, 7}, 4, 64, 0, 2, 4, 4);
    /* [2,3,4,5] i16, 50 B: slabs 2, 10, 40, 120 -> p = 1 (slab 40), len = min(3, 1) = 1 ->
     * 2*3 = 6 pieces of [1,1,4,5] */
    expect_pieces(4, (const int64_t[]){2, 3, 4, 5}, 2, 50, 1, 1, 3, 6);
    /* [2,3,4,5] i16, 100 B: p = 1, len = min(3, 2) = 2, ceil(3/2) = 2 -> 4 pieces */
    expect_pieces(4, (const int64_t[]){2, 3, 4, 5}, 2, 100, 1, 2, 2, 4);
    /* 0-D: one piece */
    expect_pieces(0, NULL, 4, 64, 0, 1, 1, 1);
    expect_pieces(0, NULL, 8, 1, 0, 1, 1, 1);
}

static void test_pieces_of_zero_volume(void **st)
{
    (void)st;
    ckpt_pieces pc;
    ckpt_pieces_of(2, (const int64_t[]){3, 0}, 4, 100, &pc);
    assert_int_equal(pc.count, 0);
    ckpt_pieces_of(2, (const int64_t[]){0, 5}, 4, 100, &pc);
    assert_int_equal(pc.count, 0);
    ckpt_pieces_of(1, (const int64_t[]){0}, 1, 1, &pc);
    assert_int_equal(pc.count, 0);
}

static void test_pieces_from(void **st)
{
    (void)st;
    ckpt_pieces pc;
    const int64_t ext[3] = {5, 3, 4};
    assert_int_equal(ckpt_pieces_from(3, ext, 1, 2, &pc), 0);
    assert_int_equal(pc.dim, 1);
    assert_int_equal(pc.len, 2);
    assert_int_equal(pc.per_outer, 2);
    assert_int_equal(pc.count, 10);
    assert_int_equal(ckpt_pieces_from(3, ext, 2, 4, &pc), 0); /* len == extent */
    assert_int_equal(pc.count, 15);
    /* inconsistent pairs */
    assert_int_not_equal(ckpt_pieces_from(3, ext, -1, 1, &pc), 0);
    assert_int_not_equal(ckpt_pieces_from(3, ext, 3, 1, &pc), 0);  /* dim == ndim */
    assert_int_not_equal(ckpt_pieces_from(3, ext, 0, 0, &pc), 0);  /* len 0 */
    assert_int_not_equal(ckpt_pieces_from(3, ext, 0, -2, &pc), 0); /* negative len */
    assert_int_not_equal(ckpt_pieces_from(3, ext, 1, 4, &pc), 0);  /* len > extent 3 */
    assert_int_not_equal(ckpt_pieces_from(3, ext, 2, 5, &pc), 0);
    const int64_t zext[1] = {0};
    assert_int_not_equal(ckpt_pieces_from(1, zext, 0, 1, &pc), 0); /* a stored box has extent > 0 */
    /* 0-D: only (0, 1) */
    assert_int_equal(ckpt_pieces_from(0, NULL, 0, 1, &pc), 0);
    assert_int_equal(pc.count, 1);
    assert_int_not_equal(ckpt_pieces_from(0, NULL, 1, 1, &pc), 0);
    assert_int_not_equal(ckpt_pieces_from(0, NULL, 0, 2, &pc), 0);
    assert_int_not_equal(ckpt_pieces_from(0, NULL, 0, 0, &pc), 0);
}

/* Every piece's geometry follows the definition, the pieces tile the box exactly once, and
 * piece k starts at the linear index where pieces 0..k-1 end. */
static void check_tiling(const ckpt_box *box, size_t es, int64_t pb)
{
    ckpt_pieces pc;
    ckpt_pieces_of(box->ndim, box->ext, es, pb, &pc);
    int64_t vol = ckpt_box_volume(box);
    unsigned char *seen = calloc((size_t)vol, 1);
    assert_non_null(seen);
    int64_t before = 0;
    int p = pc.dim;
    /* p is the outermost dim whose inner slab fits, len = min(e[p], max(1, pb/slab)) */
    int64_t slab = (int64_t)es;
    for (int d = box->ndim - 1; d > p; d--)
        slab *= box->ext[d];
    if (box->ndim > 0) {
        assert_true(slab <= pb || p == box->ndim - 1);
        if (p > 0)
            assert_true(slab * box->ext[p] > pb); /* dim p-1's slab would not fit */
        int64_t want_len = pb / slab < 1 ? 1 : pb / slab;
        if (want_len > box->ext[p])
            want_len = box->ext[p];
        assert_int_equal(pc.len, want_len);
    }
    for (int64_t k = 0; k < pc.count; k++) {
        ckpt_box pbx;
        ckpt_piece_box(box, &pc, k, &pbx);
        assert_int_equal(pbx.ndim, box->ndim);
        assert_true(ckpt_box_contains(box, &pbx));
        for (int d = 0; d < box->ndim; d++) {
            if (d < p)
                assert_int_equal(pbx.ext[d], 1);
            else if (d > p)
                assert_int_equal(pbx.ext[d], box->ext[d]);
            else
                assert_true(pbx.ext[d] >= 1 && pbx.ext[d] <= pc.len);
        }
        assert_true(ckpt_box_region_contiguous(box, &pbx));
        int64_t first = box->ndim ? ckpt_box_linear(box, pbx.off) : 0;
        assert_int_equal(first, before);
        int64_t n = ckpt_box_volume(&pbx);
        for (int64_t i = first; i < first + n; i++) {
            assert_int_equal(seen[i], 0);
            seen[i] = 1;
        }
        before += n;
    }
    assert_int_equal(before, vol); /* union of the pieces is the box */
    free(seen);
}

static void test_piece_box_tiles(void **st)
{
    (void)st;
    ckpt_box b;
    ckpt_box_set(&b, 2, (const int64_t[]){100, 3}, (const int64_t[]){300, 70});
    check_tiling(&b, 4, 1000);
    ckpt_box_set(&b, 3, (const int64_t[]){1, 2, 3}, (const int64_t[]){5, 3, 4});
    for (int64_t pb = 1; pb <= 130; pb++)
        check_tiling(&b, 2, pb);
    ckpt_box_set(&b, 0, NULL, NULL);
    check_tiling(&b, 4, 64);
    ckpt_piece_box(&b, &(ckpt_pieces){0, 1, 1, 1}, 0, &b);
    assert_int_equal(b.ndim, 0);

    /* explicit piece boxes of [5,3,4] at (1,2,3) with 23 B: p = 1, len 2 -> per row of dim 0
     * pieces [i, 2:4, 3:7] and [i, 4:5, 3:7] */
    ckpt_box_set(&b, 3, (const int64_t[]){1, 2, 3}, (const int64_t[]){5, 3, 4});
    ckpt_pieces pc;
    ckpt_pieces_of(3, b.ext, 2, 23, &pc);
    char s[128];
    ckpt_box pbx;
    ckpt_piece_box(&b, &pc, 0, &pbx);
    assert_string_equal(ckpt_box_str(&pbx, s, sizeof s), "[1:2, 2:4, 3:7]");
    ckpt_piece_box(&b, &pc, 1, &pbx);
    assert_string_equal(ckpt_box_str(&pbx, s, sizeof s), "[1:2, 4:5, 3:7]");
    ckpt_piece_box(&b, &pc, 2, &pbx);
    assert_string_equal(ckpt_box_str(&pbx, s, sizeof s), "[2:3, 2:4, 3:7]");
    ckpt_piece_box(&b, &pc, 9, &pbx);
    assert_string_equal(ckpt_box_str(&pbx, s, sizeof s), "[5:6, 4:5, 3:7]");

    unit_rng rng = {314};
    for (int it = 0; it < 600; it++) {
        int nd = (int)unit_range(&rng, 1, 4);
        ckpt_box r;
        r.ndim = nd;
        for (int d = 0; d < nd; d++) {
            r.off[d] = unit_range(&rng, 0, 20);
            r.ext[d] = unit_range(&rng, 1, 7);
        }
        size_t es = (size_t)1 << unit_range(&rng, 0, 3);
        check_tiling(&r, es, unit_range(&rng, 1, 600));
    }
}

typedef struct visit_log {
    int64_t ks[4096];
    int n;
    const ckpt_box *box;
    const ckpt_pieces *pc;
    int stop_at; /* return 7 at this call index, -1 never */
} visit_log;

static int record(int64_t k, const ckpt_box *piece, void *arg)
{
    visit_log *v = arg;
    ckpt_box want;
    ckpt_piece_box(v->box, v->pc, k, &want);
    assert_true(ckpt_box_equal(piece, &want)); /* the callback gets piece k's box */
    assert_true(v->n < 4096);
    v->ks[v->n++] = k;
    return v->n - 1 == v->stop_at ? 7 : 0;
}

static void test_foreach_brute_force(void **st)
{
    (void)st;
    unit_rng rng = {2718};
    for (int it = 0; it < 2000; it++) {
        int nd = (int)unit_range(&rng, 1, 4);
        ckpt_box box, region;
        box.ndim = region.ndim = nd;
        for (int d = 0; d < nd; d++) {
            box.off[d] = unit_range(&rng, 0, 10);
            box.ext[d] = unit_range(&rng, 1, 6);
            /* regions may stick out of the box or miss it */
            region.off[d] = unit_range(&rng, box.off[d] - 3, box.off[d] + box.ext[d] + 1);
            region.ext[d] = unit_range(&rng, 0, 8);
        }
        ckpt_pieces pc;
        ckpt_pieces_of(nd, box.ext, (size_t)1 << unit_range(&rng, 0, 3), unit_range(&rng, 1, 300), &pc);
        visit_log v = {.n = 0, .box = &box, .pc = &pc, .stop_at = -1};
        assert_int_equal(ckpt_pieces_foreach(&box, &pc, &region, record, &v), 0);
        int n = 0;
        for (int64_t k = 0; k < pc.count; k++) {
            ckpt_box pbx;
            ckpt_piece_box(&box, &pc, k, &pbx);
            if (ckpt_box_intersect(&pbx, &region, NULL)) {
                if (n >= v.n || v.ks[n] != k) {
                    char s1[128], s2[128];
                    fail_msg("box %s region %s: visit %d is piece %lld, want %lld", ckpt_box_str(&box, s1, sizeof s1),
                             ckpt_box_str(&region, s2, sizeof s2), n, n < v.n ? (long long)v.ks[n] : -1LL,
                             (long long)k);
                }
                n++;
            }
        }
        assert_int_equal(v.n, n); /* nothing else visited, in increasing order */
    }
}

static void test_foreach_stops_and_0d(void **st)
{
    (void)st;
    ckpt_box box;
    ckpt_box_set(&box, 2, (const int64_t[]){0, 0}, (const int64_t[]){6, 7});
    ckpt_pieces pc;
    ckpt_pieces_of(2, box.ext, 4, 28, &pc); /* one row per piece: 6 pieces */
    assert_int_equal(pc.count, 6);
    visit_log v = {.n = 0, .box = &box, .pc = &pc, .stop_at = 2};
    assert_int_equal(ckpt_pieces_foreach(&box, &pc, &box, record, &v), 7);
    assert_int_equal(v.n, 3);
    assert_int_equal(v.ks[2], 2);
    /* a region in rows 2..3, columns 5..6 touches pieces 2 and 3 only */
    ckpt_box region;
    ckpt_box_set(&region, 2, (const int64_t[]){2, 5}, (const int64_t[]){2, 2});
    visit_log w = {.n = 0, .box = &box, .pc = &pc, .stop_at = -1};
    assert_int_equal(ckpt_pieces_foreach(&box, &pc, &region, record, &w), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.ks[0], 2);
    assert_int_equal(w.ks[1], 3);
    /* a disjoint or empty region visits nothing */
    ckpt_box_set(&region, 2, (const int64_t[]){6, 0}, (const int64_t[]){3, 7});
    w.n = 0;
    assert_int_equal(ckpt_pieces_foreach(&box, &pc, &region, record, &w), 0);
    assert_int_equal(w.n, 0);
    ckpt_box_set(&region, 2, (const int64_t[]){1, 1}, (const int64_t[]){0, 3});
    assert_int_equal(ckpt_pieces_foreach(&box, &pc, &region, record, &w), 0);
    assert_int_equal(w.n, 0);
    /* 0-D: the single piece 0 */
    ckpt_box z;
    ckpt_box_set(&z, 0, NULL, NULL);
    ckpt_pieces zp;
    ckpt_pieces_of(0, NULL, 8, 64, &zp);
    visit_log u = {.n = 0, .box = &z, .pc = &zp, .stop_at = -1};
    assert_int_equal(ckpt_pieces_foreach(&z, &zp, &z, record, &u), 0);
    assert_int_equal(u.n, 1);
    assert_int_equal(u.ks[0], 0);
}

static void test_checksum(void **st)
{
    (void)st;
    /* XXH3-64 with seed 0 (formats/SPEC.md section 5): the published digest of no input */
    assert_int_equal(ckpt_piece_checksum("", 0), 0x2D06800538D394C2ull);
    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++)
        buf[i] = (unsigned char)(i * 31 + 7);
    for (size_t n = 1; n <= 1000; n = n * 3 + 1)
        assert_int_equal(ckpt_piece_checksum(buf, n), XXH3_64bits(buf, n));
    uint64_t a = ckpt_piece_checksum(buf, 1000);
    buf[999] ^= 1;
    assert_int_not_equal(ckpt_piece_checksum(buf, 1000), a); /* a flipped bit changes it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces_of_by_hand),   cmocka_unit_test(test_pieces_of_zero_volume),
        cmocka_unit_test(test_pieces_from),         cmocka_unit_test(test_piece_box_tiles),
        cmocka_unit_test(test_foreach_brute_force), cmocka_unit_test(test_foreach_stops_and_0d),
        cmocka_unit_test(test_checksum),
    };
    return cmocka_run_group_tests_name("unit.piece", tests, NULL, NULL);
}
