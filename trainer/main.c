/* shard-train: command-line front end of the fully-sharded GPT trainer. */
#define _GNU_SOURCE /* sched_getaffinity / CPU_COUNT for the default thread count */
#include <cblas.h>
#include <errno.h>
#include <mpi.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"
#include "loop.h"

static const char *const HELP =
    "usage: mpirun -n N shard-train --ckpt-dir DIR [options]\n"
    "\n"
    "Fully-sharded (FSDP2 / ZeRO-3) training of a byte-level GPT over MPI: every parameter, gradient and\n"
    "AdamW moment is split by rows (Shard(0)) across the ranks; each unit's parameters are all-gathered\n"
    "before its forward and again before its backward, gradients are reduce-scattered. Checkpoints are\n"
    "sharded libckpt checkpoints that resume at any world size.\n"
    "\n"
    "Data and model\n"
    "  --data PATH          text file, or directory of text files (names in byte order; *.dat, *.u8 and\n"
    "                       dot files skipped); default /usr/share/games/fortunes (Debian's fortunes)\n"
    "  --val-frac F         last fraction of the bytes held out for validation (default 0.1; 0: none)\n"
    "  --model M            tiny (L2 H2 C32 T32), default (L4 H4 C256 T256) or L,H,C,T; vocabulary 256.\n"
    "                       Default: the checkpoint's model when resuming, else 'default'. Given\n"
    "                       explicitly, a checkpoint of another model is an error naming the field\n"
    "  --batch B            global batch: sequences of T bytes per optimizer step, split across ranks\n"
    "                       (uneven splits and ranks without sequences allowed; default 8)\n"
    "  --micro-batch M      at most M sequences per rank per forward/backward; the rest of the rank's\n"
    "                       share is gradient accumulation (default: the whole share at once)\n"
    "\n"
    "Optimisation\n"
    "  --steps S            total optimizer steps, the length of the schedule (default 1000)\n"
    "  --run-steps K        stop this invocation after K steps (checkpoint, exit 0); the schedule still\n"
    "                       spans --steps (default 0: no limit)\n"
    "  --lr X               peak learning rate (default 1e-3)\n"
    "  --min-lr X           floor of the cosine decay (default lr/10)\n"
    "  --warmup W           linear warmup steps (default steps/20)\n"
    "  --weight-decay X     decoupled AdamW weight decay on matrices only (default 0.1)\n"
    "  --grad-clip X        clip the global gradient norm to X; 0: off (default 1.0)\n"
    "  --seed S             seed of the initialisation and of the batch generator (default 1337)\n"
    "\n"
    "Evaluation and early stopping\n"
    "  --eval-every K       validation loss every K steps and at the last step; 0: never (default 100)\n"
    "  --eval-seqs N        validation sequences per evaluation, evenly spaced (default 32)\n"
    "  --sample-len N       bytes of text sampled after each evaluation; 0: none (default 64)\n"
    "  --temperature X      sampling temperature (default 0.8)\n"
    "  --patience P         stop after P evaluations without improvement; 0: off (default 0)\n"
    "  --min-delta D        improvement means val < best - D (default 0)\n"
    "\n"
    "Checkpoints (libckpt's checkpoint manager: DIR/step-%08lld, written under a step-N.tmp-* name and\n"
    "renamed when committed; the latest is the highest step that is committed)\n"
    "  --ckpt-dir DIR       checkpoint directory (required; created if missing). At start-up, debris of\n"
    "                       interrupted saves and incomplete step directories in it are removed\n"
    "  --ckpt-every N       checkpoint every N steps; 0: off (default 0)\n"
    "  --ckpt-secs T        checkpoint when T seconds passed since the last one committed; 0: off\n"
    "                       (default 0). A checkpoint is also written at the end, on early stopping,\n"
    "                       after --run-steps, and on SIGTERM / SIGUSR1; those are committed before exit\n"
    "  --async              asynchronous checkpoints (the default): the save is planned, then a\n"
    "                       background thread writes the parameter and AdamW shards straight from\n"
    "                       memory (no copy) while the next step's forward/backward runs (they only\n"
    "                       read them); the save is committed, and retention applied, before that\n"
    "                       step's optimizer update. The stall is the planning plus whatever of the\n"
    "                       write outlasts one forward/backward\n"
    "  --no-async           synchronous checkpoints: training waits until each is committed\n"
    "  --keep-last K        keep the K newest committed checkpoints; 0: keep all (default 3)\n"
    "  --keep-best K        also keep the K with the lowest validation loss (attribute train/val_loss,\n"
    "                       set only on checkpoints of evaluated steps; needs --keep-last > 0;\n"
    "                       default 0). Old checkpoints are deleted only after a newer one committed\n"
    "  --resume auto|PATH   auto: continue from the latest committed checkpoint in DIR (fresh start when\n"
    "                       there is none; the next older one when it fails to load); PATH: from that\n"
    "                       checkpoint. Any world size. Restores\n"
    "                       parameters, AdamW state, step, batch generator, early-stopping state\n"
    "  --init-from PATH     load the weights only (fresh optimizer, step 0); ignored when --resume\n"
    "                       finds a checkpoint\n"
    "\n"
    "Output and resources\n"
    "  --metrics FILE       JSON Lines on rank 0, one object per step: step, loss, lr, grad_norm,\n"
    "                       tokens_per_s, ms_per_step, comm_ms (inside collectives), compute_ms (model\n"
    "                       kernels), iter_ms (the whole iteration: evaluation, sampling, checkpoint calls;\n"
    "                       a final checkpoint not), ckpt_ms (inside checkpoint calls: starting a save,\n"
    "                       waiting for its commit), all measured on rank 0, and val_loss when evaluated\n"
    "                       (appended to when resuming, truncated on a fresh start; after a hard kill\n"
    "                       the steps since the last checkpoint appear again: the later lines win)\n"
    "  --log-every K        print every K-th step (default 1)\n"
    "  --threads T          OpenMP/OpenBLAS threads per rank (default: cores / ranks on the node, at\n"
    "                       least 1, at most the cores this rank is bound to; with mpirun use\n"
    "                       --bind-to none to give a rank more than one core)\n"
    "  --help               this text\n"
    "\n"
    "Signals: SIGTERM or SIGUSR1 on any rank -> every rank finishes the current step, a checkpoint is\n"
    "committed and every rank exits 75 (libckpt's CKPT_EXIT_REQUEUE, EX_TEMPFAIL). Under Slurm, srun\n"
    "delivers SIGTERM to every task; requeue on 75 (if [ $rc -eq 75 ]; then scontrol requeue ...). Open\n"
    "MPI's mpirun forwards SIGUSR1 to the ranks and then returns their 75; SIGTERM sent to mpirun itself is\n"
    "forwarded too, but mpirun SIGKILLs the ranks 1 s later (OMPI_MCA_odls_base_sigkill_timeout) and\n"
    "exits 1 whatever they return: signal mpirun with SIGUSR1, or the ranks with SIGTERM.\n"
    "\n"
    "Exit codes (identical on every rank, so mpirun returns them):\n"
    "   0  finished: --steps reached, early stopping, or --run-steps done\n"
    "   1  runtime failure: checkpoint I/O, MPI, out of memory\n"
    "   2  bad command line\n"
    "   3  data missing, unreadable, empty, or shorter than context+1 bytes (per split)\n"
    "   4  checkpoint to resume / initialise from is unreadable, or of another model (the message\n"
    "      names the field)\n"
    "   5  NaN/Inf loss or gradient norm: stopped without saving that step; the last checkpoint is\n"
    "      the last good state (an asynchronous save of an earlier step still in flight commits first)\n"
    "  75  interrupted by SIGTERM/SIGUSR1 after committing a checkpoint: requeue with --resume auto\n";

static int parse_i64(const char *s, int64_t lo, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo)
        return -1;
    *out = v;
    return 0;
}

static int parse_f64(const char *s, double lo, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo))
        return -1;
    *out = v;
    return 0;
}

static int parse_model(const char *s, gpt_config *cfg)
{
    if (gpt_config_preset(s, cfg) == 0)
        return 0;
    int L, H, C, T;
    char tail;
    if (sscanf(s, "%d,%d,%d,%d%c", &L, &H, &C, &T, &tail) != 4)
        return -1;
    *cfg = (gpt_config){.n_layer = L, .n_head = H, .n_embd = C, .max_seq = T, .vocab = 256};
    return gpt_config_check(cfg) == 0 && L >= 1 ? 0 : -1;
}

/* returns 0, 1 (--help) or -1 (usage error, message in err) */
static int parse_args(int argc, char **argv, train_options *o, char *err, size_t errlen)
{
    int warmup_set = 0, min_lr_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", a);
            return -1;
        }
        if (strcmp(a, "--async") == 0 || strcmp(a, "--no-async") == 0) { /* flags without a value */
            o->async = strcmp(a, "--async") == 0;
            continue;
        }
        if (i + 1 >= argc) {
            snprintf(err, errlen, "%s needs a value", a);
            return -1;
        }
        const char *v = argv[++i];
        int64_t iv;
        double dv;
        int bad = 0;
#define OPT(name) (strcmp(a, name) == 0)
        if (OPT("--data"))
            o->data_path = v;
        else if (OPT("--ckpt-dir"))
            o->ckpt_dir = v;
        else if (OPT("--model")) {
            bad = parse_model(v, &o->cfg);
            o->model_explicit = 1;
        } else if (OPT("--batch"))
            bad = parse_i64(v, 1, &o->batch);
        else if (OPT("--micro-batch"))
            bad = parse_i64(v, 0, &o->micro_batch);
        else if (OPT("--steps"))
            bad = parse_i64(v, 0, &o->steps);
        else if (OPT("--run-steps"))
            bad = parse_i64(v, 0, &o->run_steps);
        else if (OPT("--lr"))
            bad = parse_f64(v, 0.0, &o->opt.lr_max);
        else if (OPT("--min-lr")) {
            bad = parse_f64(v, 0.0, &o->opt.lr_min);
            min_lr_set = 1;
        } else if (OPT("--warmup")) {
            bad = parse_i64(v, 0, &o->opt.warmup_steps);
            warmup_set = 1;
        } else if (OPT("--weight-decay"))
            bad = parse_f64(v, 0.0, &o->opt.weight_decay);
        else if (OPT("--grad-clip"))
            bad = parse_f64(v, 0.0, &o->opt.grad_clip);
        else if (OPT("--seed")) {
            bad = parse_i64(v, 0, &iv);
            o->seed = (uint64_t)iv;
        } else if (OPT("--val-frac"))
            bad = parse_f64(v, 0.0, &o->val_frac) || o->val_frac >= 1.0;
        else if (OPT("--eval-every"))
            bad = parse_i64(v, 0, &o->eval_every);
        else if (OPT("--eval-seqs"))
            bad = parse_i64(v, 1, &o->eval_seqs);
        else if (OPT("--sample-len")) {
            bad = parse_i64(v, 0, &iv) || iv > 100000;
            o->sample_len = (int)iv;
        } else if (OPT("--temperature"))
            bad = parse_f64(v, 0.0, &o->temperature);
        else if (OPT("--ckpt-every"))
            bad = parse_i64(v, 0, &o->ckpt_every);
        else if (OPT("--ckpt-secs"))
            bad = parse_f64(v, 0.0, &o->ckpt_secs);
        else if (OPT("--keep-last")) {
            bad = parse_i64(v, 0, &iv) || iv > 1000000;
            o->keep_last = (int)iv;
        } else if (OPT("--keep-best")) {
            bad = parse_i64(v, 0, &iv) || iv > 1000000;
            o->keep_best = (int)iv;
        } else if (OPT("--resume"))
            o->resume = v;
        else if (OPT("--init-from"))
            o->init_from = v;
        else if (OPT("--patience")) {
            bad = parse_i64(v, 0, &iv) || iv > 1000000000;
            o->patience = (int)iv;
        } else if (OPT("--min-delta"))
            bad = parse_f64(v, 0.0, &o->min_delta);
        else if (OPT("--metrics"))
            o->metrics_path = v;
        else if (OPT("--threads")) {
            bad = parse_i64(v, 1, &iv) || iv > 4096;
            o->threads = (int)iv;
        } else if (OPT("--log-every"))
            bad = parse_i64(v, 1, &o->log_every);
        else {
            snprintf(err, errlen, "unknown option '%s'", a);
            return -1;
        }
#undef OPT
        (void)dv;
        if (bad) {
            snprintf(err, errlen, "bad value '%s' for %s", v, a);
            return -1;
        }
    }
    if (!o->ckpt_dir) {
        snprintf(err, errlen, "--ckpt-dir is required");
        return -1;
    }
    if (o->resume && !o->resume[0]) {
        snprintf(err, errlen, "--resume needs 'auto' or a checkpoint path");
        return -1;
    }
    o->opt.total_steps = o->steps;
    if (!warmup_set)
        o->opt.warmup_steps = o->steps / 20;
    o->warmup_explicit = warmup_set;
    if (!min_lr_set)
        o->opt.lr_min = o->opt.lr_max * o->lr_min_ratio;
    if (o->opt.lr_min > o->opt.lr_max) {
        snprintf(err, errlen, "--min-lr %g is above --lr %g", o->opt.lr_min, o->opt.lr_max);
        return -1;
    }
    return 0;
}

static int default_threads(const comm *c)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1)
        online = 1;
    int t = (int)(online / (c->local_size > 0 ? c->local_size : 1));
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int bound = CPU_COUNT(&set);
        if (bound >= 1 && bound < t)
            t = bound;
    }
    return t < 1 ? 1 : t;
}

int main(int argc, char **argv)
{
    /* FUNNELED: libckpt's asynchronous saver writes from a thread of its own, which makes no MPI call */
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm world = MPI_COMM_WORLD;
    comm *c = comm_create_mpi(&world);
    if (!c) {
        fprintf(stderr, "shard-train: cannot set up the MPI communicator\n");
        MPI_Abort(MPI_COMM_WORLD, EXIT_ERROR);
        return EXIT_ERROR;
    }
    train_options o;
    train_options_default(&o);
    char err[512] = "";
    int p = parse_args(argc, argv, &o, err, sizeof err); /* same argv everywhere: same outcome */
    int code = EXIT_OK;
    if (p == 1) {
        if (c->rank == 0)
            fputs(HELP, stdout);
    } else if (p < 0) {
        if (c->rank == 0)
            fprintf(stderr, "shard-train: %s (see --help)\n", err);
        code = EXIT_USAGE;
    } else {
        if (o.threads == 0)
            o.threads = default_threads(c);
        else if (c->rank == 0) {
            cpu_set_t set;
            if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < o.threads)
                fprintf(stderr,
                        "shard-train: warning: --threads %d but this rank is bound to %d core(s) "
                        "(mpirun --bind-to none?)\n",
                        o.threads, CPU_COUNT(&set));
        }
        omp_set_num_threads(o.threads);
        openblas_set_num_threads(o.threads);
        if (train_install_signals() != 0 && c->rank == 0)
            fprintf(stderr, "shard-train: warning: cannot install the SIGTERM/SIGUSR1 handlers: no checkpoint on "
                            "preemption\n");
        code = train_run(&o, c);
    }
    comm_destroy(c);
    MPI_Finalize();
    return code;
}
