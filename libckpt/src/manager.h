/* manager.h -- internals of the checkpoint manager (public API in ckpt.h): directory names and
 * the retention rule, kept apart from the file system so they can be tested on their own. */
#ifndef CKPT_MANAGER_H
#define CKPT_MANAGER_H

#include "ckpt.h"

#include <stdint.h>

/* Parses a directory name of a manager's root: returns 1 for "step-%08lld" (canonical: no
 * leading zero beyond 8 digits) with *temporary = 0, for that followed by ".tmp-..." with
 * *temporary = 1, and for the displaced copy of an interrupted overwrite,
 * "step-%08lld.tmp-<nonce>.old" (commit.h), with *temporary = 2; 0 for any other name. */
int ckpt_manager_parse_name(const char *name, int64_t *step, int *temporary);

/* Retention: given entries sorted by step, sets keep[i] = 1 for every entry that survives.
 * Only CKPT_ENTRY_COMMITTED entries can be dropped; the newest committed one and the one of
 * step `protect` (-1: none) always survive; keep_last == 0 keeps everything. */
void ckpt_manager_select(const ckpt_manager_options *o, const ckpt_manager_entry *e, int n, int64_t protect,
                         int *keep);

#endif
