/* state.c -- what one rank holds (save) or wants (load): tensors, boxes and attributes. */
#include "state.h"
#include "dtype.h"
#include "error.h"
#include "name.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ckpt_state_create(ckpt_state **out)
{
    if (!out)
        return ckpt_error(CKPT_EINVAL, "ckpt_state_create: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return ckpt_error(CKPT_ENOMEM, "out of memory creating a state");
    return CKPT_OK;
}

static void attr_free(ckpt_attr *a)
{
    free(a->key);
    free(a->bytes);
}

void ckpt_state_clear_attrs(ckpt_state *s)
{
    for (int i = 0; i < s->nattrs; i++)
        attr_free(&s->attrs[i]);
    s->nattrs = 0;
}

void ckpt_state_free(ckpt_state *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->ntensors; i++) {
        free(s->tensors[i].name);
        free(s->tensors[i].boxes);
    }
    free(s->tensors);
    ckpt_strmap_free(&s->index);
    ckpt_state_clear_attrs(s);
    free(s->attrs);
    free(s);
}

char *ckpt_shape_str(int ndim, const int64_t *shape, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && n < len; d++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (n < len)
        snprintf(buf + n, len - n, "]");
    return buf;
}

ckpt_stensor *ckpt_state_find(const ckpt_state *s, const char *name)
{
    int64_t i = ckpt_strmap_get(&s->index, name);
    return i < 0 ? NULL : &s->tensors[i];
}

int ckpt_state_add_tensor(ckpt_state *s, const char *name, ckpt_dtype dtype, int ndim,
                          const int64_t *shape, unsigned flags)
{
    if (!s)
        return ckpt_error(CKPT_EINVAL, "ckpt_state_add_tensor: state is NULL");
    int rc = ckpt_name_check(name, "tensor name");
    if (rc)
        return rc;
    if (!ckpt_dtype_valid((int)dtype))
        return ckpt_error(CKPT_EINVAL, "tensor '%s': unknown dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > CKPT_MAX_NDIM)
        return ckpt_error(CKPT_EINVAL, "tensor '%s': ndim %d outside 0..%d", name, ndim, CKPT_MAX_NDIM);
    if (ndim > 0 && !shape)
        return ckpt_error(CKPT_EINVAL, "tensor '%s': shape is NULL", name);
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0)
            return ckpt_error(CKPT_EINVAL, "tensor '%s': dim %d has negative size %lld", name, d,
                              (long long)shape[d]);
    if (flags & ~CKPT_TENSOR_OPTIONAL)
        return ckpt_error(CKPT_EINVAL, "tensor '%s': unknown flags 0x%x", name, flags);
    ckpt_stensor *t = ckpt_state_find(s, name);
    if (t) {
        int same = t->dtype == dtype && t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++)
            same = t->shape[d] == shape[d];
        if (!same) {
            char a[256], b[256];
            return ckpt_error(CKPT_EMISMATCH,
                              "tensor '%s' declared twice: %s %s, then %s %s", name,
                              ckpt_dtype_name(t->dtype), ckpt_shape_str(t->ndim, t->shape, a, sizeof a),
                              ckpt_dtype_name(dtype), ckpt_shape_str(ndim, shape, b, sizeof b));
        }
        t->flags |= flags;
        return CKPT_OK;
    }
    if (s->ntensors == s->cap) {
        int ncap = s->cap ? s->cap * 2 : 16;
        ckpt_stensor *n = realloc(s->tensors, (size_t)ncap * sizeof *n);
        if (!n)
            return ckpt_error(CKPT_ENOMEM, "out of memory adding tensor '%s'", name);
        s->tensors = n;
        s->cap = ncap;
    }
    t = &s->tensors[s->ntensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name)
        return ckpt_error(CKPT_ENOMEM, "out of memory adding tensor '%s'", name);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    t->flags = flags;
    if (ckpt_strmap_put(&s->index, t->name, s->ntensors) != 0) {
        free(t->name);
        return ckpt_error(CKPT_ENOMEM, "out of memory adding tensor '%s'", name);
    }
    s->ntensors++;
    return CKPT_OK;
}

int ckpt_state_add_box(ckpt_state *s, const char *name, const int64_t *offset,
                       const int64_t *extent, void *data)
{
    if (!s || !name)
        return ckpt_error(CKPT_EINVAL, "ckpt_state_add_box: state or name is NULL");
    ckpt_stensor *t = ckpt_state_find(s, name);
    if (!t)
        return ckpt_error(CKPT_ENOTFOUND, "ckpt_state_add_box: tensor '%s' was not declared", name);
    if (t->ndim > 0 && (!offset || !extent))
        return ckpt_error(CKPT_EINVAL, "tensor '%s': box offset or extent is NULL", name);
    ckpt_sbox b;
    ckpt_box_set(&b.box, t->ndim, offset, extent);
    b.data = data;
    char bs[512], ss[256];
    if (!ckpt_box_in_shape(&b.box, t->shape))
        return ckpt_error(CKPT_ECOVERAGE, "tensor '%s': box %s lies outside the tensor's shape %s",
                          name, ckpt_box_str(&b.box, bs, sizeof bs),
                          ckpt_shape_str(t->ndim, t->shape, ss, sizeof ss));
    if (!data && ckpt_box_volume(&b.box) > 0)
        return ckpt_error(CKPT_EINVAL, "tensor '%s': box %s has no data (NULL)", name,
                          ckpt_box_str(&b.box, bs, sizeof bs));
    if (ckpt_box_volume(&b.box) > 0)
        for (int64_t i = 0; i < t->nboxes; i++)
            if (ckpt_box_intersect(&t->boxes[i].box, &b.box, NULL)) {
                char os[512];
                return ckpt_error(CKPT_ECOVERAGE, "tensor '%s': box %s overlaps box %s of the same rank",
                                  name, ckpt_box_str(&b.box, bs, sizeof bs),
                                  ckpt_box_str(&t->boxes[i].box, os, sizeof os));
            }
    if (t->nboxes == t->cap) {
        int64_t ncap = t->cap ? t->cap * 2 : 2;
        ckpt_sbox *n = realloc(t->boxes, (size_t)ncap * sizeof *n);
        if (!n)
            return ckpt_error(CKPT_ENOMEM, "out of memory adding a box to '%s'", name);
        t->boxes = n;
        t->cap = ncap;
    }
    t->boxes[t->nboxes++] = b;
    return CKPT_OK;
}

int ckpt_shard_box(int ndim, const int64_t *shape, int dim, int rank, int nranks, int64_t *offset,
                   int64_t *extent)
{
    if (ndim < 1 || ndim > CKPT_MAX_NDIM || !shape || !offset || !extent)
        return ckpt_error(CKPT_EINVAL, "ckpt_shard_box: need 1..%d dims and non-NULL arrays", CKPT_MAX_NDIM);
    if (dim < 0 || dim >= ndim)
        return ckpt_error(CKPT_EINVAL, "ckpt_shard_box: dim %d outside 0..%d", dim, ndim - 1);
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return ckpt_error(CKPT_EINVAL, "ckpt_shard_box: rank %d outside 0..%d", rank, nranks - 1);
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return ckpt_error(CKPT_EINVAL, "ckpt_shard_box: dim %d has negative size", d);
        offset[d] = 0;
        extent[d] = shape[d];
    }
    int64_t n = shape[dim], chunk = (n + nranks - 1) / nranks;
    int64_t lo = chunk * rank, hi = lo + chunk;
    if (lo > n)
        lo = n;
    if (hi > n)
        hi = n;
    offset[dim] = lo;
    extent[dim] = hi - lo;
    return CKPT_OK;
}

int ckpt_state_add_shard(ckpt_state *s, const char *name, ckpt_dtype dtype, int ndim,
                         const int64_t *shape, int dim, int rank, int nranks, void *data)
{
    int64_t off[CKPT_MAX_NDIM], ext[CKPT_MAX_NDIM];
    int rc = ckpt_shard_box(ndim, shape, dim, rank, nranks, off, ext);
    if (rc)
        return ckpt_error_prefix("tensor '%s': ", name ? name : "(null)");
    rc = ckpt_state_add_tensor(s, name, dtype, ndim, shape, 0);
    if (rc)
        return rc;
    return ckpt_state_add_box(s, name, off, ext, data);
}

int ckpt_state_add_replicated(ckpt_state *s, const char *name, ckpt_dtype dtype, int ndim,
                              const int64_t *shape, void *data)
{
    int rc = ckpt_state_add_tensor(s, name, dtype, ndim, shape, 0);
    if (rc)
        return rc;
    static const int64_t zeros[CKPT_MAX_NDIM] = {0};
    return ckpt_state_add_box(s, name, zeros, shape, data);
}

int ckpt_state_tensor_loaded(const ckpt_state *s, const char *name, int *loaded)
{
    if (!s || !name || !loaded)
        return ckpt_error(CKPT_EINVAL, "ckpt_state_tensor_loaded: NULL argument");
    ckpt_stensor *t = ckpt_state_find(s, name);
    if (!t)
        return ckpt_error(CKPT_ENOTFOUND, "tensor '%s' was not declared in this state", name);
    *loaded = t->loaded;
    return CKPT_OK;
}

int ckpt_state_num_tensors(const ckpt_state *s) { return s ? s->ntensors : 0; }

/* ---- attributes ---- */

/* Position of key, or -(insertion point)-1. */
static int attr_search(const ckpt_state *s, const char *key)
{
    int lo = 0, hi = s->nattrs - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(s->attrs[mid].key, key);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

int ckpt_state_set_attr(ckpt_state *s, const char *key, ckpt_attr_type type, int64_t i, double d,
                        const void *bytes, size_t len)
{
    if (!s)
        return ckpt_error(CKPT_EINVAL, "setting an attribute: state is NULL");
    int rc = ckpt_name_check(key, "attribute key");
    if (rc)
        return rc;
    if (len && !bytes)
        return ckpt_error(CKPT_EINVAL, "attribute '%s': data is NULL", key);
    ckpt_attr a = {0};
    a.type = type;
    a.i = i;
    a.d = d;
    a.len = len;
    if (type == CKPT_ATTR_STRING || type == CKPT_ATTR_BYTES) {
        a.bytes = malloc(len + 1);
        if (!a.bytes)
            return ckpt_error(CKPT_ENOMEM, "out of memory setting attribute '%s'", key);
        if (len)
            memcpy(a.bytes, bytes, len);
        ((char *)a.bytes)[len] = '\0';
    }
    int pos = attr_search(s, key);
    if (pos < 0) {
        /* keys are HDF5 paths under /attributes: "a" and "a/b" cannot both exist */
        size_t kl = strlen(key);
        for (int i = 0; i < s->nattrs; i++) {
            const char *e = s->attrs[i].key;
            size_t el = strlen(e);
            const char *shorter = el < kl ? e : key, *longer = el < kl ? key : e;
            size_t sl = el < kl ? el : kl;
            if (strncmp(shorter, longer, sl) == 0 && longer[sl] == '/') {
                free(a.bytes);
                return ckpt_error(CKPT_EINVAL,
                                  "attribute key '%s' conflicts with existing key '%s': a key cannot also be a "
                                  "group ('/'-prefix) of another", key, e);
            }
        }
    }
    if (pos >= 0) {
        a.key = s->attrs[pos].key;
        s->attrs[pos].key = NULL;
        attr_free(&s->attrs[pos]);
        s->attrs[pos] = a;
        return CKPT_OK;
    }
    a.key = strdup(key);
    if (!a.key) {
        free(a.bytes);
        return ckpt_error(CKPT_ENOMEM, "out of memory setting attribute '%s'", key);
    }
    if (s->nattrs == s->acap) {
        int ncap = s->acap ? s->acap * 2 : 8;
        ckpt_attr *n = realloc(s->attrs, (size_t)ncap * sizeof *n);
        if (!n) {
            attr_free(&a);
            return ckpt_error(CKPT_ENOMEM, "out of memory setting attribute '%s'", key);
        }
        s->attrs = n;
        s->acap = ncap;
    }
    pos = -pos - 1;
    memmove(&s->attrs[pos + 1], &s->attrs[pos], (size_t)(s->nattrs - pos) * sizeof *s->attrs);
    s->attrs[pos] = a;
    s->nattrs++;
    return CKPT_OK;
}

int ckpt_state_set_int(ckpt_state *s, const char *key, int64_t v)
{
    return ckpt_state_set_attr(s, key, CKPT_ATTR_INT, v, 0, NULL, 0);
}

int ckpt_state_set_double(ckpt_state *s, const char *key, double v)
{
    return ckpt_state_set_attr(s, key, CKPT_ATTR_DOUBLE, 0, v, NULL, 0);
}

int ckpt_state_set_string(ckpt_state *s, const char *key, const char *v)
{
    if (!v)
        return ckpt_error(CKPT_EINVAL, "attribute '%s': string is NULL", key ? key : "(null)");
    return ckpt_state_set_attr(s, key, CKPT_ATTR_STRING, 0, 0, v, strlen(v));
}

int ckpt_state_set_bytes(ckpt_state *s, const char *key, const void *data, size_t len)
{
    return ckpt_state_set_attr(s, key, CKPT_ATTR_BYTES, 0, 0, data, len);
}

static const char *attr_type_name(ckpt_attr_type t)
{
    static const char *names[] = {"int", "double", "string", "bytes"};
    return (unsigned)t < 4 ? names[t] : "?";
}

static int attr_get(const ckpt_state *s, const char *key, ckpt_attr_type want, const ckpt_attr **out)
{
    if (!s || !key)
        return ckpt_error(CKPT_EINVAL, "getting an attribute: state or key is NULL");
    int pos = attr_search(s, key);
    if (pos < 0)
        return ckpt_error(CKPT_ENOTFOUND, "no attribute '%s'", key);
    if (s->attrs[pos].type != want)
        return ckpt_error(CKPT_EMISMATCH, "attribute '%s' is %s, not %s", key,
                          attr_type_name(s->attrs[pos].type), attr_type_name(want));
    *out = &s->attrs[pos];
    return CKPT_OK;
}

int ckpt_state_get_int(const ckpt_state *s, const char *key, int64_t *v)
{
    const ckpt_attr *a;
    int rc = attr_get(s, key, CKPT_ATTR_INT, &a);
    if (rc == CKPT_OK && v)
        *v = a->i;
    return rc;
}

int ckpt_state_get_double(const ckpt_state *s, const char *key, double *v)
{
    const ckpt_attr *a;
    int rc = attr_get(s, key, CKPT_ATTR_DOUBLE, &a);
    if (rc == CKPT_OK && v)
        *v = a->d;
    return rc;
}

int ckpt_state_get_string(const ckpt_state *s, const char *key, const char **v)
{
    const ckpt_attr *a;
    int rc = attr_get(s, key, CKPT_ATTR_STRING, &a);
    if (rc == CKPT_OK && v)
        *v = a->bytes;
    return rc;
}

int ckpt_state_get_bytes(const ckpt_state *s, const char *key, const void **data, size_t *len)
{
    const ckpt_attr *a;
    int rc = attr_get(s, key, CKPT_ATTR_BYTES, &a);
    if (rc == CKPT_OK) {
        if (data)
            *data = a->bytes;
        if (len)
            *len = a->len;
    }
    return rc;
}

int ckpt_state_num_attrs(const ckpt_state *s) { return s ? s->nattrs : 0; }

int ckpt_state_attr_info(const ckpt_state *s, int i, const char **key, ckpt_attr_type *type)
{
    if (!s || i < 0 || i >= s->nattrs)
        return ckpt_error(CKPT_EINVAL, "attribute index %d out of range", i);
    if (key)
        *key = s->attrs[i].key;
    if (type)
        *type = s->attrs[i].type;
    return CKPT_OK;
}

int ckpt_state_copy_attrs(ckpt_state *dst, const ckpt_state *src)
{
    ckpt_state_clear_attrs(dst);
    for (int i = 0; i < src->nattrs; i++) {
        const ckpt_attr *a = &src->attrs[i];
        int rc = ckpt_state_set_attr(dst, a->key, a->type, a->i, a->d, a->bytes, a->len);
        if (rc)
            return rc;
    }
    return CKPT_OK;
}
