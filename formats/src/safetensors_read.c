/* The strict safetensors reader: the header is validated completely against the file's size
 * before anything else (ckptfmt.h lists the refusals); tensor data are read later by offset
 * (pread), never the whole file. A file image in memory goes through the same code (fuzzing). */
#include "error.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct st_entry {
    char *name;
    ckptfmt_st_dtype dtype;
    int ndim;
    int64_t shape[CKPTFMT_ST_MAX_NDIM];
    uint64_t begin, end;
} st_entry;

struct ckptfmt_st_file {
    char *label;
    int fd;                   /* -1: an image in memory */
    const unsigned char *mem;
    uint64_t size, header_len;
    st_entry *t;              /* by data offset */
    int n;
    int *by_name;             /* indices into t, by name */
    char **meta_key, **meta_val; /* sorted by key */
    int nmeta;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_offsets(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static _Thread_local const st_entry *sort_base; /* qsort has no context argument */
static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(sort_base[*(const int *)a].name, sort_base[*(const int *)b].name);
}

/* Reads n bytes at absolute offset off of the file or image. */
static int read_at(ckptfmt_st_file *f, uint64_t off, void *buf, size_t n)
{
    if (f->fd < 0) {
        memcpy(buf, f->mem + off, n);
        return CKPTFMT_OK;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(f->fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return fmt_error(CKPTFMT_EIO, "%s: read failed at byte %llu: %s", f->label,
                             (unsigned long long)(off + done), strerror(errno));
        if (r == 0)
            return fmt_error(CKPTFMT_EIO, "%s: the file ends at byte %llu, before the %llu bytes it had when opened",
                             f->label, (unsigned long long)(off + done), (unsigned long long)f->size);
        done += (size_t)r;
    }
    return CKPTFMT_OK;
}

static void fmt_shape(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < len)
        snprintf(buf + k, len - k, "]");
}

/* A non-negative JSON integer. */
static int get_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

/* One tensor entry: {"dtype", "shape", "data_offsets"}, exactly. */
static int parse_entry(ckptfmt_st_file *f, const char *name, json_t *v, uint64_t data_size, st_entry *e)
{
    const char *L = f->label;
    if (!json_is_object(v))
        return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': entry is not an object", L, name);
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x)
    {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': unknown field '%s'", L, name, key);
    }
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    for (int k = 0; k < 3; k++)
        if (!json_object_get(v, fields[k]))
            return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': no '%s' field", L, name, fields[k]);
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt))
        return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': 'dtype' is not a string", L, name);
    if (ckptfmt_st_dtype_from_name(json_string_value(dt), &e->dtype) != CKPTFMT_OK)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': unknown dtype '%s'", L, name, json_string_value(dt));
    if (!json_is_array(sh))
        return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': 'shape' is not an array", L, name);
    size_t nd = json_array_size(sh);
    if (nd > CKPTFMT_ST_MAX_NDIM)
        return fmt_error(CKPTFMT_EUNSUPPORTED, "%s: tensor '%s': 'shape' has %zu dims, more than the %d supported", L,
                         name, nd, CKPTFMT_ST_MAX_NDIM);
    e->ndim = (int)nd;
    uint64_t elems = 1;
    int overflow = 0;
    for (size_t d = 0; d < nd; d++) {
        uint64_t s;
        if (!get_u64(json_array_get(sh, d), &s))
            return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': 'shape'[%zu] is not a non-negative integer", L,
                             name, d);
        e->shape[d] = (int64_t)s;
        if (s != 0 && elems > UINT64_MAX / s)
            overflow = 1;
        elems *= s;
    }
    char shp[256];
    fmt_shape(shp, sizeof shp, e->ndim, e->shape);
    int ok;
    uint64_t nbytes = st_nbytes(e->dtype, elems, &ok);
    if (overflow || !ok) {
        for (size_t d = 0; d < nd; d++)
            if (e->shape[d] == 0)
                overflow = 0, ok = 1, nbytes = 0; /* an empty tensor holds no bytes, whatever the others */
        if (overflow)
            return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': 'shape' %s has more elements than 64 bits count",
                             L, name, shp);
        if (!ok)
            return fmt_error(CKPTFMT_EMALFORMED,
                             "%s: tensor '%s': 'shape' %s of %s is not a whole number of bytes, or overflows 64 bits",
                             L, name, shp, json_string_value(dt));
    }
    if (!json_is_array(off) || json_array_size(off) != 2 || !get_u64(json_array_get(off, 0), &e->begin) ||
        !get_u64(json_array_get(off, 1), &e->end))
        return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': 'data_offsets' is not two non-negative integers", L,
                         name);
    if (e->end < e->begin)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': 'data_offsets' [%llu, %llu] end before they begin", L,
                         name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end - e->begin != nbytes)
        return fmt_error(CKPTFMT_EMALFORMED,
                         "%s: tensor '%s': 'data_offsets' [%llu, %llu] hold %llu bytes, but 'shape' %s of %s needs %llu",
                         L, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                         (unsigned long long)(e->end - e->begin), shp, json_string_value(dt),
                         (unsigned long long)nbytes);
    if (e->end > data_size)
        return fmt_error(CKPTFMT_EMALFORMED,
                         "%s: tensor '%s': 'data_offsets' [%llu, %llu] reach past the end of the file (%llu bytes of "
                         "data after the header)",
                         L, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                         (unsigned long long)data_size);
    return CKPTFMT_OK;
}

static int parse_metadata(ckptfmt_st_file *f, json_t *v)
{
    if (!json_is_object(v))
        return fmt_error(CKPTFMT_EMALFORMED, "%s: '__metadata__' is not an object", f->label);
    size_t n = json_object_size(v);
    f->meta_key = calloc(n ? n : 1, sizeof *f->meta_key);
    f->meta_val = calloc(n ? n : 1, sizeof *f->meta_val);
    if (!f->meta_key || !f->meta_val)
        return fmt_error(CKPTFMT_ENOMEM, "%s: out of memory", f->label);
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x)
    {
        if (!json_is_string(x))
            return fmt_error(CKPTFMT_EMALFORMED, "%s: '__metadata__' value of '%s' is not a string", f->label, key);
        f->meta_key[f->nmeta] = strdup(key);
        f->meta_val[f->nmeta] = strdup(json_string_value(x));
        f->nmeta++;
        if (!f->meta_key[f->nmeta - 1] || !f->meta_val[f->nmeta - 1])
            return fmt_error(CKPTFMT_ENOMEM, "%s: out of memory", f->label);
    }
    /* sort the keys, carrying the values along */
    for (int i = 1; i < f->nmeta; i++)
        for (int j = i; j > 0 && strcmp(f->meta_key[j - 1], f->meta_key[j]) > 0; j--) {
            char *k = f->meta_key[j], *s = f->meta_val[j];
            f->meta_key[j] = f->meta_key[j - 1];
            f->meta_val[j] = f->meta_val[j - 1];
            f->meta_key[j - 1] = k;
            f->meta_val[j - 1] = s;
        }
    return CKPTFMT_OK;
}

/* The quoted token of jansson's "duplicate object key near '\"NAME\"'" message. */
static void duplicate_name(const char *text, char *out, size_t len)
{
    const char *p = strstr(text, "near '\"");
    snprintf(out, len, "%s", p ? p + 7 : "?");
    size_t n = strlen(out);
    if (n >= 2 && out[n - 1] == '\'' && out[n - 2] == '"')
        out[n - 2] = 0;
}

static int parse_header(ckptfmt_st_file *f)
{
    const char *L = f->label;
    if (f->size < 8)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: the file is %llu bytes, shorter than the 8-byte header length", L,
                         (unsigned long long)f->size);
    unsigned char le[8];
    int s = read_at(f, 0, le, 8);
    if (s != CKPTFMT_OK)
        return s;
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = n << 8 | le[k];
    if (n > CKPTFMT_ST_MAX_HEADER)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: header length %llu is above the limit of %llu bytes", L,
                         (unsigned long long)n, (unsigned long long)CKPTFMT_ST_MAX_HEADER);
    if (n > f->size - 8)
        return fmt_error(CKPTFMT_EMALFORMED, "%s: header length %llu reaches past the end of the file (%llu bytes)", L,
                         (unsigned long long)n, (unsigned long long)f->size);
    f->header_len = n;
    char *text = malloc(n ? n : 1);
    if (!text)
        return fmt_error(CKPTFMT_ENOMEM, "%s: out of memory for a %llu-byte header", L, (unsigned long long)n);
    if ((s = read_at(f, 8, text, n)) != CKPTFMT_OK) {
        free(text);
        return s;
    }
    if (n == 0 || text[0] != '{') {
        free(text);
        return fmt_error(CKPTFMT_EMALFORMED, "%s: the header does not start with '{'", L);
    }
    json_error_t je;
    json_t *doc = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!doc) {
        if (json_error_code(&je) == json_error_duplicate_key) {
            char dup[256];
            duplicate_name(je.text, dup, sizeof dup);
            return fmt_error(CKPTFMT_EMALFORMED, "%s: duplicate tensor name '%s' in the header (line %d, column %d)", L,
                             dup, je.line, je.column);
        }
        return fmt_error(CKPTFMT_EMALFORMED, "%s: the header is not valid JSON: %s (line %d, column %d)", L, je.text,
                         je.line, je.column);
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        return fmt_error(CKPTFMT_EMALFORMED, "%s: the header is not a JSON object", L);
    }
    const uint64_t data_size = f->size - 8 - n;
    size_t nkeys = json_object_size(doc);
    const char **keys = malloc((nkeys ? nkeys : 1) * sizeof *keys);
    f->t = calloc(nkeys ? nkeys : 1, sizeof *f->t);
    f->by_name = malloc((nkeys ? nkeys : 1) * sizeof *f->by_name);
    if (!keys || !f->t || !f->by_name) {
        free(keys);
        json_decref(doc);
        return fmt_error(CKPTFMT_ENOMEM, "%s: out of memory for %zu tensors", L, nkeys);
    }
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) keys[k++] = key;
    if (nkeys)
        qsort(keys, nkeys, sizeof *keys, cmp_str); /* errors name the first bad tensor in name order */
    s = CKPTFMT_OK;
    for (k = 0; k < nkeys && s == CKPTFMT_OK; k++) {
        v = json_object_get(doc, keys[k]);
        if (strcmp(keys[k], "__metadata__") == 0) {
            s = parse_metadata(f, v);
            continue;
        }
        st_entry *e = &f->t[f->n];
        s = parse_entry(f, keys[k], v, data_size, e);
        if (s == CKPTFMT_OK && !(e->name = strdup(keys[k])))
            s = fmt_error(CKPTFMT_ENOMEM, "%s: out of memory", L);
        if (s == CKPTFMT_OK)
            f->n++;
    }
    free(keys);
    json_decref(doc);
    if (s != CKPTFMT_OK)
        return s;

    /* contiguity: by offset, each tensor starts where the previous one ends */
    if (f->n)
        qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_offsets);
    uint64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = &f->t[i], *p = i ? &f->t[i - 1] : NULL;
        if (e->begin > at) {
            if (p)
                return fmt_error(CKPTFMT_EMALFORMED,
                                 "%s: tensor '%s': 'data_offsets' [%llu, %llu] leave a gap of %llu bytes after tensor "
                                 "'%s' [%llu, %llu]",
                                 L, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                                 (unsigned long long)(e->begin - at), p->name, (unsigned long long)p->begin,
                                 (unsigned long long)p->end);
            return fmt_error(CKPTFMT_EMALFORMED,
                             "%s: tensor '%s': 'data_offsets' [%llu, %llu] leave a gap of %llu bytes at the start of "
                             "the data",
                             L, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                             (unsigned long long)e->begin);
        }
        if (e->begin < at) {
            /* the tensor it overlaps: the last one before it that ends after its start */
            int j = i - 1;
            while (j > 0 && f->t[j].end <= e->begin)
                j--;
            return fmt_error(CKPTFMT_EMALFORMED, "%s: tensor '%s': 'data_offsets' [%llu, %llu] overlap tensor '%s' [%llu, %llu]",
                             L, e->name, (unsigned long long)e->begin, (unsigned long long)e->end, f->t[j].name,
                             (unsigned long long)f->t[j].begin, (unsigned long long)f->t[j].end);
        }
        at = e->end;
    }
    if (at != data_size) {
        if (f->n)
            return fmt_error(CKPTFMT_EMALFORMED,
                             "%s: the data do not end at the end of the file: the last tensor '%s' ends at byte %llu "
                             "of the data, %llu bytes before the end",
                             L, f->t[f->n - 1].name, (unsigned long long)at, (unsigned long long)(data_size - at));
        return fmt_error(CKPTFMT_EMALFORMED,
                         "%s: the data do not end at the end of the file: no tensors, but %llu bytes after the header",
                         L, (unsigned long long)data_size);
    }
    for (int i = 0; i < f->n; i++)
        f->by_name[i] = i;
    sort_base = f->t;
    if (f->n)
        qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_by_name);
    sort_base = NULL;
    return CKPTFMT_OK;
}

static int open_common(ckptfmt_st_file *f, ckptfmt_st_file **out)
{
    int s = parse_header(f);
    if (s != CKPTFMT_OK) {
        ckptfmt_st_close(f);
        return s;
    }
    *out = f;
    return fmt_ok();
}

int ckptfmt_st_open(const char *path, ckptfmt_st_file **out)
{
    if (!path || !out)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_open: NULL argument");
    *out = NULL;
    int fd;
    uint64_t size;
    int s = open_input(path, &fd, &size);
    if (s != CKPTFMT_OK)
        return s;
    ckptfmt_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->label = strdup(path))) {
        free(f);
        close(fd);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    f->fd = fd;
    f->size = size;
    return open_common(f, out);
}

int ckptfmt_st_open_memory(const void *data, size_t size, const char *label, ckptfmt_st_file **out)
{
    if ((!data && size) || !out)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_open_memory: NULL argument");
    *out = NULL;
    ckptfmt_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->label = strdup(label ? label : "(memory)"))) {
        free(f);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    f->fd = -1;
    f->mem = data;
    f->size = size;
    return open_common(f, out);
}

void ckptfmt_st_close(ckptfmt_st_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    for (int i = 0; i < f->n; i++)
        free(f->t[i].name);
    for (int k = 0; k < f->nmeta; k++) {
        free(f->meta_key[k]);
        free(f->meta_val[k]);
    }
    free(f->meta_key);
    free(f->meta_val);
    free(f->t);
    free(f->by_name);
    free(f->label);
    free(f);
}

int ckptfmt_st_num_tensors(const ckptfmt_st_file *f) { return f ? f->n : 0; }

int ckptfmt_st_tensor_info(const ckptfmt_st_file *f, int i, ckptfmt_st_tensor *info)
{
    if (!f || !info || i < 0 || i >= f->n)
        return fmt_error(CKPTFMT_EINVAL, "no tensor %d", i);
    const st_entry *e = &f->t[i];
    memset(info, 0, sizeof *info);
    info->name = e->name;
    info->dtype = e->dtype;
    info->ndim = e->ndim;
    memcpy(info->shape, e->shape, sizeof e->shape);
    info->begin = e->begin;
    info->end = e->end;
    return CKPTFMT_OK;
}

int ckptfmt_st_find(const ckptfmt_st_file *f, const char *name, int *i)
{
    if (!f || !name || !i)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_find: NULL argument");
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->t[f->by_name[mid]].name, name);
        if (c == 0) {
            *i = f->by_name[mid];
            return CKPTFMT_OK;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return fmt_error(CKPTFMT_ENOTFOUND, "%s: no tensor '%s'", f->label, name);
}

int ckptfmt_st_num_metadata(const ckptfmt_st_file *f) { return f ? f->nmeta : 0; }

int ckptfmt_st_metadata_at(const ckptfmt_st_file *f, int k, const char **key, const char **value)
{
    if (!f || k < 0 || k >= f->nmeta)
        return fmt_error(CKPTFMT_EINVAL, "no metadata entry %d", k);
    if (key)
        *key = f->meta_key[k];
    if (value)
        *value = f->meta_val[k];
    return CKPTFMT_OK;
}

const char *ckptfmt_st_metadata(const ckptfmt_st_file *f, const char *key)
{
    for (int k = 0; f && key && k < f->nmeta; k++)
        if (strcmp(f->meta_key[k], key) == 0)
            return f->meta_val[k];
    return NULL;
}

uint64_t ckptfmt_st_header_len(const ckptfmt_st_file *f) { return f ? f->header_len : 0; }

uint64_t ckptfmt_st_file_size(const ckptfmt_st_file *f) { return f ? f->size : 0; }

int ckptfmt_st_read(ckptfmt_st_file *f, int i, uint64_t offset, void *buf, size_t n)
{
    if (!f || i < 0 || i >= f->n || (!buf && n))
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_read: bad argument");
    const st_entry *e = &f->t[i];
    uint64_t len = e->end - e->begin;
    if (offset > len || n > len - offset)
        return fmt_error(CKPTFMT_EINVAL, "%s: tensor '%s': bytes [%llu, %llu) are outside its %llu bytes", f->label,
                         e->name, (unsigned long long)offset, (unsigned long long)offset + n,
                         (unsigned long long)len);
    return read_at(f, 8 + f->header_len + e->begin + offset, buf, n);
}
