/* error.c -- thread-local last error (libgit2/SQLite style: status return + retrievable message). */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <hdf5.h>

static _Thread_local int last_status;
static _Thread_local char last_msg[CKPT_ERRMSG_MAX];

static void finish_truncated(int n)
{
    if (n >= (int)sizeof last_msg)
        memcpy(last_msg + sizeof last_msg - 4, "...", 4);
}

int ckpt_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    finish_truncated(n);
    last_status = status;
    return status;
}

int ckpt_error_prefix(const char *fmt, ...)
{
    char old[CKPT_ERRMSG_MAX];
    memcpy(old, last_msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && n < (int)sizeof last_msg)
        n += snprintf(last_msg + n, sizeof last_msg - (size_t)n, "%s", old);
    finish_truncated(n);
    return last_status;
}

void ckpt_error_clear(void)
{
    last_status = CKPT_OK;
    last_msg[0] = '\0';
}

const char *ckpt_errmsg(void) { return last_msg; }

int ckpt_errcode(void) { return last_status; }

const char *ckpt_status_name(int status)
{
    switch (status) {
    case CKPT_OK: return "CKPT_OK";
    case CKPT_EINVAL: return "CKPT_EINVAL";
    case CKPT_ENOMEM: return "CKPT_ENOMEM";
    case CKPT_EIO: return "CKPT_EIO";
    case CKPT_ENOTFOUND: return "CKPT_ENOTFOUND";
    case CKPT_EINCOMPLETE: return "CKPT_EINCOMPLETE";
    case CKPT_ECORRUPT: return "CKPT_ECORRUPT";
    case CKPT_EMISMATCH: return "CKPT_EMISMATCH";
    case CKPT_ECOVERAGE: return "CKPT_ECOVERAGE";
    case CKPT_EVERSION: return "CKPT_EVERSION";
    case CKPT_EMPI: return "CKPT_EMPI";
    case CKPT_EEXIST: return "CKPT_EEXIST";
    case CKPT_EUNSUPPORTED: return "CKPT_EUNSUPPORTED";
    case CKPT_EBUSY: return "CKPT_EBUSY";
    default: return "CKPT_E?";
    }
}

/* Walk callback (upward: the innermost error, where it was detected, comes first): remember it,
 * on one line. */
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    char *out = data;
    if (n == 0 && e->desc && e->desc[0]) {
        snprintf(out, 256, "%s (in %s)", e->desc, e->func_name ? e->func_name : "?");
        for (char *c = out; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
    }
    return 0;
}

void ckpt_error_hdf5_detail(char *buf, size_t len)
{
    char inner[256] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, inner);
    if (inner[0])
        snprintf(buf, len, "; HDF5: %s", inner);
    else if (len)
        buf[0] = '\0';
}
