#!/usr/bin/env bash
# shard-convert and shard-generate end to end. Usage:
#   convert_tests.sh TEST CONVERT GENERATE TOOLS_DIR TRAIN MPIEXEC FIXTURE WORK MAKE_CKPT
# CONVERT / GENERATE are the binaries under test (normal or ASan+UBSan builds); TOOLS_DIR holds
# shard-diff, shard-inspect, shard-reshard, shard-merge; TRAIN is shard-train. FIXTURE is the
# directory the `fixture` test fills (a 2-rank shard-train checkpoint in both layouts, compressed
# and not) and the others only read; WORK is this test's scratch directory; MAKE_CKPT is
# tests/tools' make_ckpt (small checkpoints of every dtype that are not shard-train's).
# Every check asserts exact exit codes and messages, or bitwise-equal values through an
# independent reader (check_safetensors.py: the format parsed by hand, the checkpoint by h5py).
set -u
TEST=$1 CONVERT=$2 GENERATE=$3 TOOLS=$4 TRAIN=$5 MPIEXEC=$6 FIX=$7 WORK=$8 MAKE=$9
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tools/lib.sh"
PY=/usr/bin/python3
CHECK="$HERE/check_safetensors.py"
DIFF=$TOOLS/shard-diff INSPECT=$TOOLS/shard-inspect RESHARD=$TOOLS/shard-reshard MERGE=$TOOLS/shard-merge
VARIANTS="per-rank shared per-rank-zstd shared-zstd"

if [ "$TEST" != fixture ]; then
    rm -rf "$WORK"
    mkdir -p "$WORK"
    cd "$WORK" || exit 1
fi

# shard-diff A B --json: every tensor matching the regex $3 identical, none other than only_a
diff_model_identical() { # A B REGEX COUNT
    run "$DIFF" "$1" "$2" --json
    expect_json "
import re
ts = d['tensors']
sel = [t for t in ts if re.fullmatch(r'$3', t['name'])]
assert len(sel) == $4, (len(sel), $4)
bad = [t for t in sel if t['status'] != 'identical']
assert not bad, bad[:3]
assert all(t['status'] in ('identical', 'only_a') for t in ts), [t for t in ts if t['status'] not in ('identical', 'only_a')][:3]"
}

case "$TEST" in

fixture)
    # a short real run: 2 ranks, the tiny model (L2 H2 C32 T32), a checkpoint at step 20; then the
    # same checkpoint in the shared layout and compressed, as 2 ranks would have written them
    rm -rf "$FIX"
    mkdir -p "$FIX"
    cd "$FIX" || exit 1
    run "$MPIEXEC" -n 2 --oversubscribe "$TRAIN" --threads 1 --ckpt-dir run --model tiny --steps 20 --batch 8 \
        --lr 3e-3 --eval-every 0 --sample-len 0 --ckpt-every 20
    expect_rc 0
    expect_true test -f run/step-00000020/COMMITTED
    mv run/step-00000020 per-rank
    run "$RESHARD" per-rank shared --world-size 2 --layout shared
    expect_rc 0
    run "$RESHARD" per-rank per-rank-zstd --world-size 2 --compress zstd
    expect_rc 0
    run "$RESHARD" per-rank shared-zstd --world-size 2 --layout shared --compress zstd:3
    expect_rc 0
    for v in $VARIANTS; do
        run "$INSPECT" "$v"
        expect_out "world size      2"
        expect_out "step            20"
    done
    ;;

roundtrip)
    # checkpoint -> safetensors -> checkpoint is the identity (f32), from every layout, through
    # the single file and the sharded form, at other world sizes and layouts
    for v in $VARIANTS; do
        run "$CONVERT" "$FIX/$v" hf-$v --to safetensors
        expect_rc 0
        expect_out_re "^wrote hf-$v: 28 tensors, 138752 bytes of data in 1 file \([0-9]+ bytes with headers and config\.json\); names hf-gpt2, dtype as stored, step 20$"
        run "$PY" "$CHECK" verify hf-$v "$FIX/$v" hf-gpt2 stored
        expect_rc 0
        run "$CONVERT" hf-$v imp-$v --from safetensors --world-size 3
        expect_rc 0
        expect_out "wrote imp-$v: 28 tensors, 138752 bytes; file-per-rank, world size 3, compression none, names hf-gpt2, model L2 H2 C32 T32 V256, step 20"
        diff_model_identical "$FIX/$v" imp-$v 'model/.*' 28
        run "$INSPECT" imp-$v --verify
        expect_rc 0
        expect_out "world size      3"
    done
    # the sharded form, imported in the shared layout with zstd at 4 ranks
    run "$CONVERT" "$FIX/shared-zstd" sharded --to safetensors --max-shard-size 40K --json
    expect_rc 0
    expect_json "assert d['files'] == 4 and d['tensors'] == 28 and d['data_bytes'] == 138752 and d['step'] == 20, d"
    expect_true test -f sharded/model.safetensors.index.json
    expect_true test -f sharded/model-00004-of-00004.safetensors
    expect_true test ! -e sharded/model.safetensors
    run "$PY" "$CHECK" verify sharded "$FIX/shared-zstd" hf-gpt2 stored
    expect_rc 0
    run "$PY" "$CHECK" same sharded hf-per-rank
    expect_rc 0
    run "$CONVERT" sharded/model.safetensors.index.json imp-sharded --from safetensors --world-size 4 --layout shared \
        --compress zstd
    expect_rc 0
    diff_model_identical "$FIX/per-rank" imp-sharded 'model/.*' 28
    # a tensor larger than the limit gets a file of its own
    run "$CONVERT" "$FIX/per-rank" onebyone --to safetensors --max-shard-size 1
    expect_rc 0
    expect_out_re "^wrote onebyone: 28 tensors, 138752 bytes of data in 28 files "
    # as-is: every tensor (optimizer moments included), names and dtypes unchanged
    run "$CONVERT" "$FIX/per-rank-zstd" asis --to safetensors --names as-is
    expect_rc 0
    expect_out_re "^wrote asis: 84 tensors, 416256 bytes of data in 1 file \([0-9]+ bytes with headers\); names as-is, dtype as stored, step 20$"
    expect_true test ! -e asis/config.json
    run "$PY" "$CHECK" verify asis "$FIX/per-rank-zstd" as-is stored
    expect_rc 0
    run "$CONVERT" asis/model.safetensors imp-asis --from safetensors --names as-is --world-size 2 --layout shared
    expect_rc 0
    expect_out "wrote imp-asis: 84 tensors, 416256 bytes; shared, world size 2, compression none, names as-is, step 20"
    diff_model_identical "$FIX/per-rank" imp-asis '.*' 84
    # any checkpoint as-is: every dtype, a 0-D tensor, bool, integers
    run "$MAKE" avg avg-a
    expect_rc 0
    run "$CONVERT" avg avg-st --to safetensors --names as-is
    expect_rc 0
    run "$PY" "$CHECK" verify avg-st avg as-is stored
    expect_rc 0
    run "$CONVERT" avg-st imp-avg --from safetensors --names as-is --world-size 3
    expect_rc 0
    diff_model_identical avg imp-avg '.*' 7
    run "$CONVERT" avg avg-bf16 --to safetensors --names as-is --dtype bf16
    expect_rc 0
    run "$PY" "$CHECK" verify avg-bf16 avg as-is bf16
    expect_rc 0
    # nothing left behind but the outputs
    expect_true test -z "$(ls -d ./*.tmp-* 2>/dev/null)"
    ;;

hub)
    # the exports read by the Hugging Face Hub's safetensors parser (safetensors_hub_check.mjs):
    # single file and sharded form, f32 from every layout, f16 and bf16
    if ! command -v node >/dev/null || [ ! -f "$HERE/node/node_modules/@huggingface/hub/package.json" ]; then
        echo "FAIL: Node.js or @huggingface/hub missing (run scripts/setup.sh)"
        exit 1
    fi
    hub_check() { # DIR DTYPE SHARDED FILES
        run node "$HERE/safetensors_hub_check.mjs" "$1" "$2" "$3" 2 32 32 256
        expect_rc 0
        expect_out_re "^safetensors_hub_check: [0-9]+ checks passed \(28 tensors in $4 file\(s\), 34688 parameters, $2\)$"
    }
    for v in $VARIANTS; do
        run "$CONVERT" "$FIX/$v" hf-$v --to safetensors
        expect_rc 0
        hub_check hf-$v F32 0 1
    done
    run "$CONVERT" "$FIX/per-rank" hfs --to safetensors --max-shard-size 40K
    expect_rc 0
    hub_check hfs F32 1 4
    for d in f16 bf16; do
        run "$CONVERT" "$FIX/shared-zstd" hf-$d --to safetensors --dtype $d
        expect_rc 0
        hub_check hf-$d "$(echo $d | tr a-z A-Z)" 0 1
        run "$CONVERT" "$FIX/per-rank" hfs-$d --to safetensors --dtype $d --max-shard-size 20K
        expect_rc 0
        n=$(ls hfs-$d | grep -c '^model-.*\.safetensors$')
        hub_check hfs-$d "$(echo $d | tr a-z A-Z)" 1 "$n"
    done
    ;;

dtypes)
    # --dtype bf16/f16: the library's round-to-nearest-even conversion (ckpt_dtype_convert, as
    # shard-merge --cast applies it), and the same bits an independent numpy conversion gives
    for dt in bf16 f16; do
        run "$CONVERT" "$FIX/shared" hf-$dt --to safetensors --dtype $dt
        expect_rc 0
        expect_out_re "^wrote hf-$dt: 28 tensors, 69376 bytes of data in 1 file .*; names hf-gpt2, dtype $dt, step 20$"
        run "$PY" "$CHECK" verify hf-$dt "$FIX/shared" hf-gpt2 $dt
        expect_rc 0
        run "$MERGE" "$FIX/shared" cast-$dt --cast $dt --keep 'model/*'
        expect_rc 0
        run "$CONVERT" cast-$dt hf-cast-$dt --to safetensors
        expect_rc 0
        run "$PY" "$CHECK" same hf-$dt hf-cast-$dt
        expect_rc 0
        # back to f32 for the trainer: exactly the widened values
        run "$CONVERT" hf-$dt imp-$dt --from safetensors
        expect_rc 0
        run "$MERGE" cast-$dt cast-back-$dt --cast f32
        expect_rc 0
        diff_model_identical cast-back-$dt imp-$dt 'model/.*' 28
    done
    ;;

logits)
    # next-token logits from a checkpoint (every layout) and from its exports are identical; the
    # numpy Hugging Face GPT-2 on the exported file computes the same function
    P="The quick brown fox"
    run "$GENERATE" "$FIX/per-rank" --logits --prompt "$P"
    expect_rc 0
    expect_out "# shard-generate logits: $FIX/per-rank checkpoint, step 20, prompt 19 tokens, vocab 256"
    expect_out_count 256 '^[0-9]+ -?[0-9.e+-]+ -[0-9.e+-]+$'
    tail -n +2 "$OUTF" >ref.txt
    run "$CONVERT" "$FIX/per-rank" hf --to safetensors
    expect_rc 0
    run "$CONVERT" "$FIX/per-rank" hfs --to safetensors --max-shard-size 30K
    expect_rc 0
    for src in "$FIX/shared" "$FIX/per-rank-zstd" "$FIX/shared-zstd" hf hf/model.safetensors hfs \
        hfs/model.safetensors.index.json; do
        run "$GENERATE" "$src" --logits --prompt "$P"
        expect_rc 0
        tail -n +2 "$OUTF" >got.txt
        expect_true cmp -s ref.txt got.txt
    done
    run "$GENERATE" hf/model.safetensors --logits --prompt "$P"
    expect_out "# shard-generate logits: hf/model.safetensors safetensors, step 20, prompt 19 tokens, vocab 256"
    cp "$OUTF" hf-logits.txt
    run "$PY" "$CHECK" forward hf "$P" hf-logits.txt
    expect_rc 0
    # the JSON form carries the same numbers
    run "$GENERATE" hf --logits --prompt "$P" --json
    expect_rc 0
    expect_json "
ref = [l.split() for l in open('ref.txt')]
assert d['kind'] == 'safetensors' and d['step'] == 20 and d['vocab'] == 256
assert d['prompt_tokens'] == list(b'$P')
assert [float(r[1]) for r in ref] == d['logits'] and [float(r[2]) for r in ref] == d['logprobs']
assert abs(sum(math.exp(x) for x in d['logprobs']) - 1) < 1e-6"
    # greedy generation: deterministic, and the same from the checkpoint and the export
    run "$GENERATE" "$FIX/per-rank" --prompt "$P" --max-tokens 40 --temperature 0
    expect_rc 0
    cp "$OUTF" greedy.txt
    expect_true test "$(head -c 19 greedy.txt)" = "$P"
    expect_true test "$(wc -c <greedy.txt)" -eq 60
    run "$GENERATE" hf --prompt "$P" --max-tokens 40 --temperature 0
    expect_true cmp -s greedy.txt "$OUTF"
    # sampling: the same seed gives the same text, from either file; top-k 1 is greedy
    run "$GENERATE" "$FIX/shared-zstd" --prompt "$P" --max-tokens 40 --seed 7 --temperature 1
    cp "$OUTF" s7.txt
    run "$GENERATE" hfs --prompt "$P" --max-tokens 40 --seed 7 --temperature 1
    expect_true cmp -s s7.txt "$OUTF"
    run "$GENERATE" hf --prompt "$P" --max-tokens 40 --seed 8 --temperature 1
    expect_true test "$(cat s7.txt)" != "$(cat "$OUTF")"
    run "$GENERATE" hf --prompt "$P" --max-tokens 40 --seed 9 --temperature 1 --top-k 1
    expect_true cmp -s greedy.txt "$OUTF"
    # an empty prompt starts from a newline
    run "$GENERATE" hf --logits
    expect_out "# shard-generate logits: hf safetensors, step 20, prompt 1 tokens, vocab 256"
    ;;

init_from)
    # shard-train starts from an imported checkpoint: the same first losses as from the original
    run "$CONVERT" "$FIX/per-rank" hf --to safetensors --dtype f32
    expect_rc 0
    run "$CONVERT" hf imported --from safetensors --world-size 2
    expect_rc 0
    for src in "$FIX/per-rank" imported; do
        name=$(basename "$src")
        run "$MPIEXEC" -n 2 --oversubscribe "$TRAIN" --threads 1 --ckpt-dir "run-$name" --init-from "$src" --steps 3 \
            --batch 8 --eval-every 0 --sample-len 0 --metrics "m-$name.jsonl" --no-async
        expect_rc 0
        expect_out "shard-train: weights from '$src' (step 0)"
    done
    run "$PY" -c "
import json
a = [json.loads(l)['loss'] for l in open('m-per-rank.jsonl')]
b = [json.loads(l)['loss'] for l in open('m-imported.jsonl')]
assert len(a) == 3 and a == b, (a, b)
print('same losses', a)"
    expect_rc 0
    # at 3 ranks (the checkpoint was imported for 2)
    run "$MPIEXEC" -n 3 --oversubscribe "$TRAIN" --threads 1 --ckpt-dir run3 --init-from imported --steps 2 --batch 8 \
        --eval-every 0 --sample-len 0
    expect_rc 0
    ;;

errors)
    # every malformed-header class: exit status 4 and the exact message naming file, tensor, field
    run "$PY" "$CHECK" malformed bad
    expect_rc 0
    m() { # FILE MESSAGE
        run "$CONVERT" "bad/$1.safetensors" out-$1 --from safetensors --names as-is
        expect_rc 4
        expect_err "shard-convert: bad/$1.safetensors: $2"
        expect_absent out-$1
    }
    m short "the file is 3 bytes, shorter than the 8-byte header length"
    m huge-header "header length 100000001 is above the limit of 100000000 bytes"
    m past-end "header length 64 reaches past the end of the file (16 bytes)"
    m json "the header is not valid JSON: unexpected token near end of file (line 1, column 5)"
    m duplicate "duplicate tensor name 'a' in the header (line 1, column 57)"
    m dtype "tensor 'a': unknown dtype 'F128'"
    m shape-mismatch "tensor 'a': 'data_offsets' [0, 4] hold 4 bytes, but 'shape' [2] of F32 needs 8"
    m overlap "tensor 'b': 'data_offsets' [2, 10] overlap tensor 'a' [0, 4]"
    m gap "tensor 'b': 'data_offsets' [8, 12] leave a gap of 4 bytes after tensor 'a' [0, 4]"
    m out-of-bounds "tensor 'a': 'data_offsets' [0, 8] reach past the end of the file (4 bytes of data after the header)"
    m trailing "the data do not end at the end of the file: the last tensor 'a' ends at byte 4 of the data, 2 bytes before the end"
    m reversed "tensor 'a': 'data_offsets' [4, 0] end before they begin"
    # the generator refuses them the same way
    run "$GENERATE" bad/overlap.safetensors --logits
    expect_rc 4
    expect_err "shard-generate: bad/overlap.safetensors: tensor 'b': 'data_offsets' [2, 10] overlap tensor 'a' [0, 4]"

    # models the trainer cannot run, or files that are not a GPT-2
    run "$CONVERT" "$FIX/per-rank" hf --to safetensors
    expect_rc 0
    cp -r hf nocfg && rm nocfg/config.json
    run "$CONVERT" nocfg imp --from safetensors
    expect_rc 3
    expect_err "shard-convert: no config.json beside 'nocfg' (the model's shape, e.g. its number of heads, is not in the safetensors file)"
    # bad_config NAME SED-SCRIPT TOOL MESSAGE: a copy of hf whose config.json SED-SCRIPT edits is
    # refused by TOOL (convert: the import, generate: --logits) with exit 4 and MESSAGE
    bad_config() {
        cp -r hf "$1" && sed -i "$2" "$1/config.json"
        if [ "$3" = convert ]; then run "$CONVERT" "$1" imp --from safetensors; else run "$GENERATE" "$1" --logits; fi
        expect_rc 4
        expect_err "$4"
    }
    bad_config small 's/"vocab_size": 256/"vocab_size": 200/' convert \
        "shard-convert: small/config.json: vocab_size 200 is below the trainer's 256 byte tokens"
    bad_config heads 's/"n_head": 2/"n_head": 3/' convert \
        "shard-convert: heads/config.json: n_head 3 does not divide n_embd 32"
    bad_config eps 's/"layer_norm_epsilon": 1e-5/"layer_norm_epsilon": 1e-6/' generate \
        "shard-generate: eps/config.json: layer_norm_epsilon 1e-06 differs from the trainer model's 1e-05"
    bad_config layers 's/"n_layer": 2/"n_layer": 3/' convert \
        "shard-convert: layers/model.safetensors: no tensor 'transformer.h.2.ln_1.weight' (config.json gives 3 layers)"
    bad_config wide 's/"n_positions": 32/"n_positions": 64/; s/"n_ctx": 32/"n_ctx": 64/' convert \
        "shard-convert: wide/model.safetensors: tensor 'transformer.wpe.weight': shape [32, 32], but config.json makes it [64, 32]"
    bad_config act 's/"gelu_new"/"gelu"/' convert \
        "shard-convert: act/config.json: \"activation_function\" is not \"gelu_new\" (the trainer's GELU is the tanh approximation)"
    expect_absent imp
    # an as-is export is not a Hugging Face GPT-2
    run "$CONVERT" "$FIX/per-rank" asis --to safetensors --names as-is
    expect_rc 0
    cp hf/config.json asis/
    run "$CONVERT" asis imp --from safetensors
    expect_rc 4
    expect_err "shard-convert: asis/model.safetensors: no tensor 'transformer.wte.weight' (config.json gives 2 layers)"
    # an index naming a file outside its directory, or disagreeing with its files
    run "$CONVERT" "$FIX/per-rank" hfs --to safetensors --max-shard-size 40K
    expect_rc 0
    cp -r hfs esc && sed -i 's/"model-00001-of-00004.safetensors"/"..\/model-00001-of-00004.safetensors"/' \
        esc/model.safetensors.index.json
    run "$CONVERT" esc imp --from safetensors
    expect_rc 4
    expect_err_re "^shard-convert: esc/model.safetensors.index.json: \"weight_map\" entry of tensor '[^']+': '\.\./model-00001-of-00004\.safetensors' is not a plain \*\.safetensors file name in the index's directory$"
    cp -r hfs moved && sed -i '0,/"model-00001-of-00004.safetensors"/s//"model-00002-of-00004.safetensors"/' \
        moved/model.safetensors.index.json
    run "$CONVERT" moved imp --from safetensors
    expect_rc 4
    expect_err_re "^shard-convert: the index lists tensor '[^']+' in 'moved/model-00002-of-00004.safetensors', which does not hold it$"
    rm hfs/model-00003-of-00004.safetensors
    run "$CONVERT" hfs imp --from safetensors
    expect_rc 3
    expect_err "shard-convert: cannot open 'hfs/model-00003-of-00004.safetensors': No such file or directory"
    # an untied head
    cp -r hf untied
    run "$PY" - untied/model.safetensors <<'EOF'
import json, struct, sys
p = sys.argv[1]
raw = open(p, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
data = raw[8 + n:]
info = h['transformer.wte.weight']
b, e = info['data_offsets']
w = bytearray(data[b:e]); w[0] ^= 1
h['lm_head.weight'] = {'dtype': 'F32', 'shape': info['shape'], 'data_offsets': [len(data), len(data) + len(w)]}
t = json.dumps(h, separators=(',', ':')).encode(); t += b' ' * (-len(t) % 8)
open(p, 'wb').write(struct.pack('<Q', len(t)) + t + data + bytes(w))
EOF
    expect_rc 0
    run "$CONVERT" untied imp --from safetensors
    expect_rc 4
    expect_err "shard-convert: untied/model.safetensors: 'lm_head.weight' differs from transformer.wte.weight: the trainer's GPT-2 ties its head to the embedding"

    # sources that are not checkpoints, outputs that exist, usage
    run "$CONVERT" nothere out --to safetensors
    expect_rc 3
    expect_err_re "^shard-convert: .*nothere"
    run "$CONVERT" "$FIX/per-rank" hf --to safetensors
    expect_rc 1
    expect_err "shard-convert: 'hf' already exists (nothing is overwritten)"
    run "$CONVERT" hf "$FIX/per-rank" --from safetensors
    expect_rc 1
    expect_err_re "^shard-convert: .*already exists"
    run "$CONVERT" "$FIX/per-rank" "$FIX/per-rank/inside" --to safetensors
    expect_rc 2
    run "$CONVERT" "$FIX/per-rank" x --to onnx
    expect_rc 2
    expect_err "shard-convert: --to needs safetensors or gguf (see shard-convert --help)"
    run "$CONVERT" "$FIX/per-rank" x --to safetensors --dtype q8_0
    expect_rc 2
    expect_err "shard-convert: --dtype needs f32, f16 or bf16 with --to safetensors (see shard-convert --help)"
    run "$CONVERT" "$FIX/per-rank" x --to safetensors --world-size 2
    expect_rc 2
    run "$CONVERT" hf x --from safetensors --max-shard-size 1M
    expect_rc 2
    run "$CONVERT" "$FIX/per-rank" x
    expect_rc 2
    expect_err "shard-convert: needs --to safetensors, --to gguf or --from safetensors (see shard-convert --help)"
    run "$CONVERT" --help
    expect_rc 0
    expect_out "exit status:"
    # a checkpoint that is not shard-train's GPT-2 exports only as-is
    run "$MAKE" small-ckpt base
    expect_rc 0
    run "$CONVERT" small-ckpt out --to safetensors
    expect_rc 4
    expect_err "shard-convert: checkpoint 'small-ckpt': no int attribute 'config/n_layer' (not a shard-train checkpoint); --names as-is exports any checkpoint"
    run "$GENERATE" small-ckpt
    expect_rc 4
    expect_err "shard-generate: checkpoint 'small-ckpt': no int attribute 'config/n_layer' (not a shard-train checkpoint)"
    run "$MERGE" "$FIX/per-rank" partial --drop 'model/lnf.b'
    expect_rc 0
    run "$CONVERT" partial out --to safetensors
    expect_rc 4
    expect_err "shard-convert: checkpoint 'partial' has no tensor 'model/lnf.b'"
    run "$GENERATE" partial --logits
    expect_rc 4
    expect_err "shard-generate: checkpoint 'partial' has no tensor 'model/lnf.b'"
    run "$GENERATE" nothere
    expect_rc 3
    run "$GENERATE" hf --temperature -1
    expect_rc 2
    expect_err "shard-generate: --temperature needs a finite number >= 0 (see shard-generate --help)"
    run "$GENERATE" hf --json
    expect_rc 2
    expect_true test -z "$(ls -d ./*.tmp-* 2>/dev/null)"
    ;;

*)
    echo "unknown test $TEST"
    exit 2
    ;;
esac
finish
