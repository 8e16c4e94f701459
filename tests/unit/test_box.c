/* test_box.c -- unit tests of box.h: geometry, formatting, linear indexes, contiguity and
 * ckpt_box_copy against an element-by-element reference in global coordinates. */
#include "unit.h"

#include "box.h"
#include "dtype.h"

#include <math.h>

static ckpt_box mk(int nd, const int64_t *off, const int64_t *ext)
{
    ckpt_box b;
    ckpt_box_set(&b, nd, off, ext);
    return b;
}

#define BOX(nd, ...) mk_list(nd, (const int64_t[]){__VA_ARGS__})
/* BOX(2, off0, off1, ext0, ext1) */
static ckpt_box mk_list(int nd, const int64_t *v) { return mk(nd, v, v + nd); }

static void test_set_and_volume(void **st)
{
    (void)st;
    ckpt_box b;
    ckpt_box_set(&b, 0, NULL, NULL);
    assert_int_equal(b.ndim, 0);
    assert_int_equal(ckpt_box_volume(&b), 1); /* a 0-D box is one element */

    int64_t ext[3] = {3, 4, 5};
    ckpt_box_set(&b, 3, NULL, ext); /* NULL offset means the origin */
    assert_int_equal(b.off[0], 0);
    assert_int_equal(b.off[2], 0);
    assert_int_equal(b.ext[1], 4);
    assert_int_equal(b.off[3], 0); /* entries past ndim are zeroed */
    assert_int_equal(b.ext[3], 0);
    assert_int_equal(ckpt_box_volume(&b), 60);

    b = BOX(1, 5, 7);
    assert_int_equal(ckpt_box_volume(&b), 7);
    b = BOX(3, 0, 0, 0, 3, 0, 5);
    assert_int_equal(ckpt_box_volume(&b), 0);
    b = BOX(2, 9, 9, 0, 0);
    assert_int_equal(ckpt_box_volume(&b), 0);
    int64_t big[2] = {1 << 20, 1 << 22};
    ckpt_box_set(&b, 2, NULL, big);
    assert_int_equal(ckpt_box_volume(&b), (int64_t)1 << 42);
}

static void test_equal(void **st)
{
    (void)st;
    ckpt_box a = BOX(2, 0, 2, 4, 4), b = BOX(2, 0, 2, 4, 4);
    assert_true(ckpt_box_equal(&a, &b));
    b = BOX(2, 0, 2, 4, 5);
    assert_false(ckpt_box_equal(&a, &b));
    b = BOX(2, 1, 2, 4, 4);
    assert_false(ckpt_box_equal(&a, &b));
    ckpt_box c = BOX(1, 0, 4), d;
    ckpt_box_set(&d, 2, (const int64_t[]){0, 0}, (const int64_t[]){4, 1});
    assert_false(ckpt_box_equal(&c, &d)); /* different ndim */
    ckpt_box z1, z2;
    ckpt_box_set(&z1, 0, NULL, NULL);
    ckpt_box_set(&z2, 0, NULL, NULL);
    assert_true(ckpt_box_equal(&z1, &z2));
}

static void expect_box(const ckpt_box *b, int nd, const int64_t *off, const int64_t *ext)
{
    assert_int_equal(b->ndim, nd);
    for (int d = 0; d < nd; d++) {
        assert_int_equal(b->off[d], off[d]);
        assert_int_equal(b->ext[d], ext[d]);
    }
}

static void test_intersect(void **st)
{
    (void)st;
    ckpt_box r;
    /* overlap */
    ckpt_box a = BOX(2, 0, 0, 4, 6), b = BOX(2, 2, 3, 4, 6);
    assert_int_equal(ckpt_box_intersect(&a, &b, &r), 1);
    expect_box(&r, 2, (const int64_t[]){2, 3}, (const int64_t[]){2, 3});
    assert_int_equal(ckpt_box_intersect(&b, &a, &r), 1); /* symmetric */
    expect_box(&r, 2, (const int64_t[]){2, 3}, (const int64_t[]){2, 3});
    assert_int_equal(ckpt_box_intersect(&a, &b, NULL), 1); /* out may be NULL */

    /* touching edges: half-open ranges share no element */
    ckpt_box t1 = BOX(1, 0, 4), t2 = BOX(1, 4, 4);
    assert_int_equal(ckpt_box_intersect(&t1, &t2, &r), 0);
    assert_int_equal(ckpt_box_volume(&r), 0);
    ckpt_box e1 = BOX(2, 0, 0, 4, 3), e2 = BOX(2, 0, 3, 4, 3);
    assert_int_equal(ckpt_box_intersect(&e1, &e2, &r), 0);
    ckpt_box c1 = BOX(2, 0, 0, 2, 2), c2 = BOX(2, 2, 2, 2, 2); /* corner touch */
    assert_int_equal(ckpt_box_intersect(&c1, &c2, NULL), 0);

    /* disjoint */
    ckpt_box d1 = BOX(2, 0, 0, 2, 2), d2 = BOX(2, 10, 0, 3, 2);
    assert_int_equal(ckpt_box_intersect(&d1, &d2, &r), 0);
    assert_int_equal(ckpt_box_volume(&r), 0);
    /* disjoint in dim 1 only */
    ckpt_box d3 = BOX(2, 0, 0, 5, 2), d4 = BOX(2, 1, 7, 2, 2);
    assert_int_equal(ckpt_box_intersect(&d3, &d4, &r), 0);

    /* contained */
    ckpt_box out = BOX(3, 0, 0, 0, 8, 8, 8), in = BOX(3, 1, 2, 3, 2, 2, 2);
    assert_int_equal(ckpt_box_intersect(&out, &in, &r), 1);
    assert_true(ckpt_box_equal(&r, &in));
    assert_int_equal(ckpt_box_intersect(&in, &out, &r), 1);
    assert_true(ckpt_box_equal(&r, &in));

    /* different ndim never intersect */
    ckpt_box one = BOX(1, 0, 4), two = BOX(2, 0, 0, 4, 4);
    assert_int_equal(ckpt_box_intersect(&one, &two, &r), 0);
    assert_int_equal(ckpt_box_intersect(&two, &one, NULL), 0);

    /* an empty box intersects nothing, even when it lies inside the other */
    ckpt_box empty = BOX(2, 1, 1, 0, 3);
    assert_int_equal(ckpt_box_intersect(&a, &empty, NULL), 0);
    assert_int_equal(ckpt_box_intersect(&empty, &a, NULL), 0);

    /* 0-D boxes: the single element is shared */
    ckpt_box z1, z2;
    ckpt_box_set(&z1, 0, NULL, NULL);
    ckpt_box_set(&z2, 0, NULL, NULL);
    assert_int_equal(ckpt_box_intersect(&z1, &z2, &r), 1);
    assert_int_equal(r.ndim, 0);
    assert_int_equal(ckpt_box_volume(&r), 1);

    /* negative offsets are just coordinates */
    ckpt_box n1 = BOX(1, -5, 10), n2 = BOX(1, -8, 5);
    assert_int_equal(ckpt_box_intersect(&n1, &n2, &r), 1);
    expect_box(&r, 1, (const int64_t[]){-5}, (const int64_t[]){2});
}

static void test_contains(void **st)
{
    (void)st;
    ckpt_box outer = BOX(2, 10, 20, 4, 6);
    ckpt_box b = BOX(2, 11, 22, 2, 4);
    assert_true(ckpt_box_contains(&outer, &b));
    assert_true(ckpt_box_contains(&outer, &outer));
    assert_false(ckpt_box_contains(&b, &outer));
    b = BOX(2, 11, 22, 4, 2); /* runs past the end of dim 0 */
    assert_false(ckpt_box_contains(&outer, &b));
    b = BOX(2, 9, 22, 2, 2); /* starts before */
    assert_false(ckpt_box_contains(&outer, &b));
    b = BOX(2, 10, 25, 4, 1); /* last column */
    assert_true(ckpt_box_contains(&outer, &b));
    b = BOX(2, 10, 25, 4, 2); /* one past */
    assert_false(ckpt_box_contains(&outer, &b));
    ckpt_box one = BOX(1, 10, 4);
    assert_false(ckpt_box_contains(&outer, &one)); /* different ndim */
    ckpt_box z1, z2;
    ckpt_box_set(&z1, 0, NULL, NULL);
    ckpt_box_set(&z2, 0, NULL, NULL);
    assert_true(ckpt_box_contains(&z1, &z2));
}

static void test_in_shape(void **st)
{
    (void)st;
    const int64_t shape[2] = {4, 6};
    ckpt_box b = BOX(2, 0, 0, 4, 6);
    assert_true(ckpt_box_in_shape(&b, shape));
    b = BOX(2, 1, 2, 3, 4); /* reaches the far corner exactly */
    assert_true(ckpt_box_in_shape(&b, shape));
    b = BOX(2, -1, 0, 2, 6); /* negative offset */
    assert_false(ckpt_box_in_shape(&b, shape));
    b = BOX(2, 0, -1, 1, 1);
    assert_false(ckpt_box_in_shape(&b, shape));
    b = BOX(2, 2, 0, 3, 6); /* extent past the end */
    assert_false(ckpt_box_in_shape(&b, shape));
    b = BOX(2, 0, 5, 4, 2);
    assert_false(ckpt_box_in_shape(&b, shape));
    b = BOX(2, 4, 0, 0, 6); /* zero extent at the end: allowed */
    assert_true(ckpt_box_in_shape(&b, shape));
    b = BOX(2, 0, 6, 4, 0);
    assert_true(ckpt_box_in_shape(&b, shape));
    b = BOX(2, 5, 0, 0, 6); /* zero extent but past the end */
    assert_false(ckpt_box_in_shape(&b, shape));
    b = BOX(2, 0, 0, -1, 6); /* negative extent */
    assert_false(ckpt_box_in_shape(&b, shape));
    b = BOX(2, 3, 0, -1, 6);
    assert_false(ckpt_box_in_shape(&b, shape));
    /* no overflow for huge values */
    b = BOX(2, INT64_MAX, 0, 1, 6);
    assert_false(ckpt_box_in_shape(&b, shape));
    b = BOX(2, 1, 0, INT64_MAX, 6);
    assert_false(ckpt_box_in_shape(&b, shape));
    b = BOX(2, INT64_MAX - 1, 0, INT64_MAX - 1, 6);
    assert_false(ckpt_box_in_shape(&b, shape));
    /* zero-size tensor: only zero-extent boxes at 0 fit */
    const int64_t zshape[2] = {0, 5};
    b = BOX(2, 0, 0, 0, 5);
    assert_true(ckpt_box_in_shape(&b, zshape));
    b = BOX(2, 0, 0, 1, 5);
    assert_false(ckpt_box_in_shape(&b, zshape));
    /* 0-D */
    ckpt_box z;
    ckpt_box_set(&z, 0, NULL, NULL);
    assert_true(ckpt_box_in_shape(&z, NULL));
}

static int cmp_void(const void *a, const void *b) { return ckpt_box_cmp(a, b); }

static void test_cmp(void **st)
{
    (void)st;
    ckpt_box a = BOX(2, 0, 0, 2, 2), b = BOX(2, 0, 1, 1, 1);
    assert_int_equal(ckpt_box_cmp(&a, &b), -1); /* offsets first */
    assert_int_equal(ckpt_box_cmp(&b, &a), 1);
    b = BOX(2, 0, 0, 2, 3); /* same offsets: extents decide */
    assert_int_equal(ckpt_box_cmp(&a, &b), -1);
    assert_int_equal(ckpt_box_cmp(&b, &a), 1);
    b = BOX(2, 0, 0, 3, 1); /* ext[0] decides before ext[1] */
    assert_int_equal(ckpt_box_cmp(&a, &b), -1);
    b = BOX(2, 0, 0, 2, 2);
    assert_int_equal(ckpt_box_cmp(&a, &b), 0);
    b = BOX(2, 1, 0, 1, 1); /* off[0] before everything else */
    ckpt_box c = BOX(2, 0, 9, 9, 9);
    assert_int_equal(ckpt_box_cmp(&c, &b), -1);
    ckpt_box one = BOX(1, 100, 100);
    assert_int_equal(ckpt_box_cmp(&one, &a), -1); /* fewer dims first */
    assert_int_equal(ckpt_box_cmp(&a, &one), 1);
    ckpt_box neg = BOX(2, -3, 0, 1, 1);
    assert_int_equal(ckpt_box_cmp(&neg, &a), -1);

    /* sorting a shuffled list with it gives lexicographic (off..., ext...) order */
    ckpt_box list[6] = {BOX(2, 2, 0, 1, 1), BOX(2, 0, 3, 2, 1), BOX(2, 0, 0, 2, 3),
                        BOX(2, 0, 0, 1, 9), BOX(2, 1, 5, 1, 1), BOX(2, 0, 3, 1, 4)};
    const int want[6][4] = {{0, 0, 1, 9}, {0, 0, 2, 3}, {0, 3, 1, 4}, {0, 3, 2, 1}, {1, 5, 1, 1}, {2, 0, 1, 1}};
    qsort(list, 6, sizeof list[0], cmp_void);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(list[i].off[0], want[i][0]);
        assert_int_equal(list[i].off[1], want[i][1]);
        assert_int_equal(list[i].ext[0], want[i][2]);
        assert_int_equal(list[i].ext[1], want[i][3]);
    }
}

static void test_str(void **st)
{
    (void)st;
    char buf[128];
    ckpt_box b = BOX(2, 0, 2, 4, 4);
    assert_string_equal(ckpt_box_str(&b, buf, sizeof buf), "[0:4, 2:6]");
    assert_ptr_equal(ckpt_box_str(&b, buf, sizeof buf), buf);
    b = BOX(1, 3, 7);
    assert_string_equal(ckpt_box_str(&b, buf, sizeof buf), "[3:10]");
    b = BOX(3, 0, 0, 5, 1, 2, 0);
    assert_string_equal(ckpt_box_str(&b, buf, sizeof buf), "[0:1, 0:2, 5:5]");
    b = BOX(1, -2, 3);
    assert_string_equal(ckpt_box_str(&b, buf, sizeof buf), "[-2:1]");
    int64_t big[1] = {1000000000000LL}, be[1] = {5};
    b = mk(1, big, be);
    assert_string_equal(ckpt_box_str(&b, buf, sizeof buf), "[1000000000000:1000000000005]");
    ckpt_box z;
    ckpt_box_set(&z, 0, NULL, NULL);
    assert_string_equal(ckpt_box_str(&z, buf, sizeof buf), "[]");
    /* a short buffer truncates and stays NUL-terminated */
    char small[6];
    memset(small, 'x', sizeof small);
    b = BOX(2, 0, 2, 4, 4);
    ckpt_box_str(&b, small, sizeof small);
    assert_string_equal(small, "[0:4,");
    char tiny[2];
    ckpt_box_str(&b, tiny, sizeof tiny);
    assert_string_equal(tiny, "[");
}

static void test_linear(void **st)
{
    (void)st;
    ckpt_box b = BOX(2, 2, 3, 4, 5);
    assert_int_equal(ckpt_box_linear(&b, (const int64_t[]){2, 3}), 0);
    assert_int_equal(ckpt_box_linear(&b, (const int64_t[]){2, 7}), 4);
    assert_int_equal(ckpt_box_linear(&b, (const int64_t[]){3, 3}), 5);
    assert_int_equal(ckpt_box_linear(&b, (const int64_t[]){3, 4}), 6);
    assert_int_equal(ckpt_box_linear(&b, (const int64_t[]){5, 7}), 19);
    ckpt_box c = BOX(3, 1, 0, 2, 2, 3, 4);
    /* (2,1,5) -> ((1*3)+1)*4 + 3 = 19 */
    assert_int_equal(ckpt_box_linear(&c, (const int64_t[]){2, 1, 5}), 19);
    assert_int_equal(ckpt_box_linear(&c, (const int64_t[]){2, 2, 5}), 23);
    ckpt_box z;
    ckpt_box_set(&z, 0, NULL, NULL);
    assert_int_equal(ckpt_box_linear(&z, NULL), 0);
    /* every point of a 4-D box maps to a distinct index in row-major order */
    ckpt_box q = BOX(4, 1, 2, 3, 4, 2, 3, 2, 3);
    int64_t p[4], want = 0;
    for (p[0] = 1; p[0] < 3; p[0]++)
        for (p[1] = 2; p[1] < 5; p[1]++)
            for (p[2] = 3; p[2] < 5; p[2]++)
                for (p[3] = 4; p[3] < 7; p[3]++)
                    assert_int_equal(ckpt_box_linear(&q, p), want++);
    assert_int_equal(want, ckpt_box_volume(&q));
}

static void test_region_contiguous(void **st)
{
    (void)st;
    ckpt_box b = BOX(2, 10, 20, 4, 6);
    ckpt_box r = BOX(2, 11, 20, 2, 6); /* whole rows */
    assert_true(ckpt_box_region_contiguous(&b, &r));
    r = BOX(2, 10, 22, 4, 2); /* a column block */
    assert_false(ckpt_box_region_contiguous(&b, &r));
    r = BOX(2, 12, 23, 1, 1); /* single element */
    assert_true(ckpt_box_region_contiguous(&b, &r));
    assert_true(ckpt_box_region_contiguous(&b, &b)); /* whole box */
    r = BOX(2, 12, 21, 1, 4); /* part of one row */
    assert_true(ckpt_box_region_contiguous(&b, &r));
    r = BOX(2, 11, 21, 2, 5); /* parts of two rows */
    assert_false(ckpt_box_region_contiguous(&b, &r));
    ckpt_box c = BOX(3, 0, 0, 0, 3, 4, 5);
    r = BOX(3, 1, 1, 0, 1, 2, 5); /* two whole rows of one plane */
    assert_true(ckpt_box_region_contiguous(&c, &r));
    r = BOX(3, 0, 0, 0, 2, 1, 5); /* a row from each of two planes */
    assert_false(ckpt_box_region_contiguous(&c, &r));
    r = BOX(3, 1, 0, 0, 2, 4, 5); /* two whole planes */
    assert_true(ckpt_box_region_contiguous(&c, &r));
    r = BOX(3, 1, 2, 1, 1, 1, 3);
    assert_true(ckpt_box_region_contiguous(&c, &r));
    ckpt_box z;
    ckpt_box_set(&z, 0, NULL, NULL);
    assert_true(ckpt_box_region_contiguous(&z, &z));

    /* brute force: contiguous iff the linear indexes of the region span exactly its volume */
    unit_rng rng = {42};
    for (int it = 0; it < 3000; it++) {
        int nd = (int)unit_range(&rng, 1, 4);
        ckpt_box box, reg;
        box.ndim = reg.ndim = nd;
        for (int d = 0; d < nd; d++) {
            box.off[d] = unit_range(&rng, -3, 3);
            box.ext[d] = unit_range(&rng, 1, 4);
            int64_t lo = unit_range(&rng, 0, box.ext[d] - 1), hi = unit_range(&rng, lo + 1, box.ext[d]);
            if (unit_range(&rng, 0, 2) == 0) {
                lo = 0;
                hi = box.ext[d]; /* bias toward whole dims */
            }
            reg.off[d] = box.off[d] + lo;
            reg.ext[d] = hi - lo;
        }
        int64_t mn = INT64_MAX, mx = -1, idx[CKPT_MAX_NDIM] = {0}, n = ckpt_box_volume(&reg);
        for (int64_t e = 0; e < n; e++) {
            int64_t p[CKPT_MAX_NDIM];
            for (int d = 0; d < nd; d++)
                p[d] = reg.off[d] + idx[d];
            int64_t l = ckpt_box_linear(&box, p);
            mn = l < mn ? l : mn;
            mx = l > mx ? l : mx;
            for (int d = nd - 1; d >= 0; d--) {
                if (++idx[d] < reg.ext[d])
                    break;
                idx[d] = 0;
            }
        }
        int want = mx - mn + 1 == n;
        if (ckpt_box_region_contiguous(&box, &reg) != want) {
            char s1[256], s2[256];
            fail_msg("region %s of box %s: contiguous=%d, want %d", ckpt_box_str(&reg, s1, sizeof s1),
                     ckpt_box_str(&box, s2, sizeof s2), ckpt_box_region_contiguous(&box, &reg), want);
        }
    }
}

/* ---- ckpt_box_copy against a brute-force reference ---- */

/* Source value of global linear index g: many mantissa bits, so conversions must round. */
static float src_value(int64_t g) { return (float)((double)(g + 1) * 1.3759765625 + 0.1); }

/* bf16 round-to-nearest-even of a finite float, written independently of the library. */
static uint16_t ref_bf16(float f)
{
    uint32_t x = unit_f32_bits(f);
    uint32_t hi = x >> 16, lo = x & 0xffffu;
    if (lo > 0x8000u || (lo == 0x8000u && (hi & 1u)))
        hi++;
    return (uint16_t)hi;
}

static void fill_src(ckpt_dtype dt, const int64_t *shape, const ckpt_box *b, void *mem)
{
    size_t es = ckpt_dtype_size(dt);
    int64_t n = ckpt_box_volume(b), idx[CKPT_MAX_NDIM] = {0};
    for (int64_t e = 0; e < n; e++) {
        int64_t g = 0;
        for (int d = 0; d < b->ndim; d++)
            g = g * shape[d] + b->off[d] + idx[d];
        float f = src_value(g);
        unsigned char *p = (unsigned char *)mem + e * (int64_t)es;
        switch (dt) {
        case CKPT_F32: memcpy(p, &f, 4); break;
        case CKPT_F64: { double v = (double)g * 1.0000000001 + 0.25; memcpy(p, &v, 8); break; }
        case CKPT_F16: { uint16_t h = (uint16_t)(g % 0x7bff); memcpy(p, &h, 2); break; }
        case CKPT_I64: { int64_t v = g * 1000003 - 7; memcpy(p, &v, 8); break; }
        case CKPT_U8: { uint8_t v = (uint8_t)(g * 7 + 3); memcpy(p, &v, 1); break; }
        default: fail_msg("fill_src: dtype %d", dt);
        }
        for (int d = b->ndim - 1; d >= 0; d--) {
            if (++idx[d] < b->ext[d])
                break;
            idx[d] = 0;
        }
    }
}

static void random_sub(unit_rng *rng, int nd, const int64_t *lo, const int64_t *ext, ckpt_box *out)
{
    out->ndim = nd;
    for (int d = 0; d < nd; d++) {
        int64_t a = unit_range(rng, 0, ext[d] - 1), b = unit_range(rng, a + 1, ext[d]);
        out->off[d] = lo[d] + a;
        out->ext[d] = b - a;
    }
}

/* One random copy: checks every element of the destination box. Returns 1 when it ran. */
static int one_copy(unit_rng *rng, int nd, ckpt_dtype sdt, ckpt_dtype ddt)
{
    int64_t shape[CKPT_MAX_NDIM], zero[CKPT_MAX_NDIM] = {0};
    for (int d = 0; d < nd; d++)
        shape[d] = unit_range(rng, 1, nd <= 2 ? 9 : 5);
    ckpt_box sb, db, region;
    /* sometimes a box is the whole tensor along every dim, so runs merge */
    if (unit_range(rng, 0, 4) == 0)
        ckpt_box_set(&sb, nd, NULL, shape);
    else
        random_sub(rng, nd, zero, shape, &sb);
    if (unit_range(rng, 0, 4) == 0)
        ckpt_box_set(&db, nd, NULL, shape);
    else
        random_sub(rng, nd, zero, shape, &db);
    if (!ckpt_box_intersect(&sb, &db, &region))
        return 0;
    if (unit_range(rng, 0, 1))
        random_sub(rng, nd, region.off, region.ext, &region);
    size_t ss = ckpt_dtype_size(sdt), ds = ckpt_dtype_size(ddt);
    int64_t sn = ckpt_box_volume(&sb), dn = ckpt_box_volume(&db);
    unsigned char *src = malloc((size_t)sn * ss), *dst = malloc((size_t)dn * ds);
    assert_non_null(src);
    assert_non_null(dst);
    fill_src(sdt, shape, &sb, src);
    memset(dst, 0xa5, (size_t)dn * ds);
    ckpt_box_copy(&region, &sb, src, sdt, &db, dst, ddt);
    /* walk the destination box in global coordinates */
    int64_t idx[CKPT_MAX_NDIM] = {0};
    for (int64_t e = 0; e < dn; e++) {
        int64_t p[CKPT_MAX_NDIM];
        int inside = 1;
        for (int d = 0; d < nd; d++) {
            p[d] = db.off[d] + idx[d];
            if (p[d] < region.off[d] || p[d] >= region.off[d] + region.ext[d])
                inside = 0;
        }
        const unsigned char *got = dst + e * (int64_t)ds;
        unsigned char want[8];
        if (inside) {
            const unsigned char *s = src + ckpt_box_linear(&sb, p) * (int64_t)ss;
            if (sdt == ddt)
                memcpy(want, s, ss);
            else if (sdt == CKPT_F32 && ddt == CKPT_F64) {
                float f;
                memcpy(&f, s, 4);
                double v = f;
                memcpy(want, &v, 8);
            } else if (sdt == CKPT_F32 && ddt == CKPT_BF16) {
                float f;
                memcpy(&f, s, 4);
                uint16_t h = ref_bf16(f);
                memcpy(want, &h, 2);
            } else {
                ckpt_convert(sdt, s, ddt, want, 1); /* element-wise conversion as reference */
            }
        } else {
            memset(want, 0xa5, sizeof want); /* untouched */
        }
        if (memcmp(got, want, ds) != 0) {
            char s1[256], s2[256], s3[256];
            fail_msg("%dD %s->%s: element %lld of dst box %s (region %s, src box %s, inside=%d) is wrong", nd,
                     ckpt_dtype_name(sdt), ckpt_dtype_name(ddt), (long long)e, ckpt_box_str(&db, s1, sizeof s1),
                     ckpt_box_str(&region, s2, sizeof s2), ckpt_box_str(&sb, s3, sizeof s3), inside);
        }
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < db.ext[d])
                break;
            idx[d] = 0;
        }
    }
    free(src);
    free(dst);
    return 1;
}

static void copy_many(ckpt_dtype sdt, ckpt_dtype ddt, uint64_t seed)
{
    unit_rng rng = {seed};
    for (int nd = 1; nd <= 4; nd++) {
        int ran = 0;
        for (int it = 0; it < 4000 && ran < 400; it++)
            ran += one_copy(&rng, nd, sdt, ddt);
        assert_int_equal(ran, 400); /* enough overlapping cases were generated */
    }
}

static void test_copy_same_dtype(void **st)
{
    (void)st;
    copy_many(CKPT_F32, CKPT_F32, 1);
    copy_many(CKPT_I64, CKPT_I64, 2);
    copy_many(CKPT_U8, CKPT_U8, 3);
}

static void test_copy_f32_to_f64(void **st)
{
    (void)st;
    copy_many(CKPT_F32, CKPT_F64, 4);
}

static void test_copy_f32_to_bf16(void **st)
{
    (void)st;
    copy_many(CKPT_F32, CKPT_BF16, 5);
}

static void test_copy_other_conversions(void **st)
{
    (void)st;
    copy_many(CKPT_F64, CKPT_F16, 6);
    copy_many(CKPT_F16, CKPT_F32, 7);
}

static void test_copy_fixed(void **st)
{
    (void)st;
    /* a 3x4 block of a 6x8 tensor copied from a row-slab box into a column-slab box */
    int64_t shape[2] = {6, 8};
    ckpt_box sb = BOX(2, 2, 0, 3, 8), db = BOX(2, 0, 3, 6, 4), region;
    assert_int_equal(ckpt_box_intersect(&sb, &db, &region), 1);
    expect_box(&region, 2, (const int64_t[]){2, 3}, (const int64_t[]){3, 4});
    int32_t src[24], dst[24];
    for (int i = 0; i < 24; i++)
        src[i] = (int32_t)(2 * 8 + i); /* global index of src element i: (2 + i/8)*8 + i%8 */
    for (int i = 0; i < 24; i++)
        dst[i] = -1;
    ckpt_box_copy(&region, &sb, src, CKPT_I32, &db, dst, CKPT_I32);
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < 4; c++) {
            int32_t want = (r >= 2 && r < 5) ? (int32_t)(r * 8 + 3 + c) : -1;
            assert_int_equal(dst[r * 4 + c], want);
        }
    (void)shape;
    /* empty region: nothing written */
    ckpt_box e = BOX(2, 2, 3, 0, 4);
    for (int i = 0; i < 24; i++)
        dst[i] = -7;
    ckpt_box_copy(&e, &sb, src, CKPT_I32, &db, dst, CKPT_I32);
    for (int i = 0; i < 24; i++)
        assert_int_equal(dst[i], -7);
}

static void test_copy_0d(void **st)
{
    (void)st;
    ckpt_box z;
    ckpt_box_set(&z, 0, NULL, NULL);
    float f = 3.5f;
    double d = 0;
    ckpt_box_copy(&z, &z, &f, CKPT_F32, &z, &d, CKPT_F64);
    assert_true(d == 3.5);
    int64_t a = -1234567890123LL, b = 0;
    ckpt_box_copy(&z, &z, &a, CKPT_I64, &z, &b, CKPT_I64);
    assert_int_equal(b, -1234567890123LL);
    float g = 1.00390625f; /* 1 + 2^-8: a bf16 tie, rounds to even 1.0 */
    uint16_t h = 0xffff;
    ckpt_box_copy(&z, &z, &g, CKPT_F32, &z, &h, CKPT_BF16);
    assert_int_equal(h, 0x3f80);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_and_volume),   cmocka_unit_test(test_equal),
        cmocka_unit_test(test_intersect),        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_in_shape),         cmocka_unit_test(test_cmp),
        cmocka_unit_test(test_str),              cmocka_unit_test(test_linear),
        cmocka_unit_test(test_region_contiguous), cmocka_unit_test(test_copy_fixed),
        cmocka_unit_test(test_copy_same_dtype),  cmocka_unit_test(test_copy_f32_to_f64),
        cmocka_unit_test(test_copy_f32_to_bf16), cmocka_unit_test(test_copy_other_conversions),
        cmocka_unit_test(test_copy_0d),
    };
    return cmocka_run_group_tests_name("unit.box", tests, NULL, NULL);
}
