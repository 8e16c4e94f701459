#!/usr/bin/env bash
# bench_convert.sh BUILD_DIR WORK_DIR [REPS] [SIZE_MIB] -- shard-convert against cp of the same bytes,
# in the same run, interleaved, best of REPS (default 5) each:
#   * a ~1 GiB shard-train-shaped checkpoint (bench-convert-ckpt: GPT-2 L21 C1024, f32, Shard(0)
#     over 2 ranks, file-per-rank) -> safetensors (hf-gpt2: Conv1D weights transposed), against
#     `cp -r` of the checkpoint directory; without fsync (--no-fsync vs plain cp) and with it
#     (the default vs cp followed by `sync` of the copied files);
#   * for information: --names as-is (no transposition), --dtype bf16, and the import back
#     (--from safetensors --world-size 2) against cp of the safetensors file.
# Every source is read once first so that all runs read from the page cache; outputs are removed
# and `sync`ed away between runs, untimed. Prints a table; the ratio is cp's time over ours (>= 1:
# as fast as cp on the same bytes).
set -eu
BUILD=$1 WORK=$2 REPS=${3:-5} SIZE=${4:-1024}
CONVERT=$BUILD/tools/shard-convert
mkdir -p "$WORK"
cd "$WORK"
rm -rf ckpt st copy out
"$BUILD/bench/convert/bench-convert-ckpt" ckpt "$SIZE"
"$CONVERT" ckpt st --to safetensors --no-fsync >/dev/null
cat ckpt/* st/* >/dev/null
bytes=$(du -sb --apparent-size ckpt | cut -f1)
data=$(stat -c %s st/model.safetensors)

now() { date +%s.%N; }
# best NAME SECONDS: keeps the minimum per name
declare -A BEST
best() { if [ -z "${BEST[$1]:-}" ] || [ "$(echo "$2 < ${BEST[$1]}" | bc)" = 1 ]; then BEST[$1]=$2; fi; }
timed() { # NAME CMD...
    local name=$1; shift
    rm -rf copy out; sync
    local s e
    s=$(now); "$@" >/dev/null; e=$(now)
    best "$name" "$(echo "$e - $s" | bc)"
}
cp_sync() { cp -r ckpt copy && sync copy/*; }
cp_file() { mkdir copy && cp st/model.safetensors copy/; }
for ((r = 0; r < REPS; r++)); do
    timed cp cp -r ckpt copy
    timed conv "$CONVERT" ckpt out --to safetensors --no-fsync
    timed cp_sync cp_sync
    timed conv_sync "$CONVERT" ckpt out --to safetensors
    timed asis "$CONVERT" ckpt out --to safetensors --no-fsync --names as-is
    timed bf16 "$CONVERT" ckpt out --to safetensors --no-fsync --dtype bf16
    timed cp_file cp_file
    timed import "$CONVERT" st out --from safetensors --world-size 2 --no-fsync
done
rm -rf copy out
row() { # LABEL NAME BASELINE BYTES
    printf '| %s | %.3f | %.2f | %.2f |\n' "$1" "${BEST[$2]}" "$(echo "$4 / ${BEST[$2]} / 1000000000" | bc -l)" \
        "$(echo "${BEST[$3]} / ${BEST[$2]}" | bc -l)"
}
echo "checkpoint $bytes bytes (files), safetensors $data bytes; best of $REPS"
echo "| run | s | GB/s | ratio vs cp |"
echo "| --- | --- | --- | --- |"
row "cp -r checkpoint" cp cp "$bytes"
row "shard-convert --to safetensors --no-fsync" conv cp "$bytes"
row "cp -r checkpoint + sync" cp_sync cp_sync "$bytes"
row "shard-convert --to safetensors (fsync)" conv_sync cp_sync "$bytes"
row "  --names as-is --no-fsync" asis cp "$bytes"
row "  --dtype bf16 --no-fsync" bf16 cp "$bytes"
row "cp model.safetensors" cp_file cp_file "$data"
row "shard-convert --from safetensors --world-size 2 --no-fsync" import cp_file "$data"
