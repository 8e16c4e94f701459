/* wire.c -- growable byte buffer with typed, bounds-checked reads. */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

static int reserve(ckpt_wire *w, size_t n)
{
    if (w->failed)
        return -1;
    if (w->len + n <= w->cap)
        return 0;
    size_t ncap = w->cap ? w->cap : 256;
    while (ncap < w->len + n)
        ncap *= 2;
    unsigned char *b = realloc(w->buf, ncap);
    if (!b) {
        w->failed = 1;
        return -1;
    }
    w->buf = b;
    w->cap = ncap;
    return 0;
}

void ckpt_wire_bytes(ckpt_wire *w, const void *p, size_t n)
{
    if (reserve(w, n) == 0 && n) {
        memcpy(w->buf + w->len, p, n);
        w->len += n;
    }
}

void ckpt_wire_i64(ckpt_wire *w, int64_t v) { ckpt_wire_bytes(w, &v, sizeof v); }

void ckpt_wire_str(ckpt_wire *w, const char *s)
{
    size_t n = strlen(s) + 1;
    ckpt_wire_i64(w, (int64_t)n);
    ckpt_wire_bytes(w, s, n);
}

void ckpt_wire_get_bytes(ckpt_wire *w, void *out, size_t n)
{
    if (w->failed || n > w->len - w->pos) {
        w->failed = 1;
        return;
    }
    memcpy(out, w->buf + w->pos, n);
    w->pos += n;
}

int64_t ckpt_wire_get_i64(ckpt_wire *w)
{
    int64_t v = 0;
    ckpt_wire_get_bytes(w, &v, sizeof v);
    return v;
}

const char *ckpt_wire_get_str(ckpt_wire *w)
{
    int64_t n = ckpt_wire_get_i64(w);
    if (w->failed || n < 1 || (size_t)n > w->len - w->pos || w->buf[w->pos + (size_t)n - 1] != '\0') {
        w->failed = 1;
        return "";
    }
    const char *s = (const char *)w->buf + w->pos;
    w->pos += (size_t)n;
    return s;
}

void ckpt_wire_view(ckpt_wire *w, const void *buf, size_t len)
{
    memset(w, 0, sizeof *w);
    w->buf = (unsigned char *)buf;
    w->len = len;
}

void ckpt_wire_free(ckpt_wire *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}
