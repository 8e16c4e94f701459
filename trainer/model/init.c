/* Deterministic, split-independent parameter initialisation.
 *
 * Element k of tensor P: key = mix(seed, fnv1a64(P)); two counter-based 64-bit draws
 * u1 = U(key, 2k), u2 = U(key, 2k+1) (SplitMix64 finaliser of key + counter * golden gamma), mapped to
 * (0,1) and turned into one standard normal by Box-Muller z = sqrt(-2 ln u1) cos(2 pi u2). Nothing
 * depends on which other elements are generated, so any row range of any tensor can be produced alone. */
#include "gpt.h"

#include <math.h>
#include <string.h>

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ULL

static uint64_t splitmix_final(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001B3ULL;
    }
    return h;
}

/* uniform in (0,1), never 0 or 1 */
static double uniform01(uint64_t key, uint64_t counter)
{
    uint64_t r = splitmix_final(key + counter * GOLDEN_GAMMA);
    return ((double)(r >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

int gpt_init_param(const gpt_config *cfg, const char *name, int64_t first_elem, int64_t count, float *out,
                   uint64_t seed)
{
    int idx = gpt_find_tensor(cfg, name);
    if (idx < 0 || first_elem < 0 || count < 0)
        return -1;
    gpt_param_info info;
    if (gpt_tensor_info(cfg, idx, &info) != 0)
        return -1;
    const int64_t numel = info.numel;
    if (first_elem > numel || count > numel - first_elem)
        return -1;

    if (has_suffix(name, ".b")) {
        if (count > 0)
            memset(out, 0, sizeof(float) * (size_t)count);
        return 0;
    }
    if (has_suffix(name, "ln1.w") || has_suffix(name, "ln2.w") || strcmp(name, "lnf.w") == 0) {
        for (int64_t i = 0; i < count; i++)
            out[i] = 1.0f;
        return 0;
    }
    double std = 0.02;
    if (has_suffix(name, "attn.proj.w") || has_suffix(name, "mlp.proj.w"))
        std = 0.02 / sqrt(2.0 * cfg->n_layer);
    const uint64_t key = splitmix_final(seed ^ splitmix_final(fnv1a64(name)));
    const double two_pi = 6.283185307179586476925286766559;
    for (int64_t i = 0; i < count; i++) {
        uint64_t k = (uint64_t)(first_elem + i);
        double u1 = uniform01(key, 2 * k), u2 = uniform01(key, 2 * k + 1);
        double z = sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
        out[i] = (float)(std * z);
    }
    return 0;
}
