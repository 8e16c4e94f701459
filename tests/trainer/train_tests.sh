#!/usr/bin/env bash
# shard-train end-to-end tests. Usage: train_tests.sh TEST SHARD_TRAIN CKPT_COMPARE MPIEXEC WORKDIR
# Every test uses the tiny model (L2 H2 C32 T32) on the fortunes corpus (or a custom small model for
# empty shards, a large one for kill9_async), one thread per rank, and asserts exact exit codes, metrics
# and checkpoint contents. Checkpoints are asynchronous (shard-train's default) unless a test says
# --no-async; async_sync compares the two, kill9_async kills the job during an asynchronous save.
set -euo pipefail
TEST=$1 TRAIN=$2 CMP=$3 MPIEXEC=$4 WORK=$5
PY=/usr/bin/python3
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS: $*"; }

# run N ARGS...: shard-train on N ranks, tiny model, 1 thread; stdout+stderr to run.log (appended),
# returns the exit code (never fails the script by itself)
run() {
  local n=$1; shift
  set +e
  "$MPIEXEC" -n "$n" --oversubscribe "$TRAIN" --threads 1 "$@" >>run.log 2>&1
  local rc=$?
  set -e
  return $rc
}
expect_rc() { # expect_rc WANT N ARGS...
  local want=$1; shift
  local rc=0
  run "$@" || rc=$?
  [ "$rc" -eq "$want" ] || { tail -30 run.log >&2; fail "exit code $rc, expected $want: shard-train $*"; }
}
# per-rank exit codes: every rank runs under a wrapper that records its own code, so a rank that hangs
# or exits differently is seen (mpirun itself only reports the first failure)
expect_all_ranks_rc() { # expect_all_ranks_rc WANT N ARGS...
  local want=$1 n=$2; shift 2
  rm -f rc.*
  set +e
  "$MPIEXEC" -n "$n" --oversubscribe bash -c '"$@"; echo $? > rc.$OMPI_COMM_WORLD_RANK' wrap \
    "$TRAIN" --threads 1 "$@" >>run.log 2>&1
  set -e
  for ((r = 0; r < n; r++)); do
    [ -f rc.$r ] || fail "rank $r recorded no exit code: shard-train $*"
    [ "$(cat rc.$r)" -eq "$want" ] || { tail -20 run.log >&2; fail "rank $r exited $(cat rc.$r), expected $want: shard-train $*"; }
  done
}
losses() { $PY -c 'import json,sys; [print(repr(json.loads(l)["loss"])) for l in open(sys.argv[1])]' "$1"; }
nlines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }

TINY=(--model tiny --eval-every 0 --sample-len 0 --lr 3e-3 --batch 8)

case "$TEST" in

loss_falls)
  # 300 steps, global batch 16 x 32 bytes, 2 ranks. Measured: final val loss ~2.82, mean of the last 20
  # train losses ~2.75 (from ln 256 = 5.55). Thresholds: 3.3 for both (margin ~0.5).
  expect_rc 0 2 --ckpt-dir ck --model tiny --steps 300 --batch 16 --lr 3e-3 --eval-every 100 --eval-seqs 64 \
    --sample-len 32 --metrics m.jsonl
  [ "$(nlines m.jsonl)" -eq 300 ] || fail "expected 300 metrics lines"
  $PY - m.jsonl <<'EOF' || fail "loss did not fall enough"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    for k in ("step", "loss", "lr", "grad_norm", "tokens_per_s"):
        assert k in r, (k, r)
first = rows[0]["loss"]
last20 = sum(r["loss"] for r in rows[-20:]) / 20
vals = [r["val_loss"] for r in rows if "val_loss" in r]
print(f"first loss {first:.4f}, mean of last 20 {last20:.4f}, val losses {vals}")
assert abs(first - math.log(256)) < 0.1, first
assert [r["step"] for r in rows if "val_loss" in r] == [100, 200, 300]
assert last20 < 3.3 and vals[-1] < 3.3
EOF
  grep -q '^sample @ step 300: "' run.log || fail "no text sample"
  grep -q '^step    300/300 | loss .* | lr .* | grad norm .* | .* ms/step | .* tok/s$' run.log || fail "log line format"
  pass "loss falls below 3.3"
  ;;

world_size_invariance)
  for n in 1 2 3; do
    expect_rc 0 $n --ckpt-dir ck$n "${TINY[@]}" --steps 10 --metrics m$n.jsonl
  done
  # gradient accumulation: 1 sequence per forward/backward (4 micro-batches per rank) at N = 2
  expect_rc 0 2 --ckpt-dir ck2m "${TINY[@]}" --steps 10 --micro-batch 1 --metrics m2m.jsonl
  grep -q "4 micro-batches of <= 1 sequences per rank" run.log || fail "micro-batches"
  $PY - m1.jsonl m2.jsonl m3.jsonl m2m.jsonl <<'EOF' || fail "losses differ across world sizes"
import json, sys
L = [[json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:]]
assert all(len(x) == 10 for x in L)
worst = max(abs(a - b) / abs(a) for x in L[1:] for a, b in zip(L[0], x))
print(f"worst relative difference N=2,3 (and N=2 with micro-batches of 1) vs N=1 over 10 steps: {worst:.3g}")
assert worst <= 1e-5
EOF
  pass "N = 1, 2, 3 (and gradient accumulation) agree within 1e-5"
  ;;

exact_resume)
  expect_rc 0 2 --ckpt-dir full "${TINY[@]}" --steps 40 --metrics full.jsonl
  expect_rc 0 2 --ckpt-dir part "${TINY[@]}" --steps 40 --run-steps 20 --metrics part.jsonl
  [ -d part/step-00000020 ] && [ ! -d part/step-00000040 ] || fail "first half did not stop at step 20"
  expect_rc 0 2 --ckpt-dir part "${TINY[@]}" --steps 40 --resume auto --metrics part.jsonl
  grep -q "resumed from 'part/step-00000020' (step 20)" run.log || fail "did not resume from step 20"
  cmp <(losses full.jsonl) <(losses part.jsonl) || fail "losses of 20+20 differ from 40 uninterrupted"
  "$CMP" full/step-00000040 part/step-00000040 || fail "final checkpoints differ"
  [ "$("$CMP" --attr part/step-00000040 data/counter)" -eq 320 ] || fail "data/counter"
  # --init-from: weights only (step 0, fresh optimizer and data generator), at another world size
  expect_rc 0 3 --ckpt-dir init "${TINY[@]}" --steps 1 --init-from full/step-00000040 --metrics init.jsonl
  grep -q "weights from 'full/step-00000040' (step 0)" run.log || fail "init-from message"
  $PY - full.jsonl init.jsonl <<'EOF' || fail "--init-from did not load the trained weights"
import json, sys
full, init = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:])
print(f"first loss from scratch {full[0]:.4f}, after --init-from {init[0]:.4f}")
assert init[0] < full[0] - 0.5
EOF
  [ "$("$CMP" --attr init/step-00000001 step)" -eq 1 ] && [ "$("$CMP" --attr init/step-00000001 data/counter)" -eq 8 ] \
    || fail "--init-from must restart step and data generator"
  pass "20 + 20 steps == 40 steps bit for bit (losses, parameters, AdamW state); --init-from loads weights only"
  ;;

resume_reshard)
  expect_rc 0 2 --ckpt-dir full "${TINY[@]}" --steps 40 --metrics full.jsonl
  expect_rc 0 2 --ckpt-dir part "${TINY[@]}" --steps 40 --run-steps 20 --metrics part.jsonl
  expect_rc 0 3 --ckpt-dir part "${TINY[@]}" --steps 40 --resume auto --metrics part.jsonl
  [ "$("$CMP" --attr part/step-00000020 world_size)" -eq 2 ] && [ "$("$CMP" --attr part/step-00000040 world_size)" -eq 3 ] \
    || fail "world_size attributes"
  $PY - full.jsonl part.jsonl <<'EOF' || fail "resumed losses differ"
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:])
assert len(a) == len(b) == 40
assert a[:20] == b[:20]
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
print(f"worst relative difference, 2 ranks then 3 vs 2 throughout: {worst:.3g}")
assert worst <= 1e-4
EOF
  "$CMP" full/step-00000040 part/step-00000040 --prefix model/ --rtol 1e-3 --atol 1e-4 || fail "final parameters differ"
  pass "20 steps at N=2 + 20 at N=3 == 40 at N=2 within 1e-4"
  ;;

signal_requeue)
  # phase 1: SIGTERM to ONE rank only (as a scheduler would to a task); every rank must stop, save, exit 75
  LONG=("${TINY[@]}" --steps 100000 --ckpt-dir ck --metrics m.jsonl)
  wait_lines() { # wait_lines FILE N PID
    for ((i = 0; i < 1200; i++)); do
      [ "$(nlines "$1")" -ge "$2" ] && return 0
      kill -0 "$3" 2>/dev/null || return 1
      sleep 0.05
    done
    return 1
  }
  set +e
  "$MPIEXEC" -n 2 --oversubscribe "$TRAIN" --threads 1 "${LONG[@]}" >>run.log 2>&1 &
  pid=$!
  wait_lines m.jsonl 5 $pid || fail "run did not start"
  ranks=($(pgrep -P $pid))
  [ ${#ranks[@]} -eq 2 ] || fail "expected 2 rank processes under mpirun, found ${ranks[*]:-none}"
  kill -TERM "${ranks[1]}"
  wait $pid; rc=$?
  set -e
  [ $rc -eq 75 ] || { tail -20 run.log >&2; fail "SIGTERM: exit code $rc, expected 75"; }
  s1=$(nlines m.jsonl)
  ck1=$(printf 'ck/step-%08d' "$s1")
  [ -f "$ck1/COMMITTED" ] || fail "no committed checkpoint $ck1 after SIGTERM"
  [ "$("$CMP" --attr "$ck1" step)" -eq "$s1" ] || fail "checkpoint step attribute"
  grep -q "signal: checkpoint saved, exiting for requeue" run.log || fail "no requeue message"
  # phase 2: resume, then SIGUSR1 to mpirun (which forwards it to every rank)
  set +e
  "$MPIEXEC" -n 2 --oversubscribe "$TRAIN" --threads 1 "${LONG[@]}" --resume auto >>run.log 2>&1 &
  pid=$!
  wait_lines m.jsonl $((s1 + 5)) $pid || fail "resumed run did not start"
  kill -USR1 $pid
  wait $pid; rc=$?
  set -e
  [ $rc -eq 75 ] || fail "SIGUSR1: exit code $rc, expected 75"
  s2=$(nlines m.jsonl)
  [ -f "$(printf 'ck/step-%08d' "$s2")/COMMITTED" ] || fail "no checkpoint after SIGUSR1"
  # phase 3: finish 5 more steps; the whole history must equal an uninterrupted run bit for bit
  expect_rc 0 2 "${LONG[@]}" --resume auto --run-steps 5
  final=$(printf 'step-%08d' $((s2 + 5)))
  expect_rc 0 2 "${TINY[@]}" --steps 100000 --ckpt-dir ref --metrics ref.jsonl --run-steps $((s2 + 5))
  cmp <(losses ref.jsonl) <(losses m.jsonl) || fail "interrupted history differs from the uninterrupted run"
  "$CMP" "ref/$final" "ck/$final" || fail "final checkpoints differ"
  pass "SIGTERM at step $s1 and SIGUSR1 at step $s2 -> exit 75 (CKPT_EXIT_REQUEUE), committed checkpoints, exact resume"
  ;;

bad_inputs)
  : >empty.txt
  head -c 32 /usr/share/games/fortunes/fortunes >short.txt  # T = 32 needs 33 bytes
  head -c 33 /usr/share/games/fortunes/fortunes >just.txt
  head -c 100 /usr/share/games/fortunes/fortunes >hundred.txt
  mkdir emptydir
  expect_all_ranks_rc 3 2 --ckpt-dir ck "${TINY[@]}" --steps 2 --data /nonexistent/file
  grep -q "data path '/nonexistent/file': No such file or directory" run.log || fail "missing-file message"
  expect_all_ranks_rc 3 2 --ckpt-dir ck "${TINY[@]}" --steps 2 --data empty.txt
  grep -q "data 'empty.txt' is empty" run.log || fail "empty-file message"
  expect_all_ranks_rc 3 2 --ckpt-dir ck "${TINY[@]}" --steps 2 --data emptydir
  expect_all_ranks_rc 3 2 --ckpt-dir ck "${TINY[@]}" --steps 2 --data short.txt --val-frac 0
  grep -q "data 'short.txt' is too short: 32 bytes give a training split of 32 bytes; a sequence needs context+1 = 33 bytes" run.log \
    || fail "short-file message"
  expect_all_ranks_rc 3 2 --ckpt-dir ck "${TINY[@]}" --steps 2 --data just.txt   # 10% held out: 30 left
  grep -q "data 'just.txt' is too short: 33 bytes give a training split of 30 bytes" run.log || fail "short training split message"
  expect_all_ranks_rc 3 2 --ckpt-dir ck "${TINY[@]}" --steps 2 --data hundred.txt
  grep -q "data 'hundred.txt' is too short: 100 bytes give a validation split of 10 bytes (--val-frac 0.1); a sequence needs context+1 = 33 bytes" run.log \
    || fail "short validation split message"
  expect_all_ranks_rc 0 2 --ckpt-dir ck "${TINY[@]}" --steps 2 --data just.txt --val-frac 0  # exactly T+1: fine
  # a checkpoint of another model
  expect_all_ranks_rc 0 2 --ckpt-dir small "${TINY[@]}" --steps 1
  : >run.log
  expect_all_ranks_rc 4 2 --ckpt-dir big --model 2,2,64,32 --steps 2 --resume small/step-00000001
  grep -q "model configuration mismatch: checkpoint 'small/step-00000001' has n_embd (C) = 32 (attribute config/n_embd), this run's model has n_embd (C) = 64" run.log \
    || fail "config mismatch message"
  expect_all_ranks_rc 4 2 --ckpt-dir big --model 3,2,32,32 --steps 2 --init-from small/step-00000001
  grep -q "has n_layer (L) = 2" run.log || fail "n_layer mismatch message"
  expect_all_ranks_rc 4 2 --ckpt-dir big --model tiny --steps 2 --resume small/step-99999999
  grep -q "cannot open checkpoint 'small/step-99999999'" run.log || fail "missing checkpoint message"
  # without --model, a checkpoint's model is adopted
  expect_all_ranks_rc 0 2 --ckpt-dir small --steps 2 --eval-every 0 --resume auto
  grep -q "model L=2 H=2 C=32 T=32" run.log || fail "checkpoint model not adopted"
  expect_all_ranks_rc 2 2 --ckpt-dir ck --bogus 1
  expect_all_ranks_rc 2 2 --ckpt-dir ck --model 2,3,32,32
  expect_all_ranks_rc 2 2 --steps 3
  pass "missing/empty/short data -> 3, other model -> 4 naming the field, usage -> 2, on every rank"
  ;;

empty_shards)
  # model L2 H2 C6 T6: LayerNorm vectors, wpe and the C-row matrices have 6 rows; at N = 4 they split
  # 2,2,2,0 (rank 3 holds empty shards). Global batch 3 at N = 4: rank 3 has no sequence either.
  M=(--model 2,2,6,6 --eval-every 0 --sample-len 0 --lr 1e-2 --batch 3)
  expect_rc 0 1 --ckpt-dir c1 "${M[@]}" --steps 12 --metrics m1.jsonl
  expect_rc 0 4 --ckpt-dir c4 "${M[@]}" --steps 12 --run-steps 6 --metrics m4.jsonl
  grep -q "memory rank 3: params+grads+adam m,v .* (510 of 2604 elements)" run.log || fail "memory line"
  expect_rc 0 3 --ckpt-dir c4 "${M[@]}" --steps 12 --resume auto --metrics m4.jsonl
  $PY - m1.jsonl m4.jsonl <<'EOF' || fail "losses with empty shards differ"
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:])
assert len(a) == len(b) == 12
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
print(f"worst relative difference (N=4 with empty shards, then N=3) vs N=1: {worst:.3g}")
assert worst <= 1e-4
EOF
  "$CMP" --list c4/step-00000006 | grep -q "^tensor model/h.0.ln1.w f32 6$" || fail "tensor list"
  "$CMP" c1/step-00000012 c4/step-00000012 --prefix model/ --rtol 1e-3 --atol 1e-4 || fail "final state differs"
  pass "empty shards (rows < ranks) and ranks without sequences train, save and reshard"
  ;;

nonfinite)
  # asynchronous (default) and synchronous checkpoints
  for mode in --async --no-async; do
    rm -rf ck
    expect_rc 0 2 --ckpt-dir ck "${TINY[@]}" --steps 3 --ckpt-every 1 --keep-last 0 $mode
    : >run.log
    # an absurd learning rate overflows the weights: step 5's loss is not finite
    expect_all_ranks_rc 5 2 --ckpt-dir ck "${TINY[@]}" --steps 10 --lr 1e38 --ckpt-every 1 --keep-last 0 \
      --resume auto --metrics m.jsonl $mode
    grep -q "shard-train: error: non-finite loss at step 5" run.log || { cat run.log >&2; fail "message"; }
    [ -f ck/step-00000004/COMMITTED ] && [ ! -e ck/step-00000005 ] || fail "$mode: the non-finite step was saved"
    ! compgen -G "ck/step-*.tmp-*" >/dev/null || fail "$mode: temporary directories left"
    if [ $mode = --async ]; then
      # step 4's save was in flight (written during step 5's forward/backward): it commits, then exit 5
      awk '/non-finite loss at step 5/ {e = NR} /^checkpoint ck\/step-00000004 committed \(async/ {c = NR}
           END {exit !(e && c > e)}' run.log || { cat run.log >&2; fail "the in-flight save of step 4 did not commit"; }
    fi
  done
  pass "NaN/Inf loss -> exit 5, nothing saved at that step, last good checkpoint kept (async: in-flight save commits)"
  ;;

async_sync)
  # the same run with asynchronous (default) and synchronous checkpoints: same losses, the same
  # checkpoints bit for bit (tensors and attributes), all committed, no temporary directory left
  A=("${TINY[@]}" --steps 12 --ckpt-every 3 --keep-last 0 --eval-every 6 --eval-seqs 8)
  expect_rc 0 2 --ckpt-dir as "${A[@]}" --metrics as.jsonl
  expect_rc 0 2 --ckpt-dir sy "${A[@]}" --metrics sy.jsonl --no-async
  expect_rc 0 3 --ckpt-dir as3 "${A[@]}" --metrics as3.jsonl --async --micro-batch 1
  for s in 3 6 9; do
    grep -q "^checkpoint as/step-0000000$s committed (async: stall .* ms at the save + .* ms at the commit" run.log \
      || fail "no asynchronous commit of step $s"
    grep -q "^checkpoint sy/step-0000000$s (.* ms, synchronous)" run.log || fail "no synchronous save of step $s"
  done
  grep -q "^checkpoint as/step-00000012 committed (async" run.log || fail "final checkpoint"
  grep -q "4 checkpoints (async)" run.log && grep -q "4 checkpoints (sync)" run.log || fail "checkpoint counts"
  cmp <(losses as.jsonl) <(losses sy.jsonl) || fail "asynchronous checkpoints changed the training"
  for d in as sy as3; do
    have=$(cd $d && ls -A | tr '\n' ' ')
    [ "$have" = "step-00000003 step-00000006 step-00000009 step-00000012 " ] || fail "$d holds '$have'"
    for s in 03 06 09 12; do [ -f $d/step-000000$s/COMMITTED ] || fail "$d/step-000000$s not committed"; done
  done
  for s in 03 06 09 12; do
    "$CMP" as/step-000000$s sy/step-000000$s || fail "step $s: async and sync checkpoints differ"
    cmp <("$CMP" --list as/step-000000$s) <("$CMP" --list sy/step-000000$s) || fail "step $s: attributes differ"
    "$CMP" as/step-000000$s as3/step-000000$s --prefix model/ --rtol 1e-3 --atol 1e-4 >/dev/null || fail "step $s: N=3 differs"
  done
  # the keep-best metric: the loss of exactly the saved state, NaN when that step was not evaluated
  "$CMP" --attr as/step-00000003 train/val_loss | grep -qi nan || fail "step 3 (not evaluated) has a val_loss"
  v6=$("$CMP" --attr as/step-00000006 train/val_loss)
  $PY -c 'import math, sys; v = float(sys.argv[1]); assert math.isfinite(v) and 0 < v < 10, v' "$v6" \
    || fail "step 6 (evaluated) val_loss '$v6'"
  pass "asynchronous (no-copy) checkpoints commit and equal synchronous ones bit for bit"
  ;;

kill9_async)
  # kill -9 of the whole job (mpirun and every rank at once) while the asynchronous save of step 6 is in
  # flight (its ROOT/step-00000006.tmp-* directory exists): step 3 stays the latest, the run resumes from
  # it, the debris is removed, and the resumed run reaches step 6 bit-exactly. The save is in flight for
  # one forward/backward (it commits before step 7's update); a model with large shards relative to its
  # step time makes the write itself last; if step 6 got committed before the kill, a bigger model.
  K=(--eval-every 0 --sample-len 0 --lr 1e-3 --batch 2 --steps 100000 --ckpt-every 3 --keep-last 0)
  killed=""
  for m in 4,4,256,32 4,4,512,32 8,4,512,32; do
    rm -rf ck
    : >m.jsonl
    set +e
    "$MPIEXEC" -n 2 --oversubscribe "$TRAIN" --threads 1 --model $m "${K[@]}" --ckpt-dir ck --metrics m.jsonl \
      >>run.log 2>&1 &
    pid=$!
    ranks=()
    for ((i = 0; i < 6000; i++)); do # the rank processes, once they train
      [ "$(nlines m.jsonl)" -ge 1 ] && { ranks=($(pgrep -P $pid)); break; }
      kill -0 $pid 2>/dev/null || break
      sleep 0.01
    done
    [ ${#ranks[@]} -eq 2 ] || { kill -9 $pid "${ranks[@]}" 2>/dev/null; fail "expected 2 rank processes, found ${ranks[*]:-none}"; }
    seen=""
    for ((i = 0; i < 60000; i++)); do
      if [ -f ck/step-00000003/COMMITTED ] && compgen -G "ck/step-00000006.tmp-*" >/dev/null; then
        seen=1
        break
      fi
      kill -0 $pid 2>/dev/null || break
      sleep 0.002
    done
    kill -9 $pid "${ranks[@]}" 2>/dev/null
    wait $pid 2>/dev/null
    set -e
    for p in "${ranks[@]}"; do
      for ((i = 0; i < 500; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.01; done
      ! kill -0 "$p" 2>/dev/null || fail "rank process $p survived kill -9"
    done
    [ -n "$seen" ] || { tail -20 run.log >&2; fail "model $m: the save of step 6 never showed its temporary directory"; }
    if [ -e ck/step-00000006 ]; then
      echo "model $m: step 6 was committed before the kill; again with a bigger model"
      continue
    fi
    killed=$m
    echo "model $m: killed the job during the asynchronous save of step 6 (metrics reached step $(nlines m.jsonl))"
    ls -A ck
    ls -l ck/step-00000006.tmp-*/ || true # the rank files as the kill left them
    break
  done
  [ -n "$killed" ] || fail "could not kill the job during an asynchronous save"
  compgen -G "ck/step-00000006.tmp-*" >/dev/null || fail "no debris of the interrupted save"
  : >run.log
  expect_rc 0 2 --model $killed "${K[@]}" --ckpt-dir ck --resume auto --run-steps 3
  grep -q "warning: 'ck/step-00000006.tmp-[0-9a-f]*' is the temporary directory of a save of step 6" run.log \
    || fail "no warning about the debris"
  grep -q "resumed from 'ck/step-00000003' (step 3)" run.log || { cat run.log >&2; fail "did not resume from step 3"; }
  grep -q "removed 1 incomplete checkpoint directory" run.log || fail "debris not removed"
  have=$(cd ck && ls -A | tr '\n' ' ')
  [ "$have" = "step-00000003 step-00000006 " ] || fail "ck holds '$have'"
  expect_rc 0 2 --model $killed "${K[@]}" --ckpt-dir ref --run-steps 6
  "$CMP" ref/step-00000006 ck/step-00000006 || fail "the resumed run differs from an uninterrupted one"
  pass "kill -9 during an asynchronous save (model $killed): step 3 stays latest, resume is exact, debris removed"
  ;;

early_stopping)
  # min_delta 10: only the first evaluation counts as an improvement; patience 2 -> stop at step 15
  expect_rc 0 2 --ckpt-dir ck "${TINY[@]}" --steps 100 --eval-every 5 --eval-seqs 8 --patience 2 --min-delta 10 \
    --metrics m.jsonl
  grep -q "done at step 15 (early stopping)" run.log || fail "did not stop at step 15"
  [ "$(nlines m.jsonl)" -eq 15 ] || fail "metrics lines"
  [ "$("$CMP" --attr ck/step-00000015 train/bad_evals)" -eq 2 ] || fail "bad_evals attribute"
  [ "$("$CMP" --attr ck/step-00000015 train/best_step)" -eq 5 ] || fail "best_step attribute"
  pass "early stopping after patience evaluations without improvement"
  ;;

retention)
  # libckpt's manager: the keep_last newest + the keep_best lowest train/val_loss (ties: the newer), with
  # asynchronous (ck) and synchronous (cks) saves
  kept() { # kept METRICS LAST KEEP_LAST: the step directories retention must leave
    $PY - "$@" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
last, keep_last = int(sys.argv[2]), int(sys.argv[3])
val = {r["step"]: r["val_loss"] for r in rows if "val_loss" in r}
keep = set(range(last, last - 5 * keep_last, -5)) | {min(val, key=lambda s: (val[s], -s))}
print(" ".join(f"step-{s:08d}" for s in sorted(keep)))
EOF
  }
  for d in ck cks; do
    mode=--async; [ $d = cks ] && mode=--no-async
    expect_rc 0 2 --ckpt-dir $d "${TINY[@]}" --steps 30 --ckpt-every 5 --eval-every 5 --eval-seqs 8 \
      --keep-last 2 --keep-best 1 --metrics m$d.jsonl $mode
    want=$(kept m$d.jsonl 30 2)
    have=$(cd $d && ls -A | tr '\n' ' ' | sed 's/ $//')
    [ "$have" = "$want" ] || fail "$mode: kept '$have', expected '$want'"
  done
  # checkpoints of steps that were not evaluated never count as best (their train/val_loss is NaN)
  expect_rc 0 2 --ckpt-dir ckb "${TINY[@]}" --steps 30 --ckpt-every 5 --eval-every 10 --eval-seqs 8 \
    --keep-last 1 --keep-best 1 --metrics mb.jsonl
  want=$(kept mb.jsonl 30 1)
  have=$(cd ckb && ls -A | tr '\n' ' ' | sed 's/ $//')
  [ "$have" = "$want" ] || fail "keep-best among evaluated steps: kept '$have', expected '$want'"
  # an incomplete directory with a higher step is skipped (with a warning) by --resume auto
  mkdir ck/step-99999999
  expect_rc 0 2 --ckpt-dir ck "${TINY[@]}" --steps 32 --resume auto
  grep -q "shard-train: warning: skipping step 99999999 (incomplete)" run.log || fail "no warning for the incomplete directory"
  [ ! -e ck/step-99999999 ] || fail "the incomplete directory was not cleaned up"
  grep -q "removed 1 incomplete checkpoint directory (interrupted saves) from 'ck'" run.log || fail "no clean-up message"
  grep -q "resumed from 'ck/step-00000030' (step 30)" run.log || fail "did not resume from step 30"
  # checkpoint names and attributes
  "$CMP" --list ck/step-00000032 >list.txt
  # a damaged latest checkpoint (truncated rank file: the index still opens) -> --resume auto falls back
  cp -r ck/step-00000032 saved32
  truncate -s 1000 ck/step-00000032/rank-00001.h5
  : >run.log
  expect_rc 0 2 --ckpt-dir ck "${TINY[@]}" --steps 31 --resume auto
  grep -q "warning: loading checkpoint 'ck/step-00000032' failed" run.log || fail "no warning for the damaged checkpoint"
  grep -q "resumed from 'ck/step-00000030' (step 30)" run.log || fail "no fallback to step 30"
  for t in model/wte model/wpe model/h.1.mlp.proj.w model/lnf.b optim/m/h.0.attn.qkv.w optim/v/lnf.w; do
    grep -q "^tensor $t f32 " list.txt || fail "tensor $t missing"
  done
  [ "$(grep -c '^tensor ' list.txt)" -eq $((3 * 28)) ] || fail "tensor count"
  for a in step config/n_layer config/n_head config/n_embd config/max_seq config/vocab data/seed data/counter \
           train/best_val_loss train/bad_evals sched/lr world_size trainer/format; do
    grep -q "^attr $a " list.txt || fail "attribute $a missing"
  done
  # time-based checkpoints
  expect_rc 0 1 --ckpt-dir timed "${TINY[@]}" --steps 6 --ckpt-secs 0.000001 --keep-last 0
  [ "$(ls -d timed/step-* | wc -l)" -eq 6 ] || fail "time-based checkpoints"
  pass "keep-last + keep-best (async and sync) kept what the manager must keep; not-evaluated steps never best; incomplete directories skipped; names and attributes"
  ;;

help)
  "$TRAIN" --help >help.txt
  for f in --data --ckpt-dir --model --batch --steps --lr --seed --eval-every --ckpt-every --ckpt-secs \
           --keep-last --keep-best --resume --init-from --patience --min-delta --metrics --threads; do
    grep -q -- "^  $f " help.txt || fail "--help does not document $f"
  done
  grep -q "^  75  interrupted by SIGTERM/SIGUSR1" help.txt || fail "exit code 75 not documented"
  grep -q "every rank exits 75 (libckpt's CKPT_EXIT_REQUEUE" help.txt || fail "signals paragraph: exit 75"
  ! grep -q "99" help.txt || fail "--help still mentions 99"
  for f in --async --no-async; do grep -q -- "^  $f " help.txt || fail "--help does not document $f"; done
  for c in 0 1 2 3 4 5; do grep -q "^   $c  " help.txt || fail "exit code $c not documented"; done
  pass "--help documents every flag and the exit codes"
  ;;

*)
  fail "unknown test $TEST"
  ;;
esac
