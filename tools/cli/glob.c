/* glob.c -- see glob.h. */
#include "glob.h"

#include <fnmatch.h>

int glob_match(const char *pattern, const char *name)
{
    if (!pattern)
        return 1;
    return fnmatch(pattern, name, 0) == 0;
}
