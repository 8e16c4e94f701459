/* shard-merge -- consolidates a libckpt checkpoint into a single-file one (world size 1, every
 * tensor one whole box), keeping a subset of its tensors and optionally casting the floating
 * ones; or averages several checkpoints of identical structure element by element.
 *
 *   shard-merge SRC OUT [--keep GLOB]... [--drop GLOB]... [--cast DTYPE]
 *   shard-merge --average [--weights W1,W2,...] SRC1 SRC2 ... OUT
 *
 * One process over the public API (reader and writer), piece by piece with bounded memory.
 * `shard-merge --help` and tools/README.md have the rest. */
#include "cli/args.h"
#include "cli/dest.h"
#include "cli/elem.h"
#include "cli/format.h"
#include "cli/glob.h"
#include "cli/interrupt.h"
#include "cli/launcher.h"
#include "cli/narrow.h"
#include "cli/pieces.h"
#include "cli/progress.h"
#include "cli/saveopt.h"
#include "cli/slab.h"

#include <ckpt.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "shard-merge"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = ARGS_EXIT_USAGE, EXIT_OPEN = 3 };

static const char usage_text[] =
    "usage: shard-merge SRC OUT [--keep GLOB]... [--drop GLOB]... [--cast bf16|f16|f32|f64]\n"
    "                   [--layout shared|file-per-rank|group] [--compress none|zstd[:LEVEL]]\n"
    "                   [--max-memory SIZE]\n"
    "       shard-merge --average [--weights W1,W2,...] SRC1 SRC2 ... OUT [options above]\n"
    "\n"
    "Consolidates the libckpt checkpoint SRC, saved by any number of ranks, into a checkpoint at\n"
    "OUT as one rank would have saved it: world size 1, every tensor one whole box, in the shared\n"
    "layout by default, so that plain h5py reads a tensor as\n"
    "  h5py.File('OUT/data.h5')['tensors/<name>'][...]\n"
    "(bf16 tensors are stored as uint16 bit patterns, formats/SPEC.md). OUT is a regular libckpt\n"
    "checkpoint (index, checksums, COMMITTED marker), written under a temporary name and\n"
    "committed atomically: a failure or an interrupt leaves nothing at OUT. Attributes are copied\n"
    "unchanged. Every piece read is checksum-verified. One process, no MPI launcher.\n"
    "\n"
    "With --average, OUT is the element-wise (weighted) mean of the checkpoints SRC1..SRCK\n"
    "(K >= 2), which must hold the same tensors (after --keep/--drop) with the same dtypes and\n"
    "shapes, however they were sharded: sum(w_i * x_i) / sum(w_i), computed in double precision\n"
    "and written in the tensor's dtype (or --cast's) rounding to nearest even. Integer and bool\n"
    "tensors are not averaged: they must be equal in every checkpoint and are copied. Attributes\n"
    "are those of SRC1.\n"
    "\n"
    "options:\n"
    "  --keep GLOB        keep only the tensors whose name matches one of the --keep globs\n"
    "                     (fnmatch(3); '*' also matches '/'; quote it for the shell)\n"
    "  --drop GLOB        leave out the tensors whose name matches a --drop glob (applied after\n"
    "                     --keep), e.g. --drop 'optim/*'\n"
    "  --cast DTYPE       write floating tensors (f32, f64, f16, bf16) as DTYPE (bf16, f16, f32\n"
    "                     or f64), converted by the library rounding to nearest even; other\n"
    "                     tensors keep their dtype\n"
    "  --average          average SRC1..SRCK instead of consolidating one checkpoint\n"
    "  --weights W,...    with --average: one weight per checkpoint (finite, >= 0, not all 0;\n"
    "                     default all 1)\n"
    "  --layout L         shared (default: one data.h5), file-per-rank (one rank-00000.h5) or group\n"
    "                     (one group-00000.h5)\n"
    "  --compress C       none (default) or zstd, zstd:LEVEL\n"
    "  --max-memory SIZE  bound of the data buffers (default 256M; suffixes K, M, G; at least\n"
    "                     4K): OUT's checksum pieces are sized so that the buffers stay within a\n"
    "                     quarter of it (min(4M, SIZE/4) bytes to consolidate; smaller pieces\n"
    "                     with --average, which holds double-precision sums); add one checksum\n"
    "                     piece of each source (its piece size, 4M by default) held by the reader\n"
    "  -h, --help         this text\n"
    "\n"
    "On success one line on stdout: \"wrote OUT: T of N tensors, B bytes; LAYOUT, world size 1,\n"
    "compression C\", followed by what was cast or averaged. Under mpirun/mpiexec/srun only the\n"
    "process of rank 0 works; the others exit 0 at once.\n"
    "\n"
    "examples:\n"
    "  shard-merge ckpt/step-1000 model.ckpt --drop 'optim/*' --cast bf16\n"
    "  shard-merge ckpt/step-1000 part --keep 'model/*' --keep step_stats --layout file-per-rank\n"
    "  shard-merge --average ckpt/step-900 ckpt/step-1000 avg\n"
    "  shard-merge --average --weights 1,3 a b ema\n"
    "\n"
    "exit status:\n"
    "  0  OUT written and committed\n"
    "  1  failure: a source unreadable (checksum mismatch, missing or damaged data file: the\n"
    "     message names tensor and file), OUT exists (the library's CKPT_EEXIST; nothing is\n"
    "     overwritten), --average sources of different structure or with differing integer\n"
    "     tensors (the message names the tensor), disk full, interrupted; nothing is left at OUT\n"
    "  2  usage error: unknown option, bad value, OUT inside a source, no tensor left after\n"
    "     --keep/--drop\n"
    "  3  a source cannot be opened: missing, incomplete (no COMMITTED marker), corrupt or\n"
    "     modified index, not a checkpoint, unknown format version\n";

typedef struct options {
    const char **paths; /* positional: sources then OUT */
    int npaths;
    const char **keep, **drop;
    int nkeep, ndrop;
    int cast_set;
    ckpt_dtype cast;
    int average;
    const char *weights_arg;
    double *weights; /* nsrc of them with --average */
    ckpt_save_options so;
    int64_t budget;
} options;

static void free_options(options *o)
{
    free(o->paths);
    free(o->keep);
    free(o->drop);
    free(o->weights);
}

/* "1,3,0.5" into nsrc finite weights >= 0 with a positive sum. */
static int parse_weights(const char *s, int nsrc, double *w)
{
    int n = 0;
    double sum = 0;
    const char *c = s;
    for (;;) {
        if (n == nsrc)
            return 0;
        errno = 0;
        char *end;
        double v = strtod(c, &end);
        if (errno || end == c || (*end && *end != ',') || !isfinite(v) || v < 0)
            return 0;
        w[n++] = v;
        sum += v;
        if (!*end)
            break;
        c = end + 1;
    }
    return n == nsrc && sum > 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    ckpt_save_options_init(&o->so);
    o->so.layout = CKPT_LAYOUT_SHARED;
    o->budget = SAVEOPT_DEFAULT_BUDGET;
    o->paths = calloc((size_t)argc, sizeof *o->paths);
    o->keep = calloc((size_t)argc, sizeof *o->keep);
    o->drop = calloc((size_t)argc, sizeof *o->drop);
    if (!o->paths || !o->keep || !o->drop) {
        fprintf(stderr, PROG ": out of memory\n");
        return EXIT_FAIL;
    }
    int only_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if (only_args || a[0] != '-' || !strcmp(a, "-")) {
            o->paths[o->npaths++] = a;
        } else if (!strcmp(a, "--")) {
            only_args = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return -1;
        } else if (!strcmp(a, "--average")) {
            o->average = 1;
        } else if ((v = args_value(argc, argv, &i, "--keep", &m)) || m) {
            if (!v)
                return args_usage_error(PROG, "--keep needs a glob");
            o->keep[o->nkeep++] = v;
        } else if ((v = args_value(argc, argv, &i, "--drop", &m)) || m) {
            if (!v)
                return args_usage_error(PROG, "--drop needs a glob");
            o->drop[o->ndrop++] = v;
        } else if ((v = args_value(argc, argv, &i, "--cast", &m)) || m) {
            if (!v || ckpt_dtype_from_name(v, &o->cast) != CKPT_OK || !elem_is_float(o->cast))
                return args_usage_error(PROG, "--cast needs a floating dtype: bf16, f16, f32 or f64");
            o->cast_set = 1;
        } else if ((v = args_value(argc, argv, &i, "--weights", &m)) || m) {
            if (!v || !*v)
                return args_usage_error(PROG, "--weights needs a comma-separated list of numbers");
            o->weights_arg = v;
        } else if ((v = args_value(argc, argv, &i, "--layout", &m)) || m) {
            if (!v || !saveopt_parse_layout(v, &o->so))
                return args_usage_error(PROG, "--layout needs shared or file-per-rank, or group[:K]");
        } else if ((v = args_value(argc, argv, &i, "--compress", &m)) || m) {
            if (!v || !saveopt_parse_compress(v, &o->so))
                return args_usage_error(PROG, "--compress needs none, zstd or zstd:LEVEL");
        } else if ((v = args_value(argc, argv, &i, "--max-memory", &m)) || m) {
            if (!v || !parse_size(v, &o->budget) || o->budget < SAVEOPT_MIN_BUDGET)
                return args_usage_error(PROG, "--max-memory needs a size of at least 4K, e.g. 256M");
        } else {
            return args_usage_error(PROG, "unknown option '%s'", a);
        }
    }
    if (!o->average) {
        if (o->weights_arg)
            return args_usage_error(PROG, "--weights needs --average");
        if (o->npaths != 2)
            return args_usage_error(PROG, "needs a source SRC and an output OUT (or --average SRC1 SRC2 ... OUT)");
        return 0;
    }
    if (o->npaths < 3)
        return args_usage_error(PROG, "--average needs at least two sources and an output");
    int nsrc = o->npaths - 1;
    o->weights = malloc((size_t)nsrc * sizeof *o->weights);
    if (!o->weights) {
        fprintf(stderr, PROG ": out of memory\n");
        return EXIT_FAIL;
    }
    for (int k = 0; k < nsrc; k++)
        o->weights[k] = 1;
    if (o->weights_arg && !parse_weights(o->weights_arg, nsrc, o->weights))
        return args_usage_error(PROG, "--weights needs %d comma-separated finite numbers >= 0, not all 0, one "
                                "per source", nsrc);
    return 0;
}

static int selected(const options *o, const char *name)
{
    int keep = o->nkeep == 0;
    for (int i = 0; !keep && i < o->nkeep; i++)
        keep = glob_match(o->keep[i], name);
    for (int i = 0; keep && i < o->ndrop; i++)
        keep = !glob_match(o->drop[i], name);
    return keep;
}

static const char *dtname(ckpt_dtype d) { return ckpt_dtype_name(d) ? ckpt_dtype_name(d) : "?"; }

/* --average: every source holds the selected tensors of the first, with the same dtype and
 * shape, and no other selected tensor. 0, or -1 after a message on stderr. */
static int same_structure(const options *o, ckpt_reader **rs, int nsrc)
{
    char s1[FMT_BOX_LEN], s2[FMT_BOX_LEN];
    for (int k = 1; k < nsrc; k++) {
        for (int pass = 0; pass < 2; pass++) {
            /* pass 0: the tensors of SRC1 in SRCk; pass 1: those of SRCk in SRC1 */
            ckpt_reader *ra = pass ? rs[k] : rs[0], *rb = pass ? rs[0] : rs[k];
            const char *pa = o->paths[pass ? k : 0], *pb = o->paths[pass ? 0 : k];
            int n = ckpt_reader_num_tensors(ra);
            for (int i = 0; i < n; i++) {
                ckpt_tensor_info ta, tb;
                int j;
                if (ckpt_reader_tensor_info(ra, i, &ta) != CKPT_OK || !selected(o, ta.name))
                    continue;
                if (ckpt_reader_find(rb, ta.name, &j) != CKPT_OK || ckpt_reader_tensor_info(rb, j, &tb) != CKPT_OK) {
                    fprintf(stderr, PROG ": tensor '%s' is in '%s' but not in '%s'; --average needs checkpoints of "
                            "identical structure\n", ta.name, pa, pb);
                    return -1;
                }
                if (pass)
                    continue;
                int same_shape = ta.ndim == tb.ndim;
                for (int d = 0; same_shape && d < ta.ndim; d++)
                    same_shape = ta.shape[d] == tb.shape[d];
                if (ta.dtype != tb.dtype || !same_shape) {
                    fprintf(stderr, PROG ": tensor '%s' is %s %s in '%s' but %s %s in '%s'; --average needs "
                            "checkpoints of identical structure\n", ta.name, dtname(ta.dtype),
                            fmt_shape(s1, sizeof s1, ta.ndim, ta.shape), pa, dtname(tb.dtype),
                            fmt_shape(s2, sizeof s2, tb.ndim, tb.shape), pb);
                    return -1;
                }
            }
        }
    }
    return 0;
}

/* --average of one piece. */
typedef struct averager {
    const options *o;
    ckpt_reader **rs;
    int nsrc;
    double wsum;
    ckpt_dtype src_dtype, out_dtype; /* of the tensor being written */
    double *acc;                     /* one piece of sums */
    void *tmp;                       /* one piece read from a source (f64, or the integer dtype) */
} averager;

static int fill_average(void *arg, const char *name, int ndim, const int64_t *off, const int64_t *ext, int64_t n,
                        void *buf, char *err, size_t errlen)
{
    averager *a = arg;
    if (!elem_is_float(a->src_dtype)) {
        /* integers and bool: copied from SRC1 when every source holds the same values */
        size_t es = ckpt_dtype_size(a->src_dtype);
        for (int k = 0; k < a->nsrc; k++) {
            void *dst = k ? a->tmp : buf;
            if (ckpt_reader_read(a->rs[k], name, a->src_dtype, off, ext, dst, 1) != CKPT_OK) {
                snprintf(err, errlen, "cannot read '%s': %s", a->o->paths[k], ckpt_errmsg());
                return -1;
            }
            if (k == 0 || memcmp(buf, a->tmp, (size_t)n * es) == 0)
                continue;
            int64_t e = 0;
            while (e < n && memcmp((char *)buf + e * (int64_t)es, (char *)a->tmp + e * (int64_t)es, es) == 0)
                e++;
            /* the element's global index */
            int64_t idx[CKPT_MAX_NDIM], rem = e;
            for (int d = ndim - 1; d >= 0; d--) {
                idx[d] = off[d] + (ext[d] ? rem % ext[d] : 0);
                rem = ext[d] ? rem / ext[d] : 0;
            }
            char at[FMT_BOX_LEN];
            snprintf(err, errlen, "tensor '%s' (%s) differs between '%s' and '%s' at %s (%lld vs %lld): integer "
                     "and bool tensors are not averaged, only copied when equal in every source", name,
                     dtname(a->src_dtype), a->o->paths[0], a->o->paths[k], fmt_shape(at, sizeof at, ndim, idx),
                     (long long)elem_to_int(a->src_dtype, (char *)buf + e * (int64_t)es),
                     (long long)elem_to_int(a->src_dtype, (char *)a->tmp + e * (int64_t)es));
            return -1;
        }
        return 0;
    }
    double *x = a->tmp;
    for (int k = 0; k < a->nsrc; k++) {
        if (ckpt_reader_read(a->rs[k], name, CKPT_F64, off, ext, x, 1) != CKPT_OK) {
            snprintf(err, errlen, "cannot read '%s': %s", a->o->paths[k], ckpt_errmsg());
            return -1;
        }
        double w = a->o->weights[k];
        if (k == 0)
            for (int64_t e = 0; e < n; e++)
                a->acc[e] = w * x[e];
        else
            for (int64_t e = 0; e < n; e++)
                a->acc[e] += w * x[e];
    }
    for (int64_t e = 0; e < n; e++)
        a->acc[e] /= a->wsum;
    narrow_store(a->out_dtype, a->acc, n, buf);
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int prc = parse_args(argc, argv, &o);
    if (prc) {
        free_options(&o);
        return prc < 0 ? EXIT_OK : prc;
    }
    if (launcher_rank() > 0) {
        free_options(&o);
        return EXIT_OK; /* one process writes; see --help */
    }
    int nsrc = o.npaths - 1, rc = EXIT_OK;
    const char *out = o.paths[nsrc];
    ckpt_reader **rs = calloc((size_t)nsrc, sizeof *rs);
    ckpt_writer *w = NULL;
    void *buf = NULL;
    averager av;
    memset(&av, 0, sizeof av);
    if (!rs) {
        fprintf(stderr, PROG ": out of memory\n");
        rc = EXIT_FAIL;
        goto done;
    }
    if (saveopt_check(out, &o.so) != 0) {
        rc = args_usage_error(PROG, "%s", ckpt_errmsg());
        goto done;
    }
    for (int k = 0; k < nsrc; k++)
        if (dest_inside(out, o.paths[k])) {
            rc = args_usage_error(PROG, "OUT '%s' is or lies inside the source checkpoint '%s'", out, o.paths[k]);
            goto done;
        }

    /* what is written: the selected tensors of SRC1, in the output dtype */
    for (int k = 0; k < nsrc; k++)
        if (ckpt_reader_open(o.paths[k], &rs[k]) != CKPT_OK) {
            fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
            rc = EXIT_OPEN;
            goto done;
        }
    int nt = ckpt_reader_num_tensors(rs[0]), nsel = 0, first_data = -1;
    int64_t total = 0;
    size_t es_float = 0; /* smallest output element size of a floating tensor (0: none) */
    int any_int = 0;
    for (int i = 0; i < nt; i++) {
        ckpt_tensor_info t;
        if (ckpt_reader_tensor_info(rs[0], i, &t) != CKPT_OK || !selected(&o, t.name))
            continue;
        int isf = elem_is_float(t.dtype);
        ckpt_dtype od = isf && o.cast_set ? o.cast : t.dtype;
        size_t es = ckpt_dtype_size(od);
        nsel++;
        total += box_volume(t.ndim, t.shape) * (int64_t)es;
        if (first_data < 0 && t.raw_bytes > 0)
            first_data = i;
        if (isf && (es_float == 0 || es < es_float))
            es_float = es;
        any_int |= !isf;
    }
    if (nsel == 0) {
        rc = args_usage_error(PROG, "--keep/--drop leave none of the %d tensors of '%s'", nt, o.paths[0]);
        goto done;
    }
    if (o.average && same_structure(&o, rs, nsrc) != 0) {
        rc = EXIT_FAIL;
        goto done;
    }

    /* buffers: one output piece; with --average a piece of f64 sums and one read from a source */
    int64_t factor = 1;
    if (o.average)
        factor = es_float ? 1 + 16 / (int64_t)es_float : 2; /* in pieces: out + f64 sums + f64 read */
    o.so.piece_bytes = saveopt_piece_bytes(o.budget, 4 * factor);
    size_t pb = (size_t)o.so.piece_bytes, float_elems = es_float ? pb / es_float : 0;
    buf = malloc(pb);
    if (o.average) {
        size_t tmp_bytes = float_elems * sizeof(double);
        if (any_int && tmp_bytes < pb)
            tmp_bytes = pb;
        av.acc = malloc(float_elems * sizeof(double) + 1);
        av.tmp = malloc(tmp_bytes + 1);
    }
    if (!buf || (o.average && (!av.acc || !av.tmp))) {
        fprintf(stderr, PROG ": out of memory for the piece buffers\n");
        rc = EXIT_FAIL;
        goto done;
    }

    if (ckpt_writer_open(out, 1, &o.so, &w) != CKPT_OK) {
        fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
        rc = EXIT_FAIL;
        goto done;
    }
    for (int i = 0; i < nt; i++) {
        ckpt_tensor_info t;
        if (ckpt_reader_tensor_info(rs[0], i, &t) != CKPT_OK || !selected(&o, t.name))
            continue;
        ckpt_dtype od = elem_is_float(t.dtype) && o.cast_set ? o.cast : t.dtype;
        int64_t zero[CKPT_MAX_NDIM] = {0};
        int s = ckpt_writer_add_tensor(w, t.name, od, t.ndim, t.shape);
        if (s == CKPT_OK && box_volume(t.ndim, t.shape) > 0)
            s = ckpt_writer_add_box(w, t.name, zero, t.shape, 0);
        if (s != CKPT_OK) {
            fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
            rc = EXIT_FAIL;
            goto done;
        }
    }
    if (ckpt_writer_set_attrs(w, ckpt_reader_attrs(rs[0])) != CKPT_OK) {
        fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
        rc = EXIT_FAIL;
        goto done;
    }
    interrupt_install();
    pieces_source src = {rs[0], CKPT_F32};
    av.o = &o;
    av.rs = rs;
    av.nsrc = nsrc;
    for (int k = 0; o.average && k < nsrc; k++)
        av.wsum += o.weights[k];
    progress bar;
    pieces_job job;
    memset(&job, 0, sizeof job);
    job.w = w;
    job.buf = buf;
    job.buf_bytes = pb;
    job.fill = o.average ? fill_average : pieces_fill_read;
    job.arg = o.average ? (void *)&av : (void *)&src;
    job.bar = &bar;
    if (first_data >= 0) {
        ckpt_tensor_info t;
        ckpt_reader_tensor_info(rs[0], first_data, &t);
        if (pieces_plan(&job, t.name) != PIECES_OK) {
            fprintf(stderr, PROG ": %s\n", job.err);
            rc = EXIT_FAIL;
            goto done;
        }
    }
    progress_begin(&bar, o.average ? "average" : "merge", total);
    for (int i = 0; i < nt; i++) {
        ckpt_tensor_info t;
        if (ckpt_reader_tensor_info(rs[0], i, &t) != CKPT_OK || !selected(&o, t.name))
            continue;
        ckpt_dtype od = elem_is_float(t.dtype) && o.cast_set ? o.cast : t.dtype;
        src.dtype = od;
        av.src_dtype = t.dtype;
        av.out_dtype = od;
        if (pieces_tensor(&job, t.name, t.ndim, ckpt_dtype_size(od)) != PIECES_OK) {
            progress_end(&bar);
            fprintf(stderr, PROG ": %s; nothing written at '%s'\n", job.err, out);
            rc = EXIT_FAIL;
            goto done;
        }
    }
    progress_end(&bar);
    int s = ckpt_writer_commit(w);
    w = NULL;
    if (s != CKPT_OK) {
        fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
        rc = EXIT_FAIL;
        goto done;
    }
    char cz[64];
    printf("wrote %s: %d of %d tensors, %lld bytes; %s, world size 1, compression %s", out, nsel, nt,
           (long long)total, ckpt_layout_name(o.so.layout), saveopt_compress_str(cz, sizeof cz, &o.so));
    if (o.cast_set)
        printf("; floating tensors as %s", dtname(o.cast));
    if (o.average) {
        printf("; mean of %d checkpoints", nsrc);
        if (o.weights_arg) {
            printf(", weights");
            for (int k = 0; k < nsrc; k++)
                printf("%s%.17g", k ? ", " : " ", o.weights[k]);
        }
    }
    putchar('\n');
done:
    if (w)
        ckpt_writer_abort(w);
    for (int k = 0; rs && k < nsrc; k++)
        ckpt_reader_close(rs[k]);
    free(rs);
    free(buf);
    free(av.acc);
    free(av.tmp);
    free_options(&o);
    return rc;
}
