/* The safetensors writer: declarations, then the header exactly as the reference writer makes it
 * (tensors sorted by dtype descending, then name; compact JSON, "__metadata__" first; spaces to a
 * multiple of 8), then the data tensor by tensor through pwrite. */
#define _GNU_SOURCE /* sync_file_range */
#include "error.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_MAX_BYTES 4096

typedef struct wt_entry {
    char *name;
    ckptfmt_st_dtype dtype;
    int ndim;
    int64_t shape[CKPTFMT_ST_MAX_NDIM];
    uint64_t nbytes, begin, written;
} wt_entry;

struct ckptfmt_st_writer {
    wt_entry *t;
    int n, cap;
    char **mk, **mv;
    int nmeta, mcap;
    char *path;
    int fd;
    uint64_t data_start, file_size;
    int begun, finished;
    int *by_name; /* after begin: indices of t by name */
};

int ckptfmt_st_writer_create(ckptfmt_st_writer **out)
{
    if (!out)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_writer_create: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    (*out)->fd = -1;
    return fmt_ok();
}

static int find_entry(const ckptfmt_st_writer *w, const char *name)
{
    if (w->by_name) {
        int lo = 0, hi = w->n - 1;
        while (lo <= hi) {
            int mid = lo + (hi - lo) / 2, c = strcmp(w->t[w->by_name[mid]].name, name);
            if (c == 0)
                return w->by_name[mid];
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
        return -1;
    }
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return i;
    return -1;
}

int ckptfmt_st_writer_add(ckptfmt_st_writer *w, const char *name, ckptfmt_st_dtype dtype, int ndim,
                          const int64_t *shape)
{
    if (!w || !name || (ndim && !shape))
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_writer_add: NULL argument");
    if (w->begun)
        return fmt_error(CKPTFMT_EINVAL, "tensor '%s' declared after the header was written", name);
    size_t len = strlen(name);
    if (len == 0 || len > NAME_MAX_BYTES || strcmp(name, "__metadata__") == 0)
        return fmt_error(CKPTFMT_EINVAL, "'%s' is not a usable safetensors tensor name", name);
    if (!ckptfmt_st_dtype_name(dtype))
        return fmt_error(CKPTFMT_EINVAL, "tensor '%s': unknown dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > CKPTFMT_ST_MAX_NDIM)
        return fmt_error(CKPTFMT_EINVAL, "tensor '%s': %d dims", name, ndim);
    if (find_entry(w, name) >= 0)
        return fmt_error(CKPTFMT_EINVAL, "tensor '%s' declared twice", name);
    uint64_t elems = 1;
    int zero = 0, over = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return fmt_error(CKPTFMT_EINVAL, "tensor '%s': negative dim %lld", name, (long long)shape[d]);
        zero |= shape[d] == 0;
        if (shape[d] && elems > UINT64_MAX / (uint64_t)shape[d])
            over = 1;
        elems *= (uint64_t)shape[d];
    }
    int ok;
    uint64_t nbytes = zero ? 0 : st_nbytes(dtype, elems, &ok);
    if (!zero && (over || !ok || nbytes > (uint64_t)INT64_MAX))
        return fmt_error(CKPTFMT_EINVAL, "tensor '%s': its size is not a whole number of bytes or overflows", name);
    if (w->n == w->cap) {
        int nc = w->cap ? 2 * w->cap : 16;
        wt_entry *t = realloc(w->t, (size_t)nc * sizeof *t);
        if (!t)
            return fmt_error(CKPTFMT_ENOMEM, "out of memory");
        w->t = t;
        w->cap = nc;
    }
    wt_entry *e = &w->t[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    e->dtype = dtype;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        e->shape[d] = shape[d];
    e->nbytes = nbytes;
    w->n++;
    return fmt_ok();
}

int ckptfmt_st_writer_set_metadata(ckptfmt_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_writer_set_metadata: NULL argument");
    if (w->begun)
        return fmt_error(CKPTFMT_EINVAL, "metadata '%s' set after the header was written", key);
    for (int k = 0; k < w->nmeta; k++)
        if (strcmp(w->mk[k], key) == 0) {
            char *v = strdup(value);
            if (!v)
                return fmt_error(CKPTFMT_ENOMEM, "out of memory");
            free(w->mv[k]);
            w->mv[k] = v;
            return fmt_ok();
        }
    if (w->nmeta == w->mcap) {
        int nc = w->mcap ? 2 * w->mcap : 8;
        char **a = realloc(w->mk, (size_t)nc * sizeof *a);
        if (a)
            w->mk = a;
        char **b = a ? realloc(w->mv, (size_t)nc * sizeof *b) : NULL;
        if (!b)
            return fmt_error(CKPTFMT_ENOMEM, "out of memory");
        w->mv = b;
        w->mcap = nc;
    }
    w->mk[w->nmeta] = strdup(key);
    w->mv[w->nmeta] = strdup(value);
    if (!w->mk[w->nmeta] || !w->mv[w->nmeta]) {
        free(w->mk[w->nmeta]);
        free(w->mv[w->nmeta]);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    w->nmeta++;
    return fmt_ok();
}

/* the reference's order: dtype descending (8-byte types first), then name */
static int cmp_reference(const void *a, const void *b)
{
    const wt_entry *x = a, *y = b;
    if (x->dtype != y->dtype)
        return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}

static _Thread_local const wt_entry *sort_base;
static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(sort_base[*(const int *)a].name, sort_base[*(const int *)b].name);
}


static int pwrite_all(int fd, const void *data, size_t n, uint64_t off, const char *path)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(fd, (const char *)data + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return fmt_error(CKPTFMT_EIO, "cannot write '%s': %s", path,
                             r < 0 ? (errno == ENOSPC ? "no space left on device (disk full)" : strerror(errno))
                                   : "short write");
        done += (size_t)r;
    }
    return CKPTFMT_OK;
}

/* The header's JSON: compact, "__metadata__" (keys sorted) first, then the tensors in file order. */
static char *header_json(ckptfmt_st_writer *w)
{
    json_t *doc = json_object();
    if (!doc)
        return NULL;
    int bad = 0;
    if (w->nmeta) {
        json_t *m = json_object();
        int *ord = malloc((size_t)w->nmeta * sizeof *ord);
        bad |= !m || !ord;
        for (int k = 0; !bad && k < w->nmeta; k++)
            ord[k] = k;
        for (int i = 1; !bad && i < w->nmeta; i++) /* few keys: insertion sort */
            for (int j = i; j > 0 && strcmp(w->mk[ord[j - 1]], w->mk[ord[j]]) > 0; j--) {
                int t = ord[j];
                ord[j] = ord[j - 1];
                ord[j - 1] = t;
            }
        for (int k = 0; !bad && k < w->nmeta; k++) {
            json_t *v = json_string(w->mv[ord[k]]);
            bad |= !v || json_object_set_new(m, w->mk[ord[k]], v) != 0;
        }
        free(ord);
        bad |= json_object_set_new(doc, "__metadata__", m) != 0;
    }
    for (int i = 0; !bad && i < w->n; i++) {
        const wt_entry *e = &w->t[i];
        json_t *o = json_object(), *sh = json_array(), *off = json_array();
        bad |= !o || !sh || !off;
        for (int d = 0; !bad && d < e->ndim; d++)
            bad |= json_array_append_new(sh, json_integer(e->shape[d])) != 0;
        if (!bad) {
            bad |= json_array_append_new(off, json_integer((json_int_t)e->begin)) != 0;
            bad |= json_array_append_new(off, json_integer((json_int_t)(e->begin + e->nbytes))) != 0;
            bad |= json_object_set_new(o, "dtype", json_string(ckptfmt_st_dtype_name(e->dtype))) != 0;
            bad |= json_object_set_new(o, "shape", sh) != 0;
            sh = NULL;
            bad |= json_object_set_new(o, "data_offsets", off) != 0;
            off = NULL;
            /* json_object_set_new fails on a key that is not valid UTF-8 */
            bad |= json_object_set_new(doc, e->name, o) != 0;
            o = NULL;
        }
        json_decref(o);
        json_decref(sh);
        json_decref(off);
    }
    char *text = bad ? NULL : json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    return text;
}

int ckptfmt_st_writer_begin(ckptfmt_st_writer *w, const char *path)
{
    if (!w || !path)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_writer_begin: NULL argument");
    if (w->begun)
        return fmt_error(CKPTFMT_EINVAL, "'%s': the header was already written", path);
    if (w->n)
        qsort(w->t, (size_t)w->n, sizeof *w->t, cmp_reference);
    uint64_t at = 0;
    for (int i = 0; i < w->n; i++) {
        w->t[i].begin = at;
        if (w->t[i].nbytes > UINT64_MAX / 2 - at)
            return fmt_error(CKPTFMT_EINVAL, "'%s': the tensors' sizes overflow", path);
        at += w->t[i].nbytes;
    }
    w->by_name = malloc((size_t)(w->n ? w->n : 1) * sizeof *w->by_name);
    if (!w->by_name)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    for (int i = 0; i < w->n; i++)
        w->by_name[i] = i;
    sort_base = w->t;
    if (w->n)
        qsort(w->by_name, (size_t)w->n, sizeof *w->by_name, cmp_by_name);
    sort_base = NULL;
    char *text = header_json(w);
    if (!text)
        return fmt_error(CKPTFMT_EINVAL, "'%s': cannot encode the header (a name or metadata string that is not valid "
                         "UTF-8, or out of memory)", path);
    size_t len = strlen(text), padded = (len + 7) & ~(size_t)7;
    if (padded > CKPTFMT_ST_MAX_HEADER) {
        free(text);
        return fmt_error(CKPTFMT_EUNSUPPORTED, "'%s': the header would be %zu bytes, above the format's limit of %llu",
                         path, padded, (unsigned long long)CKPTFMT_ST_MAX_HEADER);
    }
    unsigned char *head = malloc(8 + padded);
    if (!head) {
        free(text);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    for (int k = 0; k < 8; k++)
        head[k] = (unsigned char)((uint64_t)padded >> (8 * k));
    memcpy(head + 8, text, len);
    memset(head + 8 + len, ' ', padded - len);
    free(text);
    w->data_start = 8 + padded;
    w->file_size = w->data_start + at;
    if (!(w->path = strdup(path))) {
        free(head);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        free(head);
        return fmt_error(e == EEXIST ? CKPTFMT_EEXIST : CKPTFMT_EIO, "cannot create '%s': %s", path, strerror(e));
    }
    w->begun = 1;
    int s = pwrite_all(w->fd, head, 8 + padded, 0, path);
    free(head);
    return s == CKPTFMT_OK ? fmt_ok() : s;
}

int ckptfmt_st_writer_num_tensors(const ckptfmt_st_writer *w) { return w ? w->n : 0; }

int ckptfmt_st_writer_tensor(const ckptfmt_st_writer *w, int k, const char **name, uint64_t *nbytes)
{
    if (!w || k < 0 || k >= w->n)
        return fmt_error(CKPTFMT_EINVAL, "no tensor %d", k);
    if (name)
        *name = w->t[k].name;
    if (nbytes)
        *nbytes = w->t[k].nbytes;
    return CKPTFMT_OK;
}

uint64_t ckptfmt_st_writer_file_size(const ckptfmt_st_writer *w) { return w ? w->file_size : 0; }

int ckptfmt_st_writer_write(ckptfmt_st_writer *w, const char *name, const void *data, size_t n)
{
    if (!w || !name || (!data && n))
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_writer_write: NULL argument");
    if (!w->begun || w->finished)
        return fmt_error(CKPTFMT_EINVAL, "tensor '%s': not writing (call ckptfmt_st_writer_begin first)", name);
    int i = find_entry(w, name);
    if (i < 0)
        return fmt_error(CKPTFMT_EINVAL, "'%s': no tensor '%s' was declared", w->path, name);
    wt_entry *e = &w->t[i];
    if (n > e->nbytes - e->written)
        return fmt_error(CKPTFMT_EINVAL, "'%s': tensor '%s' holds %llu bytes; %llu were written and %zu more given",
                         w->path, name, (unsigned long long)e->nbytes, (unsigned long long)e->written, n);
    int s = pwrite_all(w->fd, data, n, w->data_start + e->begin + e->written, w->path);
    if (s == CKPTFMT_OK)
        e->written += n;
    return s;
}

int ckptfmt_st_writer_finish(ckptfmt_st_writer *w, int do_fsync)
{
    if (!w || !w->begun || w->finished)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_writer_finish: nothing begun");
    for (int i = 0; i < w->n; i++)
        if (w->t[i].written != w->t[i].nbytes)
            return fmt_error(CKPTFMT_EINVAL, "'%s': tensor '%s' has %llu of its %llu bytes", w->path, w->t[i].name,
                             (unsigned long long)w->t[i].written, (unsigned long long)w->t[i].nbytes);
    if (do_fsync && fsync(w->fd) != 0)
        return fmt_error(CKPTFMT_EIO, "cannot fsync '%s': %s", w->path, strerror(errno));
    int rc = close(w->fd);
    w->fd = -1;
    if (rc != 0)
        return fmt_error(CKPTFMT_EIO, "cannot close '%s': %s", w->path, strerror(errno));
    w->finished = 1;
    return fmt_ok();
}

void st_writer_writeback(ckptfmt_st_writer *w)
{
    if (w && w->fd >= 0)
        sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* a hint: failures surface at fsync */
}

void ckptfmt_st_writer_free(ckptfmt_st_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->begun && !w->finished && w->path)
        unlink(w->path);
    for (int i = 0; i < w->n; i++)
        free(w->t[i].name);
    for (int k = 0; k < w->nmeta; k++) {
        free(w->mk[k]);
        free(w->mv[k]);
    }
    free(w->t);
    free(w->mk);
    free(w->mv);
    free(w->by_name);
    free(w->path);
    free(w);
}
