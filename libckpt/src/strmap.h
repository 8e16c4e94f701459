/* strmap.h -- an open-addressing hash map from strings to indexes (the strings are borrowed). */
#ifndef CKPT_STRMAP_H
#define CKPT_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct ckpt_strmap {
    const char **keys;
    int64_t *vals;
    size_t cap; /* power of two, 0 when empty */
    size_t count;
} ckpt_strmap;

/* Looks key up: its value, or -1 when absent. */
int64_t ckpt_strmap_get(const ckpt_strmap *m, const char *key);

/* Inserts or replaces; key must outlive the map. Returns 0, or -1 when out of memory. */
int ckpt_strmap_put(ckpt_strmap *m, const char *key, int64_t val);

/* Frees the table (not the keys). */
void ckpt_strmap_free(ckpt_strmap *m);

#endif
