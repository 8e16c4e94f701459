/* shard-diff -- compares two libckpt checkpoints value by value, whatever their layout, world
 * size or sharding: tensors (missing, dtype/shape mismatch, identical, equal within a tolerance
 * or different, with the largest absolute and relative differences) and attributes.
 *
 *   shard-diff A B [--atol X] [--rtol Y] [--json] [--max-read BYTES]
 *
 * Both sides are read region by region of the global tensor (bounded memory), every piece's
 * checksum verified. `shard-diff --help` and tools/README.md describe the output. */
#include "cli/args.h"
#include "cli/attr.h"
#include "cli/elem.h"
#include "cli/format.h"
#include "cli/json.h"
#include "cli/progress.h"
#include "cli/slab.h"

#include <ckpt.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "shard-diff"
#define DEFAULT_MAX_READ (32LL << 20)

enum { EXIT_SAME = 0, EXIT_DIFFERENT = 1, EXIT_USAGE = 2, EXIT_OPEN = 3 };

static const char usage_text[] =
    "usage: shard-diff A B [--atol X] [--rtol Y] [--json] [--max-read BYTES]\n"
    "\n"
    "Compares the libckpt checkpoints A and B value by value, whatever the layout, world size and\n"
    "sharding each was saved with: every tensor (missing on one side, dtype or shape mismatch,\n"
    "identical, equal within tolerance, or different with the number of differing elements and\n"
    "the largest absolute and relative difference) and every attribute (missing on one side, type\n"
    "or value differs). Reads region by region with bounded memory and verifies the checksum of\n"
    "every piece it reads. Runs as one process, without an MPI launcher.\n"
    "\n"
    "Elements a (of A) and b (of B) are equal when their bytes are identical, or when both are\n"
    "numbers (not NaN, not infinite) with |a - b| <= atol + rtol * |b|. A NaN equals only a\n"
    "bitwise-identical NaN. Double attributes follow the same rule; others must be identical.\n"
    "\n"
    "Output: one line per tensor or attribute that is not identical, then the summary line\n"
    "  N tensors identical, W within tolerance, K differ, X only in A, Y only in B, E unreadable;\n"
    "  M attributes equal, D differ\n"
    "\n"
    "options:\n"
    "  --atol X          absolute tolerance (default 0: exact)\n"
    "  --rtol Y          relative tolerance (default 0: exact)\n"
    "  --json            one JSON object on stdout instead of text (schema: tools/README.md)\n"
    "  --max-read BYTES  largest region read at once from each side (default 32M; suffixes K, M,\n"
    "                    G); memory use is about twice this plus one checksum piece\n"
    "  -h, --help        this text\n"
    "\n"
    "exit status:\n"
    "  0  equal: same tensors and attributes, every value equal within tolerance\n"
    "  1  different\n"
    "  2  usage error\n"
    "  3  A or B cannot be opened (missing, incomplete, corrupt index, not a checkpoint, unknown\n"
    "     format version), or a tensor cannot be read (checksum mismatch, missing or damaged data\n"
    "     file): one line \"shard-diff: <reason>\" on stderr per failure; other tensors are still\n"
    "     compared and reported\n";

typedef struct options {
    const char *a, *b;
    double atol, rtol;
    int json;
    int64_t max_read;
} options;

/* ------------------------------------------------------------------------- */
/* Tensors                                                                    */
/* ------------------------------------------------------------------------- */

typedef enum tstatus { T_IDENTICAL, T_CLOSE, T_DIFFERS, T_MISMATCH, T_ONLY_A, T_ONLY_B, T_ERROR } tstatus;

static const char *tstatus_name(tstatus s)
{
    static const char *n[] = {"identical", "close", "differs", "mismatch", "only_a", "only_b", "error"};
    return n[s];
}

typedef struct tdiff {
    tstatus status;
    int64_t elements;
    int64_t differing;  /* elements whose bytes differ */
    int64_t outside;    /* of which outside the tolerance */
    int64_t nan_mismatch;
    double max_abs, max_rel;
    int64_t max_abs_at; /* linear index of max_abs, -1 when none */
    char error_side;    /* 'A' or 'B' when unreadable */
    char error[4096];
} tdiff;

typedef struct differ {
    const options *o;
    ckpt_reader *ra, *rb;
    unsigned char *ba, *bb;
    size_t cap;
    progress bar;
} differ;

/* |a - b| of two integers, exactly enough never to be 0 when a != b. */
static double int_absdiff(int64_t a, int64_t b)
{
    uint64_t d = a > b ? (uint64_t)a - (uint64_t)b : (uint64_t)b - (uint64_t)a;
    return (double)d;
}

static void compare_elems(const options *o, ckpt_dtype dt, const unsigned char *pa, const unsigned char *pb,
                          int64_t n, int64_t lin0, tdiff *d)
{
    size_t es = ckpt_dtype_size(dt);
    int isfloat = elem_is_float(dt);
    for (int64_t e = 0; e < n; e++) {
        const unsigned char *xa = pa + (size_t)e * es, *xb = pb + (size_t)e * es;
        if (memcmp(xa, xb, es) == 0)
            continue;
        d->differing++;
        double diff, mag;
        if (isfloat) {
            double a = elem_to_double(dt, xa), b = elem_to_double(dt, xb);
            if (isnan(a) || isnan(b)) {
                d->nan_mismatch++;
                d->outside++;
                continue;
            }
            diff = fabs(a - b);
            mag = fabs(b);
            if (isinf(a) || isinf(b)) { /* different infinities, or one against a number */
                d->outside++;
                diff = INFINITY;
            } else if (!(diff <= o->atol + o->rtol * mag)) {
                d->outside++;
            }
        } else {
            int64_t a = elem_to_int(dt, xa), b = elem_to_int(dt, xb);
            diff = int_absdiff(a, b);
            mag = b < 0 ? -(double)b : (double)b;
            if (!(diff <= o->atol + o->rtol * mag))
                d->outside++;
        }
        double rel = diff == 0 ? 0 : mag > 0 ? diff / mag : INFINITY;
        if (d->max_abs_at < 0 || diff > d->max_abs) {
            d->max_abs = diff;
            d->max_abs_at = lin0 + e;
        }
        if (rel > d->max_rel)
            d->max_rel = rel;
    }
}

static int grow(differ *df, size_t need)
{
    if (need <= df->cap)
        return 0;
    free(df->ba);
    free(df->bb);
    df->ba = malloc(need);
    df->bb = malloc(need);
    df->cap = need;
    if (!df->ba || !df->bb) {
        free(df->ba);
        free(df->bb);
        df->ba = df->bb = NULL;
        df->cap = 0;
        return -1;
    }
    return 0;
}

/* Compares two tensors of the same dtype and shape, slab by slab of the global tensor. */
static void compare_values(differ *df, const ckpt_tensor_info *t, tdiff *d)
{
    int nd = t->ndim;
    size_t es = ckpt_dtype_size(t->dtype);
    int64_t zero[CKPT_MAX_NDIM] = {0}, off[CKPT_MAX_NDIM], ext[CKPT_MAX_NDIM], stride[CKPT_MAX_NDIM];
    int64_t s = 1;
    for (int k = nd - 1; k >= 0; k--) {
        stride[k] = s;
        s *= t->shape[k];
    }
    d->elements = box_volume(nd, t->shape);
    slab_iter it;
    slab_init(&it, nd, zero, t->shape, es, df->o->max_read);
    if (grow(df, (size_t)it.max_elems * es) != 0) {
        d->status = T_ERROR;
        snprintf(d->error, sizeof d->error, "tensor '%s': out of memory for a %lld-byte read buffer", t->name,
                 (long long)(it.max_elems * (int64_t)es));
        return;
    }
    while (slab_next(&it, off, ext)) {
        int64_t vol = box_volume(nd, ext), lin = 0;
        for (int k = 0; k < nd; k++)
            lin += off[k] * stride[k];
        if (ckpt_reader_read(df->ra, t->name, t->dtype, nd ? off : NULL, nd ? ext : NULL, df->ba, 1) != CKPT_OK) {
            d->status = T_ERROR;
            d->error_side = 'A';
            snprintf(d->error, sizeof d->error, "cannot read A: %s", ckpt_errmsg());
            return;
        }
        if (ckpt_reader_read(df->rb, t->name, t->dtype, nd ? off : NULL, nd ? ext : NULL, df->bb, 1) != CKPT_OK) {
            d->status = T_ERROR;
            d->error_side = 'B';
            snprintf(d->error, sizeof d->error, "cannot read B: %s", ckpt_errmsg());
            return;
        }
        if (memcmp(df->ba, df->bb, (size_t)vol * es) != 0)
            compare_elems(df->o, t->dtype, df->ba, df->bb, vol, lin, d);
        progress_add(&df->bar, vol * (int64_t)es, t->name);
    }
    d->status = d->differing == 0 ? T_IDENTICAL : d->outside == 0 ? T_CLOSE : T_DIFFERS;
}

static int same_shape(const ckpt_tensor_info *a, const ckpt_tensor_info *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int k = 0; k < a->ndim; k++)
        if (a->shape[k] != b->shape[k])
            return 0;
    return 1;
}

/* The multi-index of linear index lin in shape, as "[i, j]". */
static char *fmt_index(char *buf, size_t size, int ndim, const int64_t *shape, int64_t lin)
{
    int64_t idx[CKPT_MAX_NDIM];
    for (int k = ndim - 1; k >= 0; k--) {
        idx[k] = shape[k] ? lin % shape[k] : 0;
        lin = shape[k] ? lin / shape[k] : 0;
    }
    return fmt_shape(buf, size, ndim, idx);
}

static const char *dtname(ckpt_dtype d) { return ckpt_dtype_name(d) ? ckpt_dtype_name(d) : "?"; }

static void print_tensor(const ckpt_tensor_info *ta, const ckpt_tensor_info *tb, const tdiff *d)
{
    char s1[FMT_BOX_LEN], s2[FMT_BOX_LEN];
    const ckpt_tensor_info *t = ta ? ta : tb;
    switch (d->status) {
    case T_IDENTICAL:
        return;
    case T_ONLY_A:
    case T_ONLY_B:
        printf("tensor '%s': only in %c (%s %s)\n", t->name, d->status == T_ONLY_A ? 'A' : 'B', dtname(t->dtype),
               fmt_shape(s1, sizeof s1, t->ndim, t->shape));
        return;
    case T_MISMATCH:
        printf("tensor '%s':", t->name);
        if (ta->dtype != tb->dtype)
            printf(" dtype %s vs %s%s", dtname(ta->dtype), dtname(tb->dtype), same_shape(ta, tb) ? "" : ";");
        if (!same_shape(ta, tb))
            printf(" shape %s vs %s", fmt_shape(s1, sizeof s1, ta->ndim, ta->shape),
                   fmt_shape(s2, sizeof s2, tb->ndim, tb->shape));
        putchar('\n');
        return;
    case T_ERROR:
        if (d->error_side)
            printf("tensor '%s': unreadable in %c (see stderr)\n", t->name, d->error_side);
        else
            printf("tensor '%s': unreadable (see stderr)\n", t->name);
        return;
    case T_CLOSE:
    case T_DIFFERS:
        break;
    }
    printf("tensor '%s': %s%lld of %lld elements differ", t->name, d->status == T_CLOSE ? "within tolerance: " : "",
           (long long)d->differing, (long long)d->elements);
    if (d->status == T_DIFFERS && d->outside != d->differing)
        printf(" (%lld outside tolerance)", (long long)d->outside);
    if (d->max_abs_at >= 0)
        printf(", max abs diff %.6g at %s, max rel diff %.6g", d->max_abs,
               fmt_index(s1, sizeof s1, t->ndim, t->shape, d->max_abs_at), d->max_rel);
    if (d->nan_mismatch)
        printf(", %lld NaN mismatch%s", (long long)d->nan_mismatch, d->nan_mismatch == 1 ? "" : "es");
    putchar('\n');
}

static void json_dims(json_writer *w, int ndim, const int64_t *v)
{
    json_begin_inline_array(w);
    for (int k = 0; k < ndim; k++)
        json_int(w, v[k]);
    json_end_array(w);
}

static void json_side(json_writer *w, const char *key, const ckpt_tensor_info *t)
{
    json_key(w, key);
    if (!t) {
        json_nil(w);
        return;
    }
    json_begin_object(w);
    json_key(w, "dtype");
    json_str(w, dtname(t->dtype));
    json_key(w, "shape");
    json_dims(w, t->ndim, t->shape);
    json_end_object(w);
}

static void json_tensor(json_writer *w, const ckpt_tensor_info *ta, const ckpt_tensor_info *tb, const tdiff *d)
{
    const ckpt_tensor_info *t = ta ? ta : tb;
    json_begin_object(w);
    json_key(w, "name");
    json_str(w, t->name);
    json_key(w, "status");
    json_str(w, tstatus_name(d->status));
    json_side(w, "a", ta);
    json_side(w, "b", tb);
    if (d->status == T_IDENTICAL || d->status == T_CLOSE || d->status == T_DIFFERS) {
        json_key(w, "elements");
        json_int(w, d->elements);
        json_key(w, "differing");
        json_int(w, d->differing);
        json_key(w, "outside_tolerance");
        json_int(w, d->outside);
        json_key(w, "nan_mismatches");
        json_int(w, d->nan_mismatch);
        json_key(w, "max_abs_diff");
        if (d->max_abs_at >= 0)
            json_double(w, d->max_abs);
        else
            json_nil(w);
        json_key(w, "max_abs_diff_at");
        if (d->max_abs_at >= 0) {
            int64_t idx[CKPT_MAX_NDIM], lin = d->max_abs_at;
            for (int k = t->ndim - 1; k >= 0; k--) {
                idx[k] = t->shape[k] ? lin % t->shape[k] : 0;
                lin = t->shape[k] ? lin / t->shape[k] : 0;
            }
            json_dims(w, t->ndim, idx);
        } else {
            json_nil(w);
        }
        json_key(w, "max_rel_diff");
        if (d->max_abs_at >= 0)
            json_double(w, d->max_rel);
        else
            json_nil(w);
    }
    if (d->status == T_ERROR) {
        json_key(w, "error");
        json_str(w, d->error);
    }
    json_end_object(w);
}

/* ------------------------------------------------------------------------- */
/* Attributes                                                                 */
/* ------------------------------------------------------------------------- */

typedef enum astatus { A_EQUAL, A_CLOSE, A_DIFFERS, A_TYPE, A_ONLY_A, A_ONLY_B } astatus;

static const char *astatus_name(astatus s)
{
    static const char *n[] = {"equal", "close", "differs", "type", "only_a", "only_b"};
    return n[s];
}

static astatus compare_attr(const options *o, const ckpt_state *a, const ckpt_state *b, const char *key,
                            ckpt_attr_type ty)
{
    switch (ty) {
    case CKPT_ATTR_INT: {
        int64_t x = 0, y = 0;
        ckpt_state_get_int(a, key, &x);
        ckpt_state_get_int(b, key, &y);
        return x == y ? A_EQUAL : A_DIFFERS;
    }
    case CKPT_ATTR_DOUBLE: {
        double x = 0, y = 0;
        ckpt_state_get_double(a, key, &x);
        ckpt_state_get_double(b, key, &y);
        if (memcmp(&x, &y, sizeof x) == 0)
            return A_EQUAL;
        if (isnan(x) || isnan(y) || isinf(x) || isinf(y))
            return A_DIFFERS;
        return fabs(x - y) <= o->atol + o->rtol * fabs(y) ? A_CLOSE : A_DIFFERS;
    }
    case CKPT_ATTR_STRING: {
        const char *x = "", *y = "";
        ckpt_state_get_string(a, key, &x);
        ckpt_state_get_string(b, key, &y);
        return strcmp(x ? x : "", y ? y : "") == 0 ? A_EQUAL : A_DIFFERS;
    }
    case CKPT_ATTR_BYTES: {
        const void *x = NULL, *y = NULL;
        size_t nx = 0, ny = 0;
        ckpt_state_get_bytes(a, key, &x, &nx);
        ckpt_state_get_bytes(b, key, &y, &ny);
        return nx == ny && (nx == 0 || memcmp(x, y, nx) == 0) ? A_EQUAL : A_DIFFERS;
    }
    }
    return A_DIFFERS;
}

typedef struct adiff {
    const char *key;
    astatus status;
    int has_a, has_b;
    ckpt_attr_type ta, tb;
} adiff;

static void print_attr(const ckpt_state *a, const ckpt_state *b, const adiff *d)
{
    switch (d->status) {
    case A_EQUAL:
    case A_CLOSE:
        return;
    case A_ONLY_A:
    case A_ONLY_B: {
        int in_a = d->status == A_ONLY_A;
        printf("attribute '%s': only in %c (%s ", d->key, in_a ? 'A' : 'B', attr_type_name(in_a ? d->ta : d->tb));
        attr_print(stdout, in_a ? a : b, d->key, in_a ? d->ta : d->tb);
        printf(")\n");
        return;
    }
    case A_TYPE:
        printf("attribute '%s': type %s vs %s\n", d->key, attr_type_name(d->ta), attr_type_name(d->tb));
        return;
    case A_DIFFERS:
        printf("attribute '%s': ", d->key);
        attr_print(stdout, a, d->key, d->ta);
        printf(" vs ");
        attr_print(stdout, b, d->key, d->tb);
        putchar('\n');
        return;
    }
}

static void json_attr(json_writer *w, const ckpt_state *a, const ckpt_state *b, const adiff *d)
{
    json_begin_object(w);
    json_key(w, "key");
    json_str(w, d->key);
    json_key(w, "status");
    json_str(w, astatus_name(d->status));
    json_key(w, "a");
    if (d->has_a)
        attr_json(w, a, d->key, d->ta);
    else
        json_nil(w);
    json_key(w, "b");
    if (d->has_b)
        attr_json(w, b, d->key, d->tb);
    else
        json_nil(w);
    json_end_object(w);
}

/* ------------------------------------------------------------------------- */
/* main                                                                       */
/* ------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->max_read = DEFAULT_MAX_READ;
    int only_args = 0, npaths = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if (only_args || a[0] != '-' || !strcmp(a, "-")) {
            if (npaths == 2)
                return args_usage_error(PROG, "more than two checkpoints given ('%s')", a);
            if (npaths++ == 0)
                o->a = a;
            else
                o->b = a;
        } else if (!strcmp(a, "--")) {
            only_args = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return -1;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if ((v = args_value(argc, argv, &i, "--atol", &m)) || m) {
            if (!v || !parse_tolerance(v, &o->atol))
                return args_usage_error(PROG, "--atol needs a finite number >= 0");
        } else if ((v = args_value(argc, argv, &i, "--rtol", &m)) || m) {
            if (!v || !parse_tolerance(v, &o->rtol))
                return args_usage_error(PROG, "--rtol needs a finite number >= 0");
        } else if ((v = args_value(argc, argv, &i, "--max-read", &m)) || m) {
            if (!v || !parse_size(v, &o->max_read) || o->max_read < 8)
                return args_usage_error(PROG, "--max-read needs a size of at least 8 bytes, e.g. 64M");
        } else {
            return args_usage_error(PROG, "unknown option '%s'", a);
        }
    }
    if (npaths != 2)
        return args_usage_error(PROG, "needs two checkpoints A and B");
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int prc = parse_args(argc, argv, &o);
    if (prc)
        return prc < 0 ? EXIT_SAME : prc;

    ckpt_reader *ra = NULL, *rb = NULL;
    if (ckpt_reader_open(o.a, &ra) != CKPT_OK) {
        fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
        return EXIT_OPEN;
    }
    if (ckpt_reader_open(o.b, &rb) != CKPT_OK) {
        fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
        ckpt_reader_close(ra);
        return EXIT_OPEN;
    }
    differ df;
    memset(&df, 0, sizeof df);
    df.o = &o;
    df.ra = ra;
    df.rb = rb;
    int na = ckpt_reader_num_tensors(ra), nb = ckpt_reader_num_tensors(rb);
    int64_t total = 0;
    for (int i = 0; i < na; i++) {
        ckpt_tensor_info t;
        int j;
        if (ckpt_reader_tensor_info(ra, i, &t) == CKPT_OK && ckpt_reader_find(rb, t.name, &j) == CKPT_OK)
            total += t.raw_bytes;
    }
    json_writer w;
    if (o.json) {
        json_init(&w, stdout);
        json_begin_object(&w);
        json_key(&w, "a");
        json_str(&w, o.a);
        json_key(&w, "b");
        json_str(&w, o.b);
        json_key(&w, "atol");
        json_double(&w, o.atol);
        json_key(&w, "rtol");
        json_double(&w, o.rtol);
        json_key(&w, "tensors");
        json_begin_array(&w);
    }
    int count[7] = {0};
    progress_begin(&df.bar, "diff", total);
    /* both readers list tensors in byte order of their names: merge */
    int i = 0, j = 0;
    while (i < na || j < nb) {
        ckpt_tensor_info ta, tb;
        int have_a = i < na && ckpt_reader_tensor_info(ra, i, &ta) == CKPT_OK;
        int have_b = j < nb && ckpt_reader_tensor_info(rb, j, &tb) == CKPT_OK;
        if (!have_a && !have_b)
            break;
        int c = !have_a ? 1 : !have_b ? -1 : strcmp(ta.name, tb.name);
        tdiff d;
        memset(&d, 0, sizeof d);
        d.max_abs_at = -1;
        const ckpt_tensor_info *pa = NULL, *pb = NULL;
        if (c < 0) {
            d.status = T_ONLY_A;
            pa = &ta;
            i++;
        } else if (c > 0) {
            d.status = T_ONLY_B;
            pb = &tb;
            j++;
        } else {
            pa = &ta;
            pb = &tb;
            i++;
            j++;
            if (ta.dtype != tb.dtype || !same_shape(&ta, &tb))
                d.status = T_MISMATCH;
            else
                compare_values(&df, &ta, &d);
        }
        if (d.status == T_ERROR)
            fprintf(stderr, PROG ": %s\n", d.error);
        count[d.status]++;
        if (o.json) {
            json_tensor(&w, pa, pb, &d);
        } else {
            progress_clear(&df.bar);
            print_tensor(pa, pb, &d);
        }
    }
    progress_end(&df.bar);
    free(df.ba);
    free(df.bb);

    /* attributes, merged by key the same way */
    const ckpt_state *aa = ckpt_reader_attrs(ra), *ab = ckpt_reader_attrs(rb);
    int nka = ckpt_state_num_attrs(aa), nkb = ckpt_state_num_attrs(ab), attr_equal = 0, attr_differ = 0;
    if (o.json) {
        json_end_array(&w);
        json_key(&w, "attributes");
        json_begin_array(&w);
    }
    i = j = 0;
    while (i < nka || j < nkb) {
        adiff d;
        memset(&d, 0, sizeof d);
        const char *ka = NULL, *kb = NULL;
        if (i < nka && ckpt_state_attr_info(aa, i, &ka, &d.ta) != CKPT_OK)
            ka = NULL;
        if (j < nkb && ckpt_state_attr_info(ab, j, &kb, &d.tb) != CKPT_OK)
            kb = NULL;
        if (!ka && !kb)
            break;
        int c = !ka ? 1 : !kb ? -1 : strcmp(ka, kb);
        if (c < 0) {
            d.key = ka;
            d.has_a = 1;
            d.status = A_ONLY_A;
            i++;
        } else if (c > 0) {
            d.key = kb;
            d.has_b = 1;
            d.status = A_ONLY_B;
            j++;
        } else {
            d.key = ka;
            d.has_a = d.has_b = 1;
            d.status = d.ta != d.tb ? A_TYPE : compare_attr(&o, aa, ab, ka, d.ta);
            i++;
            j++;
        }
        if (d.status == A_EQUAL || d.status == A_CLOSE)
            attr_equal++;
        else
            attr_differ++;
        if (o.json)
            json_attr(&w, aa, ab, &d);
        else
            print_attr(aa, ab, &d);
    }
    int differ_count = count[T_DIFFERS] + count[T_MISMATCH];
    int rc = count[T_ERROR] ? EXIT_OPEN
             : (differ_count || count[T_ONLY_A] || count[T_ONLY_B] || attr_differ) ? EXIT_DIFFERENT
                                                                                     : EXIT_SAME;
    if (o.json) {
        json_end_array(&w);
        json_key(&w, "summary");
        json_begin_object(&w);
        json_key(&w, "identical");
        json_int(&w, count[T_IDENTICAL]);
        json_key(&w, "within_tolerance");
        json_int(&w, count[T_CLOSE]);
        json_key(&w, "differ");
        json_int(&w, differ_count);
        json_key(&w, "only_a");
        json_int(&w, count[T_ONLY_A]);
        json_key(&w, "only_b");
        json_int(&w, count[T_ONLY_B]);
        json_key(&w, "unreadable");
        json_int(&w, count[T_ERROR]);
        json_key(&w, "attributes_equal");
        json_int(&w, attr_equal);
        json_key(&w, "attributes_differ");
        json_int(&w, attr_differ);
        json_end_object(&w);
        json_key(&w, "equal");
        json_bool(&w, rc == EXIT_SAME);
        json_end_object(&w);
        json_finish(&w);
    } else {
        printf("%d tensors identical, %d within tolerance, %d differ, %d only in A, %d only in B, %d unreadable; "
               "%d attributes equal, %d differ\n",
               count[T_IDENTICAL], count[T_CLOSE], differ_count, count[T_ONLY_A], count[T_ONLY_B], count[T_ERROR],
               attr_equal, attr_differ);
    }
    ckpt_reader_close(ra);
    ckpt_reader_close(rb);
    return rc;
}
