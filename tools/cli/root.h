/* root.h -- a directory of checkpoints (a checkpoint manager's root): telling one from a
 * checkpoint, and listing its checkpoints with their state, size, step and the latest one (the
 * library's rule, the same as ckpt_manager_latest's). */
#ifndef CKPT_TOOLS_ROOT_H
#define CKPT_TOOLS_ROOT_H

#include <stdint.h>

typedef enum root_state { ROOT_COMMITTED, ROOT_INCOMPLETE, ROOT_CORRUPT } root_state;

typedef struct root_entry {
    char *name;       /* subdirectory name */
    root_state state; /* committed: opens; incomplete: no COMMITTED marker; corrupt: fails otherwise */
    int64_t bytes;    /* sum of the sizes of its files */
    int has_step;
    int64_t step;     /* the "step" int attribute, when committed and present */
    int latest;       /* what ckpt_manager_latest would resume from (ckpt_manager_peek_latest) */
    char *error;      /* why it did not open (incomplete/corrupt), else NULL */
} root_entry;

typedef struct root_list {
    root_entry *v;
    int n;
} root_list;

/* 1 when `path` is a directory that looks like a checkpoint itself (has COMMITTED or index.h5). */
int root_is_checkpoint(const char *path);

/* Lists the subdirectories of `path` that look like checkpoints (COMMITTED, index.h5, data.h5, rank-*.h5
 * inside, or a ".tmp-" save in progress), sorted by name, opening each. Returns 0 and fills *out
 * (possibly empty) when path is a readable directory, -1 otherwise. */
int root_list_read(const char *path, root_list *out);
void root_list_free(root_list *l);

const char *root_state_name(root_state s);

#endif
