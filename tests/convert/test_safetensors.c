/* safetensors writer and strict reader: headers byte-identical to the reference writer's (its
 * published test vectors), the reference's sort order, round trips, and every class of malformed
 * file refused with its exact status and message. */
#include "ckptfmt.h"
#include "convert_test.h"

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

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", scratch, name);
    unlink(buf);
}

/* The reference's tests (safetensors/src/tensor.rs): a [1,2,3] F32 "attn.0" of 0..5; an empty
 * file with {"framework": "pt"} metadata; a [1,1,2,3] "attn0" padded with 7 spaces. */
static void test_reference_vectors(void **state)
{
    (void)state;
    char p[4096];
    float v[6] = {0, 1, 2, 3, 4, 5};
    struct {
        const char *name;
        int ndim;
        int64_t shape[4];
        const char *meta;
        const char *header;
        size_t padded;
    } cases[] = {
        {"attn.0", 3, {1, 2, 3}, NULL, "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", 64},
        {NULL, 0, {0}, "pt", "{\"__metadata__\":{\"framework\":\"pt\"}}", 40},
        {"attn0", 4, {1, 1, 2, 3}, NULL, "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}",
         72},
    };
    for (size_t c = 0; c < 3; c++) {
        path_in(p, sizeof p, "ref.safetensors");
        ckptfmt_st_writer *w;
        assert_int_equal(ckptfmt_st_writer_create(&w), CKPTFMT_OK);
        if (cases[c].name)
            assert_int_equal(ckptfmt_st_writer_add(w, cases[c].name, CKPTFMT_ST_F32, cases[c].ndim, cases[c].shape),
                             CKPTFMT_OK);
        if (cases[c].meta)
            assert_int_equal(ckptfmt_st_writer_set_metadata(w, "framework", cases[c].meta), CKPTFMT_OK);
        assert_int_equal(ckptfmt_st_writer_begin(w, p), CKPTFMT_OK);
        if (cases[c].name)
            assert_int_equal(ckptfmt_st_writer_write(w, cases[c].name, v, sizeof v), CKPTFMT_OK);
        assert_int_equal(ckptfmt_st_writer_finish(w, 0), CKPTFMT_OK);
        ckptfmt_st_writer_free(w);
        size_t n;
        unsigned char *b = slurp(p, &n);
        size_t hl = strlen(cases[c].header), data = cases[c].name ? 24 : 0;
        assert_int_equal(n, 8 + cases[c].padded + data);
        assert_int_equal(b[0], cases[c].padded);
        for (int k = 1; k < 8; k++)
            assert_int_equal(b[k], 0);
        assert_memory_equal(b + 8, cases[c].header, hl);
        for (size_t k = hl; k < cases[c].padded; k++)
            assert_int_equal(b[8 + k], ' ');
        if (data)
            assert_memory_equal(b + 8 + cases[c].padded, v, 24);
        free(b);
    }
}

static void test_order_and_roundtrip(void **state)
{
    (void)state;
    char p[4096];
    path_in(p, sizeof p, "order.safetensors");
    ckptfmt_st_writer *w;
    assert_int_equal(ckptfmt_st_writer_create(&w), CKPTFMT_OK);
    const struct {
        const char *name;
        ckptfmt_st_dtype dt;
        int64_t n;
    } t[] = {{"b", CKPTFMT_ST_F32, 3}, {"a", CKPTFMT_ST_F16, 5}, {"c", CKPTFMT_ST_F64, 2}, {"a2", CKPTFMT_ST_F32, 1},
             {"z", CKPTFMT_ST_BOOL, 3}, {"e", CKPTFMT_ST_BF16, 0}, {"\xc3\xa9t\xc3\xa9", CKPTFMT_ST_I64, 1}};
    const char *order[] = {"\xc3\xa9t\xc3\xa9", "c", "a2", "b", "e", "a", "z"};
    for (size_t k = 0; k < 7; k++)
        assert_int_equal(ckptfmt_st_writer_add(w, t[k].name, t[k].dt, 1, &t[k].n), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_writer_add(w, "b", CKPTFMT_ST_F32, 1, &t[0].n), CKPTFMT_EINVAL);
    assert_string_equal(ckptfmt_errmsg(), "tensor 'b' declared twice");
    assert_int_equal(ckptfmt_st_writer_add(w, "\xff", CKPTFMT_ST_F32, 1, &t[0].n), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_writer_set_metadata(w, "step", "7"), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_writer_set_metadata(w, "format", "pt"), CKPTFMT_OK);
    /* a name that is not UTF-8 cannot be encoded */
    assert_int_equal(ckptfmt_st_writer_begin(w, p), CKPTFMT_EINVAL);
    ckptfmt_st_writer_free(w);
    assert_int_equal(access(p, F_OK), -1);

    assert_int_equal(ckptfmt_st_writer_create(&w), CKPTFMT_OK);
    for (size_t k = 0; k < 7; k++)
        assert_int_equal(ckptfmt_st_writer_add(w, t[k].name, t[k].dt, 1, &t[k].n), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_writer_set_metadata(w, "step", "7"), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_writer_set_metadata(w, "format", "pt"), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_writer_begin(w, p), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_writer_num_tensors(w), 7);
    unsigned char bytes[64];
    for (int k = 0; k < 64; k++)
        bytes[k] = (unsigned char)(k * 7 + 1);
    for (int k = 0; k < 7; k++) {
        const char *name;
        uint64_t nb;
        assert_int_equal(ckptfmt_st_writer_tensor(w, k, &name, &nb), CKPTFMT_OK);
        assert_string_equal(name, order[k]);
        /* in two parts, the second one too long first */
        if (nb > 1) {
            assert_int_equal(ckptfmt_st_writer_write(w, name, bytes, 1), CKPTFMT_OK);
            assert_int_equal(ckptfmt_st_writer_write(w, name, bytes + 1, nb), CKPTFMT_EINVAL);
            assert_int_equal(ckptfmt_st_writer_write(w, name, bytes + 1, nb - 1), CKPTFMT_OK);
        } else {
            assert_int_equal(ckptfmt_st_writer_write(w, name, bytes, nb), CKPTFMT_OK);
        }
        if (k == 5)
            break; /* "z" left unwritten */
    }
    assert_int_equal(ckptfmt_st_writer_finish(w, 1), CKPTFMT_EINVAL);
    char want[8192];
    snprintf(want, sizeof want, "'%s': tensor 'z' has 0 of its 3 bytes", p);
    assert_string_equal(ckptfmt_errmsg(), want);
    assert_int_equal(ckptfmt_st_writer_write(w, "z", bytes, 3), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_writer_finish(w, 1), CKPTFMT_OK);
    uint64_t fsize = ckptfmt_st_writer_file_size(w);
    ckptfmt_st_writer_free(w);

    ckptfmt_st_file *f;
    assert_int_equal(ckptfmt_st_open(p, &f), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_file_size(f), fsize);
    assert_int_equal(ckptfmt_st_num_tensors(f), 7);
    assert_int_equal(ckptfmt_st_num_metadata(f), 2);
    assert_string_equal(ckptfmt_st_metadata(f, "step"), "7");
    const char *key, *val;
    assert_int_equal(ckptfmt_st_metadata_at(f, 0, &key, &val), CKPTFMT_OK);
    assert_string_equal(key, "format");
    assert_string_equal(val, "pt");
    assert_int_equal(ckptfmt_st_header_len(f) % 8, 0);
    uint64_t at = 0;
    for (int k = 0; k < 7; k++) {
        ckptfmt_st_tensor ti;
        assert_int_equal(ckptfmt_st_tensor_info(f, k, &ti), CKPTFMT_OK);
        assert_string_equal(ti.name, order[k]);
        assert_int_equal(ti.begin, at);
        at = ti.end;
        int i;
        assert_int_equal(ckptfmt_st_find(f, ti.name, &i), CKPTFMT_OK);
        assert_int_equal(i, k);
        unsigned char back[64];
        size_t nb = (size_t)(ti.end - ti.begin);
        assert_int_equal(ckptfmt_st_read(f, k, 0, back, nb), CKPTFMT_OK);
        assert_memory_equal(back, bytes, nb);
        assert_int_equal(ckptfmt_st_read(f, k, 1, back, nb), nb ? CKPTFMT_EINVAL : CKPTFMT_EINVAL);
    }
    int i;
    assert_int_equal(ckptfmt_st_find(f, "nope", &i), CKPTFMT_ENOTFOUND);
    ckptfmt_st_close(f);
    /* begin refuses an existing file */
    assert_int_equal(ckptfmt_st_writer_create(&w), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_writer_begin(w, p), CKPTFMT_EEXIST);
    ckptfmt_st_writer_free(w);
    assert_int_equal(access(p, F_OK), 0);
}

/* An image: 8-byte length of `header` (or `len_override` when non-zero), the header, data_len
 * bytes of data. */
static unsigned char *image(const char *header, uint64_t len_override, size_t data_len, size_t *size)
{
    size_t hl = strlen(header);
    *size = 8 + hl + data_len;
    unsigned char *b = calloc(1, *size);
    uint64_t n = len_override ? len_override : hl;
    for (int k = 0; k < 8; k++)
        b[k] = (unsigned char)(n >> (8 * k));
    memcpy(b + 8, header, hl);
    return b;
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        uint64_t len;   /* header length written (0: the header's) */
        size_t data;    /* data bytes after the header */
        int status;
        const char *msg; /* after "img: " */
    } cases[] = {
        {"", 0, 0, CKPTFMT_EMALFORMED, "the header does not start with '{'"},
        {"{}", 100000001, 0, CKPTFMT_EMALFORMED, "header length 100000001 is above the limit of 100000000 bytes"},
        {"{}", 11, 0, CKPTFMT_EMALFORMED, "header length 11 reaches past the end of the file (10 bytes)"},
        {"{\"a\":", 0, 0, CKPTFMT_EMALFORMED,
         "the header is not valid JSON: unexpected token near end of file (line 1, column 5)"},
        {"[1]", 0, 0, CKPTFMT_EMALFORMED, "the header does not start with '{'"},
        {" {}", 0, 0, CKPTFMT_EMALFORMED, "the header does not start with '{'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         0, 8, CKPTFMT_EMALFORMED, "duplicate tensor name 'a' in the header (line 1, column 57)"},
        {"{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4, CKPTFMT_EMALFORMED,
         "tensor 'a': unknown dtype 'F128'"},
        {"{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4, CKPTFMT_EMALFORMED,
         "tensor 'a': unknown dtype 'f32'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 0, 4, CKPTFMT_EMALFORMED,
         "tensor 'a': 'data_offsets' [0, 4] hold 4 bytes, but 'shape' [2] of F32 needs 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 0, 4, CKPTFMT_EMALFORMED,
         "tensor 'a': 'data_offsets' [4, 0] end before they begin"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[2,10]}}",
         0, 10, CKPTFMT_EMALFORMED, "tensor 'b': 'data_offsets' [2, 10] overlap tensor 'a' [0, 4]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         0, 12, CKPTFMT_EMALFORMED, "tensor 'b': 'data_offsets' [8, 12] leave a gap of 4 bytes after tensor 'a' [0, 4]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, 8, CKPTFMT_EMALFORMED,
         "tensor 'a': 'data_offsets' [4, 8] leave a gap of 4 bytes at the start of the data"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 4, CKPTFMT_EMALFORMED,
         "tensor 'a': 'data_offsets' [0, 8] reach past the end of the file (4 bytes of data after the header)"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 6, CKPTFMT_EMALFORMED,
         "the data do not end at the end of the file: the last tensor 'a' ends at byte 4 of the data, 2 bytes before "
         "the end"},
        {"{}", 0, 3, CKPTFMT_EMALFORMED,
         "the data do not end at the end of the file: no tensors, but 3 bytes after the header"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, 0, CKPTFMT_EMALFORMED, "tensor 'a': no 'data_offsets' field"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 0, 4, CKPTFMT_EMALFORMED,
         "tensor 'a': unknown field 'x'"},
        {"{\"a\":[]}", 0, 0, CKPTFMT_EMALFORMED, "tensor 'a': entry is not an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 0, 4, CKPTFMT_EMALFORMED,
         "tensor 'a': 'shape'[0] is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 0, 4, CKPTFMT_EMALFORMED,
         "tensor 'a': 'shape' is not an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 0, 4, CKPTFMT_EUNSUPPORTED,
         "tensor 'a': 'shape' has 9 dims, more than the 8 supported"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 0, 4,
         CKPTFMT_EMALFORMED, "tensor 'a': 'shape' [4294967296, 4294967296] has more elements than 64 bits count"},
        {"{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 0, 2, CKPTFMT_EMALFORMED,
         "tensor 'a': 'shape' [3] of F4 is not a whole number of bytes, or overflows 64 bits"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 0, 4, CKPTFMT_EMALFORMED,
         "tensor 'a': 'data_offsets' is not two non-negative integers"},
        {"{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4, CKPTFMT_EMALFORMED,
         "tensor 'a': 'dtype' is not a string"},
        {"{\"__metadata__\":{\"step\":7}}", 0, 0, CKPTFMT_EMALFORMED, "'__metadata__' value of 'step' is not a string"},
        {"{\"__metadata__\":[]}", 0, 0, CKPTFMT_EMALFORMED, "'__metadata__' is not an object"},
        {"{\"\xff\":1}", 0, 0, CKPTFMT_EMALFORMED,
         "the header is not valid JSON: unable to decode byte 0xff near '\"' (line 1, column 2)"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t size;
        unsigned char *b = image(cases[c].header, cases[c].len, cases[c].data, &size);
        ckptfmt_st_file *f = (ckptfmt_st_file *)1;
        int s = ckptfmt_st_open_memory(b, size, "img", &f);
        free(b);
        if (s != cases[c].status || strncmp(ckptfmt_errmsg(), "img: ", 5) != 0 ||
            strcmp(ckptfmt_errmsg() + 5, cases[c].msg) != 0)
            fail_msg("case %zu: status %d, message \"%s\"; expected %d \"img: %s\"", c, s, ckptfmt_errmsg(),
                     cases[c].status, cases[c].msg);
        assert_null(f);
    }
    /* shorter than the length field */
    ckptfmt_st_file *f;
    assert_int_equal(ckptfmt_st_open_memory("abc", 3, "img", &f), CKPTFMT_EMALFORMED);
    assert_string_equal(ckptfmt_errmsg(), "img: the file is 3 bytes, shorter than the 8-byte header length");
    /* a valid image with zero-size and scalar tensors, and trailing spaces */
    size_t size;
    unsigned char *b = image("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]},"
                             "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}   ",
                             0, 8, &size);
    assert_int_equal(ckptfmt_st_open_memory(b, size, "img", &f), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_num_tensors(f), 2);
    ckptfmt_st_tensor ti;
    assert_int_equal(ckptfmt_st_tensor_info(f, 1, &ti), CKPTFMT_OK);
    assert_string_equal(ti.name, "s");
    assert_int_equal(ti.ndim, 0);
    ckptfmt_st_close(f);
    free(b);
    /* a file that shrank after open */
    char p[4096];
    path_in(p, sizeof p, "shrink.safetensors");
    b = image("{\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}", 0, 8, &size);
    FILE *fp = fopen(p, "wb");
    fwrite(b, 1, size, fp);
    fclose(fp);
    free(b);
    assert_int_equal(ckptfmt_st_open(p, &f), CKPTFMT_OK);
    assert_int_equal(truncate(p, (off_t)size - 4), 0);
    unsigned char x[8];
    assert_int_equal(ckptfmt_st_read(f, 0, 0, x, 8), CKPTFMT_EIO);
    char want[8192];
    snprintf(want, sizeof want, "%s: the file ends at byte %zu, before the %zu bytes it had when opened", p, size - 4,
             size);
    assert_string_equal(ckptfmt_errmsg(), want);
    ckptfmt_st_close(f);
    path_in(p, sizeof p, "missing.safetensors");
    assert_int_equal(ckptfmt_st_open(p, &f), CKPTFMT_ENOTFOUND);
}

static void test_index(void **state)
{
    (void)state;
    char p[4096];
    path_in(p, sizeof p, "model.safetensors.index.json");
    const char *names[3] = {"b.w", "a.w", "c"}, *files[3] = {"model-00002-of-00002.safetensors",
                                                             "model-00001-of-00002.safetensors",
                                                             "model-00002-of-00002.safetensors"};
    assert_int_equal(ckptfmt_st_index_write(p, 3, names, files, 1234), CKPTFMT_OK);
    size_t n;
    unsigned char *b = slurp(p, &n);
    const char *want = "{\n  \"metadata\": {\n    \"total_size\": 1234\n  },\n  \"weight_map\": {\n"
                       "    \"a.w\": \"model-00001-of-00002.safetensors\",\n"
                       "    \"b.w\": \"model-00002-of-00002.safetensors\",\n"
                       "    \"c\": \"model-00002-of-00002.safetensors\"\n  }\n}\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(b, want, n);
    free(b);
    ckptfmt_st_index *x;
    assert_int_equal(ckptfmt_st_index_read(p, &x), CKPTFMT_OK);
    assert_int_equal(ckptfmt_st_index_total_size(x), 1234);
    assert_int_equal(ckptfmt_st_index_num_files(x), 2);
    assert_string_equal(ckptfmt_st_index_file(x, 1), "model-00002-of-00002.safetensors");
    const char *nm, *fl;
    assert_int_equal(ckptfmt_st_index_tensor(x, 0, &nm, &fl), CKPTFMT_OK);
    assert_string_equal(nm, "a.w");
    assert_string_equal(fl, "model-00001-of-00002.safetensors");
    ckptfmt_st_index_free(x);
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"weight_map\": {\"a\": \"../x.safetensors\"}}",
         "\"weight_map\" entry of tensor 'a': '../x.safetensors' is not a plain *.safetensors file name in the index's "
         "directory"},
        {"{\"weight_map\": {\"a\": \"x.bin\"}}",
         "\"weight_map\" entry of tensor 'a': 'x.bin' is not a plain *.safetensors file name in the index's directory"},
        {"{\"weight_map\": {\"a\": 3}}", "\"weight_map\" entry of tensor 'a' is not a string"},
        {"{\"metadata\": {\"total_size\": -3}, \"weight_map\": {}}",
         "\"metadata\".\"total_size\" is not a non-negative integer"},
        {"{\"metadata\": {}}", "no \"weight_map\" object"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        unlink(p);
        FILE *f = fopen(p, "w");
        fputs(bad[k].json, f);
        fclose(f);
        assert_int_equal(ckptfmt_st_index_read(p, &x), CKPTFMT_EMALFORMED);
        char m[8192];
        snprintf(m, sizeof m, "%s: %s", p, bad[k].msg);
        assert_string_equal(ckptfmt_errmsg(), m);
    }
}

int main(int argc, char **argv)
{
    snprintf(scratch, sizeof scratch, "%s", argc > 1 ? argv[1] : "/tmp/convert-safetensors");
    mkdir(scratch, 0755);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_order_and_roundtrip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
