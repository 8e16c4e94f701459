/* JSON documents in files, through jansson: bounded reads, duplicate keys refused, positioned
 * messages; writes that reach the disk. */
#include "error.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int read_json_file(const char *path, size_t max_bytes, json_t **out)
{
    int fd;
    uint64_t fsize;
    int s = open_input(path, &fd, &fsize);
    if (s != CKPTFMT_OK)
        return s;
    if (fsize > max_bytes) {
        close(fd);
        return fmt_error(CKPTFMT_EMALFORMED, "'%s' is %llu bytes, above the %zu-byte limit for this file", path,
                         (unsigned long long)fsize, max_bytes);
    }
    size_t n = (size_t)fsize, got = 0;
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory reading '%s'", path);
    }
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(buf);
            close(fd);
            return fmt_error(CKPTFMT_EIO, "cannot read '%s': %s", path, r < 0 ? strerror(e) : "file shrank");
        }
        got += (size_t)r;
    }
    close(fd);
    json_error_t je;
    json_t *doc = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!doc)
        return fmt_error(CKPTFMT_EMALFORMED, "'%s' is not valid JSON: %s (line %d, column %d)", path, je.text,
                         je.line, je.column);
    *out = doc;
    return fmt_ok();
}

int write_json_file(json_t *doc, const char *path, size_t flags)
{
    char *text = json_dumps(doc, flags);
    if (!text)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory encoding '%s'", path);
    size_t n = strlen(text);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(text);
        return fmt_error(e == EEXIST ? CKPTFMT_EEXIST : CKPTFMT_EIO, "cannot create '%s': %s", path, strerror(e));
    }
    size_t done = 0;
    int s = CKPTFMT_OK;
    while (done <= n && s == CKPTFMT_OK) {
        /* the text, then its final newline */
        const char *p = done < n ? text + done : "\n";
        size_t len = done < n ? n - done : 1;
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            s = fmt_error(CKPTFMT_EIO, "cannot write '%s': %s", path, w < 0 ? strerror(errno) : "short write");
        else
            done += (size_t)w;
    }
    free(text);
    if (s == CKPTFMT_OK && fsync(fd) != 0)
        s = fmt_error(CKPTFMT_EIO, "cannot fsync '%s': %s", path, strerror(errno));
    if (close(fd) != 0 && s == CKPTFMT_OK)
        s = fmt_error(CKPTFMT_EIO, "cannot close '%s': %s", path, strerror(errno));
    if (s != CKPTFMT_OK)
        unlink(path);
    return s == CKPTFMT_OK ? fmt_ok() : s;
}
