#!/usr/bin/env bash
# shard-convert --to gguf end to end, on the convert.fixture checkpoints (a 2-rank shard-train run
# of the tiny model, step 20, in both layouts, compressed and not). Usage:
#   gguf_tests.sh TEST CONVERT FIXTURE WORK MAKE_CKPT TOOLS_DIR
# export: f32, f16 and q8_0 files from every variant read by @huggingface/gguf under Node
#   (gguf_check.mjs: every key, tensor name, shape, type; f16 and q8_0 data recomputed from the
#   f32 file) and the f32 file compared bit for bit with the checkpoint through h5py
#   (check_gguf.py); errors: exit codes and messages, nothing left at OUT.
set -u
TEST=$1 CONVERT=$2 FIX=$3 WORK=$4 MAKE=$5 TOOLS=$6
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tools/lib.sh"
PY=/usr/bin/python3
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1

case "$TEST" in

export)
    if ! command -v node >/dev/null || [ ! -f "$HERE/node/node_modules/@huggingface/gguf/package.json" ]; then
        echo "FAIL: Node.js or @huggingface/gguf missing (run scripts/setup.sh)"
        exit 1
    fi
    for v in per-rank shared per-rank-zstd shared-zstd; do
        for d in f32 f16 q8_0; do
            run "$CONVERT" "$FIX/$v" $v-$d.gguf --to gguf --dtype $d
            expect_rc 0
            case $d in
            f32) n="29 f32, 0 f16, 0 q8_0" ;;
            f16) n="19 f32, 10 f16, 0 q8_0" ;;
            q8_0) n="19 f32, 0 f16, 10 q8_0" ;;
            esac
            expect_out_re "^wrote $v-$d\.gguf: 29 tensors \($n\), [0-9]+ bytes; architecture gpt2, dtype $d, step 20$"
        done
        run node "$HERE/gguf_check.mjs" $v-f32.gguf $v-f16.gguf $v-q8_0.gguf 2 2 32 32 20 $v.json
        expect_rc 0
        expect_out_re "^gguf_check: [0-9]+ checks passed"
        run "$PY" "$HERE/check_gguf.py" $v.json $v-f32.gguf "$FIX/$v"
        expect_rc 0
        expect_out "check_gguf: 29 tensors identical to $FIX/$v"
    done
    # the --json summary; the default dtype is f32
    run "$CONVERT" "$FIX/per-rank" j.gguf --to gguf --json
    expect_rc 0
    expect_json "
import os
assert d['to'] == 'gguf' and d['dtype'] == 'f32' and d['tensors'] == 29 and d['step'] == 20, d
assert d['types'] == {'f32': 29, 'f16': 0, 'q8_0': 0}, d
assert d['file_bytes'] == os.path.getsize('j.gguf') and d['read_bytes'] == 138752, d"
    # the data of every variant are the same bytes (only ckpt.source differs, in the header)
    for d in f32 f16 q8_0; do
        expect_true cmp -s <(tail -c 40000 per-rank-$d.gguf) <(tail -c 40000 shared-zstd-$d.gguf)
    done
    ;;

errors)
    run "$CONVERT" "$FIX/per-rank" m.gguf --to gguf
    expect_rc 0
    cp m.gguf m.orig
    run "$CONVERT" "$FIX/shared" m.gguf --to gguf --dtype q8_0
    expect_rc 1
    expect_err "shard-convert: 'm.gguf' already exists (nothing is overwritten)"
    expect_true cmp -s m.gguf m.orig
    run "$CONVERT" "$FIX/per-rank" x.gguf --to gguf --dtype bf16
    expect_rc 2
    expect_err "shard-convert: --dtype needs f32, f16 or q8_0 with --to gguf (see shard-convert --help)"
    run "$CONVERT" "$FIX/per-rank" x.gguf --to gguf --names as-is
    expect_rc 2
    expect_err "shard-convert: --to gguf writes the trainer's GPT-2 (--names as-is goes with safetensors) (see shard-convert --help)"
    run "$CONVERT" "$FIX/per-rank" x.gguf --to gguf --max-shard-size 1M
    expect_rc 2
    run "$CONVERT" nowhere x.gguf --to gguf
    expect_rc 3
    expect_err_re "^shard-convert: .*nowhere"
    run "$CONVERT" "$FIX/per-rank" no/such/dir/x.gguf --to gguf
    expect_rc 3
    expect_err "shard-convert: cannot write 'no/such/dir/x.gguf': its parent directory 'no/such/dir' does not exist"
    # a checkpoint that is not shard-train's GPT-2, and one missing a tensor
    run "$MAKE" small-ckpt base
    expect_rc 0
    run "$CONVERT" small-ckpt x.gguf --to gguf
    expect_rc 4
    expect_err_re "^shard-convert: checkpoint 'small-ckpt': no int attribute 'config/n_layer' \(not a shard-train checkpoint\)"
    run "$TOOLS/shard-merge" "$FIX/per-rank" partial --drop 'model/lnf.b'
    expect_rc 0
    run "$CONVERT" partial x.gguf --to gguf
    expect_rc 4
    expect_err "shard-convert: checkpoint 'partial' has no tensor 'model/lnf.b'"
    expect_absent x.gguf
    expect_true test -z "$(ls -d ./*.tmp-* 2>/dev/null)"
    ;;

*)
    echo "unknown test $TEST"
    exit 2
    ;;
esac
finish
