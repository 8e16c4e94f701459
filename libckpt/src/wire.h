/* wire.h -- a byte buffer for exchanging plans and results between ranks (bounds-checked). */
#ifndef CKPT_WIRE_H
#define CKPT_WIRE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ckpt_wire {
    unsigned char *buf;
    size_t len, cap, pos; /* pos: read cursor */
    int failed;           /* out of memory while writing, or read past the end */
} ckpt_wire;

void ckpt_wire_i64(ckpt_wire *w, int64_t v);
void ckpt_wire_str(ckpt_wire *w, const char *s);
void ckpt_wire_bytes(ckpt_wire *w, const void *p, size_t n);

/* Readers: on underflow set failed and return 0 / "" / leave out unchanged. */
int64_t ckpt_wire_get_i64(ckpt_wire *w);
/* Returns a pointer into the buffer (NUL-terminated by the writer). */
const char *ckpt_wire_get_str(ckpt_wire *w);
void ckpt_wire_get_bytes(ckpt_wire *w, void *out, size_t n);

/* Wraps existing memory for reading (not owned). */
void ckpt_wire_view(ckpt_wire *w, const void *buf, size_t len);

void ckpt_wire_free(ckpt_wire *w);

#endif
