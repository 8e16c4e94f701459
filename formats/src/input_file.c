/* Opening an input file: a regular file (not a directory, FIFO or device) and its size. */
#include "error.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int open_input(const char *path, int *fd, uint64_t *size)
{
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return fmt_error(errno == ENOENT ? CKPTFMT_ENOTFOUND : CKPTFMT_EIO, "cannot open '%s': %s", path,
                         strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return fmt_error(CKPTFMT_EIO, "'%s' is not a regular file", path);
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return CKPTFMT_OK;
}
