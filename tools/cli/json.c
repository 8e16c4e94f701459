/* json.c -- see json.h. */
#include "json.h"

#include <math.h>
#include <string.h>

void json_init(json_writer *w, FILE *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
}

static void indent(json_writer *w)
{
    fputc('\n', w->out);
    for (int i = 0; i < w->depth; i++)
        fputs("  ", w->out);
}

/* Separator and indentation before a value (or a key) at the current level. */
static void before_value(json_writer *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth > 0) {
        int first = w->count[w->depth - 1] == 0;
        w->count[w->depth - 1]++;
        if (w->inline_depth && w->depth >= w->inline_depth) {
            if (!first)
                fputs(", ", w->out);
            return;
        }
        if (!first)
            fputc(',', w->out);
        indent(w);
    }
}

static void open_level(json_writer *w, char c)
{
    before_value(w);
    fputc(c, w->out);
    if (w->depth < JSON_MAX_DEPTH) {
        w->count[w->depth] = 0;
        w->depth++;
    }
}

static void close_level(json_writer *w, char c)
{
    if (w->depth > 0) {
        int had = w->count[w->depth - 1];
        int was_inline = w->inline_depth && w->depth >= w->inline_depth;
        if (w->inline_depth == w->depth)
            w->inline_depth = 0;
        w->depth--;
        if (had && !was_inline)
            indent(w);
    }
    fputc(c, w->out);
}

void json_begin_object(json_writer *w) { open_level(w, '{'); }
void json_end_object(json_writer *w) { close_level(w, '}'); }
void json_begin_array(json_writer *w) { open_level(w, '['); }
void json_end_array(json_writer *w) { close_level(w, ']'); }

void json_begin_inline_array(json_writer *w)
{
    open_level(w, '[');
    if (!w->inline_depth)
        w->inline_depth = w->depth;
}

void json_finish(json_writer *w)
{
    fputc('\n', w->out);
    fflush(w->out);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    unsigned cp = c & (0x3Fu >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

void json_escape(FILE *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        switch (c) {
        case '"': fputs("\\\"", out); i++; continue;
        case '\\': fputs("\\\\", out); i++; continue;
        case '\b': fputs("\\b", out); i++; continue;
        case '\f': fputs("\\f", out); i++; continue;
        case '\n': fputs("\\n", out); i++; continue;
        case '\r': fputs("\\r", out); i++; continue;
        case '\t': fputs("\\t", out); i++; continue;
        default: break;
        }
        if (c < 0x20 || c == 0x7F) {
            fprintf(out, "\\u%04x", c);
            i++;
            continue;
        }
        size_t len = utf8_len(s + i, n - i);
        if (len == 0) {
            fputs("\\ufffd", out); /* one replacement character per invalid byte */
            i++;
            continue;
        }
        fwrite(s + i, 1, len, out);
        i += len;
    }
}

void json_key(json_writer *w, const char *key)
{
    before_value(w);
    fputc('"', w->out);
    json_escape(w->out, key, strlen(key));
    fputs("\": ", w->out);
    w->after_key = 1;
}

void json_string_n(json_writer *w, const char *s, size_t n)
{
    before_value(w);
    fputc('"', w->out);
    json_escape(w->out, s, n);
    fputc('"', w->out);
}

void json_str(json_writer *w, const char *s)
{
    if (!s) {
        json_nil(w);
        return;
    }
    json_string_n(w, s, strlen(s));
}

void json_int(json_writer *w, int64_t v)
{
    before_value(w);
    fprintf(w->out, "%lld", (long long)v);
}

void json_double(json_writer *w, double v)
{
    before_value(w);
    if (!isfinite(v)) {
        fputs("null", w->out);
        return;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    /* keep it a JSON number that reads back as a float: 1e+20 is fine, "1" stays an integer */
    fputs(buf, w->out);
}

void json_bool(json_writer *w, int v)
{
    before_value(w);
    fputs(v ? "true" : "false", w->out);
}

void json_nil(json_writer *w)
{
    before_value(w);
    fputs("null", w->out);
}
