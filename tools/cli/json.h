/* json.h -- a tiny streaming JSON writer: nesting, commas, indentation and correct string escaping
 * (control characters as \u00XX, invalid UTF-8 replaced by U+FFFD, non-finite doubles as null).
 * No name collides with jansson's (json_string, json_null, ...): tools link both. */
#ifndef CKPT_TOOLS_JSON_H
#define CKPT_TOOLS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

typedef struct json_writer {
    FILE *out;
    int depth;
    int count[JSON_MAX_DEPTH]; /* values written so far at each level */
    int after_key;             /* a key was written; the next value follows it on the same line */
    int inline_depth;          /* levels from here down are written on one line (0: none) */
} json_writer;

void json_init(json_writer *w, FILE *out);
/* Ends the document with a newline. */
void json_finish(json_writer *w);

void json_begin_object(json_writer *w);
void json_end_object(json_writer *w);
void json_begin_array(json_writer *w);
void json_end_array(json_writer *w);
/* An array written on one line, e.g. a shape: [300, 70]. Close it with json_end_array. */
void json_begin_inline_array(json_writer *w);

/* Inside an object: the key of the next value. */
void json_key(json_writer *w, const char *key);

void json_str(json_writer *w, const char *s);
/* A string of n bytes that may hold NULs or invalid UTF-8. */
void json_string_n(json_writer *w, const char *s, size_t n);
void json_int(json_writer *w, int64_t v);
/* Finite doubles with 17 significant digits (round-trip); NaN and infinities as null. */
void json_double(json_writer *w, double v);
void json_bool(json_writer *w, int v);
void json_nil(json_writer *w);

/* Writes the escaped form of s[0..n) (without quotes) to out: usable on its own by text output. */
void json_escape(FILE *out, const char *s, size_t n);

#endif
