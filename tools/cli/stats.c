/* stats.c -- see stats.h. */
#include "stats.h"

#include <math.h>

void stats_add(tstats *s, const double *v, int64_t n)
{
    int64_t nf = 0;
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    s->count += n;
    for (int64_t i = 0; i < n; i++) {
        double x = v[i];
        if (isnan(x)) {
            s->nan++;
            continue;
        }
        if (isinf(x)) {
            s->inf++;
            continue;
        }
        nf++;
        sum += x;
        if (x < lo)
            lo = x;
        if (x > hi)
            hi = x;
    }
    if (nf == 0)
        return;
    double mean = sum / (double)nf, m2 = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(v[i]))
            m2 += (v[i] - mean) * (v[i] - mean);
    if (s->finite == 0) {
        s->min = lo;
        s->max = hi;
        s->mean = mean;
        s->m2 = m2;
        s->finite = nf;
        return;
    }
    if (lo < s->min)
        s->min = lo;
    if (hi > s->max)
        s->max = hi;
    double na = (double)s->finite, nb = (double)nf, nt = na + nb, delta = mean - s->mean;
    s->mean += delta * nb / nt;
    s->m2 += m2 + delta * delta * na * nb / nt;
    s->finite += nf;
}

double stats_std(const tstats *s) { return s->finite ? sqrt(s->m2 / (double)s->finite) : NAN; }
