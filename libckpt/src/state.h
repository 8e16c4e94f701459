/* state.h -- the in-memory ckpt_state: declared tensors, their boxes, typed attributes. */
#ifndef CKPT_STATE_H
#define CKPT_STATE_H

#include "box.h"
#include "ckpt.h"
#include "strmap.h"

typedef struct ckpt_sbox {
    ckpt_box box;
    void *data;
} ckpt_sbox;

typedef struct ckpt_stensor {
    char *name;
    ckpt_dtype dtype;
    int ndim;
    int64_t shape[CKPT_MAX_NDIM];
    unsigned flags;
    ckpt_sbox *boxes;
    int64_t nboxes, cap;
    int loaded;
} ckpt_stensor;

typedef struct ckpt_attr {
    char *key;
    ckpt_attr_type type;
    int64_t i;
    double d;
    void *bytes; /* string (NUL-terminated) or bytes */
    size_t len;  /* bytes: length; string: strlen */
} ckpt_attr;

struct ckpt_state {
    ckpt_stensor *tensors;
    int ntensors, cap;
    ckpt_strmap index; /* name -> position in tensors */
    ckpt_attr *attrs;  /* sorted by key */
    int nattrs, acap;
};

/* The tensor called name, or NULL. */
ckpt_stensor *ckpt_state_find(const ckpt_state *s, const char *name);

/* Replaces dst's attributes with copies of src's. */
int ckpt_state_copy_attrs(ckpt_state *dst, const ckpt_state *src);

/* Removes every attribute. */
void ckpt_state_clear_attrs(ckpt_state *s);

/* Sets an attribute of any type (internal form of the ckpt_state_set_* calls). */
int ckpt_state_set_attr(ckpt_state *s, const char *key, ckpt_attr_type type, int64_t i, double d,
                        const void *bytes, size_t len);

/* Formats a shape as "[4, 6]" into buf. */
char *ckpt_shape_str(int ndim, const int64_t *shape, char *buf, size_t len);

#endif
