/* format.c -- see format.h. */
#include "format.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* snprintf at buf+*pos without running past size. */
#define APPEND(...)                                                                     \
    do {                                                                                \
        if (*pos < size) {                                                              \
            int n_ = snprintf(buf + *pos, size - *pos, __VA_ARGS__);                    \
            *pos = n_ < 0 ? size : (*pos + (size_t)n_ < size ? *pos + (size_t)n_ : size); \
        }                                                                               \
    } while (0)

static char *dims(char *buf, size_t size, int ndim, const int64_t *a, const int64_t *b)
{
    size_t p = 0, *pos = &p;
    if (size == 0)
        return buf;
    buf[0] = 0;
    APPEND("[");
    for (int d = 0; d < ndim; d++) {
        if (b)
            APPEND("%s%lld:%lld", d ? ", " : "", (long long)a[d], (long long)(a[d] + b[d]));
        else
            APPEND("%s%lld", d ? ", " : "", (long long)a[d]);
    }
    APPEND("]");
    return buf;
}

char *fmt_shape(char *buf, size_t size, int ndim, const int64_t *shape) { return dims(buf, size, ndim, shape, NULL); }

char *fmt_box(char *buf, size_t size, int ndim, const int64_t *offset, const int64_t *extent)
{
    return dims(buf, size, ndim, offset, extent);
}

char *fmt_size(char *buf, size_t size, int64_t bytes)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%lld B", (long long)bytes);
    else
        snprintf(buf, size, v < 10 ? "%.2f %s" : "%.1f %s", v, unit[u]);
    return buf;
}

char *fmt_ratio(char *buf, size_t size, int64_t raw, int64_t stored)
{
    if (stored <= 0)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.2f", (double)raw / (double)stored);
    return buf;
}

char *fmt_hex(char *buf, size_t size, const void *data, size_t n, size_t max)
{
    const unsigned char *b = data;
    size_t p = 0, *pos = &p;
    if (size == 0)
        return buf;
    buf[0] = 0;
    for (size_t i = 0; i < n && i < max; i++)
        APPEND("%02x", b[i]);
    if (n > max)
        APPEND("...");
    return buf;
}

void fmt_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p == '\r')
            fputs("\\r", out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

char *fmt_double(char *buf, size_t size, double v)
{
    if (isnan(v))
        snprintf(buf, size, "nan");
    else if (isinf(v))
        snprintf(buf, size, v < 0 ? "-inf" : "inf");
    else
        snprintf(buf, size, "%.17g", v);
    return buf;
}

int parse_size(const char *s, int64_t *out)
{
    if (!s || !*s)
        return 0;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return 0;
    int64_t mul = 1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': mul = 1LL << 10; break;
        case 'm': case 'M': mul = 1LL << 20; break;
        case 'g': case 'G': mul = 1LL << 30; break;
        default: return 0;
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end)
            return 0;
    }
    if (v > INT64_MAX / mul)
        return 0;
    *out = v * mul;
    return 1;
}

int parse_tolerance(const char *s, double *out)
{
    if (!s || !*s)
        return 0;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < 0)
        return 0;
    *out = v;
    return 1;
}
