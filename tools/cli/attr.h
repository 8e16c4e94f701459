/* attr.h -- a checkpoint attribute's value spelled for people (text) and for programs (JSON):
 *   int     1234                      1234
 *   double  0.00029999999999999997    (%.17g)            0.00029999999999999997 (null if not finite)
 *   string  "gpt tiny" (C escapes)    "gpt tiny"
 *   bytes   40 bytes: 00070e...       {"bytes": 40, "hex": "00070e..."} (hex of at most 1024 bytes,
 *           (first 16 bytes in hex)    "truncated": true beyond) */
#ifndef CKPT_TOOLS_ATTR_H
#define CKPT_TOOLS_ATTR_H

#include "json.h"

#include <ckpt.h>
#include <stdio.h>

#define ATTR_JSON_HEX_MAX 1024

/* "int", "double", "string", "bytes". */
const char *attr_type_name(ckpt_attr_type type);
/* The value of attribute `key` (of type `type`) as text. */
void attr_print(FILE *out, const ckpt_state *attrs, const char *key, ckpt_attr_type type);
/* The value as a JSON value. */
void attr_json(json_writer *w, const ckpt_state *attrs, const char *key, ckpt_attr_type type);

#endif
