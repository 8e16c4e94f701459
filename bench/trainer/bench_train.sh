#!/usr/bin/env bash
# bench_train.sh: throughput, communication share and per-rank memory of shard-train.
#
#   bash bench/trainer/bench_train.sh [SHARD_TRAIN] [MODEL] [BATCH] [STEPS]
#       (defaults: build-train/trainer/shard-train, default, 8, 12)
#
# Runs N=1 with 2 threads (mpirun --bind-to none) and N=2 with 1 thread each on the same data, then
# N=4 for the memory report only. Prints the per-rank memory lines shard-train logs at start-up and,
# from the --metrics JSON lines (first step dropped as warm-up), the median ms/step, tokens/s and the
# median share of step time spent inside collectives (comm_ms / ms_per_step) and in model compute. The machine may be
# shared: medians are the robust numbers.
set -euo pipefail
TRAIN=${1:-build-train/trainer/shard-train}
MODEL=${2:-default}
BATCH=${3:-8}
STEPS=${4:-12}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
summary() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][1:]
ms = statistics.median(r["ms_per_step"] for r in rows)
share = statistics.median(r["comm_ms"] / r["ms_per_step"] for r in rows)
comp = statistics.median(r["compute_ms"] / r["ms_per_step"] for r in rows)
tps = statistics.median(r["tokens_per_s"] for r in rows)
best = max(r["tokens_per_s"] for r in rows)
print(f"{sys.argv[2]}: median {ms:.1f} ms/step, {tps:.0f} tokens/s (best step {best:.0f}); rank 0 step time: "
      f"communication {100 * share:.1f}%, model compute {100 * comp:.1f}% ({len(rows)} steps)")
PY
}
common=(--model "$MODEL" --batch "$BATCH" --steps "$STEPS" --eval-every 0 --sample-len 0 --log-every 1000000)
mpirun --bind-to none -n 1 "$TRAIN" "${common[@]}" --threads 2 --ckpt-dir "$W/c1" --metrics "$W/n1.jsonl" \
  | grep "memory rank"
summary "$W/n1.jsonl" "N=1, 2 threads"
mpirun -n 2 "$TRAIN" "${common[@]}" --threads 1 --ckpt-dir "$W/c2" --metrics "$W/n2.jsonl" | grep "memory rank"
summary "$W/n2.jsonl" "N=2, 1 thread each"
mpirun -n 4 "$TRAIN" "${common[@]}" --steps 1 --threads 1 --ckpt-dir "$W/c4" | grep "memory rank"
