/* The strict GGUF reader: the whole file is mapped (or given in memory) and validated front to
 * back with every length checked against the bytes left before it is used; records are allocated
 * only for entries already found in the file. Strings and tensor data stay in the mapping. */
#include "ckptfmt.h"
#include "error.h"
#include "gguf.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define KEY_MAX 65535
#define TENSOR_NAME_MAX 64 /* gguf.md: names are at most 64 bytes */
/* Smallest encodings, to bound counts by the bytes left: a KV is a key length (8), a 1-byte key,
 * a type (4) and a 1-byte value; a tensor info a name length (8), a 1-byte name, n_dims (4), one
 * dim (8), a type (4) and an offset (8). */
#define MIN_KV_BYTES 14
#define MIN_TENSOR_BYTES 33

typedef struct rkv {
    char *key;
    ckptfmt_gguf_type type, array_type;
    uint64_t array_len;
    uint64_t val;         /* file offset of the value (arrays: of the first element) */
    uint64_t sj, soff;    /* string arrays: element sj starts at soff (a cursor for sequential use) */
} rkv;

typedef struct rtensor {
    char *name;
    ckptfmt_ggml_type type;
    int n_dims;
    uint64_t ne[CKPTFMT_GGUF_MAX_DIMS];
    uint64_t offset, nbytes;
} rtensor;

struct ckptfmt_gguf_file {
    const unsigned char *b;
    size_t size;
    int mapped;
    char *label;
    uint32_t version, alignment;
    uint64_t data_offset;
    rkv *kv;
    int nkv;
    rtensor *t;
    int nt;
    int *t_by_name; /* tensor indices sorted by name */
    int *kv_by_key; /* kv indices sorted by key */
};

typedef struct cursor {
    ckptfmt_gguf_file *f;
    uint64_t pos;
} cursor;

static uint64_t left(const cursor *c) { return c->f->size - c->pos; }

static int bad(const cursor *c, uint64_t at, const char *fmt, const char *what, unsigned long long v)
{
    char detail[256];
    snprintf(detail, sizeof detail, fmt, v);
    return fmt_error(CKPTFMT_EMALFORMED, "%s: %s at byte %llu: %s", c->f->label, what, (unsigned long long)at, detail);
}

static uint64_t le(const unsigned char *p, int size)
{
    uint64_t v = 0;
    for (int k = size - 1; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

static int get(cursor *c, int size, uint64_t *v, const char *what)
{
    *v = 0;
    if (left(c) < (uint64_t)size)
        return bad(c, c->pos, "%llu bytes left, the field needs more (truncated file)", what, left(c));
    *v = le(c->f->b + c->pos, size);
    c->pos += (uint64_t)size;
    return CKPTFMT_OK;
}

/* A string: its bytes' offset and length, validated as UTF-8. */
static int get_str(cursor *c, uint64_t *off, uint64_t *len, const char *what)
{
    uint64_t at = c->pos;
    int s = get(c, 8, len, what);
    if (s != CKPTFMT_OK)
        return s;
    if (*len > left(c))
        return bad(c, at, "length %llu reaches past the end of the file", what, *len);
    *off = c->pos;
    if (!gguf_utf8_valid(c->f->b + c->pos, (size_t)*len))
        return bad(c, at, "%llu bytes that are not valid UTF-8", what, *len);
    c->pos += *len;
    return CKPTFMT_OK;
}

static char *dup_bytes(const unsigned char *p, uint64_t n)
{
    char *s = malloc((size_t)n + 1);
    if (s) {
        memcpy(s, p, (size_t)n);
        s[n] = 0;
    }
    return s;
}

/* Skips a value of type t, checking it. */
static int skip_value(cursor *c, ckptfmt_gguf_type t, const char *key, uint64_t at)
{
    char what[96];
    snprintf(what, sizeof what, "value of '%.60s'", key);
    if ((unsigned)t >= CKPTFMT_GGUF_TYPE_COUNT)
        return bad(c, at, "unknown value type %llu", what, (unsigned long long)t);
    uint64_t v, off, len;
    if (t == CKPTFMT_GGUF_STRING)
        return get_str(c, &off, &len, what);
    if (t == CKPTFMT_GGUF_BOOL) {
        int s = get(c, 1, &v, what);
        if (s == CKPTFMT_OK && v > 1)
            return bad(c, c->pos - 1, "a BOOL is 0 or 1, not %llu", what, v);
        return s;
    }
    if (t != CKPTFMT_GGUF_ARRAY)
        return get(c, (int)ckptfmt_gguf_type_size(t), &v, what);
    return CKPTFMT_EINVAL; /* arrays are parsed by the caller */
}

static int parse_kv(cursor *c, rkv *kv)
{
    uint64_t at = c->pos, koff, klen, t;
    int s = get_str(c, &koff, &klen, "key");
    if (s != CKPTFMT_OK)
        return s;
    if (klen == 0 || klen > KEY_MAX)
        return bad(c, at, "key length %llu is outside 1..65535", "key", klen);
    for (uint64_t k = 0; k < klen; k++)
        if (c->f->b[koff + k] < 0x20 || c->f->b[koff + k] > 0x7E)
            return bad(c, koff + k, "byte 0x%02llx is not printable ASCII", "key", c->f->b[koff + k]);
    kv->key = dup_bytes(c->f->b + koff, klen);
    if (!kv->key)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    uint64_t tat = c->pos;
    if ((s = get(c, 4, &t, "value type")) != CKPTFMT_OK)
        return s;
    if (t >= CKPTFMT_GGUF_TYPE_COUNT)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: key '%s': unknown value type %llu at byte %llu", c->f->label,
                         kv->key, (unsigned long long)t, (unsigned long long)tat);
    kv->type = (ckptfmt_gguf_type)t;
    if (kv->type != CKPTFMT_GGUF_ARRAY) {
        kv->val = c->pos;
        return skip_value(c, kv->type, kv->key, tat);
    }
    uint64_t et, n;
    uint64_t eat = c->pos;
    if ((s = get(c, 4, &et, "array element type")) != CKPTFMT_OK || (s = get(c, 8, &n, "array count")) != CKPTFMT_OK)
        return s;
    if (et >= CKPTFMT_GGUF_TYPE_COUNT)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: key '%s': unknown array element type %llu at byte %llu",
                         c->f->label, kv->key, (unsigned long long)et, (unsigned long long)eat);
    if (et == CKPTFMT_GGUF_ARRAY)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "%s: key '%s': nested arrays (byte %llu) are not supported",
                         c->f->label, kv->key, (unsigned long long)eat);
    kv->array_type = (ckptfmt_gguf_type)et;
    kv->array_len = n;
    kv->val = kv->soff = c->pos;
    kv->sj = 0;
    if (et == CKPTFMT_GGUF_STRING) {
        if (n > left(c) / 8)
            return fmt_error(CKPTFMT_EMALFORMED, "%s: key '%s': %llu strings cannot fit in the %llu bytes left (byte %llu)",
                             c->f->label, kv->key, (unsigned long long)n, (unsigned long long)left(c),
                             (unsigned long long)eat);
        for (uint64_t j = 0; j < n; j++)
            if ((s = skip_value(c, CKPTFMT_GGUF_STRING, kv->key, c->pos)) != CKPTFMT_OK)
                return fmt_error_prefix("array element %llu: ", (unsigned long long)j);
        return CKPTFMT_OK;
    }
    size_t size = ckptfmt_gguf_type_size(kv->array_type);
    if (n > left(c) / size)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: key '%s': %llu elements of %s reach past the end of the file (byte %llu)",
                         c->f->label, kv->key, (unsigned long long)n, ckptfmt_gguf_type_name(kv->array_type),
                         (unsigned long long)eat);
    if (kv->array_type == CKPTFMT_GGUF_BOOL)
        for (uint64_t j = 0; j < n; j++)
            if (c->f->b[c->pos + j] > 1)
                return fmt_error(CKPTFMT_EMALFORMED, "%s: key '%s': BOOL element %llu is %d, not 0 or 1", c->f->label,
                                 kv->key, (unsigned long long)j, c->f->b[c->pos + j]);
    c->pos += n * size;
    return CKPTFMT_OK;
}

static int parse_tensor(cursor *c, rtensor *t)
{
    uint64_t at = c->pos, noff, nlen, v;
    int s = get_str(c, &noff, &nlen, "tensor name");
    if (s != CKPTFMT_OK)
        return s;
    if (nlen == 0 || nlen > TENSOR_NAME_MAX)
        return bad(c, at, "name length %llu is outside 1..64", "tensor name", nlen);
    t->name = dup_bytes(c->f->b + noff, nlen);
    if (!t->name)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    const char *lab = c->f->label;
    uint64_t dat = c->pos;
    if ((s = get(c, 4, &v, "n_dims")) != CKPTFMT_OK)
        return s;
    if (v < 1 || v > CKPTFMT_GGUF_MAX_DIMS)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': n_dims %llu at byte %llu is outside 1..4", lab, t->name,
                         (unsigned long long)v, (unsigned long long)dat);
    t->n_dims = (int)v;
    uint64_t n = 1;
    for (int k = 0; k < CKPTFMT_GGUF_MAX_DIMS; k++)
        t->ne[k] = 1;
    for (int k = 0; k < t->n_dims; k++) {
        uint64_t eat = c->pos;
        if ((s = get(c, 8, &v, "dimension")) != CKPTFMT_OK)
            return s;
        if (v == 0 || v > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX / v)
            return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': ne[%d] = %llu at byte %llu is 0 or overflows", lab,
                             t->name, k, (unsigned long long)v, (unsigned long long)eat);
        t->ne[k] = v;
        n *= v;
    }
    uint64_t tat = c->pos;
    if ((s = get(c, 4, &v, "ggml type")) != CKPTFMT_OK)
        return s;
    int block;
    const char *tname;
    if (v >= CKPTFMT_GGML_TYPE_COUNT || ckptfmt_ggml_type_info((ckptfmt_ggml_type)v, &tname, &block, NULL) != CKPTFMT_OK)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': unknown ggml type %llu at byte %llu", lab, t->name,
                         (unsigned long long)v, (unsigned long long)tat);
    t->type = (ckptfmt_ggml_type)v;
    if (t->ne[0] % (uint64_t)block)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': ne[0] = %llu is not a multiple of the %s block (%d)", lab,
                         t->name, (unsigned long long)t->ne[0], tname, block);
    if (ckptfmt_ggml_nbytes(t->type, n, &t->nbytes) != CKPTFMT_OK)
        return fmt_error_prefix("%s: tensor '%s': ", lab, t->name);
    uint64_t oat = c->pos;
    if ((s = get(c, 8, &t->offset, "tensor offset")) != CKPTFMT_OK)
        return s;
    if (t->offset % c->f->alignment)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': offset %llu at byte %llu is not a multiple of the alignment %u",
                         lab, t->name, (unsigned long long)t->offset, (unsigned long long)oat, c->f->alignment);
    return CKPTFMT_OK;
}

/* Index arrays sorted by name or offset: qsort over (key, index) pairs. */
typedef struct sort_pair {
    const char *name;
    uint64_t off;
    int idx;
} sort_pair;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const sort_pair *)a)->name, ((const sort_pair *)b)->name);
}

static int by_off(const void *a, const void *b)
{
    uint64_t x = ((const sort_pair *)a)->off, y = ((const sort_pair *)b)->off;
    return x < y ? -1 : x > y;
}

/* idx[] gets 0..n-1 ordered by the records' name (a char * at name_at in each record of `stride`
 * bytes from base) or, when by_offset, by their uint64_t at offset_at. */
static int sort_idx(int *idx, int n, const void *base, size_t stride, size_t name_at, size_t offset_at, int by_offset)
{
    sort_pair *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    if (!p)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *rec = (const char *)base + (size_t)i * stride;
        p[i].idx = i;
        memcpy(&p[i].name, rec + name_at, sizeof p[i].name);
        memcpy(&p[i].off, rec + offset_at, sizeof p[i].off);
    }
    qsort(p, (size_t)n, sizeof *p, by_offset ? by_off : by_name);
    for (int i = 0; i < n; i++)
        idx[i] = p[i].idx;
    free(p);
    return CKPTFMT_OK;
}

/* The array of records `arr` doubled (at most `limit`, the count the file declares) as entries
 * are found, *cap updated; NULL when out of memory (`arr` left as it was). */
static void *grow(void *arr, int *cap, size_t elem, uint64_t limit)
{
    int c = *cap ? 2 * *cap : 16;
    if ((uint64_t)c > limit)
        c = (int)limit;
    void *p = realloc(arr, (size_t)c * elem);
    if (p)
        *cap = c;
    return p;
}

static int check_count(cursor *c, uint64_t n, uint64_t min_bytes, const char *what)
{
    if (n > INT_MAX)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "%s: %s %llu is more than this reader handles", c->f->label, what,
                         (unsigned long long)n);
    if (n > left(c) / min_bytes)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: %s %llu cannot fit in the file's %llu bytes", c->f->label, what,
                         (unsigned long long)n, (unsigned long long)c->f->size);
    return CKPTFMT_OK;
}

static int parse(ckptfmt_gguf_file *f)
{
    cursor c = {f, 0};
    uint64_t magic, version, nt, nkv;
    int s;
    if (f->size < 24)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: %zu bytes, shorter than the 24-byte GGUF header", f->label, f->size);
    get(&c, 4, &magic, "magic");
    if (memcmp(f->b, "GGUF", 4) != 0)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: bad magic (not a GGUF file)", f->label);
    get(&c, 4, &version, "version");
    if (version != 2 && version != 3)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "%s: GGUF version %llu (this reader knows 2 and 3)", f->label,
                         (unsigned long long)version);
    f->version = (uint32_t)version;
    get(&c, 8, &nt, "tensor_count");
    get(&c, 8, &nkv, "kv_count");
    if ((s = check_count(&c, nkv, MIN_KV_BYTES, "kv_count")) != CKPTFMT_OK)
        return s;
    f->alignment = 32;
    int cap = 0;
    for (uint64_t i = 0; i < nkv; i++) {
        void *p = f->nkv == cap ? grow(f->kv, &cap, sizeof *f->kv, nkv) : f->kv;
        if (!p)
            return fmt_error(CKPTFMT_ENOMEM, "out of memory");
        f->kv = p;
        rkv *kv = &f->kv[f->nkv];
        memset(kv, 0, sizeof *kv);
        f->nkv++;
        if ((s = parse_kv(&c, kv)) != CKPTFMT_OK)
            return s;
        if (kv->key && strcmp(kv->key, "general.alignment") == 0) {
            if (kv->type != CKPTFMT_GGUF_UINT32)
                return fmt_error(CKPTFMT_EMALFORMED, "%s: general.alignment is %s, not UINT32", f->label,
                                 ckptfmt_gguf_type_name(kv->type));
            uint64_t a = le(f->b + kv->val, 4);
            if (a == 0 || (a & (a - 1)))
                return fmt_error(CKPTFMT_EMALFORMED, "%s: general.alignment %llu is not a power of two", f->label,
                                 (unsigned long long)a);
            f->alignment = (uint32_t)a;
        }
    }
    f->kv_by_key = malloc((size_t)(f->nkv ? f->nkv : 1) * sizeof(int));
    if (!f->kv_by_key)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    if ((s = sort_idx(f->kv_by_key, f->nkv, f->kv, sizeof *f->kv, offsetof(rkv, key), offsetof(rkv, val), 0)) != CKPTFMT_OK)
        return s;
    for (int k = 1; k < f->nkv; k++)
        if (strcmp(f->kv[f->kv_by_key[k]].key, f->kv[f->kv_by_key[k - 1]].key) == 0)
            return fmt_error(CKPTFMT_EMALFORMED, "%s: key '%s' appears twice", f->label, f->kv[f->kv_by_key[k]].key);

    if ((s = check_count(&c, nt, MIN_TENSOR_BYTES, "tensor_count")) != CKPTFMT_OK)
        return s;
    cap = 0;
    for (uint64_t i = 0; i < nt; i++) {
        void *p = f->nt == cap ? grow(f->t, &cap, sizeof *f->t, nt) : f->t;
        if (!p)
            return fmt_error(CKPTFMT_ENOMEM, "out of memory");
        f->t = p;
        rtensor *t = &f->t[f->nt];
        memset(t, 0, sizeof *t);
        f->nt++;
        if ((s = parse_tensor(&c, t)) != CKPTFMT_OK)
            return s;
    }
    uint64_t a = f->alignment;
    uint64_t start = c.pos + (a - c.pos % a) % a;
    if (start > f->size && f->nt > 0)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: the data section (byte %llu) starts past the end of the file (%zu bytes)",
                         f->label, (unsigned long long)start, f->size);
    f->data_offset = start;
    uint64_t room = start <= f->size ? f->size - start : 0;
    f->t_by_name = malloc((size_t)(f->nt ? f->nt : 1) * sizeof(int));
    int *by_off = malloc((size_t)(f->nt ? f->nt : 1) * sizeof(int));
    if (!f->t_by_name || !by_off) {
        free(by_off);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    s = CKPTFMT_OK;
    for (int i = 0; i < f->nt && s == CKPTFMT_OK; i++)
        if (f->t[i].offset > room || f->t[i].nbytes > room - f->t[i].offset)
            s = fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': data [%llu, +%llu) reach past the end of the file "
                          "(%llu data bytes)", f->label, f->t[i].name, (unsigned long long)f->t[i].offset,
                          (unsigned long long)f->t[i].nbytes, (unsigned long long)room);
    if (s == CKPTFMT_OK) {
        s = sort_idx(f->t_by_name, f->nt, f->t, sizeof *f->t, offsetof(rtensor, name), offsetof(rtensor, offset), 0);
        for (int k = 1; k < f->nt && s == CKPTFMT_OK; k++)
            if (strcmp(f->t[f->t_by_name[k]].name, f->t[f->t_by_name[k - 1]].name) == 0)
                s = fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s' appears twice", f->label, f->t[f->t_by_name[k]].name);
    }
    if (s == CKPTFMT_OK) {
        s = sort_idx(by_off, f->nt, f->t, sizeof *f->t, offsetof(rtensor, name), offsetof(rtensor, offset), 1);
        for (int k = 1; k < f->nt && s == CKPTFMT_OK; k++) {
            const rtensor *p = &f->t[by_off[k - 1]], *q = &f->t[by_off[k]];
            if (p->offset + p->nbytes > q->offset)
                s = fmt_error(CKPTFMT_EMALFORMED, "%s: tensors '%s' [%llu, +%llu) and '%s' [%llu, ...) overlap", f->label,
                              p->name, (unsigned long long)p->offset, (unsigned long long)p->nbytes, q->name,
                              (unsigned long long)q->offset);
        }
    }
    free(by_off);
    return s;
}

static int open_common(ckptfmt_gguf_file *f, ckptfmt_gguf_file **out)
{
    int s = parse(f);
    if (s != CKPTFMT_OK) {
        ckptfmt_gguf_close(f);
        return s;
    }
    *out = f;
    return fmt_ok();
}

int ckptfmt_gguf_open_memory(const void *data, size_t size, const char *label, ckptfmt_gguf_file **out)
{
    if (!out || (!data && size))
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gguf_open_memory: NULL argument");
    *out = NULL;
    ckptfmt_gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->label = strdup(label ? label : "(memory)"))) {
        free(f);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    f->b = data;
    f->size = size;
    return open_common(f, out);
}

int ckptfmt_gguf_open(const char *path, ckptfmt_gguf_file **out)
{
    if (!out || !path)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gguf_open: NULL argument");
    *out = NULL;
    int fd, s;
    uint64_t size;
    if ((s = open_input(path, &fd, &size)) != CKPTFMT_OK)
        return s;
    if ((uint64_t)(size_t)size != size) {
        close(fd);
        return fmt_error(CKPTFMT_EUNSUPPORTED, "%s: %llu bytes cannot be mapped", path, (unsigned long long)size);
    }
    ckptfmt_gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->label = strdup(path))) {
        free(f);
        close(fd);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    f->size = (size_t)size;
    if (f->size > 0) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            ckptfmt_gguf_close(f);
            return fmt_error(CKPTFMT_EIO, "%s: mmap: %s", path, strerror(e));
        }
        f->b = m;
        f->mapped = 1;
    }
    close(fd);
    return open_common(f, out);
}

void ckptfmt_gguf_close(ckptfmt_gguf_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->nkv; i++)
        free(f->kv[i].key);
    for (int i = 0; i < f->nt; i++)
        free(f->t[i].name);
    free(f->kv);
    free(f->t);
    free(f->t_by_name);
    free(f->kv_by_key);
    if (f->mapped)
        munmap((void *)f->b, f->size);
    free(f->label);
    free(f);
}

uint32_t ckptfmt_gguf_version(const ckptfmt_gguf_file *f) { return f ? f->version : 0; }
uint32_t ckptfmt_gguf_alignment(const ckptfmt_gguf_file *f) { return f ? f->alignment : 0; }
uint64_t ckptfmt_gguf_data_offset(const ckptfmt_gguf_file *f) { return f ? f->data_offset : 0; }
uint64_t ckptfmt_gguf_file_size(const ckptfmt_gguf_file *f) { return f ? f->size : 0; }
int ckptfmt_gguf_num_kv(const ckptfmt_gguf_file *f) { return f ? f->nkv : 0; }
int ckptfmt_gguf_num_tensors(const ckptfmt_gguf_file *f) { return f ? f->nt : 0; }

static int kv_at(const ckptfmt_gguf_file *f, int i, const char *what)
{
    if (!f || i < 0 || i >= f->nkv)
        return fmt_error(CKPTFMT_EINVAL, "%s: no key value %d", what, i);
    return CKPTFMT_OK;
}

int ckptfmt_gguf_kv_info(const ckptfmt_gguf_file *f, int i, ckptfmt_gguf_kv *kv)
{
    int s = kv_at(f, i, "ckptfmt_gguf_kv_info");
    if (s != CKPTFMT_OK || !kv)
        return s != CKPTFMT_OK ? s : fmt_error(CKPTFMT_EINVAL, "ckptfmt_gguf_kv_info: NULL argument");
    const rkv *r = &f->kv[i];
    *kv = (ckptfmt_gguf_kv){r->key, r->type, r->array_type, r->array_len};
    return fmt_ok();
}

static int bsearch_name(const int *idx, int n, const char *name, const char *(*name_of)(const ckptfmt_gguf_file *, int),
                        const ckptfmt_gguf_file *f)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(name_of(f, idx[mid]), name);
        if (c == 0)
            return idx[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}
static const char *key_of(const ckptfmt_gguf_file *f, int i) { return f->kv[i].key; }
static const char *tname_of(const ckptfmt_gguf_file *f, int i) { return f->t[i].name; }

int ckptfmt_gguf_find_key(const ckptfmt_gguf_file *f, const char *key, int *i)
{
    if (!f || !key || !i)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gguf_find_key: NULL argument");
    int k = bsearch_name(f->kv_by_key, f->nkv, key, key_of, f);
    if (k < 0)
        return fmt_error(CKPTFMT_ENOTFOUND, "%s: no key '%s'", f->label, key);
    *i = k;
    return fmt_ok();
}

static void decode_scalar(const unsigned char *p, ckptfmt_gguf_type t, ckptfmt_gguf_value *v)
{
    int size = (int)ckptfmt_gguf_type_size(t);
    uint64_t raw = le(p, size);
    memset(v, 0, sizeof *v);
    v->type = t;
    switch (t) {
    case CKPTFMT_GGUF_INT8: case CKPTFMT_GGUF_INT16: case CKPTFMT_GGUF_INT32: case CKPTFMT_GGUF_INT64:
        v->i = size < 8 && (raw >> (8 * size - 1)) ? (int64_t)(raw | ~((UINT64_C(1) << (8 * size)) - 1)) : (int64_t)raw;
        break;
    case CKPTFMT_GGUF_FLOAT32: {
        uint32_t u = (uint32_t)raw;
        float x;
        memcpy(&x, &u, 4);
        v->f = x;
        break;
    }
    case CKPTFMT_GGUF_FLOAT64:
        memcpy(&v->f, &raw, 8);
        break;
    case CKPTFMT_GGUF_BOOL:
        v->b = (int)raw;
        break;
    default:
        v->u = raw;
    }
}

int ckptfmt_gguf_kv_scalar(const ckptfmt_gguf_file *f, int i, ckptfmt_gguf_value *v)
{
    int s = kv_at(f, i, "ckptfmt_gguf_kv_scalar");
    if (s != CKPTFMT_OK)
        return s;
    const rkv *r = &f->kv[i];
    if (!v || r->type == CKPTFMT_GGUF_STRING || r->type == CKPTFMT_GGUF_ARRAY)
        return fmt_error(CKPTFMT_EINVAL, "%s: key '%s' is %s, not a scalar", f->label, r->key, ckptfmt_gguf_type_name(r->type));
    decode_scalar(f->b + r->val, r->type, v);
    return fmt_ok();
}

int ckptfmt_gguf_kv_string(const ckptfmt_gguf_file *f, int i, const char **str, uint64_t *len)
{
    int s = kv_at(f, i, "ckptfmt_gguf_kv_string");
    if (s != CKPTFMT_OK)
        return s;
    const rkv *r = &f->kv[i];
    if (!str || !len || r->type != CKPTFMT_GGUF_STRING)
        return fmt_error(CKPTFMT_EINVAL, "%s: key '%s' is %s, not a STRING", f->label, r->key, ckptfmt_gguf_type_name(r->type));
    *len = le(f->b + r->val, 8);
    *str = (const char *)f->b + r->val + 8;
    return fmt_ok();
}

int ckptfmt_gguf_kv_array_scalar(const ckptfmt_gguf_file *f, int i, uint64_t j, ckptfmt_gguf_value *v)
{
    int s = kv_at(f, i, "ckptfmt_gguf_kv_array_scalar");
    if (s != CKPTFMT_OK)
        return s;
    const rkv *r = &f->kv[i];
    if (!v || r->type != CKPTFMT_GGUF_ARRAY || r->array_type == CKPTFMT_GGUF_STRING || j >= r->array_len)
        return fmt_error(CKPTFMT_EINVAL, "%s: key '%s' has no scalar element %llu", f->label, r->key, (unsigned long long)j);
    decode_scalar(f->b + r->val + j * ckptfmt_gguf_type_size(r->array_type), r->array_type, v);
    return fmt_ok();
}

int ckptfmt_gguf_kv_array_string(const ckptfmt_gguf_file *f, int i, uint64_t j, const char **str, uint64_t *len)
{
    int s = kv_at(f, i, "ckptfmt_gguf_kv_array_string");
    if (s != CKPTFMT_OK)
        return s;
    rkv *r = &f->kv[i];
    if (!str || !len || r->type != CKPTFMT_GGUF_ARRAY || r->array_type != CKPTFMT_GGUF_STRING || j >= r->array_len)
        return fmt_error(CKPTFMT_EINVAL, "%s: key '%s' has no string element %llu", f->label, r->key, (unsigned long long)j);
    if (j < r->sj) { /* the cursor only moves forward: restart */
        r->sj = 0;
        r->soff = r->val;
    }
    while (r->sj < j) { /* validated at open: every length is in the file */
        r->soff += 8 + le(f->b + r->soff, 8);
        r->sj++;
    }
    *len = le(f->b + r->soff, 8);
    *str = (const char *)f->b + r->soff + 8;
    return fmt_ok();
}

int ckptfmt_gguf_tensor_info(const ckptfmt_gguf_file *f, int i, ckptfmt_gguf_tensor *t)
{
    if (!f || !t || i < 0 || i >= f->nt)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gguf_tensor_info: no tensor %d", i);
    const rtensor *r = &f->t[i];
    *t = (ckptfmt_gguf_tensor){.name = r->name, .type = r->type, .n_dims = r->n_dims, .offset = r->offset,
                               .nbytes = r->nbytes};
    memcpy(t->ne, r->ne, sizeof t->ne);
    return fmt_ok();
}

int ckptfmt_gguf_find_tensor(const ckptfmt_gguf_file *f, const char *name, int *i)
{
    if (!f || !name || !i)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_gguf_find_tensor: NULL argument");
    int k = bsearch_name(f->t_by_name, f->nt, name, tname_of, f);
    if (k < 0)
        return fmt_error(CKPTFMT_ENOTFOUND, "%s: no tensor '%s'", f->label, name);
    *i = k;
    return fmt_ok();
}

const void *ckptfmt_gguf_tensor_data(const ckptfmt_gguf_file *f, int i)
{
    if (!f || i < 0 || i >= f->nt)
        return NULL;
    return f->b + f->data_offset + f->t[i].offset;
}
