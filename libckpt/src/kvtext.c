/* kvtext.c -- see kvtext.h. */
#include "kvtext.h"

#include <string.h>

int ckpt_kv_begin(ckpt_kv_reader *r, const char *buf, size_t n, const char *magic)
{
    size_t m = strlen(magic);
    r->p = r->end = buf;
    r->line = 0;
    if (!buf || n > CKPT_KV_MAX || memchr(buf, '\0', n) || n < m + 1 || memcmp(buf, magic, m) != 0 || buf[m] != '\n')
        return -1;
    r->p = buf + m + 1;
    r->end = buf + n;
    r->line = 1;
    return 0;
}

int ckpt_kv_next(ckpt_kv_reader *r, const char **key, size_t *klen, const char **val, size_t *vlen)
{
    if (r->p >= r->end)
        return 0;
    r->line++;
    const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
    if (!nl)
        return -1; /* a truncated record */
    const char *k = r->p, *q = k;
    while (q < nl && ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_'))
        q++;
    size_t kl = (size_t)(q - k);
    if (kl == 0 || kl > 32 || q == nl || *q != ' ')
        return -1;
    const char *v = q + 1;
    size_t vl = (size_t)(nl - v);
    if (vl == 0 || vl > 1023)
        return -1;
    for (const char *c = v; c < nl; c++)
        if (*c < 0x20 || *c > 0x7e)
            return -1;
    *key = k;
    *klen = kl;
    *val = v;
    *vlen = vl;
    r->p = nl + 1;
    return 1;
}

int ckpt_kv_is(const char *key, size_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(key, name, klen) == 0;
}

int ckpt_kv_uint(const char *val, size_t vlen, uint64_t max, uint64_t *out)
{
    if (vlen == 0 || vlen > 20 || (vlen > 1 && val[0] == '0'))
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < vlen; i++) {
        if (val[i] < '0' || val[i] > '9')
            return -1;
        unsigned d = (unsigned)(val[i] - '0');
        if (d > max || v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int ckpt_kv_hex64(const char *val, size_t vlen, uint64_t *out)
{
    if (vlen != 16)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < 16; i++) {
        char c = val[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -1;
        v = (v << 4) | d;
    }
    *out = v;
    return 0;
}
