/* box.c -- N-D box geometry and strided copies between boxes. */
#include "box.h"
#include "dtype.h"

#include <stdio.h>
#include <string.h>

void ckpt_box_set(ckpt_box *b, int ndim, const int64_t *off, const int64_t *ext)
{
    memset(b, 0, sizeof *b);
    b->ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        b->off[d] = off ? off[d] : 0;
        b->ext[d] = ext[d];
    }
}

int64_t ckpt_box_volume(const ckpt_box *b)
{
    int64_t v = 1;
    for (int d = 0; d < b->ndim; d++)
        v *= b->ext[d];
    return v;
}

int ckpt_box_equal(const ckpt_box *a, const ckpt_box *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->off[d] != b->off[d] || a->ext[d] != b->ext[d])
            return 0;
    return 1;
}

int ckpt_box_intersect(const ckpt_box *a, const ckpt_box *b, ckpt_box *out)
{
    ckpt_box r;
    memset(&r, 0, sizeof r);
    r.ndim = a->ndim;
    int nonempty = a->ndim == b->ndim;
    for (int d = 0; d < a->ndim && nonempty; d++) {
        int64_t lo = a->off[d] > b->off[d] ? a->off[d] : b->off[d];
        int64_t ea = a->off[d] + a->ext[d], eb = b->off[d] + b->ext[d];
        int64_t hi = ea < eb ? ea : eb;
        r.off[d] = lo;
        r.ext[d] = hi > lo ? hi - lo : 0;
        if (r.ext[d] == 0)
            nonempty = 0;
    }
    if (out)
        *out = r;
    return nonempty && ckpt_box_volume(a) > 0 && ckpt_box_volume(b) > 0;
}

int ckpt_box_contains(const ckpt_box *outer, const ckpt_box *inner)
{
    if (outer->ndim != inner->ndim)
        return 0;
    for (int d = 0; d < outer->ndim; d++)
        if (inner->off[d] < outer->off[d] ||
            inner->off[d] + inner->ext[d] > outer->off[d] + outer->ext[d])
            return 0;
    return 1;
}

int ckpt_box_in_shape(const ckpt_box *b, const int64_t *shape)
{
    for (int d = 0; d < b->ndim; d++)
        if (b->off[d] < 0 || b->ext[d] < 0 || b->off[d] > shape[d] || b->ext[d] > shape[d] - b->off[d])
            return 0;
    return 1;
}

int ckpt_box_cmp(const ckpt_box *a, const ckpt_box *b)
{
    if (a->ndim != b->ndim)
        return a->ndim < b->ndim ? -1 : 1;
    for (int d = 0; d < a->ndim; d++)
        if (a->off[d] != b->off[d])
            return a->off[d] < b->off[d] ? -1 : 1;
    for (int d = 0; d < a->ndim; d++)
        if (a->ext[d] != b->ext[d])
            return a->ext[d] < b->ext[d] ? -1 : 1;
    return 0;
}

char *ckpt_box_str(const ckpt_box *b, char *buf, size_t len)
{
    size_t n = 0;
    n += (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < b->ndim && n < len; d++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld:%lld", d ? ", " : "", (long long)b->off[d],
                              (long long)(b->off[d] + b->ext[d]));
    if (n < len)
        snprintf(buf + n, len - n, "]");
    return buf;
}

int64_t ckpt_box_linear(const ckpt_box *b, const int64_t *p)
{
    int64_t idx = 0;
    for (int d = 0; d < b->ndim; d++)
        idx = idx * b->ext[d] + (p[d] - b->off[d]);
    return idx;
}

int ckpt_box_region_contiguous(const ckpt_box *b, const ckpt_box *region)
{
    /* Contiguous iff, past the first dim whose region extent exceeds 1, every
     * further dim is taken whole. */
    int d = 0;
    while (d < b->ndim && region->ext[d] == 1)
        d++;
    for (d = d + 1; d < b->ndim; d++)
        if (region->ext[d] != b->ext[d])
            return 0;
    return 1;
}

void ckpt_box_copy(const ckpt_box *region, const ckpt_box *src_box, const void *src,
                   ckpt_dtype sdt, const ckpt_box *dst_box, void *dst, ckpt_dtype ddt)
{
    int nd = region->ndim;
    if (ckpt_box_volume(region) == 0)
        return;
    size_t ss = ckpt_dtype_size(sdt), ds = ckpt_dtype_size(ddt);
    /* Merge trailing dims taken whole in both boxes into one contiguous run. */
    int inner = nd; /* dims [inner, nd) form the run */
    int64_t run = 1;
    while (inner > 0) {
        int d = inner - 1;
        run *= region->ext[d];
        inner--;
        if (region->ext[d] != src_box->ext[d] || region->ext[d] != dst_box->ext[d])
            break;
    }
    /* strides in elements of each box */
    int64_t sstr[CKPT_MAX_NDIM], dstr[CKPT_MAX_NDIM];
    int64_t s = 1, t = 1;
    for (int d = nd - 1; d >= 0; d--) {
        sstr[d] = s;
        dstr[d] = t;
        s *= src_box->ext[d];
        t *= dst_box->ext[d];
    }
    int64_t so = 0, doff = 0;
    for (int d = 0; d < nd; d++) {
        so += (region->off[d] - src_box->off[d]) * sstr[d];
        doff += (region->off[d] - dst_box->off[d]) * dstr[d];
    }
    const unsigned char *sp = src;
    unsigned char *dp = dst;
    int64_t idx[CKPT_MAX_NDIM] = {0};
    for (;;) {
        if (sdt == ddt)
            memcpy(dp + doff * (int64_t)ds, sp + so * (int64_t)ss, (size_t)run * ss);
        else
            ckpt_convert(sdt, sp + so * (int64_t)ss, ddt, dp + doff * (int64_t)ds, (size_t)run);
        /* odometer over dims [0, inner) */
        int d = inner - 1;
        while (d >= 0) {
            idx[d]++;
            so += sstr[d];
            doff += dstr[d];
            if (idx[d] < region->ext[d])
                break;
            so -= sstr[d] * region->ext[d];
            doff -= dstr[d] * region->ext[d];
            idx[d] = 0;
            d--;
        }
        if (d < 0)
            break;
    }
}
