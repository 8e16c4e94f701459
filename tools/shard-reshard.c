/* shard-reshard -- rewrites a libckpt checkpoint saved by N ranks as the checkpoint M ranks would
 * have written (file-per-rank for M ranks, or the shared layout), optionally changing the
 * compression, without a training job.
 *
 *   shard-reshard SRC DST --world-size M [--layout L] [--compress C] [--plan FILE]
 *                 [--split-whole DIM] [--max-memory SIZE]
 *
 * One process over the public API: the reader (ckpt_reader_*) reads SRC region by region with
 * every checksum verified, the writer (ckpt_writer_*) plans DST with the library's planner and
 * commits it atomically. Data moves one destination piece at a time, so memory stays within
 * --max-memory whatever the size of a tensor. `shard-reshard --help` and tools/README.md have
 * the rest. */
#include "cli/args.h"
#include "cli/dest.h"
#include "cli/format.h"
#include "cli/interrupt.h"
#include "cli/launcher.h"
#include "cli/pieces.h"
#include "cli/plan.h"
#include "cli/progress.h"
#include "cli/saveopt.h"
#include "cli/slab.h"

#include <ckpt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "shard-reshard"
#define MAX_WORLD 100000 /* rank files are rank-NNNNN.h5 */
/* The piece is a quarter of the budget: one buffer of it, plus the reader's buffer of one source
 * piece and HDF5's own, stay well inside --max-memory. */
#define BUDGET_DIVISOR 4

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = ARGS_EXIT_USAGE, EXIT_OPEN = 3 };

static const char usage_text[] =
    "usage: shard-reshard SRC DST --world-size M [--layout file-per-rank|shared|group[:K]]\n"
    "                     [--compress none|zstd[:LEVEL]] [--plan FILE] [--split-whole DIM]\n"
    "                     [--max-memory SIZE]\n"
    "\n"
    "Rewrites the libckpt checkpoint SRC, saved by any number of ranks, as the checkpoint that M\n"
    "ranks would have written, at DST: file-per-rank files for M ranks, or the shared layout,\n"
    "optionally with another compression. No training job and no MPI launcher are needed; the\n"
    "result is indistinguishable from a ckpt_save by M ranks (same planner, same index, checksums\n"
    "of every piece) and loads bit-exactly at any world size. SRC is only read, with the checksum\n"
    "of every piece verified; DST is written under a temporary name beside it and committed\n"
    "atomically, so a failure or an interrupt (Ctrl-C) leaves nothing at DST. Attributes are\n"
    "copied unchanged.\n"
    "\n"
    "Target sharding, per tensor:\n"
    "  * by default an even Shard(dim) over the M ranks (the split of ckpt_shard_box and\n"
    "    torch.chunk: ceil(n/M) rows each, the last ranks fewer or none), along the dim SRC was\n"
    "    split along: the outermost dim along which the offsets of its saved boxes differ;\n"
    "  * a tensor SRC saved as one whole box (replicated, 0-D, or every tensor of a checkpoint\n"
    "    saved by one rank) stays one whole box, written by rank 0 (replicas are written once\n"
    "    anyway), unless --split-whole DIM;\n"
    "  * a plan file (--plan) sets the boxes of the tensors it names.\n"
    "\n"
    "options:\n"
    "  --world-size M     the world size of DST (1..100000; required)\n"
    "  --layout L         file-per-rank (one rank-NNNNN.h5 per rank holding data), shared (one\n"
    "                     data.h5; h5py reads data.h5['tensors/<name>'] whole) or group[:K] (one\n"
    "                     group-NNNNN.h5 per K ranks, default 8); default: the layout of SRC\n"
    "  --compress C       none (default) or zstd, zstd:LEVEL (1 by default; negative levels are\n"
    "                     zstd's fast ones, up to 22), byte shuffle before zstd\n"
    "  --plan FILE        boxes per rank for some tensors; one directive per line, '#' comments:\n"
    "                       NAME RANK start:stop,start:stop,...   RANK holds that box of NAME\n"
    "                       NAME RANK                             RANK holds all of NAME\n"
    "                       NAME shard DIM                        even Shard(DIM) over M ranks\n"
    "                     tensors it does not name get the default split; boxes that leave a gap\n"
    "                     or overlap are refused with the library's coverage message (exit 2);\n"
    "                     format: tools/README.md\n"
    "  --split-whole DIM  split the tensors SRC saved as one whole box Shard(DIM) too (those with\n"
    "                     DIM+1 dims or more; the others stay whole on rank 0)\n"
    "  --max-memory SIZE  bound of the data buffers (default 256M; suffixes K, M, G; at least 4K):\n"
    "                     DST's checksum pieces are min(4M, SIZE/4) bytes and data moves one\n"
    "                     piece at a time; add one checksum piece of SRC (its piece size, 4M by\n"
    "                     default) that the reader holds\n"
    "  -h, --help         this text\n"
    "\n"
    "On success one line on stdout: \"wrote DST: T tensors, B boxes, N bytes; LAYOUT, world size\n"
    "M, compression C\". A progress bar appears on stderr when it is a terminal.\n"
    "\n"
    "Under mpirun/mpiexec/srun only the process of rank 0 works (the writer is one process); the\n"
    "others exit 0 at once. Run it without a launcher.\n"
    "\n"
    "examples:\n"
    "  shard-reshard ckpt/step-1000 ckpt8/step-1000 --world-size 8\n"
    "  shard-reshard ckpt/step-1000 one --world-size 1 --layout shared --compress zstd:3\n"
    "  shard-reshard ckpt/step-1000 tp2 --world-size 2 --plan tp.plan --max-memory 64M\n"
    "\n"
    "exit status:\n"
    "  0  DST written and committed\n"
    "  1  failure while writing: SRC unreadable (checksum mismatch, missing or damaged data\n"
    "     file: the message names tensor and file), DST exists (the library's CKPT_EEXIST;\n"
    "     nothing is overwritten), disk full, interrupted; nothing is left at DST\n"
    "  2  usage error: unknown option, bad value, DST inside SRC, a plan file that does not parse\n"
    "     or whose boxes the library refuses (gap, overlap, out of bounds)\n"
    "  3  SRC cannot be opened: missing, incomplete (no COMMITTED marker), corrupt or modified\n"
    "     index, not a checkpoint, unknown format version\n";

typedef struct options {
    const char *src, *dst, *plan;
    long world;
    int have_layout;
    ckpt_save_options so;
    long split_whole; /* -1: off */
    int64_t budget;
} options;

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    ckpt_save_options_init(&o->so);
    o->world = -1;
    o->split_whole = -1;
    o->budget = SAVEOPT_DEFAULT_BUDGET;
    int only_args = 0, npaths = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if (only_args || a[0] != '-' || !strcmp(a, "-")) {
            if (npaths == 2)
                return args_usage_error(PROG, "more than two paths given ('%s')", a);
            if (npaths++ == 0)
                o->src = a;
            else
                o->dst = a;
        } else if (!strcmp(a, "--")) {
            only_args = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return -1;
        } else if ((v = args_value(argc, argv, &i, "--world-size", &m)) || m) {
            if (!v || !args_int(v, 1, MAX_WORLD, &o->world))
                return args_usage_error(PROG, "--world-size needs a number of ranks from 1 to %d", MAX_WORLD);
        } else if ((v = args_value(argc, argv, &i, "--layout", &m)) || m) {
            if (!v || !saveopt_parse_layout(v, &o->so))
                return args_usage_error(PROG, "--layout needs file-per-rank or shared, or group[:K]");
            o->have_layout = 1;
        } else if ((v = args_value(argc, argv, &i, "--compress", &m)) || m) {
            if (!v || !saveopt_parse_compress(v, &o->so))
                return args_usage_error(PROG, "--compress needs none, zstd or zstd:LEVEL");
        } else if ((v = args_value(argc, argv, &i, "--plan", &m)) || m) {
            if (!v || !*v)
                return args_usage_error(PROG, "--plan needs a file");
            o->plan = v;
        } else if ((v = args_value(argc, argv, &i, "--split-whole", &m)) || m) {
            if (!v || !args_int(v, 0, CKPT_MAX_NDIM - 1, &o->split_whole))
                return args_usage_error(PROG, "--split-whole needs a dim from 0 to %d", CKPT_MAX_NDIM - 1);
        } else if ((v = args_value(argc, argv, &i, "--max-memory", &m)) || m) {
            if (!v || !parse_size(v, &o->budget) || o->budget < SAVEOPT_MIN_BUDGET)
                return args_usage_error(PROG, "--max-memory needs a size of at least 4K, e.g. 256M");
        } else {
            return args_usage_error(PROG, "unknown option '%s'", a);
        }
    }
    if (npaths != 2)
        return args_usage_error(PROG, "needs a source SRC and a destination DST");
    if (o->world < 0)
        return args_usage_error(PROG, "--world-size M is required");
    o->so.piece_bytes = saveopt_piece_bytes(o->budget, BUDGET_DIVISOR);
    o->so.overwrite = 0;
    return 0;
}

/* The dim along which SRC split a tensor: the outermost dim along which the offsets of its saved
 * boxes differ; -1 when it saved one box (or none). */
static int source_dim(const ckpt_reader *r, int ti, const ckpt_tensor_info *t)
{
    if (t->ndim == 0 || t->nboxes < 2)
        return -1;
    ckpt_box_info b0, b;
    if (ckpt_reader_box_info(r, ti, 0, &b0) != CKPT_OK)
        return -1;
    int best = t->ndim;
    for (int64_t j = 1; j < t->nboxes && best > 0; j++) {
        if (ckpt_reader_box_info(r, ti, j, &b) != CKPT_OK)
            continue;
        for (int d = 0; d < best; d++)
            if (b.offset[d] != b0.offset[d]) {
                best = d;
                break;
            }
    }
    return best < t->ndim ? best : -1;
}

/* Declares tensor t of SRC and its boxes in DST. Returns the library's status. */
static int declare(ckpt_writer *w, const ckpt_reader *r, int ti, const ckpt_tensor_info *t, const plan *pl,
                   const options *o)
{
    int rc = ckpt_writer_add_tensor(w, t->name, t->dtype, t->ndim, t->shape);
    if (rc || box_volume(t->ndim, t->shape) == 0)
        return rc; /* a zero-size tensor has no boxes */
    const plan_entry *pe = plan_find(pl, t->name);
    if (pe && pe->shard_dim < 0) {
        for (int k = 0; rc == CKPT_OK && k < pe->nboxes; k++)
            rc = ckpt_writer_add_box(w, t->name, pe->boxes[k].off, pe->boxes[k].ext, pe->boxes[k].rank);
        return rc;
    }
    int dim = pe ? pe->shard_dim : source_dim(r, ti, t);
    if (dim < 0 && o->split_whole >= 0 && o->split_whole < t->ndim)
        dim = (int)o->split_whole;
    int64_t off[CKPT_MAX_NDIM] = {0};
    if (dim < 0) /* one whole box, on rank 0 */
        return ckpt_writer_add_box(w, t->name, off, t->shape, 0);
    /* one descriptor, whatever the world size: memory does not grow with M */
    return ckpt_writer_add_shard(w, t->name, dim, (int)o->world);
}

int main(int argc, char **argv)
{
    options o;
    int prc = parse_args(argc, argv, &o);
    if (prc)
        return prc < 0 ? EXIT_OK : prc;
    if (launcher_rank() > 0)
        return EXIT_OK; /* one process writes; see --help */
    if (saveopt_check(o.dst, &o.so) != 0)
        return args_usage_error(PROG, "%s", ckpt_errmsg());
    if (dest_inside(o.dst, o.src))
        return args_usage_error(PROG, "DST '%s' is or lies inside the source checkpoint '%s'", o.dst, o.src);

    ckpt_reader *r = NULL;
    if (ckpt_reader_open(o.src, &r) != CKPT_OK) {
        fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
        return EXIT_OPEN;
    }
    if (!o.have_layout) {
        o.so.layout = ckpt_reader_layout(r);
        if (o.so.layout == CKPT_LAYOUT_GROUP)
            o.so.group_size = SAVEOPT_GROUP_SIZE;
    }
    int rc = EXIT_OK;
    ckpt_writer *w = NULL;
    void *buf = NULL;
    plan pl;
    memset(&pl, 0, sizeof pl);
    char err[4096];
    if (o.plan && plan_read(o.plan, r, (int)o.world, &pl, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        rc = EXIT_USAGE;
        goto out;
    }
    if (ckpt_writer_open(o.dst, (int)o.world, &o.so, &w) != CKPT_OK) {
        fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
        rc = EXIT_FAIL;
        goto out;
    }

    /* declare every tensor and its boxes, then let the writer plan (coverage, DST exists) */
    int nt = ckpt_reader_num_tensors(r), first_data = -1;
    int64_t total = 0;
    for (int i = 0; i < nt; i++) {
        ckpt_tensor_info t;
        memset(&t, 0, sizeof t);
        int s = ckpt_reader_tensor_info(r, i, &t);
        if (s == CKPT_OK)
            s = declare(w, r, i, &t, &pl, &o);
        if (s != CKPT_OK) {
            fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
            rc = t.name && plan_find(&pl, t.name) ? EXIT_USAGE : EXIT_FAIL;
            goto out;
        }
        if (first_data < 0 && t.raw_bytes > 0)
            first_data = i;
        total += t.raw_bytes;
    }
    if (ckpt_writer_set_attrs(w, ckpt_reader_attrs(r)) != CKPT_OK) {
        fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
        rc = EXIT_FAIL;
        goto out;
    }
    interrupt_install();
    buf = malloc((size_t)o.so.piece_bytes);
    if (!buf) {
        fprintf(stderr, PROG ": out of memory for a %lld-byte buffer\n", (long long)o.so.piece_bytes);
        rc = EXIT_FAIL;
        goto out;
    }
    pieces_source cs = {r, CKPT_F32};
    progress bar;
    pieces_job job;
    memset(&job, 0, sizeof job);
    job.w = w;
    job.buf = buf;
    job.buf_bytes = (size_t)o.so.piece_bytes;
    job.fill = pieces_fill_read;
    job.arg = &cs;
    job.bar = &bar;
    if (first_data >= 0) {
        ckpt_tensor_info t;
        ckpt_reader_tensor_info(r, first_data, &t);
        if (pieces_plan(&job, t.name) != PIECES_OK) {
            int refused = job.lib_status == CKPT_ECOVERAGE || job.lib_status == CKPT_EMISMATCH ||
                          job.lib_status == CKPT_EINVAL;
            fprintf(stderr, PROG ": %s\n", job.err);
            rc = o.plan && refused ? EXIT_USAGE : EXIT_FAIL;
            goto out;
        }
    }
    progress_begin(&bar, "reshard", total);
    for (int i = 0; i < nt; i++) {
        ckpt_tensor_info t;
        ckpt_reader_tensor_info(r, i, &t);
        cs.dtype = t.dtype;
        pieces_status ps = pieces_tensor(&job, t.name, t.ndim, ckpt_dtype_size(t.dtype));
        if (ps != PIECES_OK) {
            progress_end(&bar);
            fprintf(stderr, PROG ": %s; nothing written at '%s'\n", job.err, o.dst);
            rc = EXIT_FAIL;
            goto out;
        }
    }
    progress_end(&bar);
    int64_t boxes = job.boxes;
    int s = ckpt_writer_commit(w);
    w = NULL;
    if (s != CKPT_OK) {
        fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
        rc = EXIT_FAIL;
        goto out;
    }
    char cz[64];
    printf("wrote %s: %d tensors, %lld boxes, %lld bytes; %s, world size %ld, compression %s\n", o.dst, nt,
           (long long)boxes, (long long)total, ckpt_layout_name(o.so.layout), o.world,
           saveopt_compress_str(cz, sizeof cz, &o.so));
out:
    if (w)
        ckpt_writer_abort(w);
    free(buf);
    plan_free(&pl);
    ckpt_reader_close(r);
    return rc;
}
