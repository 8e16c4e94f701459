/* error.h -- the calling thread's last error: a status and a message naming what and where. */
#ifndef CKPT_ERROR_H
#define CKPT_ERROR_H

#include "ckpt.h"

#include <stddef.h>

/* Longest message kept; longer ones are cut with "...". */
#define CKPT_ERRMSG_MAX 2048

/* Records status and a printf-style message as this thread's last error; returns status so
 * callers can write `return ckpt_error(CKPT_EINVAL, "...")`. */
int ckpt_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends context to the current message ("loading 'x': <old message>"), keeps the status. */
int ckpt_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Clears this thread's last error. */
void ckpt_error_clear(void);

/* Appends the innermost HDF5 error-stack message (if any) to buf; used to name HDF5 detail. */
void ckpt_error_hdf5_detail(char *buf, size_t len);

#endif
