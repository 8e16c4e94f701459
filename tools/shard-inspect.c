/* shard-inspect -- what a libckpt checkpoint holds, whether every byte of it is intact, and what
 * its tensors' values look like. One process, no MPI launcher: it uses the library's reader.
 *
 *   shard-inspect PATH [--tensors GLOB] [--shards NAME] [--verify] [--stats] [--json]
 *
 * Text and JSON output are described in tools/README.md; `shard-inspect --help` has the rest. */
#include "cli/args.h"
#include "cli/attr.h"
#include "cli/elem.h"
#include "cli/format.h"
#include "cli/glob.h"
#include "cli/json.h"
#include "cli/progress.h"
#include "cli/root.h"
#include "cli/slab.h"
#include "cli/stats.h"
#include "cli/table.h"

#include <ckpt.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROG "shard-inspect"
#define DEFAULT_MAX_READ (32LL << 20)
#define MAX_OVERLAP_CHECK 4096 /* pairwise overlap check of a tensor's boxes up to this many */

enum { EXIT_OK = 0, EXIT_PROBLEMS = 1, EXIT_USAGE = 2, EXIT_OPEN = 3 };

static const char usage_text[] =
    "usage: shard-inspect PATH [--tensors GLOB] [--shards NAME] [--verify] [--stats] [--json]\n"
    "                          [--max-read BYTES]\n"
    "\n"
    "Describes the libckpt checkpoint at PATH: format and library version, layout, world size at\n"
    "save, step, attributes with their values, totals (raw bytes, stored bytes, compression ratio)\n"
    "and a table of its tensors (dtype, global shape, saved boxes, bytes, ratio). Runs as one\n"
    "process, without an MPI launcher.\n"
    "\n"
    "When PATH is not a checkpoint but a directory of checkpoints (a checkpoint manager's root),\n"
    "lists them instead: state (committed; incomplete = no COMMITTED marker; corrupt = does not\n"
    "open), size of their files, step, and which one is the latest: the one a job resuming\n"
    "through the checkpoint manager would load (ckpt_manager_latest: the committed step-N\n"
    "directory of the highest N).\n"
    "\n"
    "options:\n"
    "  --tensors GLOB    only the tensors whose name matches GLOB (fnmatch(3) pattern; '*' also\n"
    "                    matches '/'; quote it for the shell)\n"
    "  --shards NAME     the shard map of tensor NAME instead of the summary and table: every\n"
    "                    saved box as [start:stop, ...] with its writer rank, file, dataset and\n"
    "                    number of checksummed pieces\n"
    "  --verify          read every saved box of the selected tensors, verifying the checksum of\n"
    "                    every piece, and check that the boxes cover each tensor exactly once;\n"
    "                    one line per problem, and it goes on to find them all\n"
    "  --stats           per tensor: element count, NaN and Inf counts, and min, max, mean and\n"
    "                    (population) std of the finite values; read with checksums verified\n"
    "  --json            one JSON object on stdout instead of text (schema: tools/README.md)\n"
    "  --max-read BYTES  largest region read at once (default 32M; suffixes K, M, G); memory use\n"
    "                    is about this plus one checksum piece\n"
    "  -h, --help        this text\n"
    "\n"
    "exit status:\n"
    "  0  success\n"
    "  1  --verify or --stats found problems (checksum mismatch, missing or damaged data file,\n"
    "     boxes that do not cover a tensor exactly once)\n"
    "  2  usage error (unknown option, bad value, --shards of a tensor the checkpoint lacks)\n"
    "  3  PATH cannot be opened: missing, incomplete (no COMMITTED marker), corrupt or modified\n"
    "     index, not a checkpoint, or a format version this library does not know; one line\n"
    "     \"shard-inspect: <reason>\" on stderr\n";

typedef struct options {
    const char *path;
    const char *tensors; /* glob or NULL */
    const char *shards;  /* tensor name or NULL */
    int verify, stats, json;
    int64_t max_read;
} options;

/* ------------------------------------------------------------------------- */
/* Problems found by --verify / --stats                                       */
/* ------------------------------------------------------------------------- */

typedef struct problem {
    char *tensor;   /* NULL for a file-level problem */
    int64_t box;    /* -1 when not about one box */
    char *file;     /* NULL when not about one file */
    char *message;
} problem;

typedef struct problems {
    problem *v;
    int n, cap;
    int json;      /* collect for the JSON object instead of printing */
    progress *bar; /* erased before a line is printed */
    int oom;
} problems;

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void problem_add(problems *ps, const char *tensor, int64_t box, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void problem_add(problems *ps, const char *tensor, int64_t box, const char *file, const char *fmt, ...)
{
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!ps->json) {
        /* text: one line per problem, as it is found */
        if (ps->bar)
            progress_clear(ps->bar);
        printf("problem: %s\n", msg);
        fflush(stdout);
    }
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 16;
        problem *v = realloc(ps->v, (size_t)cap * sizeof *v);
        if (!v) {
            ps->oom = 1;
            return;
        }
        ps->v = v;
        ps->cap = cap;
    }
    problem *p = &ps->v[ps->n++];
    p->tensor = dup_or_null(tensor);
    p->box = box;
    p->file = dup_or_null(file);
    p->message = strdup(msg);
}

static void problems_free(problems *ps)
{
    for (int i = 0; i < ps->n; i++) {
        free(ps->v[i].tensor);
        free(ps->v[i].file);
        free(ps->v[i].message);
    }
    free(ps->v);
}

/* ------------------------------------------------------------------------- */
/* The scan behind --verify and --stats                                       */
/* ------------------------------------------------------------------------- */

typedef struct file_state {
    char *name;
    int missing;       /* reported missing: its other boxes are skipped */
    char *error;       /* the last whole-box error of a box in it, without the "tensor 'x': " prefix */
    int64_t repeats;   /* boxes not read, or failed with that same error, after the one reported */
} file_state;

typedef struct scan {
    ckpt_reader *r;
    const options *o;
    problems *ps;
    progress bar;
    void *buf;
    double *vals;      /* stats of integer tensors: the slab converted to double */
    int64_t vals_cap;  /* elements of vals */
    size_t buf_bytes;
    file_state *files;
    int nfiles, files_cap;
    int64_t boxes, boxes_failed, bytes_read;
    /* the box being scanned */
    const ckpt_tensor_info *t;
    int64_t j;
    const ckpt_box_info *b;
    ckpt_dtype rdt;    /* dtype read: F64 for floats under --stats, else the saved one */
    tstats *st;
    int64_t leaf;      /* regions this small are not split further (about one piece) */
    char last[4096];   /* last message reported for this box (bisection finds it again) */
    /* a run of consecutive bad regions with the same message that names no piece (an HDF5 read
     * or decompression failure), reported once as "elements [first] to [last]" */
    char run_msg[4096];
    int64_t run_lo, run_hi; /* row-major element range within the box, [lo, hi) */
    int box_failed;
} scan;

static file_state *file_of(scan *sc, const char *name)
{
    for (int i = 0; i < sc->nfiles; i++)
        if (!strcmp(sc->files[i].name, name))
            return &sc->files[i];
    if (sc->nfiles == sc->files_cap) {
        int cap = sc->files_cap ? 2 * sc->files_cap : 16;
        file_state *v = realloc(sc->files, (size_t)cap * sizeof *v);
        if (!v)
            return NULL;
        sc->files = v;
        sc->files_cap = cap;
    }
    file_state *f = &sc->files[sc->nfiles];
    memset(f, 0, sizeof *f);
    if (!(f->name = strdup(name)))
        return NULL;
    sc->nfiles++;
    return f;
}

/* 1 when the message is about part of a box (a piece), so that other parts may still be good:
 * a checksum mismatch or a failed HDF5 read of a region. Anything else (missing dataset, file
 * that does not open) spoils the whole box. */
static int region_error(int rc, const char *msg)
{
    return rc == CKPT_ECORRUPT && (strstr(msg, "checksum mismatch") || strstr(msg, "cannot read dataset"));
}

/* The message without the library's leading "tensor 'NAME': ". */
static const char *strip_tensor(const char *msg, const char *name)
{
    size_t n = strlen(name);
    if (!strncmp(msg, "tensor '", 8) && !strncmp(msg + 8, name, n) && !strncmp(msg + 8 + n, "': ", 3))
        return msg + 8 + n + 3;
    return msg;
}

/* A problem with the current box. A whole-box error that repeats the previous one of the same
 * file (a data file that does not open) is counted, not printed again. */
static void box_problem(scan *sc, const char *msg, int whole_box)
{
    if (!strcmp(sc->last, msg))
        return; /* the same piece, found again while narrowing down */
    if (whole_box) {
        file_state *f = file_of(sc, sc->b->file);
        const char *core = strip_tensor(msg, sc->t->name);
        if (f && f->error && !strcmp(f->error, core)) {
            f->repeats++;
            sc->box_failed = 1;
            return;
        }
        if (f) {
            free(f->error);
            f->error = strdup(core);
        }
    }
    snprintf(sc->last, sizeof sc->last, "%s", msg);
    char bs[FMT_BOX_LEN], quoted[CKPT_MAX_NAME + 3];
    fmt_box(bs, sizeof bs, sc->t->ndim, sc->b->offset, sc->b->extent);
    snprintf(quoted, sizeof quoted, "'%s'", sc->t->name);
    if (strstr(msg, quoted) && strstr(msg, sc->b->file) && strstr(msg, bs)) /* it says it all */
        problem_add(sc->ps, sc->t->name, sc->j, sc->b->file, "%s", msg);
    else
        problem_add(sc->ps, sc->t->name, sc->j, sc->b->file, "tensor '%s' box %lld %s (%s): %s", sc->t->name,
                    (long long)sc->j, bs, sc->b->file, strip_tensor(msg, sc->t->name));
    sc->box_failed = 1;
}

static void account(scan *sc, int64_t vol)
{
    if (sc->st) {
        if (elem_is_float(sc->t->dtype)) {
            stats_add(sc->st, sc->buf, vol);
        } else {
            size_t es = ckpt_dtype_size(sc->t->dtype);
            for (int64_t i = 0; i < vol; i++)
                sc->vals[i] = (double)elem_to_int(sc->t->dtype, (const char *)sc->buf + (size_t)i * es);
            stats_add(sc->st, sc->vals, vol);
        }
    }
    int64_t bytes = vol * (int64_t)ckpt_dtype_size(sc->t->dtype);
    sc->bytes_read += bytes;
    progress_add(&sc->bar, bytes, sc->t->name);
}

/* Reads [off, off+ext) of the current box; on a piece-level error narrows it down by halving, so
 * that every bad piece is reported and every good one still counted. Returns 0 to go on with the
 * box, -1 when the box cannot be read any further. */
/* The global index of element `lin` (row-major within the current box), as "[i, j]". */
static char *box_elem(const scan *sc, int64_t lin, char *buf, size_t size)
{
    int nd = sc->t->ndim;
    int64_t idx[CKPT_MAX_NDIM];
    for (int k = nd - 1; k >= 0; k--) {
        idx[k] = sc->b->offset[k] + lin % sc->b->extent[k];
        lin /= sc->b->extent[k];
    }
    return fmt_shape(buf, size, nd, idx);
}

static void flush_run(scan *sc)
{
    if (!sc->run_msg[0])
        return;
    char bs[FMT_BOX_LEN], a[FMT_BOX_LEN], z[FMT_BOX_LEN];
    fmt_box(bs, sizeof bs, sc->t->ndim, sc->b->offset, sc->b->extent);
    problem_add(sc->ps, sc->t->name, sc->j, sc->b->file, "tensor '%s' box %lld %s (%s), elements %s to %s: %s",
                sc->t->name, (long long)sc->j, bs, sc->b->file, box_elem(sc, sc->run_lo, a, sizeof a),
                box_elem(sc, sc->run_hi - 1, z, sizeof z), strip_tensor(sc->run_msg, sc->t->name));
    sc->run_msg[0] = 0;
    sc->box_failed = 1;
}

/* A bad region [off, off+ext) of the current box whose message names no piece. */
static void run_add(scan *sc, const char *msg, const int64_t *off, const int64_t *ext)
{
    int nd = sc->t->ndim;
    int64_t lo = 0;
    for (int k = 0; k < nd; k++)
        lo = lo * sc->b->extent[k] + (off[k] - sc->b->offset[k]);
    int64_t hi = lo + box_volume(nd, ext);
    if (sc->run_msg[0] && sc->run_hi == lo && !strcmp(sc->run_msg, msg)) {
        sc->run_hi = hi;
        return;
    }
    flush_run(sc);
    snprintf(sc->run_msg, sizeof sc->run_msg, "%s", msg);
    sc->run_lo = lo;
    sc->run_hi = hi;
}

static int read_region(scan *sc, const int64_t *off, const int64_t *ext)
{
    int nd = sc->t->ndim;
    int64_t vol = box_volume(nd, ext);
    int rc = ckpt_reader_read(sc->r, sc->t->name, sc->rdt, nd ? off : NULL, nd ? ext : NULL, sc->buf, 1);
    if (rc == CKPT_OK) {
        flush_run(sc);
        account(sc, vol);
        return 0;
    }
    char msg[4096];
    snprintf(msg, sizeof msg, "%s", ckpt_errmsg());
    if (rc == CKPT_ENOTFOUND) {
        /* the tensor exists, so this is its data file: report the file once, skip its boxes */
        file_state *f = file_of(sc, sc->b->file);
        if (f)
            f->missing = 1;
        problem_add(sc->ps, NULL, -1, sc->b->file, "file '%s': %s", sc->b->file, strip_tensor(msg, sc->t->name));
        sc->box_failed = 1;
        return -1;
    }
    if (!region_error(rc, msg)) {
        box_problem(sc, msg, 1);
        return -1;
    }
    /* split along the outermost dim longer than 1 */
    int d = 0;
    while (d < nd && ext[d] == 1)
        d++;
    if (vol <= sc->leaf || d == nd) {
        if (strstr(msg, "piece "))
            box_problem(sc, msg, 0); /* names its piece: reported once per piece */
        else
            run_add(sc, msg, off, ext);
        return 0;
    }
    int64_t o2[CKPT_MAX_NDIM], e2[CKPT_MAX_NDIM];
    memcpy(o2, off, (size_t)nd * sizeof *o2);
    memcpy(e2, ext, (size_t)nd * sizeof *e2);
    int64_t half = ext[d] / 2;
    e2[d] = half;
    if (read_region(sc, o2, e2) < 0)
        return -1;
    o2[d] = off[d] + half;
    e2[d] = ext[d] - half;
    return read_region(sc, o2, e2);
}

/* Sum of box volumes, bounds and overlaps of tensor i's saved boxes. */
static void check_coverage(scan *sc, int i, const ckpt_tensor_info *t)
{
    int nd = t->ndim;
    int64_t want = box_volume(nd, t->shape), have = 0;
    char bs[FMT_BOX_LEN], ss[FMT_BOX_LEN];
    ckpt_box_info *bi = NULL;
    if (t->nboxes > 0 && t->nboxes <= MAX_OVERLAP_CHECK)
        bi = malloc((size_t)t->nboxes * sizeof *bi);
    for (int64_t j = 0; j < t->nboxes; j++) {
        ckpt_box_info b;
        if (ckpt_reader_box_info(sc->r, i, j, &b) != CKPT_OK) {
            problem_add(sc->ps, t->name, j, NULL, "tensor '%s' box %lld: %s", t->name, (long long)j, ckpt_errmsg());
            continue;
        }
        if (bi)
            bi[j] = b;
        int inside = 1;
        for (int d = 0; d < nd; d++)
            inside &= b.offset[d] >= 0 && b.extent[d] > 0 && b.offset[d] <= t->shape[d] - b.extent[d];
        if (!inside)
            problem_add(sc->ps, t->name, j, b.file, "tensor '%s' box %lld %s (%s): lies outside the shape %s",
                        t->name, (long long)j, fmt_box(bs, sizeof bs, nd, b.offset, b.extent), b.file,
                        fmt_shape(ss, sizeof ss, nd, t->shape));
        have += box_volume(nd, b.extent);
    }
    if (have != want)
        problem_add(sc->ps, t->name, -1, NULL,
                    "tensor '%s': its %lld saved boxes hold %lld elements, its shape %s has %lld (coverage)",
                    t->name, (long long)t->nboxes, (long long)have, fmt_shape(ss, sizeof ss, nd, t->shape),
                    (long long)want);
    for (int64_t a = 0; bi && a < t->nboxes; a++)
        for (int64_t b = a + 1; b < t->nboxes; b++) {
            int meet = 1;
            for (int d = 0; d < nd && meet; d++)
                meet = bi[a].offset[d] < bi[b].offset[d] + bi[b].extent[d] &&
                       bi[b].offset[d] < bi[a].offset[d] + bi[a].extent[d];
            if (meet && nd > 0) {
                char bs2[FMT_BOX_LEN];
                problem_add(sc->ps, t->name, b, bi[b].file, "tensor '%s': boxes %lld %s and %lld %s overlap (coverage)",
                            t->name, (long long)a, fmt_box(bs, sizeof bs, nd, bi[a].offset, bi[a].extent),
                            (long long)b, fmt_box(bs2, sizeof bs2, nd, bi[b].offset, bi[b].extent));
            }
        }
    free(bi);
}

/* Reads every saved box of the selected tensors (sel[0..nsel)), with checksums, for --verify
 * and --stats. stats[k] receives tensor sel[k]'s statistics when --stats. */
static int run_scan(ckpt_reader *r, const options *o, const int *sel, int nsel, problems *ps, tstats *stats,
                    int64_t *boxes, int64_t *boxes_failed, int64_t *bytes)
{
    scan sc;
    memset(&sc, 0, sizeof sc);
    sc.r = r;
    sc.o = o;
    sc.ps = ps;
    int64_t total = 0;
    for (int k = 0; k < nsel; k++) {
        ckpt_tensor_info t;
        if (ckpt_reader_tensor_info(r, sel[k], &t) == CKPT_OK)
            total += t.raw_bytes;
    }
    progress_begin(&sc.bar, o->verify ? "verify" : "stats", total);
    ps->bar = &sc.bar;
    int rc = 0;
    for (int k = 0; k < nsel && rc == 0; k++) {
        ckpt_tensor_info t;
        if (ckpt_reader_tensor_info(r, sel[k], &t) != CKPT_OK)
            continue;
        sc.t = &t;
        sc.st = o->stats ? &stats[k] : NULL;
        if (sc.st) {
            memset(sc.st, 0, sizeof *sc.st);
            sc.st->complete = 1;
        }
        int isfloat = elem_is_float(t.dtype);
        sc.rdt = (o->stats && isfloat) ? CKPT_F64 : t.dtype;
        if (o->verify)
            check_coverage(&sc, sel[k], &t);
        size_t es = ckpt_dtype_size(sc.rdt);
        for (int64_t j = 0; j < t.nboxes; j++) {
            ckpt_box_info b;
            if (ckpt_reader_box_info(r, sel[k], j, &b) != CKPT_OK)
                continue;
            sc.b = &b;
            sc.j = j;
            sc.last[0] = 0;
            sc.run_msg[0] = 0;
            sc.box_failed = 0;
            sc.boxes++;
            file_state *f = file_of(&sc, b.file);
            if (!f) {
                rc = -1;
                break;
            }
            int64_t vol = box_volume(t.ndim, b.extent);
            if (f->missing) {
                f->repeats++;
                sc.boxes_failed++;
                if (sc.st)
                    sc.st->complete = 0;
                progress_add(&sc.bar, vol * (int64_t)ckpt_dtype_size(t.dtype), t.name);
                continue;
            }
            slab_iter it;
            slab_init(&it, t.ndim, b.offset, b.extent, es, o->max_read);
            size_t need = (size_t)it.max_elems * es;
            if (need > sc.buf_bytes) {
                free(sc.buf);
                sc.buf = malloc(need);
                sc.buf_bytes = sc.buf ? need : 0;
            }
            if (sc.buf && o->stats && !isfloat && it.max_elems > sc.vals_cap) {
                free(sc.vals);
                sc.vals = malloc((size_t)it.max_elems * sizeof(double));
                sc.vals_cap = sc.vals ? it.max_elems : 0;
            }
            if (!sc.buf || (o->stats && !isfloat && !sc.vals)) {
                fprintf(stderr, PROG ": out of memory for a %zu-byte read buffer\n", need);
                rc = -1;
                break;
            }
            sc.leaf = b.npieces > 0 ? vol / b.npieces : vol;
            if (sc.leaf < 1)
                sc.leaf = 1;
            int64_t off[CKPT_MAX_NDIM], ext[CKPT_MAX_NDIM];
            while (slab_next(&it, off, ext))
                if (read_region(&sc, off, ext) < 0)
                    break;
            flush_run(&sc);
            if (sc.box_failed) {
                sc.boxes_failed++;
                if (sc.st)
                    sc.st->complete = 0;
            }
        }
    }
    progress_end(&sc.bar);
    ps->bar = NULL;
    for (int i = 0; i < sc.nfiles; i++) {
        if (sc.files[i].repeats && !ps->json)
            printf("note: file '%s': %lld more boxes in it not read (same problem)\n", sc.files[i].name,
                   (long long)sc.files[i].repeats);
        free(sc.files[i].name);
        free(sc.files[i].error);
    }
    free(sc.files);
    free(sc.buf);
    free(sc.vals);
    *boxes = sc.boxes;
    *boxes_failed = sc.boxes_failed;
    *bytes = sc.bytes_read;
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Output                                                                     */
/* ------------------------------------------------------------------------- */

static const char *layout_name(ckpt_layout l, char *buf, size_t size)
{
    if (l == CKPT_LAYOUT_PER_RANK)
        return "file-per-rank";
    /* the public API has no name for the other layouts (yet) */
    if ((int)l == 1)
        return "shared";
    snprintf(buf, size, "layout-%d", (int)l);
    return buf;
}

typedef struct summary {
    int64_t raw, stored;
    int has_step;
    int64_t step;
} summary;

static void summarize(ckpt_reader *r, summary *s)
{
    memset(s, 0, sizeof *s);
    int n = ckpt_reader_num_tensors(r);
    for (int i = 0; i < n; i++) {
        ckpt_tensor_info t;
        if (ckpt_reader_tensor_info(r, i, &t) == CKPT_OK) {
            s->raw += t.raw_bytes;
            s->stored += t.stored_bytes;
        }
    }
    s->has_step = ckpt_state_get_int(ckpt_reader_attrs(r), "step", &s->step) == CKPT_OK;
}

static void print_summary(ckpt_reader *r, const options *o, const summary *s)
{
    char b1[64], b2[64], lb[32];
    printf("%-16s%s\n", "checkpoint", o->path);
    printf("%-16s%d\n", "format version", ckpt_reader_format_version(r));
    printf("%-16s%s\n", "library version", ckpt_reader_library_version(r));
    printf("%-16s%s\n", "layout", layout_name(ckpt_reader_layout(r), lb, sizeof lb));
    printf("%-16s%d\n", "world size", ckpt_reader_world_size(r));
    if (s->has_step)
        printf("%-16s%lld\n", "step", (long long)s->step);
    else
        printf("%-16s%s\n", "step", "-");
    printf("%-16s%d\n", "tensors", ckpt_reader_num_tensors(r));
    printf("%-16s%lld (%s)\n", "raw bytes", (long long)s->raw, fmt_size(b1, sizeof b1, s->raw));
    printf("%-16s%lld (%s)\n", "stored bytes", (long long)s->stored, fmt_size(b2, sizeof b2, s->stored));
    printf("%-16s%s\n", "ratio", fmt_ratio(b1, sizeof b1, s->raw, s->stored));
    const ckpt_state *a = ckpt_reader_attrs(r);
    int na = ckpt_state_num_attrs(a);
    printf("%-16s%d\n", "attributes", na);
    /* key and type columns aligned, then the value */
    size_t kw = 0;
    for (int i = 0; i < na; i++) {
        const char *key;
        ckpt_attr_type ty;
        if (ckpt_state_attr_info(a, i, &key, &ty) == CKPT_OK && strlen(key) > kw)
            kw = strlen(key);
    }
    for (int i = 0; i < na; i++) {
        const char *key;
        ckpt_attr_type ty;
        if (ckpt_state_attr_info(a, i, &key, &ty) != CKPT_OK)
            continue;
        printf("  %-*s  %-6s  ", (int)kw, key, attr_type_name(ty));
        attr_print(stdout, a, key, ty);
        putchar('\n');
    }
}

static void print_table(ckpt_reader *r, const int *sel, int nsel)
{
    table tb;
    table_init(&tb, 7, (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6));
    table_row(&tb);
    table_cell(&tb, "name");
    table_cell(&tb, "dtype");
    table_cell(&tb, "shape");
    table_cell(&tb, "boxes");
    table_cell(&tb, "bytes");
    table_cell(&tb, "stored");
    table_cell(&tb, "ratio");
    char sb[FMT_BOX_LEN], rb[32];
    for (int k = 0; k < nsel; k++) {
        ckpt_tensor_info t;
        if (ckpt_reader_tensor_info(r, sel[k], &t) != CKPT_OK)
            continue;
        table_row(&tb);
        table_cell(&tb, "%s", t.name);
        table_cell(&tb, "%s", ckpt_dtype_name(t.dtype) ? ckpt_dtype_name(t.dtype) : "?");
        table_cell(&tb, "%s", fmt_shape(sb, sizeof sb, t.ndim, t.shape));
        table_cell(&tb, "%lld", (long long)t.nboxes);
        table_cell(&tb, "%lld", (long long)t.raw_bytes);
        table_cell(&tb, "%lld", (long long)t.stored_bytes);
        table_cell(&tb, "%s", fmt_ratio(rb, sizeof rb, t.raw_bytes, t.stored_bytes));
    }
    putchar('\n');
    table_print(&tb, stdout, "");
    table_free(&tb);
}

static void print_shards(ckpt_reader *r, int i)
{
    ckpt_tensor_info t;
    if (ckpt_reader_tensor_info(r, i, &t) != CKPT_OK)
        return;
    char sb[FMT_BOX_LEN];
    printf("tensor '%s': %s %s, %lld saved box%s, %lld bytes (%lld stored)\n", t.name,
           ckpt_dtype_name(t.dtype) ? ckpt_dtype_name(t.dtype) : "?", fmt_shape(sb, sizeof sb, t.ndim, t.shape),
           (long long)t.nboxes, t.nboxes == 1 ? "" : "es", (long long)t.raw_bytes, (long long)t.stored_bytes);
    if (t.nboxes == 0)
        return;
    table tb;
    table_init(&tb, 6, (1u << 0) | (1u << 2) | (1u << 5));
    table_row(&tb);
    table_cell(&tb, "box");
    table_cell(&tb, "region");
    table_cell(&tb, "rank");
    table_cell(&tb, "file");
    table_cell(&tb, "dataset");
    table_cell(&tb, "pieces");
    for (int64_t j = 0; j < t.nboxes; j++) {
        ckpt_box_info b;
        if (ckpt_reader_box_info(r, i, j, &b) != CKPT_OK)
            continue;
        table_row(&tb);
        table_cell(&tb, "%lld", (long long)j);
        table_cell(&tb, "%s", fmt_box(sb, sizeof sb, t.ndim, b.offset, b.extent));
        table_cell(&tb, "%d", b.writer_rank);
        table_cell(&tb, "%s", b.file);
        table_cell(&tb, "%s", b.dataset);
        table_cell(&tb, "%lld", (long long)b.npieces);
    }
    table_print(&tb, stdout, "  ");
    table_free(&tb);
}

static void stat_cell(table *tb, int64_t finite, double v)
{
    if (finite == 0)
        table_cell(tb, "-");
    else
        table_cell(tb, "%.6g", v);
}

static void print_stats(ckpt_reader *r, const int *sel, int nsel, const tstats *st)
{
    table tb;
    table_init(&tb, 8, 0xFEu);
    table_row(&tb);
    const char *head[] = {"name", "count", "nan", "inf", "min", "max", "mean", "std"};
    for (int c = 0; c < 8; c++)
        table_cell(&tb, "%s", head[c]);
    for (int k = 0; k < nsel; k++) {
        ckpt_tensor_info t;
        if (ckpt_reader_tensor_info(r, sel[k], &t) != CKPT_OK)
            continue;
        const tstats *s = &st[k];
        table_row(&tb);
        table_cell(&tb, "%s%s", t.name, s->complete ? "" : " (incomplete)");
        table_cell(&tb, "%lld", (long long)s->count);
        table_cell(&tb, "%lld", (long long)s->nan);
        table_cell(&tb, "%lld", (long long)s->inf);
        stat_cell(&tb, s->finite, s->min);
        stat_cell(&tb, s->finite, s->max);
        stat_cell(&tb, s->finite, s->mean);
        stat_cell(&tb, s->finite, stats_std(s));
    }
    printf("stats\n");
    table_print(&tb, stdout, "  ");
    table_free(&tb);
}

static void json_shape(json_writer *w, int ndim, const int64_t *v)
{
    json_begin_inline_array(w);
    for (int d = 0; d < ndim; d++)
        json_int(w, v[d]);
    json_end_array(w);
}

static void json_stat(json_writer *w, const char *key, int64_t finite, double v)
{
    json_key(w, key);
    if (finite)
        json_double(w, v);
    else
        json_nil(w);
}

static void write_json(ckpt_reader *r, const options *o, const summary *s, const int *sel, int nsel,
                       const tstats *st, const problems *ps, int64_t boxes, int64_t boxes_failed, int64_t bytes,
                       int shard_tensor)
{
    json_writer w;
    char lb[32];
    json_init(&w, stdout);
    json_begin_object(&w);
    json_key(&w, "path");
    json_str(&w, o->path);
    json_key(&w, "format_version");
    json_int(&w, ckpt_reader_format_version(r));
    json_key(&w, "library_version");
    json_str(&w, ckpt_reader_library_version(r));
    json_key(&w, "layout");
    json_str(&w, layout_name(ckpt_reader_layout(r), lb, sizeof lb));
    json_key(&w, "world_size");
    json_int(&w, ckpt_reader_world_size(r));
    json_key(&w, "step");
    if (s->has_step)
        json_int(&w, s->step);
    else
        json_nil(&w);
    json_key(&w, "num_tensors");
    json_int(&w, ckpt_reader_num_tensors(r));
    json_key(&w, "raw_bytes");
    json_int(&w, s->raw);
    json_key(&w, "stored_bytes");
    json_int(&w, s->stored);
    json_key(&w, "ratio");
    if (s->stored > 0)
        json_double(&w, (double)s->raw / (double)s->stored);
    else
        json_nil(&w);
    const ckpt_state *a = ckpt_reader_attrs(r);
    json_key(&w, "attributes");
    json_begin_object(&w);
    for (int i = 0; i < ckpt_state_num_attrs(a); i++) {
        const char *key;
        ckpt_attr_type ty;
        if (ckpt_state_attr_info(a, i, &key, &ty) != CKPT_OK)
            continue;
        json_key(&w, key);
        attr_json(&w, a, key, ty);
    }
    json_end_object(&w);
    json_key(&w, "tensors");
    json_begin_array(&w);
    for (int k = 0; k < nsel; k++) {
        ckpt_tensor_info t;
        if (ckpt_reader_tensor_info(r, sel[k], &t) != CKPT_OK)
            continue;
        json_begin_object(&w);
        json_key(&w, "name");
        json_str(&w, t.name);
        json_key(&w, "dtype");
        json_str(&w, ckpt_dtype_name(t.dtype));
        json_key(&w, "shape");
        json_shape(&w, t.ndim, t.shape);
        json_key(&w, "shards");
        json_int(&w, t.nboxes);
        json_key(&w, "bytes");
        json_int(&w, t.raw_bytes);
        json_key(&w, "stored_bytes");
        json_int(&w, t.stored_bytes);
        if (o->stats) {
            const tstats *x = &st[k];
            json_key(&w, "stats");
            json_begin_object(&w);
            json_key(&w, "count");
            json_int(&w, x->count);
            json_key(&w, "nan");
            json_int(&w, x->nan);
            json_key(&w, "inf");
            json_int(&w, x->inf);
            json_stat(&w, "min", x->finite, x->min);
            json_stat(&w, "max", x->finite, x->max);
            json_stat(&w, "mean", x->finite, x->mean);
            json_stat(&w, "std", x->finite, stats_std(x));
            json_key(&w, "complete");
            json_bool(&w, x->complete);
            json_end_object(&w);
        }
        json_end_object(&w);
    }
    json_end_array(&w);
    if (shard_tensor >= 0) {
        ckpt_tensor_info t;
        ckpt_reader_tensor_info(r, shard_tensor, &t);
        json_key(&w, "shards");
        json_begin_object(&w);
        json_key(&w, "tensor");
        json_str(&w, t.name);
        json_key(&w, "boxes");
        json_begin_array(&w);
        for (int64_t j = 0; j < t.nboxes; j++) {
            ckpt_box_info b;
            if (ckpt_reader_box_info(r, shard_tensor, j, &b) != CKPT_OK)
                continue;
            json_begin_object(&w);
            json_key(&w, "offset");
            json_shape(&w, t.ndim, b.offset);
            json_key(&w, "extent");
            json_shape(&w, t.ndim, b.extent);
            json_key(&w, "rank");
            json_int(&w, b.writer_rank);
            json_key(&w, "file");
            json_str(&w, b.file);
            json_key(&w, "dataset");
            json_str(&w, b.dataset);
            json_key(&w, "pieces");
            json_int(&w, b.npieces);
            json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
    }
    if (o->verify) {
        json_key(&w, "verify");
        json_begin_object(&w);
        json_key(&w, "ok");
        json_bool(&w, ps->n == 0);
        json_key(&w, "tensors");
        json_int(&w, nsel);
        json_key(&w, "boxes");
        json_int(&w, boxes);
        json_key(&w, "boxes_failed");
        json_int(&w, boxes_failed);
        json_key(&w, "bytes_read");
        json_int(&w, bytes);
        json_key(&w, "problems");
        json_begin_array(&w);
        for (int i = 0; i < ps->n; i++) {
            json_begin_object(&w);
            json_key(&w, "tensor");
            json_str(&w, ps->v[i].tensor);
            json_key(&w, "box");
            if (ps->v[i].box >= 0)
                json_int(&w, ps->v[i].box);
            else
                json_nil(&w);
            json_key(&w, "file");
            json_str(&w, ps->v[i].file);
            json_key(&w, "message");
            json_str(&w, ps->v[i].message);
            json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
    } else if (o->stats && ps->n) {
        json_key(&w, "problems");
        json_begin_array(&w);
        for (int i = 0; i < ps->n; i++)
            json_str(&w, ps->v[i].message);
        json_end_array(&w);
    }
    json_end_object(&w);
    json_finish(&w);
}

/* ------------------------------------------------------------------------- */
/* A directory of checkpoints                                                 */
/* ------------------------------------------------------------------------- */

static int list_root(const options *o, const root_list *l)
{
    if (o->json) {
        json_writer w;
        json_init(&w, stdout);
        json_begin_object(&w);
        json_key(&w, "root");
        json_str(&w, o->path);
        json_key(&w, "checkpoints");
        json_begin_array(&w);
        for (int i = 0; i < l->n; i++) {
            const root_entry *e = &l->v[i];
            json_begin_object(&w);
            json_key(&w, "name");
            json_str(&w, e->name);
            json_key(&w, "state");
            json_str(&w, root_state_name(e->state));
            json_key(&w, "bytes");
            json_int(&w, e->bytes);
            json_key(&w, "step");
            if (e->has_step)
                json_int(&w, e->step);
            else
                json_nil(&w);
            json_key(&w, "latest");
            json_bool(&w, e->latest);
            json_key(&w, "error");
            json_str(&w, e->error);
            json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
        json_finish(&w);
        return EXIT_OK;
    }
    printf("checkpoint root %s: %d checkpoints\n", o->path, l->n);
    table tb;
    table_init(&tb, 5, (1u << 2) | (1u << 3));
    table_row(&tb);
    table_cell(&tb, "name");
    table_cell(&tb, "state");
    table_cell(&tb, "size");
    table_cell(&tb, "step");
    table_cell(&tb, "%s", "");
    char sz[32];
    for (int i = 0; i < l->n; i++) {
        const root_entry *e = &l->v[i];
        table_row(&tb);
        table_cell(&tb, "%s", e->name);
        table_cell(&tb, "%s", root_state_name(e->state));
        table_cell(&tb, "%s", fmt_size(sz, sizeof sz, e->bytes));
        if (e->has_step)
            table_cell(&tb, "%lld", (long long)e->step);
        else
            table_cell(&tb, "-");
        table_cell(&tb, "%s", e->latest ? "latest" : "");
    }
    table_print(&tb, stdout, "  ");
    table_free(&tb);
    for (int i = 0; i < l->n; i++)
        if (l->v[i].state == ROOT_CORRUPT)
            printf("%s: %s\n", l->v[i].name, l->v[i].error ? l->v[i].error : "");
    return EXIT_OK;
}

/* ------------------------------------------------------------------------- */
/* main                                                                       */
/* ------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->max_read = DEFAULT_MAX_READ;
    int only_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if (only_args || a[0] != '-' || !strcmp(a, "-")) {
            if (o->path)
                return args_usage_error(PROG, "more than one PATH ('%s' and '%s')", o->path, a);
            o->path = a;
        } else if (!strcmp(a, "--")) {
            only_args = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return -1;
        } else if (!strcmp(a, "--verify")) {
            o->verify = 1;
        } else if (!strcmp(a, "--stats")) {
            o->stats = 1;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if ((v = args_value(argc, argv, &i, "--tensors", &m)) || m) {
            if (!v)
                return args_usage_error(PROG, "--tensors needs a GLOB");
            if (o->tensors)
                return args_usage_error(PROG, "--tensors may be given only once");
            o->tensors = v;
        } else if ((v = args_value(argc, argv, &i, "--shards", &m)) || m) {
            if (!v || !*v)
                return args_usage_error(PROG, "--shards needs a tensor NAME");
            if (o->shards)
                return args_usage_error(PROG, "--shards may be given only once");
            o->shards = v;
        } else if ((v = args_value(argc, argv, &i, "--max-read", &m)) || m) {
            if (!v || !parse_size(v, &o->max_read) || o->max_read < 8)
                return args_usage_error(PROG, "--max-read needs a size of at least 8 bytes, e.g. 64M");
        } else {
            return args_usage_error(PROG, "unknown option '%s'", a);
        }
    }
    if (!o->path)
        return args_usage_error(PROG, "no checkpoint PATH given");
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int prc = parse_args(argc, argv, &o);
    if (prc)
        return prc < 0 ? EXIT_OK : prc;

    /* a directory of checkpoints rather than a checkpoint? */
    struct stat st;
    if (stat(o.path, &st) == 0 && S_ISDIR(st.st_mode) && !root_is_checkpoint(o.path)) {
        root_list l;
        if (root_list_read(o.path, &l) == 0 && l.n > 0) {
            int rc;
            if (o.tensors || o.shards || o.verify || o.stats)
                rc = args_usage_error(PROG, "'%s' is a directory of checkpoints: --tensors, --shards, --verify and --stats "
                                 "need one checkpoint", o.path);
            else
                rc = list_root(&o, &l);
            root_list_free(&l);
            return rc;
        }
        root_list_free(&l);
    }

    ckpt_reader *r = NULL;
    if (ckpt_reader_open(o.path, &r) != CKPT_OK) {
        fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
        return EXIT_OPEN;
    }
    int n = ckpt_reader_num_tensors(r);
    int *sel = malloc(((size_t)n + 1) * sizeof *sel);
    tstats *stats = calloc((size_t)n + 1, sizeof *stats);
    problems ps;
    memset(&ps, 0, sizeof ps);
    ps.json = o.json;
    int nsel = 0, shard_tensor = -1, rc = EXIT_OK;
    if (!sel || !stats) {
        fprintf(stderr, PROG ": out of memory\n");
        rc = EXIT_OPEN;
        goto out;
    }
    if (o.shards) {
        if (ckpt_reader_find(r, o.shards, &shard_tensor) != CKPT_OK) {
            fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
            rc = EXIT_USAGE;
            goto out;
        }
        sel[nsel++] = shard_tensor;
    } else {
        for (int i = 0; i < n; i++) {
            ckpt_tensor_info t;
            if (ckpt_reader_tensor_info(r, i, &t) == CKPT_OK && glob_match(o.tensors, t.name))
                sel[nsel++] = i;
        }
    }
    summary s;
    summarize(r, &s);
    if (!o.json) {
        if (o.shards) {
            print_shards(r, shard_tensor);
        } else {
            print_summary(r, &o, &s);
            print_table(r, sel, nsel);
        }
        fflush(stdout);
    }
    int64_t boxes = 0, boxes_failed = 0, bytes = 0;
    if (o.verify || o.stats) {
        if (!o.json)
            putchar('\n');
        if (run_scan(r, &o, sel, nsel, &ps, stats, &boxes, &boxes_failed, &bytes) != 0)
            rc = EXIT_PROBLEMS;
        if (ps.n || ps.oom)
            rc = EXIT_PROBLEMS;
    }
    if (o.json) {
        write_json(r, &o, &s, sel, nsel, stats, &ps, boxes, boxes_failed, bytes, shard_tensor);
    } else {
        if (o.stats) {
            if (ps.n)
                putchar('\n');
            print_stats(r, sel, nsel, stats);
        }
        if (o.verify) {
            if (o.stats)
                putchar('\n');
            if (ps.n == 0)
                printf("verify: ok: %d tensor%s, %lld box%s, %lld bytes read, every checksum matches\n", nsel,
                       nsel == 1 ? "" : "s", (long long)boxes, boxes == 1 ? "" : "es", (long long)bytes);
            else
                printf("verify: FAILED: %d problem%s, %lld of %lld box%s bad, %d tensor%s\n", ps.n,
                       ps.n == 1 ? "" : "s", (long long)boxes_failed, (long long)boxes, boxes == 1 ? "" : "es", nsel,
                       nsel == 1 ? "" : "s");
        }
    }
out:
    problems_free(&ps);
    free(stats);
    free(sel);
    ckpt_reader_close(r);
    return rc;
}
