/* format.h -- how the tools spell shapes, boxes, byte counts and raw bytes in text output. */
#ifndef CKPT_TOOLS_FORMAT_H
#define CKPT_TOOLS_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Enough for 8 dims of two 19-digit numbers each. */
#define FMT_BOX_LEN 512

/* "[300, 70]"; "[]" for 0-D. Returns buf. */
char *fmt_shape(char *buf, size_t size, int ndim, const int64_t *shape);
/* "[0:4, 2:6]" (start:stop per dim); "[]" for 0-D. Returns buf. */
char *fmt_box(char *buf, size_t size, int ndim, const int64_t *offset, const int64_t *extent);
/* Human size: "812 B", "82.0 KiB", "1.50 GiB". Returns buf. */
char *fmt_size(char *buf, size_t size, int64_t bytes);
/* raw/stored as "%.2f", "-" when stored is 0. Returns buf. */
char *fmt_ratio(char *buf, size_t size, int64_t raw, int64_t stored);
/* Lowercase hex of data[0..n), at most `max` bytes, "..." appended when n > max. Returns buf
 * (size must be at least 2*max + 4). */
char *fmt_hex(char *buf, size_t size, const void *data, size_t n, size_t max);
/* A double quoted string with C escapes (\n, \", \\, \xNN for other control bytes). */
void fmt_quoted(FILE *out, const char *s);
/* A double as %.17g ("nan", "inf", "-inf" for the others). Returns buf. */
char *fmt_double(char *buf, size_t size, double v);

/* Parses "123", "64K", "32M", "1G" (binary multiples) into *out; 0 when malformed. */
int parse_size(const char *s, int64_t *out);
/* Parses a finite, non-negative double; 0 when malformed. */
int parse_tolerance(const char *s, double *out);

#endif
