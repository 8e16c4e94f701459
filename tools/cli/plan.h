/* plan.h -- a resharding plan file: which ranks hold which boxes of which tensors in the
 * checkpoint shard-reshard writes. Text, one directive per line:
 *
 *   # a comment (also after a directive); blank lines are ignored
 *   NAME RANK BOX        RANK holds BOX of tensor NAME; BOX is start:stop per dim, separated
 *                        by commas, optionally in brackets, spaces allowed: 0:150,0:70 or
 *                        [0:150, 0:70] (as shard-inspect --shards prints boxes)
 *   NAME RANK            RANK holds the whole tensor (the only form for a 0-D tensor)
 *   NAME shard DIM       an even Shard(DIM) over the ranks (ckpt_shard_box; ranks whose share
 *                        is empty hold nothing)
 *
 * NAME is a tensor name, or a double-quoted string with C escapes (\" \\ \xNN) for names with
 * spaces or a leading '#' or '"'. A tensor takes either box lines (as many as wanted; the same
 * box on several ranks is a replica, written once) or one shard line. Whether the boxes of a
 * tensor cover it exactly once is the library's check, made when the checkpoint is planned. */
#ifndef CKPT_TOOLS_PLAN_H
#define CKPT_TOOLS_PLAN_H

#include <ckpt.h>

#include <stddef.h>
#include <stdint.h>

typedef struct plan_box {
    int rank;
    int64_t off[CKPT_MAX_NDIM], ext[CKPT_MAX_NDIM];
} plan_box;

typedef struct plan_entry {
    char *name;
    int shard_dim; /* >= 0: a shard line; -1: box lines */
    plan_box *boxes;
    int nboxes, cap;
} plan_entry;

typedef struct plan {
    plan_entry *v; /* sorted by name after plan_read */
    int n, cap;
} plan;

/* Largest plan file read (bytes). */
#define PLAN_MAX_BYTES (64 << 20)

/* How a parser learns a tensor's dtype and shape: 0 and *info filled, or -1 when absent. */
typedef int (*plan_lookup_fn)(void *ctx, const char *name, ckpt_tensor_info *info);

/* Parses a plan held in buf[0..n) (untrusted text; `name` names it in errors) for the tensors
 * lookup knows and a world size. Returns 0, or -1 with a one-line reason in err
 * ("NAME:LINE: ..."). Free with plan_free either way. */
int plan_parse(const char *buf, size_t n, const char *name, plan_lookup_fn lookup, void *ctx, int world_size,
               plan *out, char *err, size_t errlen);

/* Reads the plan file at `path` (plan_parse) for the tensors of `r` and a world size. */
int plan_read(const char *path, const ckpt_reader *r, int world_size, plan *out, char *err, size_t errlen);
/* The entry of a tensor, NULL when the plan does not name it. */
const plan_entry *plan_find(const plan *p, const char *name);
void plan_free(plan *p);

#endif
