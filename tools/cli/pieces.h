/* pieces.h -- filling a checkpoint that a ckpt_writer writes, piece by piece: for every saved
 * box of a tensor and every checksummed piece of it (ckpt_writer_box_piece), a callback fills one
 * buffer with the piece's elements (read from the sources, converted, averaged...) and the piece
 * is written (ckpt_writer_write). Memory stays at the one buffer, whatever the tensor's size. */
#ifndef CKPT_TOOLS_PIECES_H
#define CKPT_TOOLS_PIECES_H

#include "progress.h"

#include <ckpt.h>

#include <stddef.h>
#include <stdint.h>

/* Fills buf with the n elements of region [off, off+ext) of tensor `name` (ndim dims; off and ext
 * unused for 0-D) in the written dtype. Returns 0, or -1 with a one-line reason in err. */
typedef int (*pieces_fill_fn)(void *arg, const char *name, int ndim, const int64_t *off, const int64_t *ext,
                              int64_t n, void *buf, char *err, size_t errlen);

/* The stock callback: reads the region from a source checkpoint with every checksum verified,
 * converted to `dtype` by the library where it differs from the saved one (f32/f64/f16/bf16,
 * rounding to nearest even). arg is a pieces_source. */
typedef struct pieces_source {
    ckpt_reader *r;
    ckpt_dtype dtype;
} pieces_source;

int pieces_fill_read(void *arg, const char *name, int ndim, const int64_t *off, const int64_t *ext, int64_t n,
                     void *buf, char *err, size_t errlen);

typedef enum pieces_status {
    PIECES_OK = 0,
    PIECES_PLAN,        /* the writer refused the declarations (status in *lib_status) */
    PIECES_FILL,        /* the callback failed */
    PIECES_WRITE,       /* ckpt_writer_write failed */
    PIECES_INTERRUPTED  /* a signal arrived (interrupt.h) */
} pieces_status;

typedef struct pieces_job {
    ckpt_writer *w;
    void *buf;        /* holds one piece: at least the writer's piece_bytes */
    size_t buf_bytes;
    pieces_fill_fn fill;
    void *arg;
    progress *bar;    /* may be NULL */
    int64_t boxes, pieces, bytes; /* written so far */
    int lib_status;   /* the library's status of a PIECES_PLAN or PIECES_WRITE failure */
    char err[8192];   /* the reason of a failure */
} pieces_job;

/* Makes the writer plan the checkpoint now (checks the declared boxes: coverage, replicas, and
 * creates the temporary directory: CKPT_EEXIST when the destination exists), by asking for the
 * pieces of `name`, a declared tensor with at least one element. */
pieces_status pieces_plan(pieces_job *j, const char *name);

/* Writes every piece of every saved box of tensor `name` (ndim dims, written element size es). */
pieces_status pieces_tensor(pieces_job *j, const char *name, int ndim, size_t es);

#endif
