#!/usr/bin/env bash
# run_fuzz.sh BIN CORPUS WORKDIR SECONDS -- fuzzes BIN for SECONDS from a copy of the committed
# CORPUS (which is never modified). Prints the number of executions; fails on any crash, leak,
# timeout or out-of-memory, leaving the input in WORKDIR.
set -u
bin=$1 corpus=$2 work=$3 secs=$4
rm -rf "$work"; mkdir -p "$work/corpus"
cp -r "$corpus"/. "$work/corpus/" 2>/dev/null || true
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1
rc=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$')
cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1)
echo "fuzz $(basename "$bin"): ${execs:-?} executions in ${secs} s, ${cov:-cov: ?}, exit $rc"
if [ $rc -ne 0 ]; then
  tail -n 60 "$work/log"
  ls "$work" | grep -E '^(crash|leak|timeout|oom)-' | sed "s|^|artifact: $work/|"
fi
exit $rc
