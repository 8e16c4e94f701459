#!/bin/bash
# lock_test.sh MPIEXEC CRASH_SAVER SCRATCH -- one job per checkpoint root, the real scenario:
#
# 1. Job A (2 ranks, crash_saver hold) keeps its manager open and commits a step every 50 ms.
# 2. Job B (2 ranks, crash_saver train: resume from latest, train to step 1) is refused on every rank with
#    CKPT_EBUSY naming A's rank 0 (pid, host); A goes on committing.
# 3. mpiexec of A gets SIGKILL. Its ranks are in their own process group and survive it for a
#    while (Open MPI takes a few seconds to notice), still committing. Job B started at once must
#    be refused when A's rank 0 was still alive when B ended, and may only take the root over
#    when A's rank 0 was already gone when B started (either outcome in between).
# 4. A's ranks get SIGKILL. Job B takes the stale lock over with a warning naming A's rank 0,
#    resumes from the latest step bit-exactly and trains on; afterwards no lock file is left.
set -u
mpiexec=$1
exe=$2
scratch=$3
root=$scratch/root
pids=$scratch/pids
np=2

fail() {
    echo "FAIL: $*"
    kill -9 $(cat "$pids"/*.pid 2> /dev/null) 2> /dev/null
    exit 1
}
alive() { kill -0 "$1" 2> /dev/null; }
peek() { "$mpiexec" -n 1 "$exe" peek "$root" | sed -n 's/^latest //p'; }

rm -rf "$scratch"
mkdir -p "$pids" || fail "cannot create $scratch"

"$mpiexec" -n $np --oversubscribe "$exe" hold "$root" "$pids" > "$scratch/a.log" 2>&1 &
launcher=$!
for _ in $(seq 1 600); do
    grep -q '^holding' "$scratch/a.log" 2> /dev/null && break
    alive $launcher || break
    sleep 0.1
done
grep -q '^holding' "$scratch/a.log" || { cat "$scratch/a.log"; fail "job A never started holding the root"; }
a0=$(cat "$pids/rank-0.pid")
host=$(hostname)
echo "job A: mpiexec $launcher, rank 0 pid $a0 on $host"

# 2. refused while A runs
out=$("$mpiexec" -n $np --oversubscribe "$exe" train "$root" 1 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "job B ran although job A holds the root"
for r in 0 1; do
    echo "$out" | grep -q "crash_saver rank $r: checkpoint root '$root' is in use by another job: pid $a0 on host $host since .* UTC holds '$root/ckpt-manager.lock'" ||
        { echo "$out"; fail "rank $r of job B did not name job A's rank 0 as the holder"; }
done
echo "job B refused while job A runs: $(echo "$out" | grep -m1 'rank 0:' | cut -c1-160)..."
s1=$(peek)
sleep 0.5
s2=$(peek)
[ -n "$s1" ] && [ -n "$s2" ] && [ "$s2" -gt "$s1" ] || fail "job A did not go on committing (latest $s1 then $s2)"
echo "job A goes on committing: latest step $s1, then $s2"

# 3. kill -9 of A's launcher; its ranks live on for a while
kill -9 $launcher
wait $launcher 2> /dev/null
alive "$a0" && before=1 || before=0
out=$("$mpiexec" -n $np --oversubscribe "$exe" train "$root" 1 2>&1)
rc=$?
alive "$a0" && after=1 || after=0
if [ $after -eq 1 ]; then
    [ $rc -ne 0 ] && echo "$out" | grep -q "is in use by another job: pid $a0 on host $host" ||
        { echo "$out"; fail "job B was not refused although job A's rank 0 ($a0) outlived its mpiexec and B"; }
    echo "after kill -9 of job A's mpiexec its rank 0 ($a0) still runs: job B refused"
elif [ $before -eq 0 ]; then
    echo "$out" | grep -q "taking over the stale lock" || { echo "$out"; fail "job B did not take the stale lock over"; }
    echo "note: job A's ranks ended with their mpiexec; job B took the root over"
else
    echo "note: job A's rank 0 ended while job B started (exit $rc): either outcome is right"
fi
refused=$rc

# 4. A's ranks die; B takes over and resumes
kill -9 $(cat "$pids"/*.pid) 2> /dev/null
for p in $(cat "$pids"/*.pid); do
    for _ in $(seq 1 500); do
        alive "$p" || break
        sleep 0.01
    done
    alive "$p" && fail "rank process $p survived kill -9"
done
last=$(peek)
[ -n "$last" ] || fail "no committed step after job A"
out=$("$mpiexec" -n $np --oversubscribe "$exe" train "$root" $((last + 30)) 2>&1)
rc=$?
echo "$out" | grep -E "warning|resumed|finished"
[ $rc -eq 0 ] || { echo "$out"; fail "job B failed after job A was gone (exit $rc)"; }
if [ $refused -ne 0 ]; then
    echo "$out" | grep -q "libckpt: warning: taking over the stale lock of checkpoint root '$root' from pid $a0 on host $host since .* UTC: that process is gone" ||
        fail "no warning naming the stale holder"
fi
echo "$out" | grep -q "resumed from step $last" || fail "job B did not resume from step $last"
[ -e "$root/ckpt-manager.lock" ] && fail "the lock file is left after job B"
echo "PASS"
