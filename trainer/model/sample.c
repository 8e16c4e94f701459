/* Temperature sampling from one position's logits with a caller-owned SplitMix64 state. */
#include "gpt.h"

#include <math.h>

int gpt_sample_token(const float *logits, int V, float temperature, uint64_t *rng_state)
{
    int best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best])
            best = v;
    if (!(temperature > 0.0f))
        return best;
    /* one SplitMix64 draw -> u in [0,1) */
    uint64_t z = (*rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    double u = (double)(z >> 11) * (1.0 / 9007199254740992.0);
    const double inv_t = 1.0 / temperature, mx = logits[best];
    double sum = 0.0;
    for (int v = 0; v < V; v++)
        sum += exp((logits[v] - mx) * inv_t);
    double target = u * sum, cdf = 0.0;
    int last = best;
    for (int v = 0; v < V; v++) {
        double w = exp((logits[v] - mx) * inv_t);
        cdf += w;
        if (w > 0.0)
            last = v;
        if (target < cdf)
            return v;
    }
    return last; /* rounding: u*sum landed at or past the accumulated total */
}
