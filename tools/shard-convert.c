/* shard-convert -- a libckpt checkpoint to the files inference engines load, and back:
 *
 *   shard-convert SRC OUT --to safetensors [--dtype f32|f16|bf16] [--names hf-gpt2|as-is]
 *                 [--max-shard-size SIZE]
 *   shard-convert SRC OUT.gguf --to gguf [--dtype f32|f16|q8_0]
 *   shard-convert FILE.safetensors|INDEX.json|DIR OUT --from safetensors [--names hf-gpt2|as-is]
 *                 [--world-size M] [--layout L] [--compress C]
 *
 * A thin front end over the ckpt_formats library (formats/include/ckptfmt.h): argument parsing,
 * progress on a TTY, the --json summary and the exit codes. `shard-convert --help` and
 * tools/README.md have the rest. */
#include "cli/args.h"
#include "cli/dest.h"
#include "cli/format.h"
#include "cli/interrupt.h"
#include "cli/launcher.h"
#include "cli/progress.h"
#include "cli/saveopt.h"

#include <ckpt.h>
#include <ckptfmt.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG "shard-convert"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = ARGS_EXIT_USAGE, EXIT_OPEN = 3, EXIT_INPUT = 4 };

static const char usage_text[] =
    "usage: shard-convert SRC OUT --to safetensors [--dtype f32|f16|bf16] [--names hf-gpt2|as-is]\n"
    "                     [--max-shard-size SIZE] [--json] [--no-fsync]\n"
    "       shard-convert SRC OUT.gguf --to gguf [--dtype f32|f16|q8_0] [--json]\n"
    "       shard-convert SRC OUT --from safetensors [--names hf-gpt2|as-is] [--world-size M]\n"
    "                     [--layout shared|file-per-rank] [--compress none|zstd[:LEVEL]] [--json] [--no-fsync]\n"
    "\n"
    "--to safetensors: writes the model directory OUT, laid out as Hugging Face's are, from the\n"
    "committed libckpt checkpoint SRC (any world size, layout, compression; every piece\n"
    "checksum-verified): OUT/model.safetensors, or with --max-shard-size the files\n"
    "model-00001-of-0000K.safetensors and model.safetensors.index.json, plus OUT/config.json\n"
    "with --names hf-gpt2. The files follow the safetensors format exactly (the reference\n"
    "writer's header and tensor order; __metadata__ {\"format\": \"pt\", \"source\", \"step\"}).\n"
    "OUT is built under a temporary name beside it and renamed into place when complete: a\n"
    "failure or an interrupt leaves nothing at OUT, and an existing OUT is never replaced. Memory:\n"
    "the largest tensor plus 8 MiB of buffers, never the whole model.\n"
    "\n"
    "--to gguf: writes OUT.gguf, a GGUF version 3 file of the trainer's GPT-2 that llama.cpp-family\n"
    "engines load as their \"gpt2\" architecture: the hyperparameters, the byte vocabulary as a\n"
    "\"gpt2\" tokenizer (token id = byte value, no merges, nothing prepended), the tensors in ggml\n"
    "dimension order and output.weight (a copy of the tied embedding). --dtype sets the 2-D\n"
    "weights' type; 1-D tensors and position_embd stay f32, q8_0 is ggml's block format (32\n"
    "values, one f16 scale). Written under a temporary name and linked into place; memory: the\n"
    "largest tensor plus 4 MiB.\n"
    "\n"
    "--from safetensors: writes a committed libckpt checkpoint OUT from a safetensors file, a\n"
    "model.safetensors.index.json, or a model directory holding either, sharded Shard(0) for M\n"
    "ranks as M ranks of shard-train would have saved it. Every header is validated first\n"
    "(lengths, JSON, dtypes, shapes, offsets, duplicates: the message names file, tensor and\n"
    "field); data are read by offset, one tensor (hf-gpt2) or one checksum piece (as-is) at a\n"
    "time. With hf-gpt2 names OUT is a checkpoint `shard-train --init-from OUT` starts from; the\n"
    "model's shape comes from config.json beside the safetensors files.\n"
    "\n"
    "options:\n"
    "  --to FORMAT         safetensors or gguf: export the checkpoint SRC\n"
    "  --from FORMAT       safetensors: import SRC into a checkpoint\n"
    "  --names N           hf-gpt2 (default): the trainer's GPT-2 under Hugging Face GPT-2\n"
    "                      names and layouts (transformer.h.N.attn.c_attn.weight [C, 3C], Conv1D\n"
    "                      weights stored [in, out], lm_head tied to wte and not written);\n"
    "                      as-is: every tensor of any checkpoint with its own name, dtype, layout\n"
    "  --dtype D           --to safetensors: write floating tensors as f32, f16 or bf16 (rounded\n"
    "                      to nearest even by libckpt; default: as stored). --to gguf: f32, f16\n"
    "                      or q8_0\n"
    "  --max-shard-size S  the sharded form, each file at most S bytes of tensor data (a larger\n"
    "                      tensor gets a file of its own); suffixes K, M, G (binary)\n"
    "  --world-size M      --from: ranks the checkpoint is sharded for (default 1)\n"
    "  --layout L          --from: file-per-rank (default), shared or group[:K]\n"
    "  --compress C        --from: none (default), zstd or zstd:LEVEL\n"
    "  --no-fsync          do not fsync what is written (faster, not crash-safe)\n"
    "  --json              one JSON object on stdout instead of the summary line\n"
    "  -h, --help          this text\n"
    "\n"
    "Without --json, one line on stdout on success, e.g.\n"
    "  wrote OUT: 28 tensors, 1234 bytes of data in 1 file (1890 bytes with headers and\n"
    "  config.json); names hf-gpt2, dtype bf16, step 300\n"
    "Under mpirun/mpiexec/srun only the process of rank 0 works; the others exit 0 at once.\n"
    "\n"
    "examples:\n"
    "  shard-convert ckpt/step-00000300 gpt2-hf --to safetensors\n"
    "  shard-convert ckpt/step-00000300 gpt2-bf16 --to safetensors --dtype bf16 --max-shard-size 2M\n"
    "  shard-convert ckpt/step-00000300 all --to safetensors --names as-is\n"
    "  shard-convert ckpt/step-00000300 model.gguf --to gguf --dtype q8_0\n"
    "  shard-convert gpt2-hf imported --from safetensors --world-size 4\n"
    "  mpirun -n 4 shard-train --ckpt-dir run2 --init-from imported\n"
    "\n"
    "exit status:\n"
    "  0  OUT written\n"
    "  1  failure: OUT exists (nothing is overwritten), a checkpoint piece unreadable (checksum\n"
    "     mismatch, damaged data file), disk full, interrupted; nothing is left at OUT\n"
    "  2  usage error: unknown option, bad value, OUT inside SRC\n"
    "  3  SRC cannot be opened: missing, incomplete (no COMMITTED marker), corrupt index, unknown\n"
    "     format version, not a checkpoint; missing safetensors file or config.json\n"
    "  4  SRC is malformed or cannot be converted: a safetensors header that violates the format,\n"
    "     an index that disagrees with its files, a model the trainer cannot run (config.json\n"
    "     values, vocabulary below 256, tensors missing or of the wrong shape or dtype), a\n"
    "     checkpoint that is not shard-train's GPT-2 with --names hf-gpt2; the message names the\n"
    "     file, tensor and field\n";

typedef enum direction { DIR_NONE, DIR_TO_SAFETENSORS, DIR_TO_GGUF, DIR_FROM_SAFETENSORS } direction;

typedef struct options {
    const char *src, *out;
    direction dir;
    ckptfmt_names_mode names;
    const char *dtype_arg;
    int64_t max_shard;
    int world_size;
    ckpt_save_options so;
    int json, no_fsync;
} options;

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->names = CKPTFMT_MODE_HF_GPT2;
    o->world_size = 1;
    ckpt_save_options_init(&o->so);
    int only_args = 0, npos = 0;
    const char *layout = NULL, *compress = NULL, *world = NULL, *shard = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if (only_args || a[0] != '-' || !strcmp(a, "-")) {
            if (npos == 2)
                return args_usage_error(PROG, "unexpected argument '%s'", a);
            if (npos++ == 0)
                o->src = a;
            else
                o->out = a;
        } else if (!strcmp(a, "--")) {
            only_args = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return -1;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--no-fsync")) {
            o->no_fsync = 1;
        } else if ((v = args_value(argc, argv, &i, "--to", &m)) || m) {
            if (o->dir != DIR_NONE)
                return args_usage_error(PROG, "give one of --to and --from, once");
            if (v && !strcmp(v, "safetensors"))
                o->dir = DIR_TO_SAFETENSORS;
            else if (v && !strcmp(v, "gguf"))
                o->dir = DIR_TO_GGUF;
            else
                return args_usage_error(PROG, "--to needs safetensors or gguf");
        } else if ((v = args_value(argc, argv, &i, "--from", &m)) || m) {
            if (o->dir != DIR_NONE)
                return args_usage_error(PROG, "give one of --to and --from, once");
            if (!v || strcmp(v, "safetensors") != 0)
                return args_usage_error(PROG, "--from needs safetensors");
            o->dir = DIR_FROM_SAFETENSORS;
        } else if ((v = args_value(argc, argv, &i, "--names", &m)) || m) {
            if (v && !strcmp(v, "hf-gpt2"))
                o->names = CKPTFMT_MODE_HF_GPT2;
            else if (v && !strcmp(v, "as-is"))
                o->names = CKPTFMT_MODE_AS_IS;
            else
                return args_usage_error(PROG, "--names needs hf-gpt2 or as-is");
        } else if ((v = args_value(argc, argv, &i, "--dtype", &m)) || m) {
            if (!v)
                return args_usage_error(PROG, "--dtype needs a dtype");
            o->dtype_arg = v;
        } else if ((v = args_value(argc, argv, &i, "--max-shard-size", &m)) || m) {
            if (!v || !parse_size(v, &o->max_shard) || o->max_shard < 1)
                return args_usage_error(PROG, "--max-shard-size needs a positive size, e.g. 2G or 500M");
            shard = v;
        } else if ((v = args_value(argc, argv, &i, "--world-size", &m)) || m) {
            long n;
            if (!v || !args_int(v, 1, 1 << 20, &n))
                return args_usage_error(PROG, "--world-size needs a number of ranks from 1 to 1048576");
            o->world_size = (int)n;
            world = v;
        } else if ((v = args_value(argc, argv, &i, "--layout", &m)) || m) {
            if (!v || !saveopt_parse_layout(v, &o->so))
                return args_usage_error(PROG, "--layout needs shared or file-per-rank, or group[:K]");
            layout = v;
        } else if ((v = args_value(argc, argv, &i, "--compress", &m)) || m) {
            if (!v || !saveopt_parse_compress(v, &o->so))
                return args_usage_error(PROG, "--compress needs none, zstd or zstd:LEVEL");
            compress = v;
        } else {
            return args_usage_error(PROG, "unknown option '%s'", a);
        }
    }
    if (o->dir == DIR_NONE)
        return args_usage_error(PROG, "needs --to safetensors, --to gguf or --from safetensors");
    if (npos != 2)
        return args_usage_error(PROG, "needs a source SRC and an output OUT");
    if (o->dir != DIR_FROM_SAFETENSORS && (world || layout || compress))
        return args_usage_error(PROG, "--world-size, --layout and --compress go with --from safetensors");
    if (o->dir != DIR_TO_SAFETENSORS && shard)
        return args_usage_error(PROG, "--max-shard-size goes with --to safetensors");
    if (o->dir == DIR_FROM_SAFETENSORS && o->dtype_arg)
        return args_usage_error(PROG, "--dtype goes with --to (an imported checkpoint keeps the file's dtypes; "
                                "hf-gpt2 makes them f32 for the trainer)");
    if (o->dir == DIR_TO_SAFETENSORS && o->dtype_arg && strcmp(o->dtype_arg, "f32") && strcmp(o->dtype_arg, "f16") &&
        strcmp(o->dtype_arg, "bf16"))
        return args_usage_error(PROG, "--dtype needs f32, f16 or bf16 with --to safetensors");
    if (o->dir == DIR_TO_GGUF && o->dtype_arg && strcmp(o->dtype_arg, "f32") && strcmp(o->dtype_arg, "f16") &&
        strcmp(o->dtype_arg, "q8_0"))
        return args_usage_error(PROG, "--dtype needs f32, f16 or q8_0 with --to gguf");
    if (o->dir == DIR_TO_GGUF && o->names != CKPTFMT_MODE_HF_GPT2)
        return args_usage_error(PROG, "--to gguf writes the trainer's GPT-2 (--names as-is goes with safetensors)");
    o->so.fsync = !o->no_fsync;
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* the library's progress callback: the bar, and Ctrl-C as a request to stop cleanly */
typedef struct bar_state {
    progress bar;
    int64_t last;
} bar_state;

static int on_progress(void *user, int64_t done, int64_t total, const char *tensor)
{
    bar_state *b = user;
    b->bar.total = total;
    progress_add(&b->bar, done - b->last, tensor);
    b->last = done;
    return interrupt_signal() != 0;
}

/* exit status of a library failure */
static int exit_of(int status)
{
    switch (status) {
    case CKPTFMT_ENOTFOUND: return EXIT_OPEN;
    case CKPTFMT_EMALFORMED:
    case CKPTFMT_EUNSUPPORTED: return EXIT_INPUT;
    default: return EXIT_FAIL;
    }
}

/* The --json summary: one object, keys in the order given, indented like the other tools'. */
static void print_json(json_t *j)
{
    if (!j || json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) != 0)
        fprintf(stderr, PROG ": cannot print the JSON summary\n");
    else
        putchar('\n');
    json_decref(j);
}

/* SRC must open as a checkpoint: exit status 3 otherwise, as in every tool; 0 when it does. */
static int check_checkpoint(const char *src)
{
    ckpt_reader *r;
    if (ckpt_reader_open(src, &r) != CKPT_OK) {
        fprintf(stderr, PROG ": %s\n", ckpt_errmsg());
        return EXIT_OPEN;
    }
    ckpt_reader_close(r);
    return 0;
}

/* The bar (its total arrives with the first callback) and Ctrl-C for one library call. */
static void progress_setup(bar_state *b, const char *label)
{
    b->last = 0;
    progress_begin(&b->bar, label, 1);
    interrupt_install();
}

/* The one line on stderr of a failed library call, and the exit status. */
static int failed(int s, const char *out)
{
    if (s == CKPTFMT_EINTERRUPTED)
        fprintf(stderr, PROG ": interrupted; nothing written at '%s'\n", out);
    else
        fprintf(stderr, PROG ": %s\n", ckptfmt_errmsg());
    return exit_of(s);
}

static const char *names_str(ckptfmt_names_mode m) { return m == CKPTFMT_MODE_AS_IS ? "as-is" : "hf-gpt2"; }

static int to_safetensors(const options *o)
{
    /* SRC must open as a checkpoint: exit status 3 otherwise, as every tool */
    int rc = check_checkpoint(o->src);
    if (rc)
        return rc;
    ckptfmt_export_options eo;
    ckptfmt_export_options_init(&eo);
    eo.names = o->names;
    if (o->dtype_arg) {
        eo.dtype_set = 1;
        ckpt_dtype_from_name(o->dtype_arg, &eo.dtype);
    }
    eo.max_shard_size = o->max_shard;
    eo.fsync = !o->no_fsync;
    bar_state b;
    progress_setup(&b, "convert");
    eo.progress = on_progress;
    eo.progress_user = &b;
    ckptfmt_export_result res;
    double t0 = now();
    int s = ckptfmt_export_safetensors(o->src, o->out, &eo, &res);
    double dt = now() - t0;
    progress_end(&b.bar);
    if (s != CKPTFMT_OK)
        return failed(s, o->out);
    const char *dt_name = o->dtype_arg ? o->dtype_arg : "as stored";
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:i, s:i, s:I, s:I, s:I, s:o, s:f}", "to", "safetensors",
                              "source", o->src, "output", o->out, "names", names_str(o->names), "dtype",
                              o->dtype_arg ? json_string(o->dtype_arg) : json_null(), "tensors", res.tensors, "files",
                              res.files, "data_bytes", (json_int_t)res.data_bytes, "file_bytes",
                              (json_int_t)res.file_bytes, "read_bytes", (json_int_t)res.read_bytes, "step",
                              res.step >= 0 ? json_integer(res.step) : json_null(), "seconds", dt);
        print_json(j);
    } else {
        printf("wrote %s: %d tensors, %lld bytes of data in %d file%s (%lld bytes with headers%s); names %s, dtype %s",
               o->out, res.tensors, (long long)res.data_bytes, res.files, res.files == 1 ? "" : "s",
               (long long)res.file_bytes,
               o->names == CKPTFMT_MODE_HF_GPT2 ? (res.files > 1 ? ", index and config.json" : " and config.json")
                                                : (res.files > 1 ? " and index" : ""),
               names_str(o->names), dt_name);
        if (res.step >= 0)
            printf(", step %lld", (long long)res.step);
        putchar('\n');
    }
    return EXIT_OK;
}

/* --to gguf: ckptfmt_export_gguf (the GGUF section of ckptfmt.h). */
static int to_gguf(const options *o)
{
    int rc = check_checkpoint(o->src);
    if (rc)
        return rc;
    ckptfmt_gguf_options go;
    ckptfmt_gguf_options_init(&go);
    if (o->dtype_arg)
        ckptfmt_ggml_type_from_name(o->dtype_arg, &go.type); /* checked by parse_args */
    go.fsync = !o->no_fsync;
    bar_state b;
    progress_setup(&b, "convert");
    go.progress = on_progress;
    go.progress_user = &b;
    ckptfmt_gguf_result res;
    double t0 = now();
    int s = ckptfmt_export_gguf(o->src, o->out, &go, &res);
    double dt = now() - t0;
    progress_end(&b.bar);
    if (s != CKPTFMT_OK)
        return failed(s, o->out);
    const char *dt_name = o->dtype_arg ? o->dtype_arg : "f32";
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:{s:i, s:i, s:i}, s:I, s:I, s:o, s:f}", "to", "gguf",
                              "source", o->src, "output", o->out, "dtype", dt_name, "tensors", res.tensors, "types",
                              "f32", res.n_type[0], "f16", res.n_type[1], "q8_0", res.n_type[2], "file_bytes",
                              (json_int_t)res.file_bytes, "read_bytes", (json_int_t)res.read_bytes, "step",
                              res.step >= 0 ? json_integer(res.step) : json_null(), "seconds", dt);
        print_json(j);
    } else {
        printf("wrote %s: %d tensors (%d f32, %d f16, %d q8_0), %lld bytes; architecture gpt2, dtype %s", o->out,
               res.tensors, res.n_type[0], res.n_type[1], res.n_type[2], (long long)res.file_bytes, dt_name);
        if (res.step >= 0)
            printf(", step %lld", (long long)res.step);
        putchar('\n');
    }
    return EXIT_OK;
}

static int from_safetensors(const options *o)
{
    if (saveopt_check(o->out, &o->so) != 0)
        return args_usage_error(PROG, "%s", ckpt_errmsg());
    ckptfmt_import_options io;
    ckptfmt_import_options_init(&io);
    io.names = o->names;
    io.world_size = o->world_size;
    io.save = o->so;
    bar_state b;
    progress_setup(&b, "import");
    io.progress = on_progress;
    io.progress_user = &b;
    ckptfmt_import_result res;
    double t0 = now();
    int s = ckptfmt_import_safetensors(o->src, o->out, &io, &res);
    double dt = now() - t0;
    progress_end(&b.bar);
    if (s != CKPTFMT_OK)
        return failed(s, o->out);
    char cz[64];
    saveopt_compress_str(cz, sizeof cz, &o->so);
    if (o->json) {
        json_t *model = o->names != CKPTFMT_MODE_HF_GPT2
                            ? json_null()
                            : json_pack("{s:i, s:i, s:i, s:i, s:i}", "n_layer", res.config.n_layer, "n_head",
                                        res.config.n_head, "n_embd", res.config.n_embd, "n_ctx", res.config.n_ctx,
                                        "vocab", res.config.vocab);
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:i, s:s, s:s, s:o, s:o, s:f}", "from", "safetensors",
                              "source", o->src, "output", o->out, "names", names_str(o->names), "tensors",
                              res.tensors, "bytes", (json_int_t)res.bytes, "world_size", o->world_size, "layout",
                              ckpt_layout_name(o->so.layout), "compression", cz, "step",
                              res.step >= 0 ? json_integer(res.step) : json_null(), "model", model, "seconds", dt);
        print_json(j);
    } else {
        printf("wrote %s: %d tensors, %lld bytes; %s, world size %d, compression %s, names %s", o->out, res.tensors,
               (long long)res.bytes, ckpt_layout_name(o->so.layout), o->world_size, cz, names_str(o->names));
        if (o->names == CKPTFMT_MODE_HF_GPT2)
            printf(", model L%d H%d C%d T%d V%d", res.config.n_layer, res.config.n_head, res.config.n_embd,
                   res.config.n_ctx, res.config.vocab);
        if (res.step >= 0)
            printf(", step %lld", (long long)res.step);
        putchar('\n');
    }
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    options o;
    int prc = parse_args(argc, argv, &o);
    if (prc)
        return prc < 0 ? EXIT_OK : prc;
    if (launcher_rank() > 0)
        return EXIT_OK; /* one process writes; see --help */
    if (dest_inside(o.out, o.src))
        return args_usage_error(PROG, "OUT '%s' is or lies inside the source '%s'", o.out, o.src);
    switch (o.dir) {
    case DIR_TO_SAFETENSORS: return to_safetensors(&o);
    case DIR_TO_GGUF: return to_gguf(&o);
    case DIR_FROM_SAFETENSORS: return from_safetensors(&o);
    default: return EXIT_USAGE;
    }
}
