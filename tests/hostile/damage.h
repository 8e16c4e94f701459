/* damage.h -- hostile and damaged checkpoints for the tests of tests/hostile: a real checkpoint
 * written by the library (format version 2, or a copy of a committed version-1 fixture), then one
 * named edit of its index or data files made with the HDF5 API, and the COMMITTED marker rewritten
 * with the XXH3-64 of the edited index (formats/SPEC.md section 2), as anyone can.
 *
 * The base checkpoint (hx_save_base), as 2 ranks save it, 64-byte pieces:
 *   s  f64 []       3.25                    rank 0
 *   w  f32 [4, 32]  w[i] = i + 0.5          Shard(0) over ranks 0, 1 (a grid; 4 pieces per box)
 *   x  f32 [4, 6]  x[i] = 100 + i           explicit boxes [0:4, 0:2] rank 0, [0:2, 2:6] rank 1,
 *                                           [2:4, 2:6] rank 0
 *   attributes: step (int), lr 0.001 (double), note "base" (string), rng 8 bytes 0..7
 * Secrets (files outside the checkpoint a hostile edit points at) hold only the bytes "SECR"
 * repeated, so a test finds any of their bytes in a buffer with memmem. */
#ifndef CKPT_TEST_DAMAGE_H
#define CKPT_TEST_DAMAGE_H

#include <ckpt.h>

#include <stddef.h>
#include <stdint.h>

#define HX_SECRET "SECR"
#define HX_W_COLS 32
#define HX_W_BOX (2 * HX_W_COLS) /* elements of each box of w */

/* What a damage class starts from. */
typedef enum hx_base {
    HX_V2 = 0,        /* hx_save_base, file-per-rank */
    HX_V2_ZSTD = 1,   /* file-per-rank, zstd */
    HX_V2_SHARED_ZSTD = 2,
    HX_V2_GROUP = 3,  /* file-per-group, one rank per group */
    HX_V1 = 4,        /* a copy of tests/fixtures/v1/per-rank */
    HX_V2_SHARED = 5
} hx_base;

/* Where a damage class is caught. */
typedef enum hx_where {
    HX_AT_OPEN = 0, /* ckpt_reader_open (so ckpt_load and the manager) refuse the directory */
    HX_AT_READ = 1, /* the index is fine; reading the box of `w` written by rank 0 is refused */
    HX_AT_VERIFY = 2, /* reads without verification succeed; reads with it are refused */
    HX_OPENS = 3      /* harmless: opens, and w reads back bit-exact */
} hx_where;

typedef struct hx_class {
    const char *name;
    hx_base base;
    hx_where where;
    const char *what; /* one line: the edit */
    void (*edit)(const char *dir);
} hx_class;

/* Every damage class, terminated by a NULL name. */
extern const hx_class hx_classes[];
const hx_class *hx_find(const char *name);

/* The directory holding tests/fixtures (the source tree). */
void hx_set_source_dir(const char *src);

/* Writes a fresh base checkpoint at dir (removed first) with attribute step = step. */
void hx_save_base(const char *dir, hx_base base, int64_t step);

/* Makes the checkpoint of class c at dir: its base, the edit, the marker rehashed. Files the edit
 * points at live beside dir ("<dir>.secret*"). */
void hx_make(const char *dir, const hx_class *c, int64_t step);

/* Rewrites dir/COMMITTED for the index as it is now. */
void hx_rehash(const char *dir);

/* rm -rf (best effort). */
void hx_rmtree(const char *path);

/* Whether n bytes at p contain any 4-byte run of a secret. */
int hx_has_secret(const void *p, size_t n);

#endif
