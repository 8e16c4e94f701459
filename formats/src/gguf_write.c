/* The GGUF writer: key values serialized as they are set, tensor infos declared, the header
 * written at begin, then the tensor data appended in declaration order with the alignment
 * padding between tensors and at the end (ggml's loader reads the padded size of the last one). */
#define _GNU_SOURCE /* sync_file_range */
#include "ckptfmt.h"
#include "error.h"
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_MAX 65535
#define TENSOR_NAME_MAX 63 /* ggml's GGML_MAX_NAME (64) with its NUL */
#define OUT_BUF (1u << 20)

typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
    int failed;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_le(bytes *b, uint64_t v, int size)
{
    unsigned char le[8];
    for (int k = 0; k < size; k++)
        le[k] = (unsigned char)(v >> (8 * k));
    put(b, le, (size_t)size);
}

static void put_str(bytes *b, const char *s, size_t len)
{
    put_le(b, len, 8);
    put(b, s, len);
}

typedef struct kv_entry {
    char *key;
    bytes val; /* u32 type + payload */
} kv_entry;

typedef struct tensor_decl {
    char *name;
    ckptfmt_ggml_type type;
    int n_dims;
    uint64_t ne[CKPTFMT_GGUF_MAX_DIMS];
    uint64_t nbytes, offset;
} tensor_decl;

struct ckptfmt_gguf_writer {
    kv_entry *kv;
    int nkv, kvcap;
    tensor_decl *t;
    int nt, tcap;
    uint32_t alignment;
    char *path;
    int fd;
    int begun, finished;
    uint64_t data_start, file_size;
    int cur;             /* tensor being written */
    uint64_t cur_done;   /* its bytes written */
    unsigned char *buf;  /* output staging */
    size_t buf_n;
};

int ckptfmt_gguf_writer_create(ckptfmt_gguf_writer **out)
{
    if (!out)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gguf_writer_create: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    (*out)->fd = -1;
    (*out)->alignment = 32;
    return fmt_ok();
}

void ckptfmt_gguf_writer_free(ckptfmt_gguf_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->begun && !w->finished && w->path)
        unlink(w->path);
    for (int i = 0; i < w->nkv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (int i = 0; i < w->nt; i++)
        free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w->path);
    free(w->buf);
    free(w);
}

static int check_open(const ckptfmt_gguf_writer *w, const char *what)
{
    if (!w)
        return fmt_error(CKPTFMT_EINVAL, "%s: NULL writer", what);
    if (w->begun)
        return fmt_error(CKPTFMT_EINVAL, "%s: the GGUF header is already written", what);
    return CKPTFMT_OK;
}

/* A new key entry with its type tag; NULL (error recorded) for a bad or repeated key. */
static kv_entry *new_kv(ckptfmt_gguf_writer *w, const char *key, ckptfmt_gguf_type type)
{
    if (check_open(w, "gguf writer") != CKPTFMT_OK)
        return NULL;
    size_t len = key ? strlen(key) : 0;
    if (len == 0 || len > KEY_MAX) {
        fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': length %zu is outside 1..%d", key ? key : "(null)", len, KEY_MAX);
        return NULL;
    }
    for (size_t k = 0; k < len; k++)
        if (key[k] < 0x20 || key[k] > 0x7E) {
            fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': byte %zu is not printable ASCII", key, k);
            return NULL;
        }
    if (strcmp(key, "general.alignment") == 0 && type != CKPTFMT_GGUF_UINT32) {
        fmt_error(CKPTFMT_EINVAL, "GGUF key general.alignment: must be UINT32 (use ckptfmt_gguf_writer_set_alignment)");
        return NULL;
    }
    for (int i = 0; i < w->nkv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            fmt_error(CKPTFMT_EINVAL, "GGUF key '%s' is set twice", key);
            return NULL;
        }
    if (w->nkv == w->kvcap) {
        int cap = w->kvcap ? 2 * w->kvcap : 16;
        kv_entry *p = realloc(w->kv, (size_t)cap * sizeof *p);
        if (!p) {
            fmt_error(CKPTFMT_ENOMEM, "out of memory");
            return NULL;
        }
        w->kv = p;
        w->kvcap = cap;
    }
    kv_entry *e = &w->kv[w->nkv];
    memset(e, 0, sizeof *e);
    e->key = strdup(key);
    if (!e->key) {
        fmt_error(CKPTFMT_ENOMEM, "out of memory");
        return NULL;
    }
    put_le(&e->val, (uint64_t)type, 4);
    w->nkv++;
    return e;
}

/* Drops the entry just added when its value could not be built. */
static int kv_done(ckptfmt_gguf_writer *w, kv_entry *e)
{
    if (!e->val.failed)
        return fmt_ok();
    free(e->key);
    free(e->val.p);
    w->nkv--;
    return fmt_error(CKPTFMT_ENOMEM, "out of memory");
}

static int scalar_type(ckptfmt_gguf_type t)
{
    return (unsigned)t < CKPTFMT_GGUF_TYPE_COUNT && t != CKPTFMT_GGUF_STRING && t != CKPTFMT_GGUF_ARRAY;
}

/* The payload of scalar v as its type, or an error when the value does not fit the type. */
static int put_scalar(bytes *b, const char *key, ckptfmt_gguf_value v)
{
    size_t size = ckptfmt_gguf_type_size(v.type);
    switch (v.type) {
    case CKPTFMT_GGUF_UINT8: case CKPTFMT_GGUF_UINT16: case CKPTFMT_GGUF_UINT32: case CKPTFMT_GGUF_UINT64:
        if (size < 8 && v.u >> (8 * size))
            return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': %llu does not fit %s", key,
                             (unsigned long long)v.u, ckptfmt_gguf_type_name(v.type));
        put_le(b, v.u, (int)size);
        return CKPTFMT_OK;
    case CKPTFMT_GGUF_INT8: case CKPTFMT_GGUF_INT16: case CKPTFMT_GGUF_INT32: case CKPTFMT_GGUF_INT64: {
        int64_t lim = size < 8 ? (int64_t)1 << (8 * size - 1) : 0;
        if (size < 8 && (v.i < -lim || v.i >= lim))
            return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': %lld does not fit %s", key, (long long)v.i,
                             ckptfmt_gguf_type_name(v.type));
        put_le(b, (uint64_t)v.i, (int)size);
        return CKPTFMT_OK;
    }
    case CKPTFMT_GGUF_FLOAT32: {
        float f = (float)v.f;
        uint32_t u;
        memcpy(&u, &f, 4);
        put_le(b, u, 4);
        return CKPTFMT_OK;
    }
    case CKPTFMT_GGUF_FLOAT64: {
        uint64_t u;
        memcpy(&u, &v.f, 8);
        put_le(b, u, 8);
        return CKPTFMT_OK;
    }
    case CKPTFMT_GGUF_BOOL:
        if (v.b != 0 && v.b != 1)
            return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': a BOOL is 0 or 1, not %d", key, v.b);
        put_le(b, (uint64_t)v.b, 1);
        return CKPTFMT_OK;
    default:
        return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': %d is not a scalar type", key, (int)v.type);
    }
}

int ckptfmt_gguf_writer_set(ckptfmt_gguf_writer *w, const char *key, ckptfmt_gguf_value v)
{
    if (!scalar_type(v.type))
        return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': %d is not a scalar type", key ? key : "(null)", (int)v.type);
    kv_entry *e = new_kv(w, key, v.type);
    if (!e)
        return ckptfmt_errcode();
    int s = put_scalar(&e->val, key, v);
    if (s != CKPTFMT_OK) { /* drop the entry, keep put_scalar's message */
        free(e->key);
        free(e->val.p);
        w->nkv--;
        return s;
    }
    return kv_done(w, e);
}

static int check_string(const char *key, const char *s, const char *what)
{
    if (!s)
        return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': NULL %s", key ? key : "(null)", what);
    if (!gguf_utf8_valid(s, strlen(s)))
        return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': %s is not valid UTF-8", key, what);
    return CKPTFMT_OK;
}

int ckptfmt_gguf_writer_set_string(ckptfmt_gguf_writer *w, const char *key, const char *value)
{
    int s = check_string(key, value, "string");
    if (s != CKPTFMT_OK)
        return s;
    kv_entry *e = new_kv(w, key, CKPTFMT_GGUF_STRING);
    if (!e)
        return ckptfmt_errcode();
    put_str(&e->val, value, strlen(value));
    return kv_done(w, e);
}

int ckptfmt_gguf_writer_set_array(ckptfmt_gguf_writer *w, const char *key, ckptfmt_gguf_type elem_type,
                                  uint64_t n, const void *elems)
{
    if (!scalar_type(elem_type))
        return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': array elements of type %d are not scalars",
                         key ? key : "(null)", (int)elem_type);
    if (n && !elems)
        return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': NULL elements", key ? key : "(null)");
    size_t size = ckptfmt_gguf_type_size(elem_type);
    if (n > SIZE_MAX / size)
        return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': %llu elements overflow", key, (unsigned long long)n);
    if (elem_type == CKPTFMT_GGUF_BOOL)
        for (uint64_t j = 0; j < n; j++)
            if (((const unsigned char *)elems)[j] > 1)
                return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': BOOL element %llu is %d, not 0 or 1", key,
                                 (unsigned long long)j, ((const unsigned char *)elems)[j]);
    kv_entry *e = new_kv(w, key, CKPTFMT_GGUF_ARRAY);
    if (!e)
        return ckptfmt_errcode();
    put_le(&e->val, (uint64_t)elem_type, 4);
    put_le(&e->val, n, 8);
    put(&e->val, elems, (size_t)n * size); /* C arrays of the element type: little-endian host */
    return kv_done(w, e);
}

int ckptfmt_gguf_writer_set_string_array(ckptfmt_gguf_writer *w, const char *key, uint64_t n,
                                         const char *const *strs)
{
    if (n && !strs)
        return fmt_error(CKPTFMT_EINVAL, "GGUF key '%s': NULL strings", key ? key : "(null)");
    for (uint64_t j = 0; j < n; j++) {
        int s = check_string(key, strs[j], "array element");
        if (s != CKPTFMT_OK)
            return fmt_error_prefix("element %llu: ", (unsigned long long)j);
    }
    kv_entry *e = new_kv(w, key, CKPTFMT_GGUF_ARRAY);
    if (!e)
        return ckptfmt_errcode();
    put_le(&e->val, CKPTFMT_GGUF_STRING, 4);
    put_le(&e->val, n, 8);
    for (uint64_t j = 0; j < n; j++)
        put_str(&e->val, strs[j], strlen(strs[j]));
    return kv_done(w, e);
}

int ckptfmt_gguf_writer_set_alignment(ckptfmt_gguf_writer *w, uint32_t alignment)
{
    int s = check_open(w, "ckptfmt_gguf_writer_set_alignment");
    if (s != CKPTFMT_OK)
        return s;
    if (alignment < 8 || alignment > 65536 || (alignment & (alignment - 1)))
        return fmt_error(CKPTFMT_EINVAL, "GGUF alignment %u is not a power of two in 8..65536", alignment);
    w->alignment = alignment;
    return fmt_ok();
}

int ckptfmt_gguf_writer_add_tensor(ckptfmt_gguf_writer *w, const char *name, ckptfmt_ggml_type type,
                                   int n_dims, const uint64_t *ne)
{
    int s = check_open(w, "ckptfmt_gguf_writer_add_tensor");
    if (s != CKPTFMT_OK)
        return s;
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > TENSOR_NAME_MAX)
        return fmt_error(CKPTFMT_EINVAL, "GGUF tensor '%s': name length %zu is outside 1..%d", name ? name : "(null)",
                         len, TENSOR_NAME_MAX);
    if (!gguf_utf8_valid(name, len))
        return fmt_error(CKPTFMT_EINVAL, "GGUF tensor '%s': name is not valid UTF-8", name);
    for (int i = 0; i < w->nt; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return fmt_error(CKPTFMT_EINVAL, "GGUF tensor '%s' is declared twice", name);
    if (n_dims < 1 || n_dims > CKPTFMT_GGUF_MAX_DIMS || !ne)
        return fmt_error(CKPTFMT_EINVAL, "GGUF tensor '%s': %d dims (1..%d)", name, n_dims, CKPTFMT_GGUF_MAX_DIMS);
    const char *tname;
    int block;
    s = ckptfmt_ggml_type_info(type, &tname, &block, NULL);
    if (s != CKPTFMT_OK)
        return fmt_error_prefix("GGUF tensor '%s': ", name);
    tensor_decl d = {.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}};
    uint64_t n = 1;
    for (int k = 0; k < n_dims; k++) {
        if (ne[k] == 0 || ne[k] > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX / ne[k])
            return fmt_error(CKPTFMT_EINVAL, "GGUF tensor '%s': ne[%d] = %llu is 0 or overflows", name, k,
                             (unsigned long long)ne[k]);
        d.ne[k] = ne[k];
        n *= ne[k];
    }
    if (ne[0] % (uint64_t)block)
        return fmt_error(CKPTFMT_EINVAL, "GGUF tensor '%s': ne[0] = %llu is not a multiple of the %s block (%d)",
                         name, (unsigned long long)ne[0], tname, block);
    s = ckptfmt_ggml_nbytes(type, n, &d.nbytes);
    if (s != CKPTFMT_OK)
        return fmt_error_prefix("GGUF tensor '%s': ", name);
    if (w->nt == w->tcap) {
        int cap = w->tcap ? 2 * w->tcap : 64;
        tensor_decl *p = realloc(w->t, (size_t)cap * sizeof *p);
        if (!p)
            return fmt_error(CKPTFMT_ENOMEM, "out of memory");
        w->t = p;
        w->tcap = cap;
    }
    d.name = strdup(name);
    if (!d.name)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    w->t[w->nt++] = d;
    return fmt_ok();
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static int write_all(ckptfmt_gguf_writer *w, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n) {
        ssize_t k = write(w->fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return fmt_error(CKPTFMT_EIO, "%s: write: %s", w->path, k < 0 ? strerror(errno) : "no progress");
        c += k;
        n -= (size_t)k;
    }
    return CKPTFMT_OK;
}

static int flush(ckptfmt_gguf_writer *w)
{
    int s = write_all(w, w->buf, w->buf_n);
    w->buf_n = 0;
    return s;
}

/* Appends through the staging buffer; large spans go straight to the file. */
static int emit(ckptfmt_gguf_writer *w, const void *p, size_t n)
{
    if (w->buf_n + n <= OUT_BUF) {
        memcpy(w->buf + w->buf_n, p, n);
        w->buf_n += n;
        return CKPTFMT_OK;
    }
    int s = flush(w);
    if (s != CKPTFMT_OK)
        return s;
    if (n >= OUT_BUF)
        return write_all(w, p, n);
    memcpy(w->buf, p, n);
    w->buf_n = n;
    return CKPTFMT_OK;
}

static int emit_zeros(ckptfmt_gguf_writer *w, uint64_t n)
{
    static const unsigned char zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        int s = emit(w, zeros, k);
        if (s != CKPTFMT_OK)
            return s;
        n -= k;
    }
    return CKPTFMT_OK;
}

int ckptfmt_gguf_writer_begin(ckptfmt_gguf_writer *w, const char *path)
{
    int s = check_open(w, "ckptfmt_gguf_writer_begin");
    if (s != CKPTFMT_OK)
        return s;
    if (!path)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gguf_writer_begin: NULL path");
    int has_align = 0;
    for (int i = 0; i < w->nkv; i++)
        has_align |= strcmp(w->kv[i].key, "general.alignment") == 0;
    if (has_align)
        return fmt_error(CKPTFMT_EINVAL, "GGUF key general.alignment is the writer's (ckptfmt_gguf_writer_set_alignment)");
    bytes h = {0};
    put(&h, "GGUF", 4);
    put_le(&h, 3, 4);
    put_le(&h, (uint64_t)w->nt, 8);
    put_le(&h, (uint64_t)w->nkv + 1, 8);
    /* general.alignment first: readers that stop early still know it */
    put_str(&h, "general.alignment", strlen("general.alignment"));
    put_le(&h, CKPTFMT_GGUF_UINT32, 4);
    put_le(&h, w->alignment, 4);
    for (int i = 0; i < w->nkv; i++) {
        put_str(&h, w->kv[i].key, strlen(w->kv[i].key));
        put(&h, w->kv[i].val.p, w->kv[i].val.n);
    }
    uint64_t off = 0;
    for (int i = 0; i < w->nt; i++) {
        tensor_decl *d = &w->t[i];
        put_str(&h, d->name, strlen(d->name));
        put_le(&h, (uint64_t)d->n_dims, 4);
        for (int k = 0; k < d->n_dims; k++)
            put_le(&h, d->ne[k], 8);
        put_le(&h, (uint64_t)d->type, 4);
        put_le(&h, off, 8);
        d->offset = off;
        if (d->nbytes > UINT64_MAX - off - w->alignment) {
            free(h.p);
            return fmt_error(CKPTFMT_EINVAL, "GGUF tensor '%s': the file would exceed 2^64 bytes", d->name);
        }
        off = pad_to(off + d->nbytes, w->alignment);
    }
    if (h.failed) {
        free(h.p);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    w->data_start = pad_to(h.n, w->alignment);
    w->file_size = w->data_start + off;
    w->buf = malloc(OUT_BUF);
    w->path = strdup(path);
    if (!w->buf || !w->path) {
        free(h.p);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        free(h.p);
        free(w->path);
        w->path = NULL;
        return fmt_error(e == EEXIST ? CKPTFMT_EEXIST : CKPTFMT_EIO, "%s: %s", path, strerror(e));
    }
    w->begun = 1;
    s = emit(w, h.p, h.n);
    free(h.p);
    if (s == CKPTFMT_OK)
        s = emit_zeros(w, w->data_start - h.n);
    return s == CKPTFMT_OK ? fmt_ok() : s;
}

int ckptfmt_gguf_writer_write(ckptfmt_gguf_writer *w, const void *data, size_t n)
{
    if (!w || !w->begun || w->finished || w->fd < 0)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gguf_writer_write: the writer is not writing");
    const unsigned char *p = data;
    while (n) {
        if (w->cur >= w->nt)
            return fmt_error(CKPTFMT_EINVAL, "%s: %zu bytes beyond the last tensor", w->path, n);
        tensor_decl *d = &w->t[w->cur];
        uint64_t left = d->nbytes - w->cur_done;
        size_t k = n < left ? n : (size_t)left;
        int s = emit(w, p, k);
        if (s != CKPTFMT_OK)
            return s;
        p += k;
        n -= k;
        w->cur_done += k;
        if (w->cur_done == d->nbytes) {
            s = emit_zeros(w, pad_to(d->nbytes, w->alignment) - d->nbytes);
            if (s != CKPTFMT_OK)
                return s;
            w->cur++;
            w->cur_done = 0;
        }
    }
    return fmt_ok();
}

void gguf_writer_writeback(ckptfmt_gguf_writer *w)
{
    if (w && w->fd >= 0)
        sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* a hint: failures surface at fsync */
}

uint64_t ckptfmt_gguf_writer_file_size(const ckptfmt_gguf_writer *w) { return w ? w->file_size : 0; }

int ckptfmt_gguf_writer_finish(ckptfmt_gguf_writer *w, int do_fsync)
{
    if (!w || !w->begun || w->finished || w->fd < 0)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gguf_writer_finish: the writer is not writing");
    /* tensors of zero bytes cannot exist (every ne >= 1), so a tensor not reached is incomplete */
    if (w->cur < w->nt)
        return fmt_error(CKPTFMT_EINVAL, "%s: tensor '%s' has %llu of its %llu bytes", w->path, w->t[w->cur].name,
                         (unsigned long long)w->cur_done, (unsigned long long)w->t[w->cur].nbytes);
    int s = flush(w);
    if (s != CKPTFMT_OK)
        return s;
    off_t end = lseek(w->fd, 0, SEEK_CUR);
    if (end < 0 || (uint64_t)end != w->file_size)
        return fmt_error(CKPTFMT_EIO, "%s: wrote %lld bytes, expected %llu", w->path, (long long)end,
                         (unsigned long long)w->file_size);
    if (do_fsync && fsync(w->fd) != 0)
        return fmt_error(CKPTFMT_EIO, "%s: fsync: %s", w->path, strerror(errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0)
        return fmt_error(CKPTFMT_EIO, "%s: close: %s", w->path, strerror(errno));
    w->finished = 1;
    return fmt_ok();
}
