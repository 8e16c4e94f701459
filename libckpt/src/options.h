/* options.h -- save options: defaults, versions, validation. */
#ifndef CKPT_OPTIONS_H
#define CKPT_OPTIONS_H

#include "ckpt.h"

/* Copies the caller's options (NULL: defaults) into *out as this library's version, reading only
 * the fields the caller's version has, and validates them. Returns CKPT_EINVAL naming the field. */
int ckpt_save_options_copy(ckpt_save_options *out, const ckpt_save_options *in);

/* The options as a line for messages ("layout shared, piece_bytes 4194304, ..."). */
void ckpt_save_options_describe(const ckpt_save_options *o, char *buf, size_t len);

#endif
