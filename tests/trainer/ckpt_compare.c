/* ckpt_compare: test helper for the trainer tests, over libckpt's public reader API.
 *
 *   ckpt_compare A B [--prefix P] [--rtol X] [--atol Y]
 *       compares every tensor (whose name starts with P) of checkpoints A and B: same names, shapes and
 *       values. Without --rtol/--atol values must be bit-identical; with them
 *       |a-b| <= X * max(|a|,|b|) + Y elementwise.
 *       Prints one summary line. Exit 0 equal, 1 different, 2 error.
 *   ckpt_compare --list A
 *       prints "tensor NAME DTYPE d0xd1..." per tensor and "attr KEY TYPE VALUE" per attribute.
 *   ckpt_compare --attr A KEY
 *       prints the value of one attribute (int, double, string). */
#include <ckpt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int open_or_die(const char *path, ckpt_reader **r)
{
    int rc = ckpt_reader_open(path, r);
    if (rc != CKPT_OK) {
        fprintf(stderr, "ckpt_compare: cannot open '%s': %s\n", path, ckpt_errmsg());
        return -1;
    }
    return 0;
}

static void print_attr(const ckpt_state *a, const char *key, ckpt_attr_type t)
{
    int64_t iv;
    double dv;
    const char *sv;
    const void *bv;
    size_t len;
    switch (t) {
    case CKPT_ATTR_INT:
        ckpt_state_get_int(a, key, &iv);
        printf("%lld", (long long)iv);
        break;
    case CKPT_ATTR_DOUBLE:
        ckpt_state_get_double(a, key, &dv);
        printf("%.17g", dv);
        break;
    case CKPT_ATTR_STRING:
        ckpt_state_get_string(a, key, &sv);
        printf("%s", sv);
        break;
    default:
        ckpt_state_get_bytes(a, key, &bv, &len);
        printf("<%zu bytes>", len);
    }
}

static int list(const char *path)
{
    ckpt_reader *r;
    if (open_or_die(path, &r))
        return 2;
    int n = ckpt_reader_num_tensors(r);
    for (int i = 0; i < n; i++) {
        ckpt_tensor_info ti;
        ckpt_reader_tensor_info(r, i, &ti);
        printf("tensor %s %s ", ti.name, ckpt_dtype_name(ti.dtype));
        for (int d = 0; d < ti.ndim; d++)
            printf(d ? "x%lld" : "%lld", (long long)ti.shape[d]);
        printf("\n");
    }
    const ckpt_state *a = ckpt_reader_attrs(r);
    int na = ckpt_state_num_attrs(a);
    static const char *const tn[] = {"int", "double", "string", "bytes"};
    for (int i = 0; i < na; i++) {
        const char *key;
        ckpt_attr_type t;
        ckpt_state_attr_info(a, i, &key, &t);
        printf("attr %s %s ", key, tn[t]);
        print_attr(a, key, t);
        printf("\n");
    }
    ckpt_reader_close(r);
    return 0;
}

static int attr(const char *path, const char *key)
{
    ckpt_reader *r;
    if (open_or_die(path, &r))
        return 2;
    const ckpt_state *a = ckpt_reader_attrs(r);
    int na = ckpt_state_num_attrs(a), rc = 2;
    for (int i = 0; i < na; i++) {
        const char *k;
        ckpt_attr_type t;
        ckpt_state_attr_info(a, i, &k, &t);
        if (strcmp(k, key) == 0) {
            print_attr(a, k, t);
            printf("\n");
            rc = 0;
        }
    }
    if (rc)
        fprintf(stderr, "ckpt_compare: '%s' has no attribute '%s'\n", path, key);
    ckpt_reader_close(r);
    return rc;
}

static int64_t numel(const ckpt_tensor_info *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--list") == 0)
        return list(argv[2]);
    if (argc == 4 && strcmp(argv[1], "--attr") == 0)
        return attr(argv[2], argv[3]);
    const char *prefix = "";
    double rtol = -1.0, atol = -1.0, worst_abs = 0.0;
    if (argc < 3) {
        fprintf(stderr, "usage: ckpt_compare A B [--prefix P] [--rtol X] | --list A | --attr A KEY\n");
        return 2;
    }
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--prefix") == 0)
            prefix = argv[i + 1];
        else if (strcmp(argv[i], "--rtol") == 0)
            rtol = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--atol") == 0)
            atol = atof(argv[i + 1]);
    }
    const int exact = rtol < 0.0 && atol < 0.0;
    if (rtol < 0.0)
        rtol = 0.0;
    if (atol < 0.0)
        atol = 0.0;
    ckpt_reader *a, *b;
    if (open_or_die(argv[1], &a))
        return 2;
    if (open_or_die(argv[2], &b)) {
        ckpt_reader_close(a);
        return 2;
    }
    int rc = 0, compared = 0;
    double worst = 0.0;
    const char *worst_name = "";
    char worst_buf[256] = "";
    size_t plen = strlen(prefix);
    for (int pass = 0; pass < 2; pass++) { /* names of A in B, then names of B in A */
        ckpt_reader *x = pass ? b : a, *y = pass ? a : b;
        for (int i = 0; i < ckpt_reader_num_tensors(x); i++) {
            ckpt_tensor_info ti;
            ckpt_reader_tensor_info(x, i, &ti);
            if (strncmp(ti.name, prefix, plen) != 0)
                continue;
            int j;
            if (ckpt_reader_find(y, ti.name, &j) != CKPT_OK) {
                printf("tensor %s only in %s\n", ti.name, pass ? argv[2] : argv[1]);
                rc = 1;
            }
        }
    }
    for (int i = 0; i < ckpt_reader_num_tensors(a) && rc != 2; i++) {
        ckpt_tensor_info ta, tb;
        ckpt_reader_tensor_info(a, i, &ta);
        int j;
        if (strncmp(ta.name, prefix, plen) != 0 || ckpt_reader_find(b, ta.name, &j) != CKPT_OK)
            continue;
        ckpt_reader_tensor_info(b, j, &tb);
        if (ta.ndim != tb.ndim || memcmp(ta.shape, tb.shape, sizeof(int64_t) * (size_t)ta.ndim) != 0) {
            printf("tensor %s: shapes differ\n", ta.name);
            rc = 1;
            continue;
        }
        int64_t n = numel(&ta), off[CKPT_MAX_NDIM] = {0};
        float *va = malloc(sizeof(float) * (size_t)(n ? n : 1)), *vb = malloc(sizeof(float) * (size_t)(n ? n : 1));
        if (!va || !vb || ckpt_reader_read(a, ta.name, CKPT_F32, off, ta.shape, va, 1) != CKPT_OK ||
            ckpt_reader_read(b, ta.name, CKPT_F32, off, tb.shape, vb, 1) != CKPT_OK) {
            fprintf(stderr, "ckpt_compare: reading '%s' failed: %s\n", ta.name, ckpt_errmsg());
            rc = 2;
        } else {
            compared++;
            for (int64_t k = 0; k < n; k++) {
                if (exact) {
                    if (memcmp(&va[k], &vb[k], sizeof(float)) != 0) {
                        printf("tensor %s differs at element %lld: %.9g vs %.9g\n", ta.name, (long long)k,
                               va[k], vb[k]);
                        rc = rc ? rc : 1;
                        break;
                    }
                } else {
                    double d = fabs((double)va[k] - vb[k]);
                    double m = fmax(fabs((double)va[k]), fabs((double)vb[k]));
                    double rel = d / (m + 1e-30);
                    worst_abs = d > worst_abs ? d : worst_abs;
                    if (d > 1e-30 && rel > worst) {
                        worst = rel;
                        snprintf(worst_buf, sizeof worst_buf, "%s[%lld]", ta.name, (long long)k);
                        worst_name = worst_buf;
                    }
                    if (d > rtol * m + atol)
                        rc = rc ? rc : 1;
                }
            }
        }
        free(va);
        free(vb);
    }
    if (rc == 0 && compared == 0) {
        printf("no tensors with prefix '%s'\n", prefix);
        rc = 1;
    }
    if (rc == 0)
        printf("%s: %d tensors%s", exact ? "identical" : "within tolerance", compared, exact ? " bit for bit\n" : "");
    if (!exact && rc != 2)
        printf("%sworst absolute difference %.3g, worst relative %.3g at %s\n", rc ? "differ: " : ", ", worst_abs,
               worst, worst_name);
    ckpt_reader_close(a);
    ckpt_reader_close(b);
    return rc;
}
