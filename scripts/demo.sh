#!/usr/bin/env bash
# The main job, watchable in a few minutes: set up and build, train a GPT with 2 ranks (fully
# sharded) on Debian's fortune texts with automatic checkpoints, preempt it as a scheduler would,
# resume at 3 ranks from the latest checkpoint (resharded on load), look inside the checkpoints,
# and show what the model writes. Each stage says what it does. Outputs go to demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD=${BUILD_DIR:-build}
OUT=${DEMO_DIR:-demo-out}
STEPS=${DEMO_STEPS:-300}
PREEMPT_AT=${DEMO_PREEMPT_AT:-150}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1/6 building into $BUILD (library, trainer, tools)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD.configure.log" 2>&1 || { cat "$BUILD.configure.log"; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" --target shard-train shard-inspect shard-diff >/dev/null

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN=(mpirun --oversubscribe --bind-to none)
rm -rf "$OUT"
mkdir -p "$OUT"
CK="$OUT/checkpoints"
ARGS=(--ckpt-dir "$CK" --model default --batch 8 --steps "$STEPS" --lr 2e-3 --eval-every 50 --ckpt-every 50
      --keep-last 2 --keep-best 1 --metrics "$OUT/metrics.jsonl" --sample-len 160 --log-every 10)

say "2/6 training a 3.3M-parameter GPT (4 layers, 4 heads, 256 channels, context 256, bytes as tokens) on
      /usr/share/games/fortunes with 2 MPI ranks: every parameter, gradient and AdamW moment is split
      across the ranks (FSDP); checkpoints every 50 steps, the last 2 and the best by validation loss kept"
"${MPIRUN[@]}" -n 2 "$BUILD/trainer/shard-train" "${ARGS[@]}" > >(tee -a "$OUT/train.log") 2>&1 &
pid=$!
target=$(printf '%s/step-%08d/COMMITTED' "$CK" "$PREEMPT_AT")
while kill -0 "$pid" 2>/dev/null && [ ! -f "$target" ]; do sleep 0.5; done

say "3/6 preemption: SIGUSR1 to mpirun (what a scheduler sends before it takes the nodes back)"
kill -USR1 "$pid" 2>/dev/null || true
set +e
wait "$pid"
rc=$?
set -e
echo "shard-train exited with code $rc (requeue me: a checkpoint was committed first)"
echo "checkpoints now: $(ls "$CK" | tr '\n' ' ')"

say "4/6 resuming from the latest checkpoint with 3 ranks: the 2-rank shards are resharded on load"
"${MPIRUN[@]}" -n 3 "$BUILD/trainer/shard-train" "${ARGS[@]}" --resume auto 2>&1 | tee -a "$OUT/train.log"

say "5/6 looking inside: the checkpoint directory, then the latest checkpoint and a full verification"
"$BUILD/tools/shard-inspect" "$CK"
latest=$(ls -d "$CK"/step-* | grep -v tmp | sort | tail -1)
"$BUILD/tools/shard-inspect" "$latest" --tensors 'model/h.0.*'
"$BUILD/tools/shard-inspect" "$latest" --verify | tail -1

say "6/6 what the model writes now (sampled at the last evaluation) and the loss curve"
grep -E 'sample @ step' "$OUT/train.log" 2>/dev/null | tail -1 || true
/usr/bin/python3 - "$OUT/metrics.jsonl" <<'PY'
import json, sys, math
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[r["step"]] = r                      # a resumed run repeats steps: the later line wins
val = [(s, r["val_loss"]) for s, r in sorted(rows.items()) if "val_loss" in r and r["val_loss"] is not None]
first = rows[min(rows)]["loss"]
print(f"train loss: {first:.3f} at step {min(rows)} (uniform bytes: ln 256 = {math.log(256):.3f})"
      f" -> {rows[max(rows)]['loss']:.3f} at step {max(rows)}")
print("validation loss: " + ", ".join(f"{v:.3f} @ {s}" for s, v in val))
PY
