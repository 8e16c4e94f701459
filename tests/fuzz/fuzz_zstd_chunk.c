/* fuzz_zstd_chunk.c -- the zstd chunk decoder (what loads run on every compressed piece of a
 * checkpoint) on arbitrary bytes: never more than dst_cap bytes out, no crash, no leak. The first
 * input byte picks the shuffle element size and the output capacity. */
#include "codec_zstd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const size_t elem[4] = {0, 2, 4, 8};
    size_t esize = elem[data[0] & 3];
    size_t cap = (size_t)1 << (4 + ((data[0] >> 2) & 15)); /* 16 B .. 512 KiB */
    unsigned char *dst = malloc(cap);
    if (!dst)
        return 0;
    ckpt_zstd_ctx *ctx = (data[0] & 0x40) ? ckpt_codec_zstd_ctx_new() : NULL;
    size_t n = ckpt_codec_zstd_decompress_chunk(ctx, esize, data + 1, size - 1, dst, cap);
    if (n > cap)
        abort();
    /* a valid frame must round-trip through the compressor */
    if (n > 0) {
        size_t bound = ckpt_codec_zstd_chunk_bound(n);
        unsigned char *z = malloc(bound), *back = malloc(n);
        if (z && back) {
            size_t zn = ckpt_codec_zstd_compress_chunk(ctx, 1, esize, dst, n, z, bound);
            if (zn == 0 || ckpt_codec_zstd_decompress_chunk(ctx, esize, z, zn, back, n) != n ||
                memcmp(back, dst, n) != 0)
                abort();
        }
        free(z);
        free(back);
    }
    ckpt_codec_zstd_ctx_free(ctx);
    free(dst);
    return 0;
}
