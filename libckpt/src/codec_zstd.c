/*
 * codec_zstd.c -- the zstd HDF5 filter (id 32015) and its chunk helpers. See codec_zstd.h.
 *
 * Compiled twice: into libckpt, and (with CKPT_CODEC_ZSTD_PLUGIN_BUILD) into the HDF5 filter
 * plugin libh5zstd.so, which must reference no HDF5 function -- only HDF5 header types and
 * macros are used outside the #ifndef CKPT_CODEC_ZSTD_PLUGIN_BUILD section at the end.
 */
#include "codec_zstd.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#ifndef CKPT_CODEC_ZSTD_PLUGIN_BUILD
#include <pthread.h>
#endif

/* HDF5 hands filters malloc()ed buffers and frees what they return with free() unless it was
 * configured with its allocation sanity checker, which puts a header in front of every block. */
#ifdef H5_MEMORY_ALLOC_SANITY_CHECK
#error "HDF5 built with H5_MEMORY_ALLOC_SANITY_CHECK: filter buffers are not malloc()/free() blocks"
#endif

#if ZSTD_VERSION_NUMBER < 10400
#error "zstd >= 1.4.0 is required (ZSTD_findFrameCompressedSize, ZSTD_compressCCtx contract)"
#endif

/* ------------------------------------------------------------------------------------------ */
/* Levels                                                                                      */
/* ------------------------------------------------------------------------------------------ */

int ckpt_codec_zstd_level_valid(int level)
{
    return level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel();
}

unsigned int ckpt_codec_zstd_level_to_cd(int level)
{
    /* Two's complement representation, computed without implementation-defined conversions. */
    if (level >= 0)
        return (unsigned int)level;
    return UINT_MAX - (unsigned int)(-(level + 1));
}

int ckpt_codec_zstd_level_from_cd(size_t cd_nelmts, const unsigned int cd_values[])
{
    if (cd_nelmts == 0 || cd_values == NULL)
        return CKPT_ZSTD_DEFAULT_LEVEL;
    unsigned int v = cd_values[0];
    if (v <= (unsigned int)INT_MAX)
        return (int)v;
    return -(int)(UINT_MAX - v) - 1;
}

static int clamp_level(int level)
{
    if (level < ZSTD_minCLevel())
        return ZSTD_minCLevel();
    if (level > ZSTD_maxCLevel())
        return ZSTD_maxCLevel();
    return level;
}

/* ------------------------------------------------------------------------------------------ */
/* Byte shuffle (HDF5's H5Z_FILTER_SHUFFLE byte order)                                          */
/* ------------------------------------------------------------------------------------------ */

void ckpt_codec_shuffle(void *dst, const void *src, size_t nbytes, size_t elem_size)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (nbytes == 0)
        return;
    size_t n = elem_size > 1 ? nbytes / elem_size : 0;
    if (n <= 1) {
        memcpy(d, s, nbytes);
        return;
    }
    if (elem_size == 2) {
        for (size_t i = 0; i < n; i++) {
            d[i] = s[2 * i];
            d[n + i] = s[2 * i + 1];
        }
    } else if (elem_size == 4) {
        for (size_t i = 0; i < n; i++) {
            d[i] = s[4 * i];
            d[n + i] = s[4 * i + 1];
            d[2 * n + i] = s[4 * i + 2];
            d[3 * n + i] = s[4 * i + 3];
        }
    } else {
        for (size_t j = 0; j < elem_size; j++) {
            unsigned char *plane = d + j * n;
            const unsigned char *p = s + j;
            for (size_t i = 0; i < n; i++)
                plane[i] = p[i * elem_size];
        }
    }
    size_t done = n * elem_size;
    if (done < nbytes)
        memcpy(d + done, s + done, nbytes - done);
}

void ckpt_codec_unshuffle(void *dst, const void *src, size_t nbytes, size_t elem_size)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (nbytes == 0)
        return;
    size_t n = elem_size > 1 ? nbytes / elem_size : 0;
    if (n <= 1) {
        memcpy(d, s, nbytes);
        return;
    }
    if (elem_size == 2) {
        for (size_t i = 0; i < n; i++) {
            d[2 * i] = s[i];
            d[2 * i + 1] = s[n + i];
        }
    } else if (elem_size == 4) {
        for (size_t i = 0; i < n; i++) {
            d[4 * i] = s[i];
            d[4 * i + 1] = s[n + i];
            d[4 * i + 2] = s[2 * n + i];
            d[4 * i + 3] = s[3 * n + i];
        }
    } else {
        for (size_t j = 0; j < elem_size; j++) {
            const unsigned char *plane = s + j * n;
            unsigned char *p = d + j;
            for (size_t i = 0; i < n; i++)
                p[i * elem_size] = plane[i];
        }
    }
    size_t done = n * elem_size;
    if (done < nbytes)
        memcpy(d + done, s + done, nbytes - done);
}

/* ------------------------------------------------------------------------------------------ */
/* zstd core shared by the filter and the helpers                                              */
/* ------------------------------------------------------------------------------------------ */

/* One zstd frame of src at level -- byte for byte what ZSTD_compress(dst, cap, src, n, level)
 * writes (ZSTD_compress is ZSTD_compressCCtx on a fresh context; a reused context gives the same
 * bytes because ZSTD_compressCCtx resets every parameter from the level and the source size).
 * Returns the frame size or 0. */
static size_t zstd_frame(ZSTD_CCtx *cctx, int level, const void *src, size_t n, void *dst, size_t cap)
{
    ZSTD_CCtx *own = NULL;
    if (cctx == NULL) {
        own = ZSTD_createCCtx();
        if (own == NULL)
            return 0;
        cctx = own;
    }
    size_t r = ZSTD_compressCCtx(cctx, dst, cap, src, n, level);
    ZSTD_freeCCtx(own);
    return ZSTD_isError(r) ? 0 : r;
}

/* Total content size of the zstd input: the sum over its frames (skippable frames count 0).
 * Returns 0 and sets *total (ZSTD_CONTENTSIZE_UNKNOWN when some frame does not record its size),
 * or -1 when the input is not a sequence of well-formed frames or the total exceeds the cap. */
static int zstd_content_size(const void *src, size_t n, unsigned long long *total)
{
    const unsigned char *p = src;
    size_t left = n;
    unsigned long long sum = 0;
    int unknown = 0;
    if (src == NULL || n == 0)
        return -1;
    while (left > 0) {
        unsigned long long fcs = ZSTD_getFrameContentSize(p, left);
        if (fcs == ZSTD_CONTENTSIZE_ERROR)
            return -1;
        size_t fsz = ZSTD_findFrameCompressedSize(p, left);
        if (ZSTD_isError(fsz) || fsz == 0 || fsz > left)
            return -1;
        if (fcs == ZSTD_CONTENTSIZE_UNKNOWN) {
            unknown = 1;
        } else {
            if (fcs > (unsigned long long)CKPT_ZSTD_MAX_CHUNK_BYTES - sum)
                return -1;
            sum += fcs;
        }
        p += fsz;
        left -= fsz;
    }
    *total = unknown ? ZSTD_CONTENTSIZE_UNKNOWN : sum;
    return 0;
}

/* Streaming decode of input whose content size is not recorded: into *out (malloc()ed by this
 * function, grown as needed up to the cap). Returns the decoded size or 0 (and *out NULL). */
static size_t zstd_decode_unknown(ZSTD_DCtx *dctx, const void *src, size_t n, unsigned char **out)
{
    ZSTD_DCtx *own = NULL;
    unsigned char *dst = NULL;
    size_t cap = 0, pos = 0;
    *out = NULL;
    if (dctx == NULL) {
        own = ZSTD_createDCtx();
        if (own == NULL)
            return 0;
        dctx = own;
    }
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    ZSTD_inBuffer in = { src, n, 0 };
    cap = n < (SIZE_MAX / 4) ? 4 * n : n;
    if (cap < ((size_t)64 << 10))
        cap = (size_t)64 << 10;
    if (cap > CKPT_ZSTD_MAX_CHUNK_BYTES)
        cap = CKPT_ZSTD_MAX_CHUNK_BYTES;
    dst = malloc(cap);
    if (dst == NULL)
        goto fail;
    for (;;) {
        if (pos == cap) {
            if (cap >= CKPT_ZSTD_MAX_CHUNK_BYTES)
                goto fail; /* decodes to more than any chunk can hold */
            size_t ncap = cap > CKPT_ZSTD_MAX_CHUNK_BYTES / 2 ? CKPT_ZSTD_MAX_CHUNK_BYTES : 2 * cap;
            unsigned char *g = realloc(dst, ncap);
            if (g == NULL)
                goto fail;
            dst = g;
            cap = ncap;
        }
        ZSTD_outBuffer ob = { dst, cap, pos };
        size_t r = ZSTD_decompressStream(dctx, &ob, &in);
        if (ZSTD_isError(r))
            goto fail;
        pos = ob.pos;
        if (r == 0 && in.pos == in.size)
            break; /* last frame complete and flushed, all input consumed */
        if (in.pos == in.size && ob.pos < ob.size)
            goto fail; /* input ends inside a frame: truncated */
    }
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    ZSTD_freeDCtx(own);
    if (pos == 0) {
        free(dst);
        return 0;
    }
    *out = dst;
    return pos;
fail:
    if (dctx != NULL)
        ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    ZSTD_freeDCtx(own);
    free(dst);
    return 0;
}

/* Decodes src into a new malloc()ed buffer (*out) of exactly the content size. Returns that size
 * (> 0) or 0 on any failure (*out NULL). */
static size_t zstd_decode_alloc(ZSTD_DCtx *dctx, const void *src, size_t n, unsigned char **out)
{
    unsigned long long total;
    *out = NULL;
    if (zstd_content_size(src, n, &total) != 0)
        return 0;
    if (total == ZSTD_CONTENTSIZE_UNKNOWN)
        return zstd_decode_unknown(dctx, src, n, out);
    if (total == 0)
        return 0; /* nothing to decode: 0 is the filter's failure value, no chunk is empty */
    unsigned char *dst = malloc((size_t)total);
    if (dst == NULL)
        return 0;
    ZSTD_DCtx *own = NULL;
    if (dctx == NULL) {
        own = ZSTD_createDCtx();
        if (own == NULL) {
            free(dst);
            return 0;
        }
        dctx = own;
    }
    size_t r = ZSTD_decompressDCtx(dctx, dst, (size_t)total, src, n);
    ZSTD_freeDCtx(own);
    if (ZSTD_isError(r) || r != (size_t)total) {
        free(dst);
        return 0;
    }
    *out = dst;
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* The HDF5 filter                                                                              */
/* ------------------------------------------------------------------------------------------ */

size_t ckpt_codec_zstd_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[],
                              size_t nbytes, size_t *buf_size, void **buf)
{
    if (buf == NULL || *buf == NULL || buf_size == NULL)
        return 0;
    if (flags & H5Z_FLAG_REVERSE) {
        unsigned char *out = NULL;
        size_t n = zstd_decode_alloc(NULL, *buf, nbytes, &out);
        if (n == 0)
            return 0;
        free(*buf);
        *buf = out;
        *buf_size = n;
        return n;
    }
    if (nbytes == 0 || nbytes > CKPT_ZSTD_MAX_CHUNK_BYTES)
        return 0;
    int level = clamp_level(ckpt_codec_zstd_level_from_cd(cd_nelmts, cd_values));
    size_t cap = ZSTD_compressBound(nbytes);
    if (ZSTD_isError(cap) || cap == 0)
        return 0;
    void *out = malloc(cap);
    if (out == NULL)
        return 0;
    size_t n = zstd_frame(NULL, level, *buf, nbytes, out, cap);
    if (n == 0) {
        free(out);
        return 0;
    }
    free(*buf);
    *buf = out;
    *buf_size = cap;
    return n;
}

const H5Z_class2_t ckpt_codec_zstd_class = {
    H5Z_CLASS_T_VERS,                      /* version */
    (H5Z_filter_t)CKPT_FILTER_ZSTD,        /* id */
    1,                                     /* encoder_present */
    1,                                     /* decoder_present */
    "Zstandard compression (libckpt)",     /* name */
    NULL,                                  /* can_apply */
    NULL,                                  /* set_local */
    ckpt_codec_zstd_filter,                /* filter */
};

/* ------------------------------------------------------------------------------------------ */
/* Chunk helpers                                                                                */
/* ------------------------------------------------------------------------------------------ */

struct ckpt_zstd_ctx {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    unsigned char *scratch;
    size_t scratch_cap;
};

ckpt_zstd_ctx *ckpt_codec_zstd_ctx_new(void)
{
    ckpt_zstd_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->cctx = ZSTD_createCCtx();
    c->dctx = ZSTD_createDCtx();
    if (c->cctx == NULL || c->dctx == NULL) {
        ckpt_codec_zstd_ctx_free(c);
        return NULL;
    }
    return c;
}

void ckpt_codec_zstd_ctx_free(ckpt_zstd_ctx *ctx)
{
    if (ctx == NULL)
        return;
    ZSTD_freeCCtx(ctx->cctx);
    ZSTD_freeDCtx(ctx->dctx);
    free(ctx->scratch);
    free(ctx);
}

/* A scratch buffer of n bytes: the context's (grown as needed) or, without a context, a new one
 * the caller frees (*owned). */
static unsigned char *scratch_get(ckpt_zstd_ctx *ctx, size_t n, unsigned char **owned)
{
    *owned = NULL;
    if (ctx == NULL) {
        *owned = malloc(n);
        return *owned;
    }
    if (ctx->scratch_cap < n) {
        unsigned char *p = malloc(n);
        if (p == NULL)
            return NULL;
        free(ctx->scratch);
        ctx->scratch = p;
        ctx->scratch_cap = n;
    }
    return ctx->scratch;
}

size_t ckpt_codec_zstd_chunk_bound(size_t nbytes)
{
    if (nbytes > CKPT_ZSTD_MAX_CHUNK_BYTES)
        return 0;
    size_t b = ZSTD_compressBound(nbytes);
    return ZSTD_isError(b) ? 0 : b;
}

size_t ckpt_codec_zstd_compress_chunk(ckpt_zstd_ctx *ctx, int level, size_t shuffle_elem_size,
                                      const void *src, size_t nbytes, void *dst, size_t dst_cap)
{
    if (src == NULL || dst == NULL || nbytes == 0 || nbytes > CKPT_ZSTD_MAX_CHUNK_BYTES ||
        !ckpt_codec_zstd_level_valid(level))
        return 0;
    const void *in = src;
    unsigned char *owned = NULL;
    if (shuffle_elem_size > 1 && nbytes / shuffle_elem_size > 1) {
        unsigned char *s = scratch_get(ctx, nbytes, &owned);
        if (s == NULL)
            return 0;
        ckpt_codec_shuffle(s, src, nbytes, shuffle_elem_size);
        in = s;
    }
    size_t n = zstd_frame(ctx ? ctx->cctx : NULL, level, in, nbytes, dst, dst_cap);
    free(owned);
    return n;
}

size_t ckpt_codec_zstd_decompress_chunk(ckpt_zstd_ctx *ctx, size_t shuffle_elem_size,
                                        const void *src, size_t nbytes, void *dst, size_t dst_cap)
{
    unsigned long long total;
    if (src == NULL || dst == NULL || zstd_content_size(src, nbytes, &total) != 0)
        return 0;
    ZSTD_DCtx *dctx = ctx ? ctx->dctx : NULL;
    int shuffled = shuffle_elem_size > 1;
    if (total == ZSTD_CONTENTSIZE_UNKNOWN) {
        unsigned char *tmp = NULL;
        size_t n = zstd_decode_unknown(dctx, src, nbytes, &tmp);
        if (n == 0 || tmp == NULL || n > dst_cap) {
            free(tmp);
            return 0;
        }
        if (shuffled)
            ckpt_codec_unshuffle(dst, tmp, n, shuffle_elem_size);
        else
            memcpy(dst, tmp, n);
        free(tmp);
        return n;
    }
    if (total == 0 || total > dst_cap)
        return 0;
    size_t n = (size_t)total;
    unsigned char *owned = NULL;
    unsigned char *out = dst;
    if (shuffled) {
        out = scratch_get(ctx, n, &owned);
        if (out == NULL)
            return 0;
    }
    ZSTD_DCtx *own = NULL;
    if (dctx == NULL) {
        own = ZSTD_createDCtx();
        if (own == NULL) {
            free(owned);
            return 0;
        }
        dctx = own;
    }
    size_t r = ZSTD_decompressDCtx(dctx, out, n, src, nbytes);
    ZSTD_freeDCtx(own);
    if (ZSTD_isError(r) || r != n) {
        free(owned);
        return 0;
    }
    if (shuffled)
        ckpt_codec_unshuffle(dst, out, n, shuffle_elem_size);
    free(owned);
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Library-only: registration and dcpl setup (these call HDF5; left out of the plugin)          */
/* ------------------------------------------------------------------------------------------ */
#ifndef CKPT_CODEC_ZSTD_PLUGIN_BUILD

static pthread_mutex_t g_register_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_registered; /* guarded by g_register_lock */

int ckpt_codec_zstd_register(void)
{
    int rc = -1;
    if (pthread_mutex_lock(&g_register_lock) != 0)
        return -1;
    if (g_registered) {
        rc = 0;
    } else {
        herr_t st = -1;
        H5E_BEGIN_TRY
        {
            st = H5Zregister(&ckpt_codec_zstd_class);
        }
        H5E_END_TRY;
        if (st >= 0) {
            g_registered = 1;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&g_register_lock);
    return rc;
}

int ckpt_codec_set_dcpl(hid_t dcpl, int level, int shuffle)
{
    if (!ckpt_codec_zstd_level_valid(level))
        return -1;
    if (ckpt_codec_zstd_register() != 0)
        return -1;
    int rc = -1;
    H5E_BEGIN_TRY
    {
        if (H5Pisa_class(dcpl, H5P_DATASET_CREATE) > 0) {
            int added_shuffle = 0;
            int ok = 1;
            if (shuffle) {
                /* A list that has shuffle already keeps its one (shuffling twice is not the format);
                 * one we add is removed again if zstd cannot be added. */
                unsigned int sflags = 0;
                size_t snelm = 0;
                int had = H5Pget_filter_by_id2(dcpl, H5Z_FILTER_SHUFFLE, &sflags, &snelm, NULL, 0,
                                               NULL, NULL) >= 0;
                if (!had) {
                    if (H5Pset_shuffle(dcpl) < 0)
                        ok = 0;
                    else
                        added_shuffle = 1;
                }
            }
            if (ok) {
                unsigned int cd = ckpt_codec_zstd_level_to_cd(level);
                if (H5Pset_filter(dcpl, (H5Z_filter_t)CKPT_FILTER_ZSTD, H5Z_FLAG_MANDATORY, 1, &cd) >= 0)
                    rc = 0;
                else if (added_shuffle)
                    H5Premove_filter(dcpl, H5Z_FILTER_SHUFFLE);
            }
        }
    }
    H5E_END_TRY;
    return rc;
}

#endif /* !CKPT_CODEC_ZSTD_PLUGIN_BUILD */
