/* dest.h -- the destination of a writing tool must not lie inside one of its sources (the
 * writer creates its temporary directory beside the destination, so a destination inside a
 * checkpoint directory would modify that checkpoint). */
#ifndef CKPT_TOOLS_DEST_H
#define CKPT_TOOLS_DEST_H

/* 1 when `dst` (which need not exist) is `src` or lies below it, both resolved through
 * symbolic links and "..", as far as they exist; 0 otherwise (also when `src` does not exist). */
int dest_inside(const char *dst, const char *src);

#endif
