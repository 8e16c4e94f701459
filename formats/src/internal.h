/* internal.h -- what the modules of ckpt_formats share and do not export. */
#ifndef CKPTFMT_INTERNAL_H
#define CKPTFMT_INTERNAL_H

#include "ckptfmt.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* input_file.c: opens a regular file for reading; *size its size. Messages name the file. */
int open_input(const char *path, int *fd, uint64_t *size);

/* json_file.c: a JSON document from a file of at most max_bytes (duplicate keys refused), and to
 * a new file (written, fsynced, closed). Messages name the file, the line and the column. */
int read_json_file(const char *path, size_t max_bytes, json_t **out);
int write_json_file(json_t *doc, const char *path, size_t flags);

/* gpt2_config.c: ckptfmt_gpt2_config_check plus what the trainer's model code computes (byte
 * vocabulary of at least 256, LayerNorm epsilon 1e-5). */
int gpt2_config_trainer_check(const ckptfmt_gpt2_config *c);

/* safetensors_dtype.c: bytes of n elements of d; 0 with *ok = 0 on overflow or a partial byte. */
uint64_t st_nbytes(ckptfmt_st_dtype d, uint64_t n, int *ok);

/* model_dir.c: where the safetensors of a model are. `src` is a .safetensors file, an index.json
 * or a directory holding model.safetensors.index.json or model.safetensors; *files gets the
 * shard paths (one for a single file), *dir the directory (for config.json). Free with
 * model_files_free. */
typedef struct model_files {
    char *dir;
    char **paths;
    int n;
    ckptfmt_st_index *index; /* NULL for a single file */
} model_files;
int model_files_find(const char *src, model_files *out);
void model_files_free(model_files *m);

/* A set of open safetensors files seen as one: tensor name -> (file, index). */
typedef struct model_set {
    model_files files;
    ckptfmt_st_file **f; /* [files.n] */
    int total;           /* tensors over all files */
} model_set;
int model_set_open(const char *src, model_set *out);
void model_set_close(model_set *s);
/* The file and tensor index of `name`; CKPTFMT_ENOTFOUND when no file holds it. */
int model_set_find(const model_set *s, const char *name, ckptfmt_st_file **file, int *i);

/* transpose.c: columns [c0, c1) of the rows x cols matrix src, transposed into dst ((c1 - c0) rows
 * of `rows` elements). */
void transpose_band(void *dst, const void *src, int64_t rows, int64_t cols, int64_t c0, int64_t c1,
                    size_t elem_size);

/* safetensors_write.c: starts the disk writeback of what the writer wrote so far (non-blocking
 * sync_file_range), so that the final fsync has little left to do. */
void st_writer_writeback(ckptfmt_st_writer *w);
/* gguf_write.c: the same for the GGUF writer. */
void gguf_writer_writeback(ckptfmt_gguf_writer *w);

/* write_queue.c: a writer thread behind nbufs buffers of buf_bytes. acquire blocks until a buffer
 * is free; submit hands it (filled with n bytes of tensor `name`, which must stay valid) to the
 * thread, which appends them to `sink` with write() and frees the buffer; drain waits until
 * everything submitted is written. The first failure of the thread is returned (with its message)
 * by the next submit or drain. A sink is used only by the thread between the first submit and the
 * drain. writeback (or NULL): called every 64 MiB written, to start the disk writeback of outputs
 * that will be fsynced. */
typedef struct write_queue write_queue;
typedef int (*wq_write_fn)(void *sink, const char *name, const void *buf, size_t n);
typedef void (*wq_writeback_fn)(void *sink);
int wq_create(size_t buf_bytes, int nbufs, wq_write_fn write, wq_writeback_fn writeback, write_queue **out);
void *wq_acquire(write_queue *q);
int wq_submit(write_queue *q, void *sink, const char *name, void *buf, size_t n);
int wq_drain(write_queue *q);
void wq_free(write_queue *q);

/* dirs.c: directories built under a temporary name beside their destination. */
int tmpdir_create(const char *dest, char *tmp, size_t len);
int tmpdir_commit(const char *tmp, const char *dest, int do_fsync);
void tmpdir_remove(const char *tmp);
int fsync_path(const char *path, int is_dir);

#endif
