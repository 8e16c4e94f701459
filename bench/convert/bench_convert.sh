#!/usr/bin/env bash
# bench_convert.sh BUILD_DIR WORK_DIR [REPS] [SIZE_MIB] -- shard-convert against cp of the same bytes,
# in the same run, interleaved, best of REPS (default 5) each:
#   * a ~1 GiB shard-train-shaped checkpoint (bench-convert-ckpt: GPT-2 L21 C1024, f32, Shard(0)
#     over 2 ranks, file-per-rank) -> safetensors (hf-gpt2: Conv1D weights transposed), against
#     `cp -r` of the checkpoint directory; without fsync (--no-fsync vs plain cp) and with it
#     (the default vs cp followed by `sync` of the copied files);
#   * for information: --names as-is (no transposition), --dtype bf16, and the import back
#     (--from safetensors --world-size 2) against cp of the safetensors file;
#   * the same checkpoint -> GGUF (--to gguf: f32 without and with fsync against cp and cp + sync;
#     f16 and q8_0, which write half and ~0.27 of the bytes, against cp for information).
# Every source is read once first so that all runs read from the page cache; outputs are removed
# and `sync`ed away between runs, untimed. Prints a table: wall seconds (best of REPS), throughput
# over the checkpoint's data bytes, the ratio of cp's time to ours (>= 1: as fast as cp on the same
# bytes; the target is 0.8), and the CPU seconds (user + system) of that best run.
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

# best NAME SECONDS CPU: keeps the fastest run per name
declare -A BEST CPU
best() {
    if [ -z "${BEST[$1]:-}" ] || [ "$(echo "$2 < ${BEST[$1]}" | bc)" = 1 ]; then BEST[$1]=$2; CPU[$1]=$3; fi
}
timed() { # NAME CMD...
    local name=$1; shift
    rm -rf copy out out.gguf; sync
    /usr/bin/time -f '%e %U %S' -o time.txt "$@" >/dev/null
    read -r e u s <time.txt
    best "$name" "$e" "$(echo "$u + $s" | bc)"
}
cp_sync="cp -r ckpt copy && sync copy/*"
cp_file="mkdir copy && cp st/model.safetensors copy/"
for ((r = 0; r < REPS; r++)); do
    timed cp cp -r ckpt copy
    timed conv "$CONVERT" ckpt out --to safetensors --no-fsync
    timed cp_sync bash -c "$cp_sync"
    timed conv_sync "$CONVERT" ckpt out --to safetensors
    timed asis "$CONVERT" ckpt out --to safetensors --no-fsync --names as-is
    timed bf16 "$CONVERT" ckpt out --to safetensors --no-fsync --dtype bf16
    timed cp_file bash -c "$cp_file"
    timed import "$CONVERT" st out --from safetensors --world-size 2 --no-fsync
    timed gguf "$CONVERT" ckpt out.gguf --to gguf --no-fsync
    timed gguf_sync "$CONVERT" ckpt out.gguf --to gguf
    timed gguf_f16 "$CONVERT" ckpt out.gguf --to gguf --no-fsync --dtype f16
    timed gguf_q8 "$CONVERT" ckpt out.gguf --to gguf --no-fsync --dtype q8_0
done
rm -rf copy out out.gguf time.txt
row() { # LABEL NAME BASELINE BYTES
    printf '| %s | %.2f | %.2f | %.2f | %.2f |\n' "$1" "${BEST[$2]}" "$(echo "$4 / ${BEST[$2]} / 1000000000" | bc -l)" \
        "$(echo "${BEST[$3]} / ${BEST[$2]}" | bc -l)" "${CPU[$2]}"
}
echo "checkpoint: $bytes bytes of files, $data bytes of tensor data (the safetensors file); best of $REPS; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| run | s | GB/s | ratio vs cp | CPU s |"
echo "| --- | --- | --- | --- | --- |"
row "cp -r checkpoint" cp cp "$data"
row "shard-convert --to safetensors --no-fsync" conv cp "$data"
row "cp -r checkpoint + sync" cp_sync cp_sync "$data"
row "shard-convert --to safetensors (fsync)" conv_sync cp_sync "$data"
row "  --names as-is --no-fsync" asis cp "$data"
row "  --dtype bf16 --no-fsync" bf16 cp "$data"
row "cp model.safetensors" cp_file cp_file "$data"
row "shard-convert --from safetensors --world-size 2 --no-fsync" import cp_file "$data"
row "shard-convert --to gguf --no-fsync (f32)" gguf cp "$data"
row "shard-convert --to gguf (f32, fsync)" gguf_sync cp_sync "$data"
row "  --to gguf --dtype f16 --no-fsync" gguf_f16 cp "$data"
row "  --to gguf --dtype q8_0 --no-fsync" gguf_q8 cp "$data"
