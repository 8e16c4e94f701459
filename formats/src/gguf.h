/* gguf.h -- what the GGUF modules of ckpt_formats share and do not export. */
#ifndef CKPTFMT_GGUF_H
#define CKPTFMT_GGUF_H

#include <stddef.h>
#include <stdint.h>

/* 1 when the n bytes at s are well-formed UTF-8 (shortest forms, no surrogates, <= U+10FFFF). */
int gguf_utf8_valid(const void *s, size_t n);

#endif
