#!/bin/bash
# requeue_test.sh MPIEXEC CRASH_SAVER SCRATCH -- preemption end to end under mpiexec.
#
# A 2-rank training loop (crash_saver train) saves every 25 steps. Once step 25 is on disk,
# mpiexec gets SIGUSR1, which it forwards to every rank: the ranks agree, save the step they
# are at, and exit with CKPT_EXIT_REQUEUE (75), which must be mpiexec's exit status (what a
# batch script tests before `scontrol requeue`). The rerun resumes from exactly that step
# (verified bit-exactly) and finishes.
set -u
mpiexec=$1
exe=$2
scratch=$3
root=$scratch/root

fail() { echo "FAIL: $*"; exit 1; }

rm -rf "$scratch"
mkdir -p "$scratch" || fail "cannot create $scratch"

log=$scratch/first.log
"$mpiexec" -n 2 --oversubscribe "$exe" train "$root" 100000 > "$log" 2>&1 &
job=$!
for _ in $(seq 1 6000); do # up to about a minute
    [ -d "$root/step-00000025" ] && break
    kill -0 $job 2> /dev/null || break
    sleep 0.01
done
[ -d "$root/step-00000025" ] || { cat "$log"; fail "step 25 was never saved"; }
kill -USR1 $job
wait $job
rc=$?
cat "$log"
[ $rc -eq 75 ] || fail "mpiexec exited with $rc after SIGUSR1, want 75 (CKPT_EXIT_REQUEUE)"
stopped=$(sed -n 's/^preempted at step \([0-9]*\):.*/\1/p' "$log")
[ -n "$stopped" ] || fail "no preemption save reported"
[ -d "$root/$(printf 'step-%08d' "$stopped")" ] || fail "the preemption save of step $stopped is not on disk"

out=$("$mpiexec" -n 2 --oversubscribe "$exe" train "$root" $((stopped + 3)) 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "the rerun exited with $rc"
echo "$out" | grep -q "^resumed from step $stopped\$" || fail "the rerun did not resume from step $stopped"
echo "PASS"
