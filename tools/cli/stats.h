/* stats.h -- streaming statistics of a tensor's values, fed slab by slab: element, NaN and Inf
 * counts, and min, max, mean and population std of the finite values (two passes over each slab,
 * merged with Chan et al.'s parallel update, so memory stays one slab and precision that of a
 * two-pass algorithm). */
#ifndef CKPT_TOOLS_STATS_H
#define CKPT_TOOLS_STATS_H

#include <stdint.h>

typedef struct tstats {
    int64_t count;  /* elements seen */
    int64_t nan, inf;
    int64_t finite; /* of which finite: min/max/mean/m2 are over these */
    double min, max, mean, m2;
    int complete;   /* every element was read (set by the caller) */
} tstats;

/* Adds the values v[0..n). */
void stats_add(tstats *s, const double *v, int64_t n);
/* Population standard deviation of the finite values; NaN when there are none. */
double stats_std(const tstats *s);

#endif
