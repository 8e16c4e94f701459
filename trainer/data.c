/* data: corpus loading, split, counter-based batches. */
#include "data.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GOLDEN 0x9E3779B97F4A7C15ULL

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* appends the whole file to *buf (capacity *cap, length *len) */
static int append_file(const char *path, uint8_t **buf, int64_t *len, int64_t *cap, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open data file '%s': %s", path, strerror(errno));
        return DATA_ENOENT;
    }
    for (;;) {
        if (*len + 65536 > *cap) {
            int64_t nc = *cap ? *cap * 2 : 1 << 20;
            uint8_t *nb = realloc(*buf, (size_t)nc);
            if (!nb) {
                fclose(f);
                snprintf(err, errlen, "out of memory reading '%s'", path);
                return DATA_ENOMEM;
            }
            *buf = nb;
            *cap = nc;
        }
        size_t got = fread(*buf + *len, 1, (size_t)(*cap - *len), f);
        *len += (int64_t)got;
        if (got == 0) {
            int bad = ferror(f);
            fclose(f);
            if (bad) {
                snprintf(err, errlen, "error reading data file '%s'", path);
                return DATA_ENOENT;
            }
            return DATA_OK;
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dir(const char *path, uint8_t **buf, int64_t *len, int64_t *cap, int *nfiles, char *err,
                    size_t errlen)
{
    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, errlen, "cannot open data directory '%s': %s", path, strerror(errno));
        return DATA_ENOENT;
    }
    char **names = NULL;
    size_t n = 0, capn = 0;
    struct dirent *e;
    int rc = DATA_OK;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (nm[0] == '.' || has_suffix(nm, ".dat") || has_suffix(nm, ".u8"))
            continue;
        if (n == capn) {
            capn = capn ? capn * 2 : 64;
            char **nn = realloc(names, capn * sizeof *names);
            if (!nn) {
                rc = DATA_ENOMEM;
                break;
            }
            names = nn;
        }
        names[n] = strdup(nm);
        if (!names[n]) {
            rc = DATA_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == DATA_OK) {
        if (n > 1)
            qsort(names, n, sizeof *names, cmp_str);
        /* (dev, ino) of files already read: a file reachable under two names is read once */
        dev_t *devs = calloc(n ? n : 1, sizeof *devs);
        ino_t *inos = calloc(n ? n : 1, sizeof *inos);
        size_t seen = 0;
        if (!devs || !inos)
            rc = DATA_ENOMEM;
        for (size_t i = 0; i < n && rc == DATA_OK; i++) {
            size_t plen = strlen(path) + strlen(names[i]) + 2;
            char *full = malloc(plen);
            if (!full) {
                rc = DATA_ENOMEM;
                break;
            }
            snprintf(full, plen, "%s/%s", path, names[i]);
            struct stat st;
            if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
                int dup = 0;
                for (size_t k = 0; k < seen; k++)
                    dup |= devs[k] == st.st_dev && inos[k] == st.st_ino;
                if (!dup) {
                    devs[seen] = st.st_dev;
                    inos[seen++] = st.st_ino;
                    rc = append_file(full, buf, len, cap, err, errlen);
                    (*nfiles)++;
                }
            }
            free(full);
        }
        free(devs);
        free(inos);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc == DATA_ENOMEM)
        snprintf(err, errlen, "out of memory reading '%s'", path);
    return rc;
}

int data_load(const char *path, double val_frac, int T, data_set *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->T = T;
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "data path '%s': %s", path, strerror(errno));
        return DATA_ENOENT;
    }
    uint8_t *buf = NULL;
    int64_t len = 0, cap = 0;
    int rc;
    if (S_ISDIR(st.st_mode)) {
        rc = load_dir(path, &buf, &len, &cap, &out->nfiles, err, errlen);
    } else {
        rc = append_file(path, &buf, &len, &cap, err, errlen);
        out->nfiles = 1;
    }
    if (rc != DATA_OK) {
        free(buf);
        return rc;
    }
    if (len == 0) {
        free(buf);
        snprintf(err, errlen, "data '%s' is empty (%s)", path,
                 S_ISDIR(st.st_mode) ? "no non-empty text files in the directory" : "0 bytes");
        return DATA_EEMPTY;
    }
    int64_t n_val = (int64_t)((double)len * val_frac);
    int64_t n_train = len - n_val;
    if (n_train < (int64_t)T + 1) {
        free(buf);
        snprintf(err, errlen,
                 "data '%s' is too short: %lld bytes give a training split of %lld bytes; a sequence needs "
                 "context+1 = %d bytes",
                 path, (long long)len, (long long)n_train, T + 1);
        return DATA_ESHORT;
    }
    if (val_frac > 0.0 && n_val < (int64_t)T + 1) {
        free(buf);
        snprintf(err, errlen,
                 "data '%s' is too short: %lld bytes give a validation split of %lld bytes (--val-frac %g); "
                 "a sequence needs context+1 = %d bytes (use more data or --val-frac 0)",
                 path, (long long)len, (long long)n_val, val_frac, T + 1);
        return DATA_ESHORT;
    }
    out->bytes = buf;
    out->n = len;
    out->n_train = n_train;
    out->n_val = n_val;
    return DATA_OK;
}

void data_free(data_set *d)
{
    free(d->bytes);
    memset(d, 0, sizeof *d);
}

void data_split(int64_t n, int nranks, int rank, int64_t *first, int64_t *count)
{
    int64_t q = n / nranks, r = n % nranks;
    *count = q + (rank < r);
    *first = q * rank + (rank < r ? rank : r);
}

int64_t data_train_start(const data_set *d, uint64_t seed, uint64_t counter, int64_t g)
{
    uint64_t key = mix64(seed ^ 0x5DEECE66DULL);
    uint64_t h = mix64(key + (counter + (uint64_t)g) * GOLDEN);
    return (int64_t)(h % (uint64_t)(d->n_train - d->T));
}

static void copy_seq(const data_set *d, int64_t start, int32_t *tok, int32_t *tgt)
{
    const uint8_t *b = d->bytes + start;
    for (int t = 0; t < d->T; t++) {
        tok[t] = b[t];
        tgt[t] = b[t + 1];
    }
}

void data_train_batch(const data_set *d, uint64_t seed, uint64_t counter, int64_t g0, int64_t nb, int32_t *tokens,
                      int32_t *targets)
{
    for (int64_t i = 0; i < nb; i++)
        copy_seq(d, data_train_start(d, seed, counter, g0 + i), tokens + i * d->T, targets + i * d->T);
}

void data_val_batch(const data_set *d, int64_t n_eval, int64_t j0, int64_t nb, int32_t *tokens, int32_t *targets)
{
    int64_t span = d->n_val - d->T; /* valid starts: n_train + [0, span) */
    for (int64_t i = 0; i < nb; i++) {
        int64_t j = j0 + i;
        int64_t off = n_eval > 1 ? j * (span - 1) / (n_eval - 1) : 0;
        copy_seq(d, d->n_train + off, tokens + i * d->T, targets + i * d->T);
    }
}
