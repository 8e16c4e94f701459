/*
 * codec_zstd.h -- the zstd compression codec: an HDF5 filter (id 32015) plus helpers that produce
 * and consume exactly the chunk bytes that filter does.
 *
 * Format (the convention of the hdf5plugin project's zstd filter, so files are interchangeable):
 *   - filter id 32015 (CKPT_FILTER_ZSTD), registered with The HDF Group;
 *   - cd_values[0] = compression level, a signed int stored in an unsigned int (two's complement:
 *     -1 is stored as 0xFFFFFFFF); no cd_values means level 3; extra cd_values are ignored;
 *   - every stored chunk is one zstd frame as ZSTD_compress() writes it: the frame header holds the
 *     uncompressed size, no content checksum, no dictionary.
 *   With HDF5's byte shuffle in front (ckpt_codec_set_dcpl(..., shuffle=1)) the pipeline is
 *   shuffle -> zstd on write and unzstd -> unshuffle on read.
 *
 * Decoding accepts any valid zstd input a reader may meet: one frame with its content size (what
 * every known writer produces), several concatenated frames, skippable frames, and frames without
 * a content size (decoded by streaming into a growing buffer). The output is capped at
 * CKPT_ZSTD_MAX_CHUNK_BYTES (HDF5 1.10 chunks are smaller than 4 GiB), so a corrupt header cannot
 * ask for an absurd allocation. Bad input never crashes: the filter returns 0 (HDF5 reports
 * "filter returned failure" upward) and the helpers return 0.
 *
 * One source, two builds. This file is compiled into libckpt and into the dynamically loaded
 * HDF5 filter plugin libh5zstd.so (libckpt/plugin). With CKPT_CODEC_ZSTD_PLUGIN_BUILD defined
 * (the plugin build) the parts that call HDF5 functions -- ckpt_codec_zstd_register() and
 * ckpt_codec_set_dcpl() -- are left out: the plugin only uses HDF5's header types, links no
 * libhdf5 and so loads into serial and parallel HDF5 alike (h5py/h5dump on Debian use the serial
 * one, libckpt the parallel one).
 *
 * Buffer ownership (HDF5 filter contract): the filter receives *buf (allocated size *buf_size,
 * nbytes valid) and on success replaces it with a buffer it allocated, freeing the old one, and
 * returns the valid byte count. HDF5 1.10 allocates and frees filter buffers with the C library's
 * malloc()/free() (H5MM_malloc/H5MM_xfree are malloc/free unless the library is configured with
 * H5_MEMORY_ALLOC_SANITY_CHECK, which no distribution build enables; see the #error in the .c
 * file), so the filter uses malloc()/free() -- it must not call H5allocate_memory()/H5free_memory()
 * because the plugin calls no HDF5 function. On failure the filter frees what it allocated and
 * leaves *buf and *buf_size untouched.
 */
#ifndef CKPT_CODEC_ZSTD_H
#define CKPT_CODEC_ZSTD_H

#include <stddef.h>

#include <hdf5.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The HDF5 filter id of zstd (registered with The HDF Group; hdf5plugin's "libh5zstd"). */
#define CKPT_FILTER_ZSTD 32015

/* The level used when the filter has no cd_values (and zstd's own default for level 0). */
#define CKPT_ZSTD_DEFAULT_LEVEL 3

/* Largest uncompressed chunk the codec produces or accepts (HDF5 1.10: chunks < 4 GiB). */
#define CKPT_ZSTD_MAX_CHUNK_BYTES ((size_t)0xFFFFFFFFu)

/* The filter class (version H5Z_CLASS_T_VERS, id 32015, encoder and decoder present, no
 * can_apply/set_local callbacks) shared by the library and the plugin. */
extern const H5Z_class2_t ckpt_codec_zstd_class;

/* The filter callback (H5Z_func_t). Compress: one zstd frame at the cd_values level (clamped into
 * zstd's range). Decompress (flags & H5Z_FLAG_REVERSE): see the file comment. Returns the valid
 * byte count of the new *buf, or 0 on any failure. Thread-safe (no shared state). */
size_t ckpt_codec_zstd_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[],
                              size_t nbytes, size_t *buf_size, void **buf);

/* The level the filter uses for these cd_values (CKPT_ZSTD_DEFAULT_LEVEL when there are none),
 * and the cd_values[0] that stores a level. */
int ckpt_codec_zstd_level_from_cd(size_t cd_nelmts, const unsigned int cd_values[]);
unsigned int ckpt_codec_zstd_level_to_cd(int level);

/* 1 when level is a zstd level: ZSTD_minCLevel()..ZSTD_maxCLevel(), which includes the fast
 * negative levels; 0 ("zstd's default", i.e. 3) is valid. 0 otherwise. */
int ckpt_codec_zstd_level_valid(int level);

/* ------------------------------------------------------------------------------------------ */
/* Byte shuffle, identical to HDF5's H5Z_FILTER_SHUFFLE for element size elem_size: the nbytes /
 * elem_size whole elements are split into planes (all byte 0s, then all byte 1s, ...), and the
 * trailing nbytes % elem_size bytes are copied unchanged to the end. elem_size <= 1 or a single
 * element is a plain copy (HDF5's shuffle leaves such buffers alone, which is the same bytes).
 * dst and src must not overlap. */
void ckpt_codec_shuffle(void *dst, const void *src, size_t nbytes, size_t elem_size);
void ckpt_codec_unshuffle(void *dst, const void *src, size_t nbytes, size_t elem_size);

/* ------------------------------------------------------------------------------------------ */
/* Chunk helpers for writers that compress chunks themselves (in threads) and store them with
 * H5Dwrite_chunk(..., filters = 0, ...): the bytes are exactly what the HDF5 pipeline
 * [shuffle(elem_size) ->] zstd(level) stores for the same chunk, so any reader with the filter
 * reads them back through H5Dread. Pass shuffle_elem_size = the dataset's type size when the
 * dataset has the shuffle filter, 0 when it does not. The uncompressed chunk must be the full
 * chunk (edge chunks padded to the chunk dims), as H5Dwrite_chunk requires. */

/* Per-thread reusable state (zstd contexts and a shuffle buffer). Optional: NULL in the helpers
 * below means "allocate temporaries for this call". Not shareable between concurrent calls. */
typedef struct ckpt_zstd_ctx ckpt_zstd_ctx;
ckpt_zstd_ctx *ckpt_codec_zstd_ctx_new(void); /* NULL when out of memory */
void ckpt_codec_zstd_ctx_free(ckpt_zstd_ctx *ctx); /* NULL is a no-op */

/* Capacity of dst that ckpt_codec_zstd_compress_chunk always fits in (ZSTD_compressBound);
 * 0 when nbytes is too large. */
size_t ckpt_codec_zstd_chunk_bound(size_t nbytes);

/* Compresses the nbytes at src (shuffled first when shuffle_elem_size > 1) into dst. Returns the
 * compressed size (> 0), or 0 on error: invalid level, nbytes 0 or > CKPT_ZSTD_MAX_CHUNK_BYTES,
 * dst_cap too small (use ckpt_codec_zstd_chunk_bound), out of memory. */
size_t ckpt_codec_zstd_compress_chunk(ckpt_zstd_ctx *ctx, int level, size_t shuffle_elem_size,
                                      const void *src, size_t nbytes, void *dst, size_t dst_cap);

/* Decompresses a stored chunk (nbytes at src) into dst, unshuffling when shuffle_elem_size > 1.
 * Returns the decompressed size, or 0 when the input is not valid zstd, decodes to more than
 * dst_cap bytes, decodes to nothing, or memory runs out. */
size_t ckpt_codec_zstd_decompress_chunk(ckpt_zstd_ctx *ctx, size_t shuffle_elem_size,
                                        const void *src, size_t nbytes, void *dst, size_t dst_cap);

#ifndef CKPT_CODEC_ZSTD_PLUGIN_BUILD
/* ------------------------------------------------------------------------------------------ */
/* Library-only (these call HDF5). Not in the plugin. */

/* Registers the filter with H5Zregister, once per process; thread-safe and idempotent (later
 * calls return the first successful call's result without calling HDF5; a failed attempt is
 * retried by the next call). Returns 0 or -1; never aborts; prints no HDF5 error stack.
 *
 * If a zstd plugin (id 32015, e.g. hdf5plugin's libh5zstd.so or ours) was already loaded into
 * this HDF5 -- by an HDF5_PLUGIN_PATH lookup before this call -- H5Zregister replaces that table
 * entry, so this library's built-in filter wins from then on; once ours is registered HDF5 never
 * searches for a 32015 plugin. Either decodes the other's chunks (same format), so which one
 * wins only changes which code runs. H5close() forgets registered filters; this function does
 * not notice that (call it again only after a fresh H5open in a process that closed HDF5 -- not
 * something libckpt does).
 *
 * HDF5 is not thread-safe in the parallel build: the HDF5 call itself must not race other
 * threads' HDF5 calls (libckpt serialises its HDF5 calls; call this under that lock or before
 * starting threads). */
int ckpt_codec_zstd_register(void);

/* Adds to a dataset creation property list HDF5's built-in byte shuffle (H5Pset_shuffle, when
 * shuffle is nonzero) and then zstd(level) as a mandatory filter (cd_values = {level}). Registers
 * the filter first. Returns 0, or -1 when the level is invalid (nothing is added), the dcpl is
 * not a dataset creation property list, or HDF5 fails. The dataset must be chunked
 * (H5Pset_chunk) for HDF5 to accept it at H5Dcreate. */
int ckpt_codec_set_dcpl(hid_t dcpl, int level, int shuffle);
#endif

#ifdef __cplusplus
}
#endif

#endif /* CKPT_CODEC_ZSTD_H */
