/* error.h -- the thread's last error of the formats library (ckptfmt_errmsg / ckptfmt_errcode). */
#ifndef CKPTFMT_ERROR_H
#define CKPTFMT_ERROR_H

#include <stdarg.h>

/* Records status and a printf-formatted message as the thread's last error; returns status. */
int fmt_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears the thread's last error; returns CKPTFMT_OK. */
int fmt_ok(void);
/* Prefixes the current message with a printf-formatted context ("file.safetensors: ");
 * returns the current status. */
int fmt_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
