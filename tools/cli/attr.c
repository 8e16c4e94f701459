/* attr.c -- see attr.h. */
#include "attr.h"
#include "format.h"

#include <stdlib.h>

const char *attr_type_name(ckpt_attr_type type)
{
    switch (type) {
    case CKPT_ATTR_INT: return "int";
    case CKPT_ATTR_DOUBLE: return "double";
    case CKPT_ATTR_STRING: return "string";
    case CKPT_ATTR_BYTES: return "bytes";
    }
    return "?";
}

void attr_print(FILE *out, const ckpt_state *attrs, const char *key, ckpt_attr_type type)
{
    char buf[64];
    switch (type) {
    case CKPT_ATTR_INT: {
        int64_t v = 0;
        ckpt_state_get_int(attrs, key, &v);
        fprintf(out, "%lld", (long long)v);
        break;
    }
    case CKPT_ATTR_DOUBLE: {
        double v = 0;
        ckpt_state_get_double(attrs, key, &v);
        fputs(fmt_double(buf, sizeof buf, v), out);
        break;
    }
    case CKPT_ATTR_STRING: {
        const char *v = "";
        ckpt_state_get_string(attrs, key, &v);
        fmt_quoted(out, v ? v : "");
        break;
    }
    case CKPT_ATTR_BYTES: {
        const void *v = NULL;
        size_t n = 0;
        ckpt_state_get_bytes(attrs, key, &v, &n);
        fprintf(out, "%zu bytes", n);
        if (n)
            fprintf(out, ": %s", fmt_hex(buf, sizeof buf, v, n, 16));
        break;
    }
    default:
        fputs("?", out);
    }
}

void attr_json(json_writer *w, const ckpt_state *attrs, const char *key, ckpt_attr_type type)
{
    switch (type) {
    case CKPT_ATTR_INT: {
        int64_t v = 0;
        ckpt_state_get_int(attrs, key, &v);
        json_int(w, v);
        break;
    }
    case CKPT_ATTR_DOUBLE: {
        double v = 0;
        ckpt_state_get_double(attrs, key, &v);
        json_double(w, v);
        break;
    }
    case CKPT_ATTR_STRING: {
        const char *v = "";
        ckpt_state_get_string(attrs, key, &v);
        json_str(w, v ? v : "");
        break;
    }
    case CKPT_ATTR_BYTES: {
        const void *v = NULL;
        size_t n = 0;
        ckpt_state_get_bytes(attrs, key, &v, &n);
        size_t shown = n < ATTR_JSON_HEX_MAX ? n : ATTR_JSON_HEX_MAX;
        char *hex = malloc(2 * shown + 4);
        json_begin_object(w);
        json_key(w, "bytes");
        json_int(w, (int64_t)n);
        json_key(w, "hex");
        if (hex) {
            fmt_hex(hex, 2 * shown + 4, v, shown, shown);
            json_str(w, hex);
        } else {
            json_nil(w);
        }
        if (n > shown) {
            json_key(w, "truncated");
            json_bool(w, 1);
        }
        json_end_object(w);
        free(hex);
        break;
    }
    default:
        json_nil(w);
    }
}
