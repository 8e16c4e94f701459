#!/usr/bin/env bash
# bench_ckpt.sh: training time lost to checkpoints in shard-train, asynchronous (the default) vs
# synchronous (--no-async) vs none.
#
#   bash bench/trainer/bench_ckpt.sh [SHARD_TRAIN] [MODEL] [N] [STEPS] [EVERY] [REPS] [BATCH]
#       (defaults: build-train2/trainer/shard-train, default, 2, 200, 50, 3, 8)
#   CKPT_BENCH_DIR=/some/fs  puts the checkpoints there (default: a mktemp -d directory)
#
# For each repetition the same training (same model, seed, data, batch, steps) runs three times, in
# turn (the order rotates from one repetition to the next), so that drift of a shared machine hits
# every variant alike:
#   none   no periodic checkpoint
#   async  --ckpt-every EVERY (asynchronous no-copy saves: written during the next forward/backward)
#   sync   --ckpt-every EVERY --no-async
# Every run also writes its final checkpoint; that one is excluded everywhere (every run has it).
#
# Two measures of the time lost, both as a fraction of the training time without checkpoints:
#  * within the run (the robust one): shard-train's --metrics give every iteration's wall time
#    (iter_ms: step, checkpoint calls, everything but the final checkpoint). The iterations a checkpoint
#    touches -- the one that starts it and, async, the next one, whose forward/backward overlaps the
#    background write and which waits for the commit -- are compared with the median of the untouched
#    iterations around them (+-10) in the same run: lost = sum of their excess. The `none` run gets the
#    same treatment on the same iterations as a control (what noise alone gives).
#  * between runs: the wall time of the whole run against the `none` run of the same repetition.
#    On a shared or virtual machine this one carries run-to-run noise of several percent.
# Also reported: the main-thread checkpoint stall (time inside the save / commit calls, ckpt_ms).
set -euo pipefail
TRAIN=${1:-build-train2/trainer/shard-train}
MODEL=${2:-default}
N=${3:-2}
STEPS=${4:-200}
EVERY=${5:-50}
REPS=${6:-3}
BATCH=${7:-8}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader
W=$(mktemp -d ${CKPT_BENCH_DIR:+-p "$CKPT_BENCH_DIR"})
trap 'rm -rf "$W"' EXIT
common=(--model "$MODEL" --batch "$BATCH" --steps "$STEPS" --eval-every 0 --sample-len 0 --log-every 1000000
        --threads 1 --keep-last 2)
echo "shard-train $MODEL, N=$N, batch $BATCH, $STEPS steps, checkpoint every $EVERY steps, $REPS repetitions;" \
     "$(nproc) cores; checkpoints in $W"
variants=(none async sync)
for ((r = 1; r <= REPS; r++)); do
  for ((j = 0; j < 3; j++)); do
    v=${variants[(j + r - 1) % 3]} # the order rotates from one repetition to the next
    rm -rf "$W/ck"
    extra=()
    [ $v = none ] || extra=(--ckpt-every "$EVERY")
    [ $v = sync ] && extra+=(--no-async)
    mpirun -n "$N" "$TRAIN" "${common[@]}" "${extra[@]}" --ckpt-dir "$W/ck" --metrics "$W/$v.$r.jsonl" \
      >"$W/log.txt" 2>&1 || { cat "$W/log.txt" >&2; exit 1; }
    grep "^shard-train: wall " "$W/log.txt" | sed "s/^shard-train:/  rep $r $v:/"
  done
done
/usr/bin/python3 - "$W" "$REPS" "$STEPS" "$EVERY" <<'PY'
import json, statistics, sys
W, reps, steps, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ck = [k for k in range(every, steps, every)]  # periodic checkpoints (the final one is apart)
touched = {"async": sorted({k for k in ck} | {k + 1 for k in ck}), "sync": ck}
touched["none"] = touched["async"]  # control
def load(v, r):
    return {row["step"]: row for row in map(json.loads, open(f"{W}/{v}.{r}.jsonl"))}
def within(rows, hit):
    it = {s: rows[s]["iter_ms"] for s in rows}
    free = [s for s in it if s not in hit and s != 1]
    lost = 0.0
    for s in hit:
        near = [it[t] for t in free if abs(t - s) <= 10]
        lost += it[s] - statistics.median(near)
    total = sum(it.values())
    return lost, total, sum(rows[s]["ckpt_ms"] for s in rows)
res = {v: [] for v in ("none", "async", "sync")}
for r in range(1, reps + 1):
    for v in res:
        rows = load(v, r)
        lost, total, stall = within(rows, touched[v])
        res[v].append((lost, total, stall))
print(f"{len(ck)} periodic checkpoints per run (steps {ck}); the final one excluded")
for v in ("none", "async", "sync"):
    fr = [100 * lost / (total - lost) for lost, total, _ in res[v]]
    st = [100 * stall / (total - lost) for lost, total, stall in res[v]]
    wall = [(total - res["none"][i][1]) / res["none"][i][1] * 100 for i, (_, total, _) in enumerate(res[v])]
    what = "control (no checkpoint; same iterations as async)" if v == "none" else "time lost"
    print(f"{v:5}: within the run, {what}: " + ", ".join(f"{x:+.2f}%" for x in fr) +
          f" (median {statistics.median(fr):+.2f}%); main-thread stall " + ", ".join(f"{x:.2f}%" for x in st) +
          ("" if v == "none" else "; whole run vs none: " + ", ".join(f"{x:+.2f}%" for x in wall)) +
          f"; {statistics.median(t for _, t, _ in res[v]) / steps:.1f} ms/iteration")
PY
