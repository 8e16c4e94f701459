#!/bin/bash
# crash_test.sh MPIEXEC CRASH_SAVER SCRATCH -- a job killed with kill -9 in the middle of a save.
#
# 1. A 2-rank job saves step 1 through the manager.
# 2. Another 2-rank job starts saving step 2 (a state large enough to take a while); as soon as
#    the save's temporary directory ROOT/step-00000002.tmp-* appears, mpiexec and every rank
#    get SIGKILL at once. When the save was too quick and step 2 got committed anyway, it is
#    removed and the attempt repeated with a state twice as large.
# 3. A new job checks: latest is step 1, the debris is reported (warning) and listed, cleanup
#    removes it, step 1 loads bit-exactly. Then step 2 saves again and the root holds exactly
#    step-00000001 and step-00000002.
set -u
mpiexec=$1
exe=$2
scratch=$3
root=$scratch/root
pids=$scratch/pids
np=2

fail() { echo "FAIL: $*"; exit 1; }
run() { "$mpiexec" -n $np --oversubscribe "$exe" "$@"; }

rm -rf "$scratch"
mkdir -p "$root" "$pids" || fail "cannot create $scratch"

run save "$root" 1 65536 "$pids" || fail "saving step 1"

floats=$((4 * 1024 * 1024)) # per rank: 16 MiB
killed=""
for attempt in 1 2 3 4 5 6; do
    rm -f "$pids"/*.pid
    "$mpiexec" -n $np --oversubscribe "$exe" save "$root" 2 $floats "$pids" &
    job=$!
    seen=""
    for _ in $(seq 1 12000); do # up to about 2 minutes
        if compgen -G "$root/step-00000002.tmp-*" > /dev/null; then
            seen=1
            break
        fi
        kill -0 $job 2> /dev/null || break
        sleep 0.01
    done
    ranks=$(cat "$pids"/*.pid 2> /dev/null)
    if [ -n "$seen" ]; then
        # the whole job at once: the launcher and every rank
        kill -9 $job $ranks 2> /dev/null
    fi
    wait $job 2> /dev/null
    for p in $ranks; do # make sure no rank outlives the kill
        for _ in $(seq 1 500); do
            kill -0 "$p" 2> /dev/null || break
            sleep 0.01
        done
        kill -0 "$p" 2> /dev/null && fail "rank process $p survived kill -9"
    done
    [ -n "$seen" ] || fail "attempt $attempt: the save of step 2 never created its temporary directory"
    if [ -d "$root/step-00000002" ]; then
        echo "attempt $attempt: step 2 was committed before the kill; again with twice the state"
        rm -rf "$root/step-00000002" "$root"/step-00000002.tmp-*
        floats=$((floats * 2))
        continue
    fi
    killed=1
    echo "attempt $attempt: killed the job in the middle of saving step 2 ($floats floats per rank)"
    break
done
[ -n "$killed" ] || fail "could not kill the job before step 2 was committed"
ls -la "$root"

out=$(run check "$root" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "the check after the crash failed (exit status $rc)"
echo "$out" | grep -q "libckpt: warning: '$root/step-00000002.tmp-[0-9a-f]*' is the temporary directory of a save of step 2" ||
    fail "no warning about the debris of step 2"
echo "$out" | grep -q "step 1 loaded bit-exactly" || fail "step 1 was not verified"

run save "$root" 2 65536 "$pids" || fail "saving step 2 again after the crash"
left=$(cd "$root" && ls -A | tr '\n' ' ')
[ "$left" = "step-00000001 step-00000002 " ] || fail "the root holds '$left'"
echo "PASS"
