/* test_state.c -- unit tests of the ckpt_state API (state.h, name.c): name validation,
 * declarations, boxes, ckpt_shard_box, typed attributes, and their exact errors. */
#include "unit.h"

#include "state.h"

#include <math.h>

static ckpt_state *new_state(void)
{
    ckpt_state *s = NULL;
    expect_ok(ckpt_state_create(&s));
    assert_non_null(s);
    return s;
}

static const int64_t S46[2] = {4, 6};
static float buf[64];

/* ---- names ---- */

static void test_name_validation(void **st)
{
    (void)st;
    ckpt_state *s = new_state();
    expect_err_exact(ckpt_state_add_tensor(s, NULL, CKPT_F32, 2, S46, 0), CKPT_EINVAL, "tensor name is NULL");
    expect_err_exact(ckpt_state_add_tensor(s, "", CKPT_F32, 2, S46, 0), CKPT_EINVAL, "tensor name is empty");

    char long_name[CKPT_MAX_NAME + 2];
    memset(long_name, 'a', sizeof long_name);
    long_name[CKPT_MAX_NAME + 1] = '\0'; /* 1025 bytes */
    expect_err(ckpt_state_add_tensor(s, long_name, CKPT_F32, 2, S46, 0), CKPT_EINVAL,
               "is 1025 bytes long (at most 1024)");
    char want_long[128]; /* the message quotes the first 40 bytes */
    snprintf(want_long, sizeof want_long, "tensor name '%.40s...' is 1025 bytes long (at most 1024)", long_name);
    expect_err_exact(ckpt_state_add_tensor(s, long_name, CKPT_F32, 2, S46, 0), CKPT_EINVAL, want_long);
    long_name[CKPT_MAX_NAME] = '\0'; /* exactly 1024: fine */
    expect_ok(ckpt_state_add_tensor(s, long_name, CKPT_F32, 2, S46, 0));

    expect_err_exact(ckpt_state_add_tensor(s, "a\tb", CKPT_F32, 2, S46, 0), CKPT_EINVAL,
                     "tensor name 'a\tb' contains control character 0x09 at byte 1");
    expect_err(ckpt_state_add_tensor(s, "ab\x7f", CKPT_F32, 2, S46, 0), CKPT_EINVAL,
               "contains control character 0x7f at byte 2");
    expect_err(ckpt_state_add_tensor(s, "x\n", CKPT_F32, 2, S46, 0), CKPT_EINVAL,
               "contains control character 0x0a at byte 1");
    expect_err(ckpt_state_add_tensor(s, "\x1f", CKPT_F32, 2, S46, 0), CKPT_EINVAL, "0x1f at byte 0");

    const char *bad[] = {"a//b", "/a", "a/", "a/./b", "..", ".", "a/..", "./a", "/", "a/../b", "//"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[256];
        snprintf(want, sizeof want,
                 "tensor name '%s' has an empty, '.' or '..' component (leading, trailing or doubled '/'?)", bad[i]);
        expect_err_exact(ckpt_state_add_tensor(s, bad[i], CKPT_F32, 2, S46, 0), CKPT_EINVAL, want);
    }
    assert_int_equal(ckpt_state_num_tensors(s), 1); /* none of the bad ones was added */

    /* printable ASCII and UTF-8 (formats/SPEC.md: bytes above 0x7f allowed) */
    const char *good[] = {"a/b/c", "...", ".a", "a.", "a..b", "..a", "x y", "~!@#$%^&*()", "gr\xc3\xb6\xc3\x9f" "e",
                          "a/b.c/d", "A-Z_0-9"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        expect_ok(ckpt_state_add_tensor(s, good[i], CKPT_F32, 2, S46, 0));
    assert_int_equal(ckpt_state_num_tensors(s), 1 + (int)(sizeof good / sizeof good[0]));

    /* attribute keys follow the same rules, named as such */
    expect_err_exact(ckpt_state_set_int(s, "a//b", 1), CKPT_EINVAL,
                     "attribute key 'a//b' has an empty, '.' or '..' component (leading, trailing or doubled '/'?)");
    expect_err_exact(ckpt_state_set_int(s, NULL, 1), CKPT_EINVAL, "attribute key is NULL");
    expect_err_exact(ckpt_state_set_double(s, "", 1), CKPT_EINVAL, "attribute key is empty");
    expect_err(ckpt_state_set_string(s, "k\x01", "v"), CKPT_EINVAL, "attribute key 'k\x01' contains control character 0x01");
    expect_err(ckpt_state_set_bytes(s, "/rng", "x", 1), CKPT_EINVAL, "attribute key '/rng' has an empty");
    assert_int_equal(ckpt_state_num_attrs(s), 0);
    ckpt_state_free(s);
}

/* ---- declarations ---- */

static void test_add_tensor(void **st)
{
    (void)st;
    ckpt_state *s = new_state();
    expect_ok(ckpt_state_add_tensor(s, "w", CKPT_F32, 2, S46, 0));
    expect_ok(ckpt_state_add_tensor(s, "w", CKPT_F32, 2, S46, 0)); /* same again: fine */
    assert_int_equal(ckpt_state_num_tensors(s), 1);
    const ckpt_stensor *t = ckpt_state_find(s, "w");
    assert_non_null(t);
    assert_string_equal(t->name, "w");
    assert_int_equal(t->dtype, CKPT_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 4);
    assert_int_equal(t->shape[1], 6);
    assert_int_equal(t->flags, 0);
    assert_int_equal(t->nboxes, 0);
    assert_null(ckpt_state_find(s, "W"));

    expect_err_exact(ckpt_state_add_tensor(s, "w", CKPT_F64, 2, S46, 0), CKPT_EMISMATCH,
                     "tensor 'w' declared twice: f32 [4, 6], then f64 [4, 6]");
    expect_err_exact(ckpt_state_add_tensor(s, "w", CKPT_F32, 2, (const int64_t[]){4, 7}, 0), CKPT_EMISMATCH,
                     "tensor 'w' declared twice: f32 [4, 6], then f32 [4, 7]");
    expect_err_exact(ckpt_state_add_tensor(s, "w", CKPT_F32, 1, (const int64_t[]){24}, 0), CKPT_EMISMATCH,
                     "tensor 'w' declared twice: f32 [4, 6], then f32 [24]");
    expect_err_exact(ckpt_state_add_tensor(s, "w", CKPT_F32, 0, NULL, 0), CKPT_EMISMATCH,
                     "tensor 'w' declared twice: f32 [4, 6], then f32 []");
    t = ckpt_state_find(s, "w");
    assert_int_equal(t->dtype, CKPT_F32); /* unchanged */
    assert_int_equal(t->shape[1], 6);

    /* a repeated declaration may add the OPTIONAL flag */
    expect_ok(ckpt_state_add_tensor(s, "w", CKPT_F32, 2, S46, CKPT_TENSOR_OPTIONAL));
    assert_int_equal(ckpt_state_find(s, "w")->flags, CKPT_TENSOR_OPTIONAL);

    expect_err_exact(ckpt_state_add_tensor(s, "x", CKPT_F32, 2, S46, 0x2), CKPT_EINVAL,
                     "tensor 'x': unknown flags 0x2");
    expect_err_exact(ckpt_state_add_tensor(s, "x", (ckpt_dtype)CKPT_DTYPE_COUNT, 2, S46, 0), CKPT_EINVAL,
                     "tensor 'x': unknown dtype 10");
    expect_err_exact(ckpt_state_add_tensor(s, "x", (ckpt_dtype)-1, 2, S46, 0), CKPT_EINVAL,
                     "tensor 'x': unknown dtype -1");
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    expect_err_exact(ckpt_state_add_tensor(s, "x", CKPT_F32, 9, nine, 0), CKPT_EINVAL, "tensor 'x': ndim 9 outside 0..8");
    expect_err_exact(ckpt_state_add_tensor(s, "x", CKPT_F32, -1, nine, 0), CKPT_EINVAL,
                     "tensor 'x': ndim -1 outside 0..8");
    expect_err_exact(ckpt_state_add_tensor(s, "x", CKPT_F32, 2, NULL, 0), CKPT_EINVAL, "tensor 'x': shape is NULL");
    expect_err_exact(ckpt_state_add_tensor(s, "x", CKPT_F32, 2, (const int64_t[]){4, -3}, 0), CKPT_EINVAL,
                     "tensor 'x': dim 1 has negative size -3");
    expect_err_exact(ckpt_state_add_tensor(NULL, "x", CKPT_F32, 2, S46, 0), CKPT_EINVAL,
                     "ckpt_state_add_tensor: state is NULL");
    assert_null(ckpt_state_find(s, "x"));
    assert_int_equal(ckpt_state_num_tensors(s), 1);

    /* 8 dims, 0-D, zero-size dims are all fine */
    expect_ok(ckpt_state_add_tensor(s, "eight", CKPT_I8, 8, nine, 0));
    expect_ok(ckpt_state_add_tensor(s, "scalar", CKPT_F64, 0, NULL, 0));
    expect_ok(ckpt_state_add_tensor(s, "empty", CKPT_BOOL, 2, (const int64_t[]){0, 3}, 0));
    assert_int_equal(ckpt_state_num_tensors(s), 4);
    assert_int_equal(ckpt_state_num_tensors(NULL), 0);
    assert_int_equal(ckpt_state_create(NULL), CKPT_EINVAL);
    ckpt_state_free(NULL); /* no-op */
    ckpt_state_free(s);
}

static void test_many_tensors(void **st)
{
    (void)st;
    ckpt_state *s = new_state();
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "layer/%d/w", i);
        expect_ok(ckpt_state_add_tensor(s, name, (ckpt_dtype)(i % CKPT_DTYPE_COUNT), 1, (const int64_t[]){i}, 0));
    }
    assert_int_equal(ckpt_state_num_tensors(s), 300);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "layer/%d/w", i);
        const ckpt_stensor *t = ckpt_state_find(s, name);
        assert_non_null(t);
        assert_string_equal(t->name, name);
        assert_int_equal(t->dtype, i % CKPT_DTYPE_COUNT);
        assert_int_equal(t->shape[0], i);
        assert_ptr_equal(t, &s->tensors[i]); /* declaration order kept */
    }
    assert_null(ckpt_state_find(s, "layer/300/w"));
    ckpt_state_free(s);
}

/* ---- boxes ---- */

static void test_add_box(void **st)
{
    (void)st;
    ckpt_state *s = new_state();
    expect_ok(ckpt_state_add_tensor(s, "w", CKPT_F32, 2, S46, 0));
    expect_err_exact(ckpt_state_add_box(s, "ghost", (const int64_t[]){0, 0}, S46, buf), CKPT_ENOTFOUND,
                     "ckpt_state_add_box: tensor 'ghost' was not declared");
    expect_err_exact(ckpt_state_add_box(s, "w", (const int64_t[]){0, 0}, (const int64_t[]){5, 6}, buf),
                     CKPT_ECOVERAGE, "tensor 'w': box [0:5, 0:6] lies outside the tensor's shape [4, 6]");
    expect_err_exact(ckpt_state_add_box(s, "w", (const int64_t[]){-1, 0}, (const int64_t[]){2, 6}, buf),
                     CKPT_ECOVERAGE, "tensor 'w': box [-1:1, 0:6] lies outside the tensor's shape [4, 6]");
    expect_err_exact(ckpt_state_add_box(s, "w", (const int64_t[]){3, 0}, (const int64_t[]){2, 6}, buf),
                     CKPT_ECOVERAGE, "tensor 'w': box [3:5, 0:6] lies outside the tensor's shape [4, 6]");
    expect_err(ckpt_state_add_box(s, "w", (const int64_t[]){0, 7}, (const int64_t[]){1, 0}, buf), CKPT_ECOVERAGE,
               "box [0:1, 7:7] lies outside");
    expect_err(ckpt_state_add_box(s, "w", (const int64_t[]){0, 0}, (const int64_t[]){1, -1}, buf), CKPT_ECOVERAGE,
               "lies outside the tensor's shape [4, 6]");
    expect_err_exact(ckpt_state_add_box(s, "w", NULL, S46, buf), CKPT_EINVAL,
                     "tensor 'w': box offset or extent is NULL");
    expect_err_exact(ckpt_state_add_box(s, "w", (const int64_t[]){0, 0}, NULL, buf), CKPT_EINVAL,
                     "tensor 'w': box offset or extent is NULL");
    expect_err_exact(ckpt_state_add_box(s, "w", (const int64_t[]){2, 0}, (const int64_t[]){2, 6}, NULL),
                     CKPT_EINVAL, "tensor 'w': box [2:4, 0:6] has no data (NULL)");
    expect_err(ckpt_state_add_box(NULL, "w", (const int64_t[]){0, 0}, S46, buf), CKPT_EINVAL, "state or name is NULL");
    expect_err(ckpt_state_add_box(s, NULL, (const int64_t[]){0, 0}, S46, buf), CKPT_EINVAL, "state or name is NULL");
    assert_int_equal(ckpt_state_find(s, "w")->nboxes, 0);

    expect_ok(ckpt_state_add_box(s, "w", (const int64_t[]){0, 0}, (const int64_t[]){2, 6}, buf));
    expect_err_exact(ckpt_state_add_box(s, "w", (const int64_t[]){1, 0}, (const int64_t[]){2, 6}, buf + 12),
                     CKPT_ECOVERAGE, "tensor 'w': box [1:3, 0:6] overlaps box [0:2, 0:6] of the same rank");
    expect_err(ckpt_state_add_box(s, "w", (const int64_t[]){0, 0}, (const int64_t[]){2, 6}, buf + 12),
               CKPT_ECOVERAGE, "overlaps"); /* the same box twice on one rank */
    expect_err(ckpt_state_add_box(s, "w", (const int64_t[]){1, 5}, (const int64_t[]){1, 1}, buf + 12),
               CKPT_ECOVERAGE, "box [1:2, 5:6] overlaps box [0:2, 0:6]");
    /* touching is fine, and so are zero-volume boxes (NULL data allowed), even inside others */
    expect_ok(ckpt_state_add_box(s, "w", (const int64_t[]){2, 0}, (const int64_t[]){1, 6}, buf + 12));
    expect_ok(ckpt_state_add_box(s, "w", (const int64_t[]){1, 2}, (const int64_t[]){0, 3}, NULL));
    expect_ok(ckpt_state_add_box(s, "w", (const int64_t[]){4, 0}, (const int64_t[]){0, 6}, NULL));
    expect_err(ckpt_state_add_box(s, "w", (const int64_t[]){2, 3}, (const int64_t[]){2, 3}, buf + 30),
               CKPT_ECOVERAGE, "box [2:4, 3:6] overlaps box [2:3, 0:6] of the same rank");
    const ckpt_stensor *t = ckpt_state_find(s, "w");
    assert_int_equal(t->nboxes, 4);
    char b[64];
    assert_string_equal(ckpt_box_str(&t->boxes[0].box, b, sizeof b), "[0:2, 0:6]");
    assert_ptr_equal(t->boxes[0].data, buf);
    assert_string_equal(ckpt_box_str(&t->boxes[1].box, b, sizeof b), "[2:3, 0:6]");
    assert_ptr_equal(t->boxes[1].data, buf + 12);
    assert_string_equal(ckpt_box_str(&t->boxes[2].box, b, sizeof b), "[1:1, 2:5]");
    assert_null(t->boxes[2].data);
    assert_int_equal(t->boxes[3].box.ndim, 2);

    /* 0-D: offset and extent may be NULL; a second 0-D box is the same element */
    expect_ok(ckpt_state_add_tensor(s, "s", CKPT_F64, 0, NULL, 0));
    expect_ok(ckpt_state_add_box(s, "s", NULL, NULL, buf));
    expect_err_exact(ckpt_state_add_box(s, "s", NULL, NULL, buf + 2), CKPT_ECOVERAGE,
                     "tensor 's': box [] overlaps box [] of the same rank");
    expect_err_exact(ckpt_state_add_box(s, "s", NULL, NULL, NULL), CKPT_EINVAL, "tensor 's': box [] has no data (NULL)");
    ckpt_state_free(s);
}

static void test_add_shard_replicated(void **st)
{
    (void)st;
    ckpt_state *s = new_state();
    const int64_t shape[2] = {13, 3};
    expect_ok(ckpt_state_add_shard(s, "a", CKPT_I32, 2, shape, 0, 3, 4, buf));
    const ckpt_stensor *t = ckpt_state_find(s, "a");
    char b[64];
    assert_int_equal(t->nboxes, 1);
    assert_string_equal(ckpt_box_str(&t->boxes[0].box, b, sizeof b), "[12:13, 0:3]");
    /* another rank's shard of the same tensor can be added too (non-overlapping) */
    expect_ok(ckpt_state_add_shard(s, "a", CKPT_I32, 2, shape, 0, 0, 4, buf));
    assert_string_equal(ckpt_box_str(&t->boxes[1].box, b, sizeof b), "[0:4, 0:3]");
    expect_err(ckpt_state_add_shard(s, "a", CKPT_I32, 2, shape, 0, 0, 4, buf), CKPT_ECOVERAGE, "overlaps");
    expect_err_exact(ckpt_state_add_shard(s, "x", CKPT_I32, 2, shape, 3, 0, 4, buf), CKPT_EINVAL,
                     "tensor 'x': ckpt_shard_box: dim 3 outside 0..1");
    assert_null(ckpt_state_find(s, "x")); /* nothing declared on failure */
    expect_err(ckpt_state_add_shard(s, "a", CKPT_F32, 2, shape, 0, 1, 4, buf), CKPT_EMISMATCH, "declared twice");
    /* an empty shard (rank past the data) takes NULL */
    expect_ok(ckpt_state_add_shard(s, "e", CKPT_F32, 1, (const int64_t[]){4}, 0, 2, 3, NULL));
    assert_int_equal(ckpt_state_find(s, "e")->boxes[0].box.ext[0], 0);

    expect_ok(ckpt_state_add_replicated(s, "r", CKPT_U8, 2, (const int64_t[]){2, 3}, buf));
    t = ckpt_state_find(s, "r");
    assert_string_equal(ckpt_box_str(&t->boxes[0].box, b, sizeof b), "[0:2, 0:3]");
    expect_ok(ckpt_state_add_replicated(s, "r0", CKPT_F64, 0, NULL, buf));
    t = ckpt_state_find(s, "r0");
    assert_int_equal(t->nboxes, 1);
    assert_int_equal(t->boxes[0].box.ndim, 0);
    expect_err(ckpt_state_add_replicated(s, "r", CKPT_U8, 2, (const int64_t[]){2, 3}, buf), CKPT_ECOVERAGE,
               "overlaps");
    ckpt_state_free(s);
}

/* ---- ckpt_shard_box ---- */

static void expect_split(int64_t n, int nranks, const int64_t *ext)
{
    int64_t shape[1] = {n}, off[1], e[1], at = 0;
    for (int r = 0; r < nranks; r++) {
        expect_ok(ckpt_shard_box(1, shape, 0, r, nranks, off, e));
        if (e[0] != ext[r] || (e[0] > 0 && off[0] != at))
            fail_msg("%lld over %d, rank %d: [%lld +%lld], want extent %lld at %lld", (long long)n, nranks, r,
                     (long long)off[0], (long long)e[0], (long long)ext[r], (long long)at);
        assert_true(off[0] >= 0 && off[0] + e[0] <= n);
        at += e[0];
    }
    assert_int_equal(at, n);
}

static void test_shard_box(void **st)
{
    (void)st;
    expect_split(13, 4, (const int64_t[]){4, 4, 4, 1});
    expect_split(4, 3, (const int64_t[]){2, 2, 0});
    expect_split(0, 2, (const int64_t[]){0, 0});
    expect_split(5, 8, (const int64_t[]){1, 1, 1, 1, 1, 0, 0, 0});
    expect_split(12, 4, (const int64_t[]){3, 3, 3, 3});
    expect_split(7, 1, (const int64_t[]){7});
    expect_split(10, 4, (const int64_t[]){3, 3, 3, 1});
    expect_split(9, 4, (const int64_t[]){3, 3, 3, 0}); /* torch.chunk: chunks of 3 */

    int64_t off[2], ext[2];
    /* empty shards sit at the end (offset clamped to n) */
    expect_ok(ckpt_shard_box(1, (const int64_t[]){4}, 0, 2, 3, off, ext));
    assert_int_equal(off[0], 4);
    assert_int_equal(ext[0], 0);
    /* other dims are whole */
    const int64_t shape[2] = {3, 10};
    const int64_t want_off[4] = {0, 3, 6, 9}, want_ext[4] = {3, 3, 3, 1};
    for (int r = 0; r < 4; r++) {
        expect_ok(ckpt_shard_box(2, shape, 1, r, 4, off, ext));
        assert_int_equal(off[0], 0);
        assert_int_equal(ext[0], 3);
        assert_int_equal(off[1], want_off[r]);
        assert_int_equal(ext[1], want_ext[r]);
    }
    /* exhaustive: the chunk rule ceil(n / nranks) */
    for (int64_t n = 0; n <= 40; n++)
        for (int nr = 1; nr <= 9; nr++) {
            int64_t chunk = (n + nr - 1) / nr, at = 0;
            for (int r = 0; r < nr; r++) {
                expect_ok(ckpt_shard_box(1, &n, 0, r, nr, off, ext));
                int64_t lo = chunk * r < n ? chunk * r : n, hi = chunk * (r + 1) < n ? chunk * (r + 1) : n;
                assert_int_equal(off[0], lo);
                assert_int_equal(ext[0], hi - lo);
                at += ext[0];
            }
            assert_int_equal(at, n);
        }

    /* bad arguments */
    expect_err_exact(ckpt_shard_box(0, shape, 0, 0, 1, off, ext), CKPT_EINVAL,
                     "ckpt_shard_box: need 1..8 dims and non-NULL arrays");
    expect_err(ckpt_shard_box(9, shape, 0, 0, 1, off, ext), CKPT_EINVAL, "need 1..8 dims");
    expect_err(ckpt_shard_box(2, NULL, 0, 0, 1, off, ext), CKPT_EINVAL, "non-NULL arrays");
    expect_err(ckpt_shard_box(2, shape, 0, 0, 1, NULL, ext), CKPT_EINVAL, "non-NULL arrays");
    expect_err(ckpt_shard_box(2, shape, 0, 0, 1, off, NULL), CKPT_EINVAL, "non-NULL arrays");
    expect_err_exact(ckpt_shard_box(2, shape, 2, 0, 1, off, ext), CKPT_EINVAL, "ckpt_shard_box: dim 2 outside 0..1");
    expect_err_exact(ckpt_shard_box(2, shape, -1, 0, 1, off, ext), CKPT_EINVAL, "ckpt_shard_box: dim -1 outside 0..1");
    expect_err_exact(ckpt_shard_box(2, shape, 0, 4, 4, off, ext), CKPT_EINVAL, "ckpt_shard_box: rank 4 outside 0..3");
    expect_err_exact(ckpt_shard_box(2, shape, 0, -1, 4, off, ext), CKPT_EINVAL, "ckpt_shard_box: rank -1 outside 0..3");
    expect_err(ckpt_shard_box(2, shape, 0, 0, 0, off, ext), CKPT_EINVAL, "ckpt_shard_box: rank 0 outside");
    expect_err_exact(ckpt_shard_box(2, (const int64_t[]){3, -1}, 0, 0, 1, off, ext), CKPT_EINVAL,
                     "ckpt_shard_box: dim 1 has negative size");
}

/* ---- attributes ---- */

static void test_attrs_set_get(void **st)
{
    (void)st;
    ckpt_state *s = new_state();
    expect_ok(ckpt_state_set_int(s, "step", INT64_MIN));
    expect_ok(ckpt_state_set_int(s, "max", INT64_MAX));
    expect_ok(ckpt_state_set_double(s, "lr", 3e-4));
    expect_ok(ckpt_state_set_double(s, "negzero", -0.0));
    char text[] = "gr\xc3\xbc\xc3\x9f" "e \xe4\xb8\x96\xe7\x95\x8c \xe2\x9c\x93"; /* UTF-8 */
    expect_ok(ckpt_state_set_string(s, "cfg/name", text));
    expect_ok(ckpt_state_set_string(s, "empty_str", ""));
    const unsigned char blob[6] = {0, 1, 0, 255, 0, 7};
    expect_ok(ckpt_state_set_bytes(s, "rng/state", blob, sizeof blob));
    expect_ok(ckpt_state_set_bytes(s, "nothing", NULL, 0));
    assert_int_equal(ckpt_state_num_attrs(s), 8);

    int64_t i = 0;
    double d = 0;
    const char *str = NULL;
    const void *data = NULL;
    size_t len = 99;
    expect_ok(ckpt_state_get_int(s, "step", &i));
    assert_true(i == INT64_MIN);
    expect_ok(ckpt_state_get_int(s, "max", &i));
    assert_true(i == INT64_MAX);
    expect_ok(ckpt_state_get_double(s, "lr", &d));
    assert_true(d == 3e-4);
    expect_ok(ckpt_state_get_double(s, "negzero", &d));
    assert_int_equal(unit_f64_bits(d), 0x8000000000000000ull);
    /* the value was copied: changing the caller's string changes nothing */
    text[0] = 'X';
    expect_ok(ckpt_state_get_string(s, "cfg/name", &str));
    assert_string_equal(str, "gr\xc3\xbc\xc3\x9f" "e \xe4\xb8\x96\xe7\x95\x8c \xe2\x9c\x93");
    expect_ok(ckpt_state_get_string(s, "empty_str", &str));
    assert_string_equal(str, "");
    expect_ok(ckpt_state_get_bytes(s, "rng/state", &data, &len));
    assert_int_equal(len, 6);
    assert_memory_equal(data, blob, 6);
    expect_ok(ckpt_state_get_bytes(s, "nothing", &data, &len));
    assert_int_equal(len, 0);
    /* NULL outputs are allowed */
    expect_ok(ckpt_state_get_int(s, "step", NULL));
    expect_ok(ckpt_state_get_bytes(s, "rng/state", NULL, NULL));

    expect_err_exact(ckpt_state_get_int(s, "nope", &i), CKPT_ENOTFOUND, "no attribute 'nope'");
    expect_err_exact(ckpt_state_get_double(s, "step", &d), CKPT_EMISMATCH, "attribute 'step' is int, not double");
    expect_err_exact(ckpt_state_get_int(s, "lr", &i), CKPT_EMISMATCH, "attribute 'lr' is double, not int");
    expect_err_exact(ckpt_state_get_string(s, "rng/state", &str), CKPT_EMISMATCH,
                     "attribute 'rng/state' is bytes, not string");
    expect_err_exact(ckpt_state_get_bytes(s, "cfg/name", &data, &len), CKPT_EMISMATCH,
                     "attribute 'cfg/name' is string, not bytes");
    expect_err(ckpt_state_get_int(NULL, "step", &i), CKPT_EINVAL, "state or key is NULL");
    expect_err(ckpt_state_get_int(s, NULL, &i), CKPT_EINVAL, "state or key is NULL");
    expect_err_exact(ckpt_state_set_string(s, "k", NULL), CKPT_EINVAL, "attribute 'k': string is NULL");
    expect_err_exact(ckpt_state_set_bytes(s, "k", NULL, 3), CKPT_EINVAL, "attribute 'k': data is NULL");
    expect_err(ckpt_state_set_int(NULL, "k", 1), CKPT_EINVAL, "state is NULL");
    assert_int_equal(ckpt_state_num_attrs(s), 8);
    assert_int_equal(ckpt_state_num_attrs(NULL), 0);
    ckpt_state_free(s);
}

static void test_attrs_replace_and_order(void **st)
{
    (void)st;
    ckpt_state *s = new_state();
    expect_ok(ckpt_state_set_int(s, "step", 5));
    expect_ok(ckpt_state_set_double(s, "step", 2.5)); /* replace changes the type */
    assert_int_equal(ckpt_state_num_attrs(s), 1);
    int64_t i;
    double d;
    expect_err_exact(ckpt_state_get_int(s, "step", &i), CKPT_EMISMATCH, "attribute 'step' is double, not int");
    expect_ok(ckpt_state_get_double(s, "step", &d));
    assert_true(d == 2.5);
    expect_ok(ckpt_state_set_bytes(s, "step", "ab", 2));
    expect_ok(ckpt_state_set_string(s, "step", "seven"));
    const char *str;
    expect_ok(ckpt_state_get_string(s, "step", &str));
    assert_string_equal(str, "seven");
    expect_ok(ckpt_state_set_int(s, "step", 7));
    expect_ok(ckpt_state_get_int(s, "step", &i));
    assert_int_equal(i, 7);
    assert_int_equal(ckpt_state_num_attrs(s), 1);

    /* attr_info lists keys in byte order with their types */
    expect_ok(ckpt_state_set_string(s, "zeta", "z"));
    expect_ok(ckpt_state_set_double(s, "alpha", 1));
    expect_ok(ckpt_state_set_bytes(s, "mid/x", "q", 1));
    expect_ok(ckpt_state_set_int(s, "beta", 2));
    expect_ok(ckpt_state_set_int(s, "Alpha", 3));
    expect_ok(ckpt_state_set_string(s, "alpha.b", "c"));
    /* a key may not also be the group of another key (both are HDF5 paths on disk) */
    expect_err(ckpt_state_set_int(s, "alpha/b", 1), CKPT_EINVAL,
               "attribute key 'alpha/b' conflicts with existing key 'alpha'");
    expect_err(ckpt_state_set_int(s, "mid", 1), CKPT_EINVAL, "attribute key 'mid' conflicts with existing key 'mid/x'");
    const char *keys[7] = {"Alpha", "alpha", "alpha.b", "beta", "mid/x", "step", "zeta"};
    const ckpt_attr_type types[7] = {CKPT_ATTR_INT,   CKPT_ATTR_DOUBLE, CKPT_ATTR_STRING, CKPT_ATTR_INT,
                                     CKPT_ATTR_BYTES, CKPT_ATTR_INT,    CKPT_ATTR_STRING};
    assert_int_equal(ckpt_state_num_attrs(s), 7);
    for (int k = 0; k < 7; k++) {
        const char *key = NULL;
        ckpt_attr_type t = (ckpt_attr_type)-1;
        expect_ok(ckpt_state_attr_info(s, k, &key, &t));
        assert_string_equal(key, keys[k]);
        assert_int_equal(t, types[k]);
    }
    expect_err_exact(ckpt_state_attr_info(s, 7, NULL, NULL), CKPT_EINVAL, "attribute index 7 out of range");
    expect_err_exact(ckpt_state_attr_info(s, -1, NULL, NULL), CKPT_EINVAL, "attribute index -1 out of range");

    /* copy_attrs replaces the destination's attributes; clear_attrs drops them */
    ckpt_state *t = new_state();
    expect_ok(ckpt_state_set_int(t, "only_in_t", 1));
    expect_ok(ckpt_state_copy_attrs(t, s));
    assert_int_equal(ckpt_state_num_attrs(t), 7);
    expect_err(ckpt_state_get_int(t, "only_in_t", &i), CKPT_ENOTFOUND, "no attribute 'only_in_t'");
    const void *data;
    size_t len;
    expect_ok(ckpt_state_get_bytes(t, "mid/x", &data, &len));
    assert_int_equal(len, 1);
    assert_memory_equal(data, "q", 1);
    ckpt_state_clear_attrs(t);
    assert_int_equal(ckpt_state_num_attrs(t), 0);
    expect_ok(ckpt_state_set_int(t, "again", 1)); /* usable after clearing */
    assert_int_equal(ckpt_state_num_attrs(t), 1);
    ckpt_state_free(t);
    ckpt_state_free(s);
}

static void test_attrs_many(void **st)
{
    (void)st;
    ckpt_state *s = new_state();
    unit_rng rng = {8};
    int perm[200];
    for (int i = 0; i < 200; i++)
        perm[i] = i;
    for (int i = 199; i > 0; i--) {
        int j = (int)unit_range(&rng, 0, i), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "k%03d", perm[i]);
        expect_ok(ckpt_state_set_int(s, key, perm[i] * 10));
    }
    assert_int_equal(ckpt_state_num_attrs(s), 200);
    for (int i = 0; i < 200; i++) {
        const char *k;
        ckpt_attr_type t;
        expect_ok(ckpt_state_attr_info(s, i, &k, &t));
        snprintf(key, sizeof key, "k%03d", i);
        assert_string_equal(k, key);
        int64_t v;
        expect_ok(ckpt_state_get_int(s, key, &v));
        assert_int_equal(v, i * 10);
    }
    ckpt_state_free(s);
}

static void test_tensor_loaded(void **st)
{
    (void)st;
    ckpt_state *s = new_state();
    int loaded = 42;
    expect_err_exact(ckpt_state_tensor_loaded(s, "ghost", &loaded), CKPT_ENOTFOUND,
                     "tensor 'ghost' was not declared in this state");
    assert_int_equal(loaded, 42);
    expect_ok(ckpt_state_add_tensor(s, "w", CKPT_F32, 2, S46, CKPT_TENSOR_OPTIONAL));
    expect_ok(ckpt_state_tensor_loaded(s, "w", &loaded));
    assert_int_equal(loaded, 0); /* nothing loaded yet */
    expect_err(ckpt_state_tensor_loaded(s, "w", NULL), CKPT_EINVAL, "NULL argument");
    expect_err(ckpt_state_tensor_loaded(s, NULL, &loaded), CKPT_EINVAL, "NULL argument");
    expect_err(ckpt_state_tensor_loaded(NULL, "w", &loaded), CKPT_EINVAL, "NULL argument");
    ckpt_state_free(s);
}

static void test_errcode_and_status_names(void **st)
{
    (void)st;
    ckpt_state *s = new_state();
    assert_int_equal(ckpt_state_add_tensor(s, "", CKPT_F32, 0, NULL, 0), CKPT_EINVAL);
    assert_int_equal(ckpt_errcode(), CKPT_EINVAL);
    assert_int_equal(ckpt_state_tensor_loaded(s, "q", &(int){0}), CKPT_ENOTFOUND);
    assert_int_equal(ckpt_errcode(), CKPT_ENOTFOUND);
    ckpt_state_free(s);
    assert_string_equal(ckpt_status_name(CKPT_OK), "CKPT_OK");
    assert_string_equal(ckpt_status_name(CKPT_ECOVERAGE), "CKPT_ECOVERAGE");
    assert_string_equal(ckpt_status_name(CKPT_EUNSUPPORTED), "CKPT_EUNSUPPORTED");
    assert_string_equal(ckpt_status_name(-99), "CKPT_E?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_validation),
        cmocka_unit_test(test_add_tensor),
        cmocka_unit_test(test_many_tensors),
        cmocka_unit_test(test_add_box),
        cmocka_unit_test(test_add_shard_replicated),
        cmocka_unit_test(test_shard_box),
        cmocka_unit_test(test_attrs_set_get),
        cmocka_unit_test(test_attrs_replace_and_order),
        cmocka_unit_test(test_attrs_many),
        cmocka_unit_test(test_tensor_loaded),
        cmocka_unit_test(test_errcode_and_status_names),
    };
    return cmocka_run_group_tests_name("unit.state", tests, NULL, NULL);
}
