/* options.c -- save options: defaults, versions, validation. */
#include "options.h"
#include "codec_zstd.h"
#include "error.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <zstd.h>

#define CKPT_MIN_PIECE_BYTES 64
#define CKPT_MAX_PIECE_BYTES (1LL << 30)

void ckpt_save_options_init(ckpt_save_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->version = CKPT_SAVE_OPTIONS_VERSION;
    o->layout = CKPT_LAYOUT_PER_RANK;
    o->overwrite = 0;
    o->fsync = 1;
    o->piece_bytes = 4 << 20;
    o->compress = CKPT_COMPRESS_NONE;
    o->level = 1;
    o->shuffle = 1;
    o->threads = 1;
    o->group_size = 0;
}

int ckpt_save_options_copy(ckpt_save_options *out, const ckpt_save_options *in)
{
    ckpt_save_options_init(out);
    if (!in)
        return CKPT_OK;
    if (in->version == 1)
        memcpy(out, in, offsetof(ckpt_save_options, group_size)); /* a version-1 caller's struct ends there */
    else if (in->version == CKPT_SAVE_OPTIONS_VERSION)
        *out = *in;
    else
        return ckpt_error(CKPT_EINVAL, "save options version %u; this library expects 1..%d (call "
                          "ckpt_save_options_init)", in->version, CKPT_SAVE_OPTIONS_VERSION);
    out->version = CKPT_SAVE_OPTIONS_VERSION;
    const ckpt_save_options *o = out;
    if (o->layout != CKPT_LAYOUT_PER_RANK && o->layout != CKPT_LAYOUT_SHARED && o->layout != CKPT_LAYOUT_GROUP)
        return ckpt_error(CKPT_EINVAL, "unknown layout %d", (int)o->layout);
    if (o->compress != CKPT_COMPRESS_NONE && o->compress != CKPT_COMPRESS_ZSTD)
        return ckpt_error(CKPT_EINVAL, "unknown compression %d", (int)o->compress);
    if (o->compress == CKPT_COMPRESS_ZSTD && !ckpt_codec_zstd_level_valid(o->level))
        return ckpt_error(CKPT_EINVAL, "zstd level %d is outside %d..%d", o->level, ZSTD_minCLevel(), ZSTD_maxCLevel());
    if (o->threads < 1 || o->threads > 64)
        return ckpt_error(CKPT_EINVAL, "threads %d outside 1..64", o->threads);
    if (o->piece_bytes < CKPT_MIN_PIECE_BYTES || o->piece_bytes > CKPT_MAX_PIECE_BYTES)
        return ckpt_error(CKPT_EINVAL, "piece_bytes %lld outside %d..%lld", (long long)o->piece_bytes,
                          CKPT_MIN_PIECE_BYTES, (long long)CKPT_MAX_PIECE_BYTES);
    if (o->group_size < 0)
        return ckpt_error(CKPT_EINVAL, "group_size %d is negative", o->group_size);
    return CKPT_OK;
}

void ckpt_save_options_describe(const ckpt_save_options *o, char *buf, size_t len)
{
    snprintf(buf, len, "layout %s, overwrite %d, fsync %d, piece_bytes %lld, compress %s, level %d, shuffle %d, "
             "threads %d, group_size %d", ckpt_layout_name(o->layout), o->overwrite, o->fsync,
             (long long)o->piece_bytes, o->compress == CKPT_COMPRESS_ZSTD ? "zstd" : "none", o->level, o->shuffle,
             o->threads, o->group_size);
}
