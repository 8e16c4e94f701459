/* plan.c -- see plan.h. */
#include "plan.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One directive line, before grouping by tensor. */
typedef struct rec {
    char *name;
    long line;
    int shard_dim; /* >= 0 for a shard line */
    plan_box box;
} rec;

typedef struct parser {
    const char *path;
    long line;
    char *err;
    size_t errlen;
    plan_lookup_fn lookup;
    void *ctx;
} parser;

static int perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perr(parser *p, const char *fmt, ...)
{
    int n = snprintf(p->err, p->errlen, "%s:%ld: ", p->path, p->line);
    if (n < 0 || (size_t)n >= p->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static char *skip_space(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return s;
}

/* A quoted name at s (after the opening quote) unescaped in place; *end past the closing quote. */
static int parse_quoted(parser *p, char *s, char **name, char **end)
{
    char *o = s, *i = s;
    while (*i && *i != '"') {
        if (*i == '\\') {
            i++;
            if (*i == '"' || *i == '\\') {
                *o++ = *i++;
            } else if (*i == 'x' && isxdigit((unsigned char)i[1]) && isxdigit((unsigned char)i[2])) {
                char hex[3] = {i[1], i[2], 0};
                long c = strtol(hex, NULL, 16);
                if (c == 0)
                    return perr(p, "\\x00 in a quoted name (names cannot hold NUL)");
                *o++ = (char)c;
                i += 3;
            } else if (*i == 'n' || *i == 't') {
                *o++ = *i == 'n' ? '\n' : '\t';
                i++;
            } else {
                return perr(p, "unknown escape in a quoted name");
            }
        } else {
            *o++ = *i++;
        }
    }
    if (*i != '"')
        return perr(p, "quoted name without a closing quote");
    *o = 0;
    *name = s;
    *end = i + 1;
    return 0;
}

static int parse_i64(const char *s, const char *e, int64_t *out)
{
    if (s == e || e - s > 18)
        return 0;
    int64_t v = 0;
    for (const char *c = s; c < e; c++) {
        if (!isdigit((unsigned char)*c))
            return 0;
        v = v * 10 + (*c - '0');
    }
    *out = v;
    return 1;
}

/* BOX (whitespace already removed, may be empty) of a tensor of ndim dims. */
static int parse_box(parser *p, char *s, const ckpt_tensor_info *t, plan_box *b)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s[n - 1] = 0;
        s++;
        n -= 2;
    }
    if (n == 0) {
        for (int d = 0; d < t->ndim; d++) {
            b->off[d] = 0;
            b->ext[d] = t->shape[d];
        }
        return 0;
    }
    if (t->ndim == 0)
        return perr(p, "tensor '%s' is 0-D: give no box", t->name);
    int d = 0;
    char *c = s;
    for (;;) {
        char *comma = strchr(c, ',');
        char *end = comma ? comma : c + strlen(c);
        char *colon = memchr(c, ':', (size_t)(end - c));
        int64_t start, stop;
        if (!colon || !parse_i64(c, colon, &start) || !parse_i64(colon + 1, end, &stop))
            return perr(p, "box '%s': expected start:stop per dim, e.g. 0:150,0:70", s);
        if (d == t->ndim)
            return perr(p, "box '%s' has more dims than tensor '%s' (%d)", s, t->name, t->ndim);
        if (stop <= start)
            return perr(p, "box '%s': dim %d is empty (%lld:%lld); a rank that holds nothing needs no line", s,
                        d, (long long)start, (long long)stop);
        b->off[d] = start;
        b->ext[d] = stop - start;
        d++;
        if (!comma)
            break;
        c = comma + 1;
    }
    if (d != t->ndim)
        return perr(p, "box '%s' has %d dim%s; tensor '%s' has %d", s, d, d == 1 ? "" : "s", t->name, t->ndim);
    return 0;
}

static int parse_line(parser *p, char *line, int world, rec *out, int *have)
{
    *have = 0;
    char *s = skip_space(line);
    if (!*s || *s == '#')
        return 0;
    char *name = NULL, *rest = NULL;
    if (*s == '"') {
        if (parse_quoted(p, s + 1, &name, &rest))
            return -1;
        if (*rest && !isspace((unsigned char)*rest))
            return perr(p, "expected a space after the quoted name");
    } else {
        name = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        if (*s)
            *s++ = 0;
        rest = s;
    }
    char *hash = strchr(rest, '#');
    if (hash)
        *hash = 0;
    ckpt_tensor_info t;
    if (!name[0])
        return perr(p, "empty tensor name");
    if (p->lookup(p->ctx, name, &t) != 0)
        return perr(p, "no tensor '%s' in the source checkpoint", name);
    rest = skip_space(rest);
    char *word = rest;
    while (*rest && !isspace((unsigned char)*rest))
        rest++;
    if (*rest)
        *rest++ = 0;
    if (!*word)
        return perr(p, "tensor '%s': expected a rank or 'shard DIM' after the name", name);
    memset(out, 0, sizeof *out);
    out->line = p->line;
    out->shard_dim = -1;
    if (!strcmp(word, "shard")) {
        rest = skip_space(rest);
        char *e = rest;
        while (*e && !isspace((unsigned char)*e))
            e++;
        int64_t dim;
        if (!parse_i64(rest, e, &dim))
            return perr(p, "tensor '%s': expected 'shard DIM' with DIM a dim number", name);
        if (*skip_space(e))
            return perr(p, "tensor '%s': unexpected text after 'shard %lld'", name, (long long)dim);
        if (dim >= t.ndim)
            return perr(p, "tensor '%s' has %d dims: no dim %lld to shard along", name, t.ndim, (long long)dim);
        out->shard_dim = (int)dim;
    } else {
        int64_t rank;
        if (!parse_i64(word, word + strlen(word), &rank))
            return perr(p, "tensor '%s': '%s' is neither a rank nor 'shard'", name, word);
        if (rank >= world)
            return perr(p, "tensor '%s': rank %lld outside 0..%d (--world-size %d)", name, (long long)rank,
                        world - 1, world);
        out->box.rank = (int)rank;
        /* the box: the rest of the line without its spaces */
        char *o = rest;
        for (char *c = rest; *c; c++)
            if (!isspace((unsigned char)*c))
                *o++ = *c;
        *o = 0;
        if (parse_box(p, rest, &t, &out->box))
            return -1;
    }
    if (!(out->name = strdup(name)))
        return perr(p, "out of memory");
    *have = 1;
    return 0;
}

static int rec_cmp(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int entry_cmp(const void *key, const void *e)
{
    return strcmp((const char *)key, ((const plan_entry *)e)->name);
}

/* Groups the sorted records into entries (taking over their names). */
static int group(parser *p, rec *rs, int nr, plan *out)
{
    for (int i = 0; i < nr;) {
        int j = i;
        while (j < nr && !strcmp(rs[j].name, rs[i].name))
            j++;
        for (int k = i; k < j; k++)
            if ((rs[k].shard_dim >= 0 || rs[i].shard_dim >= 0) && k > i) {
                p->line = rs[k].line;
                return perr(p, "tensor '%s' already has %s on line %ld; a tensor takes box lines or one shard "
                            "line", rs[k].name, rs[i].shard_dim >= 0 ? "a shard line" : "box lines", rs[i].line);
            }
        if (out->n == out->cap) {
            int cap = out->cap ? 2 * out->cap : 16;
            plan_entry *v = realloc(out->v, (size_t)cap * sizeof *v);
            if (!v)
                return perr(p, "out of memory");
            out->v = v;
            out->cap = cap;
        }
        plan_entry *e = &out->v[out->n];
        memset(e, 0, sizeof *e);
        e->shard_dim = rs[i].shard_dim;
        if (e->shard_dim < 0) {
            e->boxes = malloc((size_t)(j - i) * sizeof *e->boxes);
            if (!e->boxes)
                return perr(p, "out of memory");
            for (int k = i; k < j; k++)
                e->boxes[e->nboxes++] = rs[k].box;
            e->cap = e->nboxes;
        }
        e->name = rs[i].name;
        rs[i].name = NULL;
        out->n++;
        i = j;
    }
    return 0;
}

int plan_parse(const char *buf, size_t n, const char *name, plan_lookup_fn lookup, void *ctx, int world_size,
               plan *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    parser p = {name, 0, err, errlen, lookup, ctx};
    if (n > PLAN_MAX_BYTES) {
        snprintf(err, errlen, "plan file '%s' is %zu bytes; at most %d are read", name, n, PLAN_MAX_BYTES);
        return -1;
    }
    char *text = malloc(n + 1); /* lines are cut and unescaped in place */
    if (!text) {
        snprintf(err, errlen, "out of memory reading plan file '%s'", name);
        return -1;
    }
    if (n)
        memcpy(text, buf, n);
    text[n] = '\0';
    rec *rs = NULL;
    int nr = 0, cap = 0, rc = 0;
    for (char *line = text; rc == 0 && line < text + n;) {
        char *nl = memchr(line, '\n', (size_t)(text + n - line));
        char *end = nl ? nl : text + n;
        p.line++;
        if (memchr(line, '\0', (size_t)(end - line))) {
            rc = perr(&p, "NUL byte in the line (a plan file is text)");
            break;
        }
        *end = '\0';
        rec one;
        int have;
        if ((rc = parse_line(&p, line, world_size, &one, &have)) == 0 && have) {
            if (nr == cap) {
                int ncap = cap ? 2 * cap : 64;
                rec *v = ncap > 0 ? realloc(rs, (size_t)ncap * sizeof *v) : NULL;
                if (!v) {
                    free(one.name);
                    rc = perr(&p, "out of memory");
                    break;
                }
                rs = v;
                cap = ncap;
            }
            rs[nr++] = one;
        }
        line = end + 1;
    }
    free(text);
    if (rc == 0) {
        if (nr > 0)
            qsort(rs, (size_t)nr, sizeof *rs, rec_cmp);
        rc = group(&p, rs, nr, out);
    }
    for (int i = 0; i < nr; i++)
        free(rs[i].name);
    free(rs);
    return rc;
}

static int reader_lookup(void *ctx, const char *name, ckpt_tensor_info *info)
{
    const ckpt_reader *r = ctx;
    int i;
    return ckpt_reader_find(r, name, &i) == CKPT_OK && ckpt_reader_tensor_info(r, i, info) == CKPT_OK ? 0 : -1;
}

int plan_read(const char *path, const ckpt_reader *r, int world_size, plan *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open plan file '%s': %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            if (cap > PLAN_MAX_BYTES)
                break; /* plan_parse says it is too large */
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (!buf) {
        snprintf(err, errlen, "out of memory reading plan file '%s'", path);
        return -1;
    }
    if (bad) {
        snprintf(err, errlen, "cannot read plan file '%s': %s", path, strerror(e));
        free(buf);
        return -1;
    }
    int rc = plan_parse(buf, n, path, reader_lookup, (void *)r, world_size, out, err, errlen);
    free(buf);
    return rc;
}

const plan_entry *plan_find(const plan *p, const char *name)
{
    if (!p || p->n == 0)
        return NULL;
    return bsearch(name, p->v, (size_t)p->n, sizeof *p->v, entry_cmp);
}

void plan_free(plan *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->v[i].name);
        free(p->v[i].boxes);
    }
    free(p->v);
    memset(p, 0, sizeof *p);
}
