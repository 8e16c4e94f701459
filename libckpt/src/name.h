/* name.h -- validation of tensor names and attribute keys. */
#ifndef CKPT_NAME_H
#define CKPT_NAME_H

/* CKPT_OK when `name` is a valid tensor name or attribute key (see ckpt.h), else
 * CKPT_EINVAL with a message naming `what` ("tensor name", "attribute key"). */
int ckpt_name_check(const char *name, const char *what);

#endif
