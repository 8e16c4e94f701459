/* dest.c -- see dest.h. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "dest.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* 1 when the resolved path p is dir or below it. */
static int below(const char *p, const char *dir)
{
    size_t n = strlen(dir);
    if (!strcmp(dir, "/"))
        return 1;
    return strncmp(p, dir, n) == 0 && (p[n] == 0 || p[n] == '/');
}

int dest_inside(const char *dst, const char *src)
{
    char rs[PATH_MAX], rd[PATH_MAX];
    if (!realpath(src, rs))
        return 0;
    if (realpath(dst, rd)) /* dst exists */
        return below(rd, rs);
    /* dst does not exist (yet): where its parent directory is */
    char *copy = strdup(dst);
    if (!copy)
        return 0;
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = 0;
    char *slash = strrchr(copy, '/');
    const char *parent = ".";
    if (slash == copy)
        parent = "/";
    else if (slash) {
        *slash = 0;
        parent = copy;
    }
    int inside = realpath(parent, rd) && below(rd, rs);
    free(copy);
    return inside;
}
