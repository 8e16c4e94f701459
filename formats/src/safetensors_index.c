/* model.safetensors.index.json, the sharded form's table of contents (as Hugging Face writes it:
 * {"metadata": {"total_size": N}, "weight_map": {tensor: file}}, keys sorted, indent 2). */
#include "error.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct ckptfmt_st_index {
    char **names, **files; /* by name */
    int n;
    char **distinct;       /* sorted */
    int ndistinct;
    int64_t total_size;
};

typedef struct pair {
    const char *name, *file;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    return strcmp(((const pair *)a)->name, ((const pair *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int plain_shard_name(const char *s)
{
    size_t n = strlen(s), ext = strlen(".safetensors");
    return n > ext && n <= 255 && !strchr(s, '/') && strcmp(s + n - ext, ".safetensors") == 0;
}

void ckptfmt_st_index_free(ckptfmt_st_index *x)
{
    if (!x)
        return;
    for (int i = 0; i < x->n; i++) {
        free(x->names[i]);
        free(x->files[i]);
    }
    for (int k = 0; k < x->ndistinct; k++)
        free(x->distinct[k]);
    free(x->names);
    free(x->files);
    free(x->distinct);
    free(x);
}

int ckptfmt_st_index_read(const char *path, ckptfmt_st_index **out)
{
    if (!path || !out)
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_index_read: NULL argument");
    *out = NULL;
    json_t *doc;
    int s = read_json_file(path, CKPTFMT_ST_MAX_HEADER, &doc);
    if (s != CKPTFMT_OK)
        return s;
    ckptfmt_st_index *x = calloc(1, sizeof *x);
    pair *pairs = NULL;
    json_t *wm = json_object_get(doc, "weight_map"), *meta = json_object_get(doc, "metadata");
    if (!x) {
        s = fmt_error(CKPTFMT_ENOMEM, "out of memory");
        goto out;
    }
    x->total_size = -1;
    if (!json_is_object(doc) || !json_is_object(wm)) {
        s = fmt_error(CKPTFMT_EMALFORMED, "%s: no \"weight_map\" object", path);
        goto out;
    }
    if (meta && !json_is_object(meta)) {
        s = fmt_error(CKPTFMT_EMALFORMED, "%s: \"metadata\" is not an object", path);
        goto out;
    }
    json_t *ts = meta ? json_object_get(meta, "total_size") : NULL;
    if (ts) {
        if (!json_is_integer(ts) || json_integer_value(ts) < 0) {
            s = fmt_error(CKPTFMT_EMALFORMED, "%s: \"metadata\".\"total_size\" is not a non-negative integer", path);
            goto out;
        }
        x->total_size = (int64_t)json_integer_value(ts);
    }
    size_t n = json_object_size(wm);
    pairs = malloc((n ? n : 1) * sizeof *pairs);
    x->names = calloc(n ? n : 1, sizeof *x->names);
    x->files = calloc(n ? n : 1, sizeof *x->files);
    x->distinct = calloc(n ? n : 1, sizeof *x->distinct);
    if (!pairs || !x->names || !x->files || !x->distinct) {
        s = fmt_error(CKPTFMT_ENOMEM, "out of memory for %zu index entries", n);
        goto out;
    }
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v)
    {
        pairs[k].name = key;
        pairs[k].file = json_is_string(v) ? json_string_value(v) : NULL;
        k++;
    }
    if (n)
        qsort(pairs, n, sizeof *pairs, cmp_pair);
    for (k = 0; k < n; k++) {
        if (!pairs[k].file) {
            s = fmt_error(CKPTFMT_EMALFORMED, "%s: \"weight_map\" entry of tensor '%s' is not a string", path,
                          pairs[k].name);
            goto out;
        }
        if (!plain_shard_name(pairs[k].file)) {
            s = fmt_error(CKPTFMT_EMALFORMED,
                          "%s: \"weight_map\" entry of tensor '%s': '%s' is not a plain *.safetensors file name in the "
                          "index's directory",
                          path, pairs[k].name, pairs[k].file);
            goto out;
        }
        x->names[k] = strdup(pairs[k].name);
        x->files[k] = strdup(pairs[k].file);
        x->n++;
        if (!x->names[k] || !x->files[k]) {
            s = fmt_error(CKPTFMT_ENOMEM, "out of memory");
            goto out;
        }
    }
    /* the distinct files */
    char **tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp) {
        s = fmt_error(CKPTFMT_ENOMEM, "out of memory");
        goto out;
    }
    if (n) {
        memcpy(tmp, x->files, n * sizeof *tmp);
        qsort(tmp, n, sizeof *tmp, cmp_str);
    }
    for (k = 0; k < n; k++)
        if (k == 0 || strcmp(tmp[k], tmp[k - 1]) != 0) {
            if (!(x->distinct[x->ndistinct] = strdup(tmp[k]))) {
                free(tmp);
                s = fmt_error(CKPTFMT_ENOMEM, "out of memory");
                goto out;
            }
            x->ndistinct++;
        }
    free(tmp);
    *out = x;
    x = NULL;
    s = fmt_ok();
out:
    free(pairs);
    ckptfmt_st_index_free(x);
    json_decref(doc);
    return s;
}

int ckptfmt_st_index_num_files(const ckptfmt_st_index *x) { return x ? x->ndistinct : 0; }

const char *ckptfmt_st_index_file(const ckptfmt_st_index *x, int k)
{
    return x && k >= 0 && k < x->ndistinct ? x->distinct[k] : NULL;
}

int ckptfmt_st_index_num_tensors(const ckptfmt_st_index *x) { return x ? x->n : 0; }

int ckptfmt_st_index_tensor(const ckptfmt_st_index *x, int i, const char **name, const char **file)
{
    if (!x || i < 0 || i >= x->n)
        return fmt_error(CKPTFMT_EINVAL, "no index entry %d", i);
    if (name)
        *name = x->names[i];
    if (file)
        *file = x->files[i];
    return CKPTFMT_OK;
}

int64_t ckptfmt_st_index_total_size(const ckptfmt_st_index *x) { return x ? x->total_size : -1; }

int ckptfmt_st_index_write(const char *path, int n, const char *const *names, const char *const *files,
                           uint64_t total_size)
{
    if (!path || n < 0 || (n && (!names || !files)))
        return fmt_error(CKPTFMT_EINVAL, "ckptfmt_st_index_write: bad argument");
    json_t *doc = json_object(), *meta = json_object(), *wm = json_object();
    int bad = !doc || !meta || !wm;
    bad |= !bad && json_object_set_new(meta, "total_size", json_integer((json_int_t)total_size)) != 0;
    for (int i = 0; !bad && i < n; i++)
        bad |= json_object_set_new(wm, names[i], json_string(files[i])) != 0;
    if (!bad) {
        bad |= json_object_set_new(doc, "metadata", meta) != 0;
        meta = NULL;
        bad |= json_object_set_new(doc, "weight_map", wm) != 0;
        wm = NULL;
    }
    int s = bad ? fmt_error(CKPTFMT_EINVAL, "%s: cannot encode the index (names not valid UTF-8, or out of memory)",
                            path)
                : write_json_file(doc, path, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(meta);
    json_decref(wm);
    json_decref(doc);
    return s;
}
