/* name.c -- names double as HDF5 paths in the shared layout and the attribute group, so they
 * must be printable and free of empty, "." and ".." components. */
#include "name.h"
#include "error.h"

#include <string.h>

int ckpt_name_check(const char *name, const char *what)
{
    if (!name)
        return ckpt_error(CKPT_EINVAL, "%s is NULL", what);
    size_t n = strlen(name);
    if (n == 0)
        return ckpt_error(CKPT_EINVAL, "%s is empty", what);
    if (n > CKPT_MAX_NAME)
        return ckpt_error(CKPT_EINVAL, "%s '%.40s...' is %zu bytes long (at most %d)", what, name, n,
                          CKPT_MAX_NAME);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return ckpt_error(CKPT_EINVAL, "%s '%s' contains control character 0x%02x at byte %zu",
                              what, name, c, i);
    }
    const char *p = name;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return ckpt_error(CKPT_EINVAL,
                              "%s '%s' has an empty, '.' or '..' component (leading, trailing or "
                              "doubled '/'?)", what, name);
        if (!slash)
            break;
        p = slash + 1;
    }
    return CKPT_OK;
}
