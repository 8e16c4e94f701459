/* kvtext.h -- the small line-based text records of the library (the COMMITTED marker, the
 * manager's lock record): a magic first line, then "key value" lines, each ending in '\n'.
 * Every byte is untrusted: the reader works on a bounded buffer and checks everything. */
#ifndef CKPT_KVTEXT_H
#define CKPT_KVTEXT_H

#include <stddef.h>
#include <stdint.h>

/* Longest record the library reads or writes. */
#define CKPT_KV_MAX 4096

typedef struct ckpt_kv_reader {
    const char *p, *end;
    long line; /* 1-based number of the line last returned */
} ckpt_kv_reader;

/* Starts reading buf[0..n): 0 when its first line is exactly `magic`, -1 otherwise (also for a
 * buffer over CKPT_KV_MAX bytes or holding a NUL byte). */
int ckpt_kv_begin(ckpt_kv_reader *r, const char *buf, size_t n, const char *magic);

/* The next line as key [a-z0-9_]{1,32}, one space, value (1..1023 printable ASCII bytes, spaces
 * allowed): 1 with key/value pointers and lengths (not NUL-terminated), 0 at the end, -1 when
 * the line is malformed (or the last one lacks its '\n'). */
int ckpt_kv_next(ckpt_kv_reader *r, const char **key, size_t *klen, const char **val, size_t *vlen);

/* 1 when the key of length klen is `name`. */
int ckpt_kv_is(const char *key, size_t klen, const char *name);

/* Values: a decimal integer 0..max without sign or leading zeros; exactly 16 hex digits. Return 0
 * or -1. */
int ckpt_kv_uint(const char *val, size_t vlen, uint64_t max, uint64_t *out);
int ckpt_kv_hex64(const char *val, size_t vlen, uint64_t *out);

#endif
