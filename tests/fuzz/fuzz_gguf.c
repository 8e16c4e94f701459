/* fuzz_gguf.c -- the strict GGUF reader on arbitrary bytes as a whole file: it accepts or refuses
 * with a message, never crashes, leaks or reads outside the input; what it accepts is consistent
 * (every key and tensor found by name, values and array elements readable, tensor data inside the
 * input, aligned, not overlapping) and the f32/f16/bf16/q8_0 decoders run on the data. */
#include "ckptfmt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckptfmt_gguf_file *f = NULL;
    if (ckptfmt_gguf_open_memory(data, size, "fuzz", &f) != CKPTFMT_OK) {
        if (f || ckptfmt_errmsg()[0] == 0)
            abort();
        return 0;
    }
    uint32_t align = ckptfmt_gguf_alignment(f);
    uint64_t start = ckptfmt_gguf_data_offset(f);
    if (align == 0 || (align & (align - 1)) || start % align)
        abort();
    for (int i = 0; i < ckptfmt_gguf_num_kv(f); i++) {
        ckptfmt_gguf_kv kv;
        ckptfmt_gguf_value v;
        const char *s;
        uint64_t len;
        int j;
        if (ckptfmt_gguf_kv_info(f, i, &kv) != CKPTFMT_OK || ckptfmt_gguf_find_key(f, kv.key, &j) != CKPTFMT_OK || j != i)
            abort();
        if (kv.type == CKPTFMT_GGUF_STRING) {
            if (ckptfmt_gguf_kv_string(f, i, &s, &len) != CKPTFMT_OK || (const uint8_t *)s + len > data + size)
                abort();
        } else if (kv.type == CKPTFMT_GGUF_ARRAY) {
            for (uint64_t e = 0; e < kv.array_len; e++) {
                int rc = kv.array_type == CKPTFMT_GGUF_STRING ? ckptfmt_gguf_kv_array_string(f, i, e, &s, &len)
                                                              : ckptfmt_gguf_kv_array_scalar(f, i, e, &v);
                if (rc != CKPTFMT_OK)
                    abort();
                if (kv.array_type == CKPTFMT_GGUF_STRING && (const uint8_t *)s + len > data + size)
                    abort();
            }
        } else if (ckptfmt_gguf_kv_scalar(f, i, &v) != CKPTFMT_OK || v.type != kv.type) {
            abort();
        }
    }
    for (int i = 0; i < ckptfmt_gguf_num_tensors(f); i++) {
        ckptfmt_gguf_tensor t;
        int j;
        if (ckptfmt_gguf_tensor_info(f, i, &t) != CKPTFMT_OK || ckptfmt_gguf_find_tensor(f, t.name, &j) != CKPTFMT_OK ||
            j != i || t.offset % align || start + t.offset + t.nbytes > size)
            abort();
        const uint8_t *p = ckptfmt_gguf_tensor_data(f, i);
        if (p != data + start + t.offset)
            abort();
        uint64_t n = t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
        if (n <= 4096 && (t.type == CKPTFMT_GGML_F32 || t.type == CKPTFMT_GGML_F16 || t.type == CKPTFMT_GGML_BF16 ||
                          t.type == CKPTFMT_GGML_Q8_0)) {
            float *out = malloc(n * sizeof(float));
            if (!out || ckptfmt_ggml_decode(t.type, p, n, out) != CKPTFMT_OK)
                abort();
            free(out);
        }
    }
    ckptfmt_gguf_close(f);
    return 0;
}
