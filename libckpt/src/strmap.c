/* strmap.c -- string -> index hash map (linear probing, XXH3 hashes). */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

static size_t slot_of(const ckpt_strmap *m, const char *key)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)XXH3_64bits(key, strlen(key)) & mask;
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & mask;
    return i;
}

int64_t ckpt_strmap_get(const ckpt_strmap *m, const char *key)
{
    if (m->cap == 0)
        return -1;
    size_t i = slot_of(m, key);
    return m->keys[i] ? m->vals[i] : -1;
}

static int grow(ckpt_strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    ckpt_strmap n = {calloc(ncap, sizeof *n.keys), calloc(ncap, sizeof *n.vals), ncap, 0};
    if (!n.keys || !n.vals) {
        free(n.keys);
        free(n.vals);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            size_t j = slot_of(&n, m->keys[i]);
            n.keys[j] = m->keys[i];
            n.vals[j] = m->vals[i];
            n.count++;
        }
    ckpt_strmap_free(m);
    *m = n;
    return 0;
}

int ckpt_strmap_put(ckpt_strmap *m, const char *key, int64_t val)
{
    if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
        return -1;
    size_t i = slot_of(m, key);
    if (!m->keys[i])
        m->count++;
    m->keys[i] = key;
    m->vals[i] = val;
    return 0;
}

void ckpt_strmap_free(ckpt_strmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
