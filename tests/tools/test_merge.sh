#!/bin/bash
# test_merge.sh MERGE INSPECT DIFF MAKE_CKPT SAVED_N4 SCRATCH
#
# shard-merge: the catalogue of tests/mpi/test_reshard.c saved by 4 ranks (read only) consolidated
# into one file (shared layout, world size 1) that shard-diff finds identical and plain h5py reads
# (values checked against formats/reassemble.py's pattern); --keep/--drop; --cast bf16 (exact on
# the catalogue's values); --average of make_ckpt's avg-* checkpoints with known means (plain and
# weighted, bf16 round-to-nearest-even on a tie); mismatched structures; every exit code.
set -u
MERGE=$1 INSPECT=$2 DIFF=$3 MAKE=$4 N4=$5 S=$6
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
FORMATS=$HERE/../../formats
. "$HERE/lib.sh"

rm -rf "$S" && mkdir -p "$S" || exit 1
for v in avg-a avg-b avg-c base shape dtype; do
    "$MAKE" "$S/$v" $v || exit 1
done
ALLSAME="19 tensors identical, 0 within tolerance, 0 differ, 0 only in A, 0 only in B, 0 unreadable; 4 attributes equal, 0 differ"
sums() { (cd "$1" && find . -type f | sort | xargs sha256sum); }
sums "$N4" >"$S/src.before" || exit 1

# h5py_check CKPT 'python asserting on f (data.h5), P(name, dtype) (the expected pattern array)'
h5py_check() {
    run $PY - "$1" "$FORMATS" "$2" <<'EOF'
import sys, h5py, numpy as np
sys.path.insert(0, sys.argv[2])
from reassemble import pattern, CATALOG
f = h5py.File(sys.argv[1] + "/data.h5", "r")
def P(name, dt):
    ds = f["tensors/" + name]
    return pattern(CATALOG.index(name), dt, ds.size).reshape(ds.shape)
def bf16(name):
    return (f["tensors/" + name][...].astype(np.uint32) << 16).view(np.float32)
exec(sys.argv[3])
print("ok")
EOF
    expect_rc 0
    expect_out "ok"
}

# --------------------------------------------------------------------------------------------
# consolidate: one file, world size 1, one box per tensor, identical values
run "$MERGE" "$N4" "$S/all"
expect_rc 0
expect_err_empty
expect_out_all <<EOF
wrote $S/all: 19 of 19 tensors, 85322 bytes; shared, world size 1, compression none
EOF
run "$DIFF" "$N4" "$S/all"
expect_rc 0
expect_out_all <<EOF
$ALLSAME
EOF
run "$INSPECT" "$S/all" --verify --json
expect_rc 0
expect_json '
assert d["layout"] == "shared" and d["world_size"] == 1 and d["step"] == 1234, d
assert all(t["shards"] == (0 if t["name"] == "empty" else 1) for t in d["tensors"]), d["tensors"]
assert d["verify"]["ok"] and d["verify"]["bytes_read"] == 85322'
expect_true test -f "$S/all/data.h5"
expect_true test ! -e "$S/all/rank-00000.h5"
h5py_check "$S/all" '
for name, dt in (("big", "f32"), ("mat", "f32"), ("t4", "f16"), ("dt/f64", "f64"), ("dt/i64", "i64"),
                 ("dt/u8", "u8"), ("dt/bool", "bool"), ("cube", "bf16"), ("blocks", "i32")):
    assert np.array_equal(f["tensors/" + name][...], P(name, dt)), name
assert f["tensors/scalar"][()] == pattern(0, "f64", 1)[0]
assert f["tensors/big"].shape == (300, 70) and f["tensors/big"].dtype == np.float32'
# small pieces (4K budget: 1 KiB pieces), file-per-rank, zstd
run "$MERGE" "$N4" "$S/pr" --layout file-per-rank --compress zstd --max-memory 4K
expect_rc 0
expect_out "wrote $S/pr: 19 of 19 tensors, 85322 bytes; file-per-rank, world size 1, compression zstd:1"
expect_true test -f "$S/pr/rank-00000.h5"
run "$DIFF" "$S/pr" "$N4"
expect_rc 0
expect_out "$ALLSAME"
run "$INSPECT" "$S/pr" --json --shards big
expect_json '
assert d["world_size"] == 1 and d["stored_bytes"] < d["raw_bytes"]
b = d["shards"]["boxes"]
assert len(b) == 1 and b[0]["extent"] == [300, 70] and b[0]["rank"] == 0 and b[0]["pieces"] == 100, b'

# --------------------------------------------------------------------------------------------
# --keep / --drop
run "$MERGE" "$N4" "$S/nodt" --drop 'dt/*'
expect_rc 0
expect_out "wrote $S/nodt: 9 of 19 tensors, 84728 bytes; shared, world size 1, compression none"
run "$INSPECT" "$S/nodt" --json
expect_json '
names = [t["name"] for t in d["tensors"]]
assert names == ["big", "blocks", "cube", "empty", "mat", "rep", "scalar", "t4", "vec"], names'
run "$DIFF" "$N4" "$S/nodt"
expect_rc 1
expect_out_count 10 "^tensor 'dt/[a-z0-9]+': only in A "
expect_out "9 tensors identical, 0 within tolerance, 0 differ, 10 only in A, 0 only in B, 0 unreadable; 4 attributes equal, 0 differ"
run "$MERGE" "$N4" "$S/floats" --keep 'dt/*' --keep big --drop 'dt/i*' --drop 'dt/u8'
expect_rc 0
run "$INSPECT" "$S/floats" --json
expect_json '
names = [t["name"] for t in d["tensors"]]
assert names == ["big", "dt/bf16", "dt/bool", "dt/f16", "dt/f32", "dt/f64"], names'

# --cast bf16: floating tensors become bf16 with the same values (exact in bf16), others keep theirs
run "$MERGE" "$N4" "$S/bf16" --cast bf16 --max-memory 4K
expect_rc 0
expect_out "wrote $S/bf16: 19 of 19 tensors, 43022 bytes; shared, world size 1, compression none; floating tensors as bf16"
run "$INSPECT" "$S/bf16" --json --verify
expect_rc 0
expect_json '
t = {x["name"]: x["dtype"] for x in d["tensors"]}
assert all(t[n] == "bf16" for n in ("big", "mat", "scalar", "t4", "cube", "rep", "dt/f32", "dt/f64", "dt/f16")), t
assert t["dt/i32"] == "i32" and t["dt/bool"] == "bool" and t["blocks"] == "i32", t'
h5py_check "$S/bf16" '
for name, dt in (("big", "f32"), ("mat", "f32"), ("t4", "f16"), ("dt/f64", "f64"), ("rep", "f64")):
    assert f["tensors/" + name].dtype == np.uint16 and np.array_equal(bf16(name), P(name, dt).astype(np.float32)), name
assert np.array_equal(f["tensors/dt/i32"][...], P("dt/i32", "i32"))'
run "$DIFF" "$N4" "$S/bf16"
expect_rc 1
expect_out "tensor 'big': dtype f32 vs bf16"
# and back to f32: the f32 tensors are bit-identical to the original
run "$MERGE" "$S/bf16" "$S/back" --cast f32 --keep big --keep mat --keep vec
expect_rc 0
run "$MERGE" "$N4" "$S/orig3" --keep big --keep mat --keep vec
expect_rc 0
run "$DIFF" "$S/back" "$S/orig3"
expect_rc 0

# --------------------------------------------------------------------------------------------
# --average: known means, exact
run "$MERGE" --average "$S/avg-a" "$S/avg-b" "$S/mean"
expect_rc 0
expect_out "wrote $S/mean: 7 of 7 tensors, 156 bytes; shared, world size 1, compression none; mean of 2 checkpoints"
run "$MERGE" --average --weights 1,3 "$S/avg-a" "$S/avg-b" "$S/wmean"
expect_rc 0
expect_out "wrote $S/wmean: 7 of 7 tensors, 156 bytes; shared, world size 1, compression none; mean of 2 checkpoints, weights 1, 3"
run $PY - "$S/mean" "$S/wmean" <<'EOF'
import sys, h5py, numpy as np
def rd(p, k):
    x = h5py.File(p + "/data.h5", "r")["tensors/" + k][...]
    return (x.astype(np.uint32) << 16).view(np.float32) if k == "h" else x
i = np.arange(20).reshape(4, 5) * 0.25
want = {
    sys.argv[1]: {"w": i + 0.5, "d": [2, 4, 6], "h": [1.5, 2, 2.5, -1, 4.25, 101, 1.0],  # 1 + 2^-8: tie -> even
                  "e": [2, 0, 1, 65504], "s": 4.0},
    sys.argv[2]: {"w": i + 0.75, "d": [2.5, 5, 7.5], "h": [2, 2.5, 3, -0.5, 4.75, 101.5, 1.0078125],
                  "e": [2.5, 0.5, 1.25, 65504], "s": 5.0},
}
dts = {"w": np.float32, "d": np.float64, "h": np.float32, "e": np.float16, "s": np.float32}
for p, tensors in want.items():
    for k, v in tensors.items():
        got = rd(p, k)
        assert got.dtype == dts[k] and np.array_equal(got, np.asarray(v, dts[k])), (p, k, got)
    assert rd(p, "n").tolist() == [-5, 0, 9007199254740993] and rd(p, "flag").tolist() == [1, 0]
print("ok")
EOF
expect_rc 0
expect_out "ok"
# attributes of the first source; the average of identical checkpoints is that checkpoint
run "$INSPECT" "$S/wmean" --json
expect_json 'assert d["attributes"] == {"step": 1} and d["world_size"] == 1 and d["layout"] == "shared", d'
run "$MERGE" --average "$N4" "$S/all" "$N4" "$S/self" --max-memory 4K
expect_rc 0
run "$DIFF" "$N4" "$S/self"
expect_rc 0
expect_out "$ALLSAME"
# cast while averaging
run "$MERGE" --average "$S/avg-a" "$S/avg-b" "$S/meanbf" --cast bf16 --keep w
expect_rc 0
run $PY -c "import h5py, numpy as np, sys
x = h5py.File('$S/meanbf/data.h5', 'r')['tensors/w'][...]
assert x.dtype == np.uint16 and np.array_equal((x.astype(np.uint32) << 16).view(np.float32), np.arange(20).reshape(4, 5) * 0.25 + 0.5)
print('ok')"
expect_out "ok"

# mismatched structures and differing integers: exit 1, the tensor named, nothing written
run "$MERGE" --average "$S/base" "$S/shape" "$S/bad"
expect_rc 1
expect_out_empty
expect_err "shard-merge: tensor 'w' is f32 [4, 5] in '$S/base' but f32 [5, 4] in '$S/shape'; --average needs checkpoints of identical structure"
run "$MERGE" --average "$S/avg-a" "$S/base" "$S/bad"
expect_rc 1
expect_err "shard-merge: tensor 'd' is in '$S/avg-a' but not in '$S/base'; --average needs checkpoints of identical structure"
run "$MERGE" --average "$S/base" "$S/base" "$S/dtype" "$S/bad" --keep b
expect_rc 1
expect_err "shard-merge: tensor 'b' is f64 [5] in '$S/base' but f32 [5] in '$S/dtype'; --average needs checkpoints of identical structure"
run "$MERGE" --average "$S/avg-a" "$S/avg-c" "$S/bad"
expect_rc 1
expect_err "shard-merge: tensor 'n' (i64) differs between '$S/avg-a' and '$S/avg-c' at [1] (0 vs 1): integer and bool tensors are not averaged, only copied when equal in every source; nothing written at '$S/bad'"
expect_absent "$S/bad"

# --------------------------------------------------------------------------------------------
# damaged and unopenable sources
cp -r "$N4" "$S/flip" && $PY "$HERE/flip_byte.py" "$S/flip/rank-00003.h5" big 1 >/dev/null || exit 1
run "$MERGE" "$S/flip" "$S/fromflip"
expect_rc 1
expect_err_re "^shard-merge: cannot read the source: checksum mismatch in tensor 'big', box 3 \[225:300, 0:70\] \(written by rank 3\), piece 1 of [0-9]+, file '.*/flip/rank-00003\.h5' dataset /boxes/[0-9]+: .*; nothing written at '$S/fromflip'$"
expect_absent "$S/fromflip"
run "$MERGE" --average "$N4" "$S/flip" "$S/fromflip"
expect_rc 1
expect_err_re "^shard-merge: cannot read '$S/flip': checksum mismatch in tensor 'big', .*rank-00003\.h5"
expect_absent "$S/fromflip"
run "$MERGE" "$S/missing" "$S/o"
expect_rc 3
expect_err "shard-merge: no checkpoint at '$S/missing': No such file or directory"
cp -r "$N4" "$S/incomplete" && rm "$S/incomplete/COMMITTED" || exit 1
run "$MERGE" --average "$N4" "$S/incomplete" "$S/o"
expect_rc 3
expect_err "shard-merge: checkpoint '$S/incomplete' is incomplete: it has no COMMITTED marker (the save was interrupted or is still running)"
expect_absent "$S/o"
# OUT exists
run "$MERGE" "$N4" "$S/all"
expect_rc 1
expect_err "shard-merge: cannot save to '$S/all': it already exists (overwriting was not asked for)"

# usage errors
usage() {
    local want=$1
    shift
    run "$MERGE" "$@"
    expect_rc 2
    expect_out_empty
    expect_err "shard-merge: $want (see shard-merge --help)"
}
usage "--cast needs a floating dtype: bf16, f16, f32 or f64" "$N4" "$S/o" --cast i32
usage "--weights needs --average" "$N4" "$S/o" --weights 1
usage "--average needs at least two sources and an output" --average "$N4" "$S/o"
usage "--weights needs 2 comma-separated finite numbers >= 0, not all 0, one per source" --average --weights 1 "$S/avg-a" "$S/avg-b" "$S/o"
usage "--weights needs 2 comma-separated finite numbers >= 0, not all 0, one per source" --average --weights 0,0 "$S/avg-a" "$S/avg-b" "$S/o"
usage "--weights needs 2 comma-separated finite numbers >= 0, not all 0, one per source" --average --weights 1,-1 "$S/avg-a" "$S/avg-b" "$S/o"
usage "needs a source SRC and an output OUT (or --average SRC1 SRC2 ... OUT)" "$N4" "$S/a" "$S/b"
usage "unknown option '--world-size'" "$N4" "$S/o" --world-size 2
usage "zstd level 99 is outside -131072..22" "$N4" "$S/o" --compress zstd:99
usage "--keep/--drop leave none of the 19 tensors of '$N4'" "$N4" "$S/o" --keep 'nothing*'
usage "OUT '$N4/x' is or lies inside the source checkpoint '$N4'" "$N4" "$N4/x"
expect_absent "$S/o"
run "$MERGE" --help
expect_rc 0
expect_out "       shard-merge --average [--weights W1,W2,...] SRC1 SRC2 ... OUT [options above]"
expect_out "exit status:"

expect_true cmp -s <(sums "$N4") "$S/src.before"

finish
