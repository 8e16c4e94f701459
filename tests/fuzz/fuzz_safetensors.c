/* fuzz_safetensors.c -- the strict safetensors reader (what shard-convert --from safetensors and
 * shard-generate run on untrusted files) on arbitrary bytes as a whole file: it accepts or refuses
 * with a message, never crashes, leaks or allocates beyond the header; what it accepts is
 * consistent (contiguous offsets ending at the file's end, every tensor found by name and
 * readable). */
#include "ckptfmt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckptfmt_st_file *f = NULL;
    if (ckptfmt_st_open_memory(data, size, "fuzz", &f) != CKPTFMT_OK) {
        if (f || ckptfmt_errmsg()[0] == 0)
            abort();
        return 0;
    }
    uint64_t at = 0, data_start = 8 + ckptfmt_st_header_len(f);
    unsigned char buf[256];
    for (int i = 0; i < ckptfmt_st_num_tensors(f); i++) {
        ckptfmt_st_tensor t;
        int j;
        if (ckptfmt_st_tensor_info(f, i, &t) != CKPTFMT_OK || t.begin != at || t.end < t.begin ||
            ckptfmt_st_find(f, t.name, &j) != CKPTFMT_OK || j != i)
            abort();
        at = t.end;
        /* the first and last bytes of the tensor are where the header says */
        size_t n = (size_t)(t.end - t.begin) < sizeof buf ? (size_t)(t.end - t.begin) : sizeof buf;
        if (ckptfmt_st_read(f, i, 0, buf, n) != CKPTFMT_OK || memcmp(buf, data + data_start + t.begin, n) != 0)
            abort();
        if (n && (ckptfmt_st_read(f, i, t.end - t.begin - n, buf, n) != CKPTFMT_OK ||
                  memcmp(buf, data + data_start + t.end - n, n) != 0))
            abort();
        if (ckptfmt_st_read(f, i, 0, buf, (size_t)(t.end - t.begin) + 1) == CKPTFMT_OK)
            abort();
    }
    if (data_start + at != size)
        abort();
    for (int k = 0; k < ckptfmt_st_num_metadata(f); k++) {
        const char *key, *val;
        if (ckptfmt_st_metadata_at(f, k, &key, &val) != CKPTFMT_OK || ckptfmt_st_metadata(f, key) != val)
            abort();
    }
    ckptfmt_st_close(f);
    return 0;
}
