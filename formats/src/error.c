/* The thread-local last error of ckpt_formats. */
#include "error.h"

#include "ckptfmt.h"

#include <stdio.h>
#include <string.h>

#define MSG_MAX 4096

static _Thread_local char msg[MSG_MAX];
static _Thread_local int code;

int fmt_error(int status, const char *fmt, ...)
{
    /* through a copy: the arguments may be the current message itself (ckptfmt_errmsg()) */
    char tmp[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(msg, tmp, sizeof msg);
    code = status;
    return status;
}

int fmt_ok(void)
{
    msg[0] = 0;
    code = CKPTFMT_OK;
    return CKPTFMT_OK;
}

int fmt_error_prefix(const char *fmt, ...)
{
    char head[MSG_MAX], old[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, msg, sizeof old);
    size_t h = strlen(head);
    if (h >= sizeof msg)
        h = sizeof msg - 1;
    memcpy(msg, head, h);
    size_t o = strnlen(old, sizeof msg - 1 - h);
    memcpy(msg + h, old, o);
    msg[h + o] = 0;
    return code;
}

const char *ckptfmt_errmsg(void) { return msg; }

int ckptfmt_errcode(void) { return code; }

const char *ckptfmt_status_name(int status)
{
    switch (status) {
    case CKPTFMT_OK: return "CKPTFMT_OK";
    case CKPTFMT_EINVAL: return "CKPTFMT_EINVAL";
    case CKPTFMT_ENOMEM: return "CKPTFMT_ENOMEM";
    case CKPTFMT_EIO: return "CKPTFMT_EIO";
    case CKPTFMT_ENOTFOUND: return "CKPTFMT_ENOTFOUND";
    case CKPTFMT_EMALFORMED: return "CKPTFMT_EMALFORMED";
    case CKPTFMT_EUNSUPPORTED: return "CKPTFMT_EUNSUPPORTED";
    case CKPTFMT_EEXIST: return "CKPTFMT_EEXIST";
    case CKPTFMT_ECKPT: return "CKPTFMT_ECKPT";
    case CKPTFMT_EINTERRUPTED: return "CKPTFMT_EINTERRUPTED";
    default: return "CKPTFMT_E?";
    }
}
