/* fault.c -- reads CKPT_FAULT (a comma-separated list of points) for injected failures. */
#include "fault.h"

#include <stdlib.h>
#include <string.h>

int ckpt_fault(const char *point)
{
    const char *v = getenv("CKPT_FAULT");
    if (!v || !*v)
        return 0;
    size_t n = strlen(point);
    for (const char *p = v; (p = strstr(p, point)) != NULL; p += n)
        if ((p == v || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}
