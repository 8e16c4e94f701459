/* unit.h -- helpers shared by the unit tests: a seeded PRNG, error assertions that print the
 * library's message, and a per-test scratch directory. Header-only (static inline). */
#ifndef CKPT_UNIT_H
#define CKPT_UNIT_H

#include "ckpt.h"

#include <errno.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* splitmix64: deterministic, seedable, good enough for test inputs. */
typedef struct unit_rng {
    uint64_t s;
} unit_rng;

static inline uint64_t unit_next(unit_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (inclusive). */
static inline int64_t unit_range(unit_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(unit_next(r) % (uint64_t)(hi - lo + 1));
}

/* rc must be CKPT_OK; otherwise fail showing the library's message. */
#define expect_ok(expr)                                                                          \
    do {                                                                                         \
        int rc_ = (expr);                                                                        \
        if (rc_ != CKPT_OK)                                                                      \
            fail_msg("%s returned %s: %s", #expr, ckpt_status_name(rc_), ckpt_errmsg());         \
    } while (0)

/* rc must be `code` and ckpt_errmsg() must contain `needle`. */
#define expect_err(expr, code, needle)                                                           \
    do {                                                                                         \
        int rc_ = (expr);                                                                        \
        const char *m_ = ckpt_errmsg();                                                          \
        if (rc_ != (code) || strstr(m_, (needle)) == NULL)                                       \
            fail_msg("%s: got %s \"%s\", want %s with \"%s\"", #expr, ckpt_status_name(rc_), m_, \
                     ckpt_status_name(code), (needle));                                          \
    } while (0)

/* rc must be `code` and ckpt_errmsg() must equal `msg` exactly. */
#define expect_err_exact(expr, code, msg)                                                        \
    do {                                                                                         \
        int rc_ = (expr);                                                                        \
        const char *m_ = ckpt_errmsg();                                                          \
        if (rc_ != (code) || strcmp(m_, (msg)) != 0)                                             \
            fail_msg("%s: got %s \"%s\", want %s \"%s\"", #expr, ckpt_status_name(rc_), m_,      \
                     ckpt_status_name(code), (msg));                                             \
    } while (0)

/* mkdir -p of one level; fine when it exists. */
static inline void unit_mkdir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir '%s': %s", path, strerror(errno));
}

/* The scratch directory of this test: argv[1] when given (CMake passes a per-variant path),
 * else $CKPT_TEST_TMP/<variant><name>, else /tmp/<name>-<pid>. Created (with its parent). */
static inline void unit_scratch(int argc, char **argv, const char *name, char *out, size_t len)
{
    if (argc > 1 && argv[1][0]) {
        snprintf(out, len, "%s", argv[1]);
    } else {
        const char *tmp = getenv("CKPT_TEST_TMP");
        const char *var = getenv("CKPT_TEST_VARIANT");
        if (tmp && tmp[0])
            snprintf(out, len, "%s/%s%s", tmp, var ? var : "", name);
        else
            snprintf(out, len, "/tmp/%s-%ld", name, (long)getpid());
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", out);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        mkdir(parent, 0755);
    }
    mkdir(out, 0755);
    struct stat st;
    if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "cannot create scratch directory '%s'\n", out);
        exit(1);
    }
}

/* rm -rf of a path (best effort, for scratch cleanup between runs). */
static inline void unit_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char sub[4096];
                if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
                    unit_rmtree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static inline uint32_t unit_f32_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static inline float unit_bits_f32(uint32_t x)
{
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static inline uint64_t unit_f64_bits(double d)
{
    uint64_t x;
    memcpy(&x, &d, 8);
    return x;
}

#endif
