/* The safetensors files of one model: a single file, or the shards a model.safetensors.index.json
 * lists (each checked against the index: every listed tensor in its file, every tensor of a file
 * listed under that file), opened together and searched by tensor name. */
#include "error.h"
#include "internal.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return NULL;
    char *d = strdup(dirname(copy));
    free(copy);
    return d;
}

void model_files_free(model_files *m)
{
    for (int k = 0; k < m->n; k++)
        free(m->paths[k]);
    free(m->paths);
    free(m->dir);
    ckptfmt_st_index_free(m->index);
    memset(m, 0, sizeof *m);
}

int model_files_find(const char *src, model_files *out)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(src, &st) != 0)
        return fmt_error(errno == ENOENT ? CKPTFMT_ENOTFOUND : CKPTFMT_EIO, "cannot open '%s': %s", src,
                         strerror(errno));
    char *index_path = NULL, *single = NULL;
    if (S_ISDIR(st.st_mode)) {
        out->dir = strdup(src);
        index_path = join(src, INDEX_NAME);
        single = join(src, SINGLE_NAME);
        if (!out->dir || !index_path || !single) {
            free(index_path);
            free(single);
            model_files_free(out);
            return fmt_error(CKPTFMT_ENOMEM, "out of memory");
        }
        if (stat(index_path, &st) != 0) {
            free(index_path);
            index_path = NULL;
            if (stat(single, &st) != 0) {
                free(single);
                model_files_free(out);
                return fmt_error(CKPTFMT_ENOTFOUND, "'%s' holds neither %s nor %s", src, SINGLE_NAME, INDEX_NAME);
            }
        }
    } else if (ends_with(src, ".json")) {
        index_path = strdup(src);
        out->dir = dir_of(src);
    } else {
        single = strdup(src);
        out->dir = dir_of(src);
    }
    if (!out->dir || (!index_path && !single)) {
        free(index_path);
        free(single);
        model_files_free(out);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    if (!index_path) {
        out->paths = malloc(sizeof *out->paths);
        if (!out->paths) {
            free(single);
            model_files_free(out);
            return fmt_error(CKPTFMT_ENOMEM, "out of memory");
        }
        out->paths[0] = single;
        out->n = 1;
        return fmt_ok();
    }
    free(single);
    int s = ckptfmt_st_index_read(index_path, &out->index);
    free(index_path);
    if (s != CKPTFMT_OK) {
        model_files_free(out);
        return s;
    }
    int n = ckptfmt_st_index_num_files(out->index);
    out->paths = calloc(n ? (size_t)n : 1, sizeof *out->paths);
    if (!out->paths) {
        model_files_free(out);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    for (int k = 0; k < n; k++) {
        if (!(out->paths[k] = join(out->dir, ckptfmt_st_index_file(out->index, k)))) {
            model_files_free(out);
            return fmt_error(CKPTFMT_ENOMEM, "out of memory");
        }
        out->n++;
    }
    return fmt_ok();
}

void model_set_close(model_set *s)
{
    for (int k = 0; s->f && k < s->files.n; k++)
        ckptfmt_st_close(s->f[k]);
    free(s->f);
    model_files_free(&s->files);
    memset(s, 0, sizeof *s);
}

int model_set_open(const char *src, model_set *out)
{
    memset(out, 0, sizeof *out);
    int s = model_files_find(src, &out->files);
    if (s != CKPTFMT_OK)
        return s;
    out->f = calloc((size_t)(out->files.n ? out->files.n : 1), sizeof *out->f);
    if (!out->f) {
        model_set_close(out);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    }
    for (int k = 0; k < out->files.n; k++) {
        if ((s = ckptfmt_st_open(out->files.paths[k], &out->f[k])) != CKPTFMT_OK) {
            model_set_close(out);
            return s;
        }
        out->total += ckptfmt_st_num_tensors(out->f[k]);
    }
    const ckptfmt_st_index *x = out->files.index;
    if (!x)
        return fmt_ok();
    /* the index and the files agree: each listed tensor is in its file, each file's tensors are listed
     * under it (so no name is in two files) */
    for (int i = 0; i < ckptfmt_st_index_num_tensors(x); i++) {
        const char *name, *file;
        ckptfmt_st_index_tensor(x, i, &name, &file);
        int k = 0, j;
        while (k < out->files.n && strcmp(ckptfmt_st_index_file(x, k), file) != 0)
            k++;
        if (ckptfmt_st_find(out->f[k], name, &j) != CKPTFMT_OK) {
            s = fmt_error(CKPTFMT_EMALFORMED, "the index lists tensor '%s' in '%s', which does not hold it", name,
                          out->files.paths[k]);
            model_set_close(out);
            return s;
        }
    }
    for (int k = 0; k < out->files.n; k++)
        for (int i = 0; i < ckptfmt_st_num_tensors(out->f[k]); i++) {
            ckptfmt_st_tensor t;
            ckptfmt_st_tensor_info(out->f[k], i, &t);
            /* binary search of the index's sorted names */
            int lo = 0, hi = ckptfmt_st_index_num_tensors(x) - 1, found = -1;
            while (lo <= hi) {
                int mid = lo + (hi - lo) / 2;
                const char *nm;
                ckptfmt_st_index_tensor(x, mid, &nm, NULL);
                int c = strcmp(nm, t.name);
                if (c == 0) {
                    found = mid;
                    break;
                }
                if (c < 0)
                    lo = mid + 1;
                else
                    hi = mid - 1;
            }
            const char *file = NULL;
            if (found >= 0)
                ckptfmt_st_index_tensor(x, found, NULL, &file);
            if (!file || strcmp(file, ckptfmt_st_index_file(x, k)) != 0) {
                s = fmt_error(CKPTFMT_EMALFORMED, "tensor '%s' of '%s' is %s the index", t.name, out->files.paths[k],
                              file ? "listed under another file in" : "not listed in");
                model_set_close(out);
                return s;
            }
        }
    return fmt_ok();
}

int model_set_find(const model_set *s, const char *name, ckptfmt_st_file **file, int *i)
{
    for (int k = 0; k < s->files.n; k++)
        if (ckptfmt_st_find(s->f[k], name, i) == CKPTFMT_OK) {
            *file = s->f[k];
            return CKPTFMT_OK;
        }
    return fmt_error(CKPTFMT_ENOTFOUND, "no tensor '%s' in '%s'", name, s->files.n == 1 ? s->files.paths[0] : s->files.dir);
}
