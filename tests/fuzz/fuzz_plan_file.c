/* fuzz_plan_file.c -- the resharding plan files of shard-reshard (tools/cli/plan.c; text a user
 * or a script writes: untrusted) on arbitrary bytes, against a fixed set of tensors (0-D, 1-D,
 * 2-D, 8-D, zero-size, a name with spaces and one starting with '#'), world size 4: no crash, no
 * leak, and a plan it accepts only names known tensors, ranks inside the world, boxes with the
 * tensor's number of dims and positive extents, one shard line or box lines per tensor, sorted. */
#include "tools/cli/plan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int ndim;
    int64_t shape[8];
} tensors[] = {
    {"scalar", 0, {0}},
    {"v", 1, {7}},
    {"big", 2, {300, 70}},
    {"e", 2, {0, 4}},
    {"deep", 8, {2, 1, 3, 1, 2, 1, 1, 2}},
    {"a b", 1, {5}},
    {"#hash", 1, {3}},
    {"model/wte", 2, {16, 8}},
};
#define NT (int)(sizeof tensors / sizeof tensors[0])

static int lookup(void *ctx, const char *name, ckpt_tensor_info *info)
{
    (void)ctx;
    for (int i = 0; i < NT; i++)
        if (!strcmp(tensors[i].name, name)) {
            memset(info, 0, sizeof *info);
            info->name = tensors[i].name;
            info->dtype = CKPT_F32;
            info->ndim = tensors[i].ndim;
            memcpy(info->shape, tensors[i].shape, sizeof info->shape);
            return 0;
        }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    plan p;
    char err[512];
    err[0] = '\0';
    int rc = plan_parse((const char *)data, size, "fuzz.plan", lookup, NULL, 4, &p, err, sizeof err);
    if (rc != 0) {
        if (strncmp(err, "fuzz.plan", 9) != 0)
            abort(); /* every refusal names the file */
        plan_free(&p);
        return 0;
    }
    for (int i = 0; i < p.n; i++) {
        const plan_entry *e = &p.v[i];
        ckpt_tensor_info t;
        if (lookup(NULL, e->name, &t) != 0 || plan_find(&p, e->name) != e || (i > 0 && strcmp(p.v[i - 1].name, e->name) >= 0))
            abort();
        if (e->shard_dim >= 0 && (e->shard_dim >= t.ndim || e->nboxes != 0))
            abort();
        if (e->shard_dim < 0 && e->nboxes < 1)
            abort();
        for (int b = 0; b < e->nboxes; b++) {
            const plan_box *x = &e->boxes[b];
            if (x->rank < 0 || x->rank >= 4)
                abort();
            for (int d = 0; d < t.ndim; d++)
                if (x->off[d] < 0 || x->ext[d] < 0 || (x->ext[d] == 0 && t.shape[d] != 0) ||
                    x->off[d] > INT64_MAX - x->ext[d])
                    abort();
        }
    }
    plan_free(&p);
    return 0;
}
