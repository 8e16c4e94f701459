/* saveopt.c -- see saveopt.h. */
#include "saveopt.h"

#include "args.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

int saveopt_parse_layout(const char *s, ckpt_save_options *o)
{
    if (!s)
        return 0;
    if (!strcmp(s, "file-per-rank") || !strcmp(s, "per-rank")) {
        o->layout = CKPT_LAYOUT_PER_RANK;
        return 1;
    }
    if (!strcmp(s, "shared")) {
        o->layout = CKPT_LAYOUT_SHARED;
        return 1;
    }
    const char *k = !strncmp(s, "file-per-group", 14) ? s + 14 : !strncmp(s, "group", 5) ? s + 5 : NULL;
    long n = SAVEOPT_GROUP_SIZE;
    if (!k || (*k && (*k != ':' || !args_int(k + 1, 1, 1 << 20, &n))))
        return 0;
    o->layout = CKPT_LAYOUT_GROUP;
    o->group_size = (int)n;
    return 1;
}

char *saveopt_layout_str(char *buf, size_t size, const ckpt_save_options *o)
{
    if (o->layout == CKPT_LAYOUT_GROUP)
        snprintf(buf, size, "group:%d", o->group_size);
    else
        snprintf(buf, size, "%s", ckpt_layout_name(o->layout));
    return buf;
}

int saveopt_parse_compress(const char *s, ckpt_save_options *o)
{
    if (!s)
        return 0;
    if (!strcmp(s, "none")) {
        o->compress = CKPT_COMPRESS_NONE;
        return 1;
    }
    if (strncmp(s, "zstd", 4) != 0)
        return 0;
    if (s[4] == 0) {
        ckpt_save_options d;
        ckpt_save_options_init(&d);
        o->compress = CKPT_COMPRESS_ZSTD;
        o->level = d.level;
        return 1;
    }
    long level;
    if (s[4] != ':' || !args_int(s + 5, INT_MIN, INT_MAX, &level))
        return 0;
    o->compress = CKPT_COMPRESS_ZSTD;
    o->level = (int)level;
    return 1;
}

int saveopt_check(const char *path, const ckpt_save_options *o)
{
    ckpt_writer *w = NULL;
    if (ckpt_writer_open(path, 1, o, &w) != CKPT_OK)
        return -1;
    ckpt_writer_abort(w); /* nothing was planned: no file was created */
    return 0;
}

int64_t saveopt_piece_bytes(int64_t budget, int64_t divisor)
{
    int64_t p = divisor > 0 ? budget / divisor : budget;
    if (p > SAVEOPT_MAX_PIECE)
        p = SAVEOPT_MAX_PIECE;
    if (p < SAVEOPT_MIN_PIECE)
        p = SAVEOPT_MIN_PIECE;
    return p;
}

char *saveopt_compress_str(char *buf, size_t size, const ckpt_save_options *o)
{
    if (o->compress == CKPT_COMPRESS_ZSTD)
        snprintf(buf, size, "zstd:%d", o->level);
    else
        snprintf(buf, size, "none");
    return buf;
}
