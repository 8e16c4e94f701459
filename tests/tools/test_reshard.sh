#!/bin/bash
# test_reshard.sh RESHARD INSPECT DIFF MAKE_CKPT SAVED_N4 SCRATCH [SHARED_N3]
#
# shard-reshard: the catalogue of tests/mpi/test_reshard.c saved by 4 ranks (read only: its files'
# checksums are compared before and after) rewritten for 3 ranks, then 1, bit-identical; to the
# shared layout and zstd; more ranks than rows; --split-whole; plan files (custom boxes, refused
# gaps and overlaps, syntax errors); a damaged source (nothing left at DST); every exit code; and
# peak memory under --max-memory with a 64 MiB tensor (make_ckpt huge).
set -u
RESHARD=$1 INSPECT=$2 DIFF=$3 MAKE=$4 N4=$5 S=$6 SH3=${7:-}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

rm -rf "$S" && mkdir -p "$S" || exit 1
ALLSAME="19 tensors identical, 0 within tolerance, 0 differ, 0 only in A, 0 only in B, 0 unreadable; 4 attributes equal, 0 differ"
sums() { (cd "$1" && find . -type f | sort | xargs sha256sum); }
sums "$N4" >"$S/src.before" || exit 1

# --------------------------------------------------------------------------------------------
# 4 -> 3 -> 1 ranks: bit-identical to the original, each result verifies
run "$RESHARD" "$N4" "$S/n3" --world-size 3
expect_rc 0
expect_err_empty
expect_out_all <<EOF
wrote $S/n3: 19 tensors, 50 boxes, 85322 bytes; file-per-rank, world size 3, compression none
EOF
# pieces of 1 KiB (4K budget): many pieces per box, each straddling pieces of the source
run "$RESHARD" "$S/n3" "$S/n1" --world-size 1 --max-memory 4K
expect_rc 0
expect_out "wrote $S/n1: 19 tensors, 18 boxes, 85322 bytes; file-per-rank, world size 1, compression none"
for d in n3 n1; do
    run "$DIFF" "$N4" "$S/$d"
    expect_rc 0
    expect_out_all <<EOF
$ALLSAME
EOF
done
run "$INSPECT" "$S/n3" --verify
expect_rc 0
expect_out "verify: ok: 19 tensors, 50 boxes, 85322 bytes read, every checksum matches"
run "$INSPECT" "$S/n1" --verify --json
expect_rc 0
expect_json '
assert d["layout"] == "file-per-rank" and d["world_size"] == 1 and d["step"] == 1234, d
assert d["verify"]["ok"] and d["verify"]["boxes"] == 18 and d["verify"]["bytes_read"] == 85322
assert sorted(d["attributes"]) == ["config/model", "lr", "rng", "step"]'
run "$INSPECT" "$S/n3" --json
expect_rc 0
expect_json '
assert d["layout"] == "file-per-rank" and d["world_size"] == 3 and d["num_tensors"] == 19, d
t = {x["name"]: x["shards"] for x in d["tensors"]}
assert t["big"] == 3 and t["rep"] == 1 and t["scalar"] == 1 and t["empty"] == 0 and t["blocks"] == 3, t'
# the default split: the dim the source split along (mat: dim 1, t4: dim 2), whole tensors on rank 0
run "$INSPECT" "$S/n3" --shards mat
expect_out "    0  [0:7, 0:2]     0  rank-00000.h5  /boxes/39       1"
expect_out "    2  [0:7, 4:5]     2  rank-00002.h5  /boxes/41       1"
run "$INSPECT" "$S/n3" --shards t4
expect_out_re '^    1  \[0:3, 0:2, 2:4, 0:2\]     1  rank-00001\.h5 '
run "$INSPECT" "$S/n3" --shards vec
expect_out_re '^    2  \[10:13\] +2  rank-00002\.h5 '
run "$INSPECT" "$S/n3" --shards rep
expect_out_re '^    0  \[0:3, 0:3\] +0  rank-00000\.h5 '
expect_out_count 1 '^    [0-9]+  \['
# blocks (a 2x3 grid in the source): the outermost dim along which its boxes differ
run "$INSPECT" "$S/n3" --shards blocks
expect_out_re '^    1  \[2:4, 0:9\] +1  rank-00001\.h5 '

# --------------------------------------------------------------------------------------------
# to the shared layout, zstd-compressed; to zstd file-per-rank with a fast (negative) level
run "$RESHARD" "$N4" "$S/sh" --world-size 2 --layout shared --compress zstd:3 --max-memory 4K
expect_rc 0
expect_out "wrote $S/sh: 19 tensors, 34 boxes, 85322 bytes; shared, world size 2, compression zstd:3"
run "$INSPECT" "$S/sh" --verify --json
expect_rc 0
expect_json '
assert d["layout"] == "shared" and d["world_size"] == 2, d
assert d["stored_bytes"] < d["raw_bytes"] == 85322 and d["verify"]["ok"], d'
run "$DIFF" "$S/sh" "$N4"
expect_rc 0
expect_out "$ALLSAME"
expect_true test -f "$S/sh/data.h5"
expect_true test ! -e "$S/sh/rank-00000.h5"
run $PY - "$S/sh" "$HERE/../../formats" <<'EOF'
import sys, h5py, numpy as np
sys.path.insert(0, sys.argv[2])
from reassemble import pattern, CATALOG
f = h5py.File(sys.argv[1] + "/data.h5", "r")
for name, dt in (("big", "f32"), ("mat", "f32"), ("dt/i64", "i64"), ("cube", "bf16")):
    ds = f["tensors/" + name]
    want = pattern(CATALOG.index(name), dt, ds.size).reshape(ds.shape)
    assert ds.attrs["dtype"] in (dt, dt.encode()) and np.array_equal(ds[...], want), name
print("ok")
EOF
expect_rc 0
expect_out "ok"
run "$RESHARD" "$N4" "$S/z" --world-size 4 --compress zstd:-5
expect_rc 0
expect_out "wrote $S/z: 19 tensors, 52 boxes, 85322 bytes; file-per-rank, world size 4, compression zstd:-5"
run "$DIFF" "$S/z" "$N4"
expect_rc 0
if [ -n "$SH3" ]; then # a shared-layout source
    run "$RESHARD" "$SH3" "$S/from-shared" --world-size 2
    expect_rc 0
    expect_out "wrote $S/from-shared: 19 tensors, 34 boxes, 85322 bytes; shared, world size 2, compression none"
    run "$RESHARD" "$SH3" "$S/from-shared-pr" --world-size 2 --layout file-per-rank
    expect_rc 0
    run "$DIFF" "$S/from-shared-pr" "$N4"
    expect_rc 0
    expect_out "$ALLSAME"
fi

# more ranks than rows: ranks whose share is empty hold nothing (and have no file)
run "$RESHARD" "$N4" "$S/n20" --world-size 20
expect_rc 0
run "$INSPECT" "$S/n20" --shards vec
expect_out_count 13 '^ +[0-9]+  \[[0-9]+:[0-9]+\] '
expect_out_re '^   12  \[12:13\] +12  rank-00012\.h5 '
run "$INSPECT" "$S/n20" --verify --json
expect_rc 0
expect_json 'assert d["world_size"] == 20 and d["verify"]["ok"], d'
run "$DIFF" "$N4" "$S/n20"
expect_rc 0

# --split-whole: a one-rank checkpoint (every tensor one whole box) split along dim 0
run "$RESHARD" "$S/n1" "$S/split" --world-size 2 --split-whole 0
expect_rc 0
run "$INSPECT" "$S/split" --json
expect_json '
t = {x["name"]: x["shards"] for x in d["tensors"]}
assert t["big"] == 2 and t["rep"] == 2 and t["scalar"] == 1 and t["vec"] == 2 and t["mat"] == 2, t'
run "$INSPECT" "$S/split" --shards mat
expect_out_re '^    1  \[4:7, 0:5\] +1  rank-00001\.h5 '
run "$DIFF" "$N4" "$S/split"
expect_rc 0

# --------------------------------------------------------------------------------------------
# plan files
cat >"$S/cols.plan" <<'EOF'
# big: Shard(1) over the 3 ranks
big shard 1
blocks 0 [0:6, 0:4]     # two boxes given by hand
blocks 2 0:6,4:9
scalar 2                # 0-D: a rank alone
"rep" 1
rep 2                   # the same box twice: a replica, written once (by rank 1)
EOF
run "$RESHARD" "$N4" "$S/plan" --world-size 3 --plan "$S/cols.plan"
expect_rc 0
expect_out "wrote $S/plan: 19 tensors, 49 boxes, 85322 bytes; file-per-rank, world size 3, compression none"
run "$INSPECT" "$S/plan" --shards big
expect_out_all <<EOF
tensor 'big': f32 [300, 70], 3 saved boxes, 84000 bytes (84000 stored)
  box  region          rank  file           dataset   pieces
    0  [0:300, 0:24]      0  rank-00000.h5  /boxes/0       1
    1  [0:300, 24:48]     1  rank-00001.h5  /boxes/1       1
    2  [0:300, 48:70]     2  rank-00002.h5  /boxes/2       1
EOF
run "$INSPECT" "$S/plan" --shards blocks
expect_out_re '^    0  \[0:6, 0:4\] +0  rank-00000\.h5 '
expect_out_re '^    1  \[0:6, 4:9\] +2  rank-00002\.h5 '
run "$INSPECT" "$S/plan" --shards scalar
expect_out_re '^    0  \[\] +2  rank-00002\.h5 '
run "$INSPECT" "$S/plan" --shards rep
expect_out_re '^    0  \[0:3, 0:3\] +1  rank-00001\.h5 '
expect_out_count 1 '^    [0-9]+  \['
run "$DIFF" "$N4" "$S/plan"
expect_rc 0
run "$INSPECT" "$S/plan" --verify
expect_rc 0
# a gap, an overlap, out of bounds: refused by the library's planner, nothing written
printf 'big 0 0:100,0:70\nbig 1 150:300,0:70\n' >"$S/gap.plan"
run "$RESHARD" "$N4" "$S/gap" --world-size 3 --plan "$S/gap.plan"
expect_rc 2
expect_out_empty
expect_err "shard-reshard: tensor 'big' [300, 70]: the boxes of all ranks cover 17500 of its 21000 elements (a gap: some part is held by no rank)"
printf 'big 0 0:200,0:70\nbig 1 100:300,0:70\n' >"$S/overlap.plan"
run "$RESHARD" "$N4" "$S/gap" --world-size 3 --plan "$S/overlap.plan"
expect_rc 2
expect_err "shard-reshard: tensor 'big': box [0:200, 0:70] of rank 0 overlaps box [100:300, 0:70] of rank 1"
printf 'big 0 0:400,0:70\n' >"$S/oob.plan"
run "$RESHARD" "$N4" "$S/gap" --world-size 3 --plan "$S/oob.plan"
expect_rc 2
expect_err "shard-reshard: tensor 'big': box [0:400, 0:70] lies outside the tensor's shape [300, 70]"
expect_absent "$S/gap"
# plan files that do not parse: FILE:LINE: reason, exit 2
plan_err() {
    printf '%b\n' "$1" >"$S/bad.plan"
    run "$RESHARD" "$N4" "$S/bad" --world-size 3 --plan "$S/bad.plan"
    expect_rc 2
    expect_err "shard-reshard: $S/bad.plan:$2"
}
plan_err 'nope 0' "1: no tensor 'nope' in the source checkpoint"
plan_err '# comment\n\nbig 3' "3: tensor 'big': rank 3 outside 0..2 (--world-size 3)"
plan_err 'big x' "1: tensor 'big': 'x' is neither a rank nor 'shard'"
plan_err 'big shard 2' "1: tensor 'big' has 2 dims: no dim 2 to shard along"
plan_err 'big 0 0:300' "1: box '0:300' has 1 dim; tensor 'big' has 2"
plan_err 'big 0 0:10,5:5' "1: box '0:10,5:5': dim 1 is empty (5:5); a rank that holds nothing needs no line"
plan_err 'scalar 0 0:1' "1: tensor 'scalar' is 0-D: give no box"
plan_err 'big shard 0\nbig 0' "2: tensor 'big' already has a shard line on line 1; a tensor takes box lines or one shard line"
plan_err 'big 0 a:b,0:70' "1: box 'a:b,0:70': expected start:stop per dim, e.g. 0:150,0:70"
plan_err '"big 0' "1: quoted name without a closing quote"
run "$RESHARD" "$N4" "$S/bad" --world-size 3 --plan "$S/no-such.plan"
expect_rc 2
expect_err "shard-reshard: cannot open plan file '$S/no-such.plan': No such file or directory"

# --------------------------------------------------------------------------------------------
# a damaged source: a checksum failure aborts the output (nothing at DST), naming tensor and file
cp -r "$N4" "$S/flip" && $PY "$HERE/flip_byte.py" "$S/flip/rank-00001.h5" big 2 >/dev/null || exit 1
run "$RESHARD" "$S/flip" "$S/fromflip" --world-size 3
expect_rc 1
expect_out_empty
expect_err_re "^shard-reshard: cannot read the source: checksum mismatch in tensor 'big', box 1 \[75:150, 0:70\] \(written by rank 1\), piece 2 of [0-9]+, file '.*/flip/rank-00001\.h5' dataset /boxes/[0-9]+: stored xxh3 [0-9a-f]{16}, data has [0-9a-f]{16}; nothing written at '$S/fromflip'$"
expect_absent "$S/fromflip"
# a missing data file
cp -r "$N4" "$S/nofile" && rm "$S/nofile/rank-00002.h5" || exit 1
run "$RESHARD" "$S/nofile" "$S/fromnofile" --world-size 2
expect_rc 1
expect_err_re "^shard-reshard: cannot read the source: tensor '[^']+': .*rank-00002\.h5.*; nothing written at '$S/fromnofile'$"
expect_absent "$S/fromnofile"

# sources that do not open: exit 3, one line
run "$RESHARD" "$S/missing" "$S/o" --world-size 2
expect_rc 3
expect_err "shard-reshard: no checkpoint at '$S/missing': No such file or directory"
cp -r "$N4" "$S/incomplete" && rm "$S/incomplete/COMMITTED" || exit 1
run "$RESHARD" "$S/incomplete" "$S/o" --world-size 2
expect_rc 3
expect_err "shard-reshard: checkpoint '$S/incomplete' is incomplete: it has no COMMITTED marker (the save was interrupted or is still running)"
cp -r "$N4" "$S/badindex" && printf 'x' | dd of="$S/badindex/index.h5" bs=1 seek=600 conv=notrunc 2>/dev/null || exit 1
run "$RESHARD" "$S/badindex" "$S/o" --world-size 2
expect_rc 3
expect_err_re "^shard-reshard: .*index.*"
mkdir -p "$S/foreign" && echo hello >"$S/foreign/notes.txt"
run "$RESHARD" "$S/foreign" "$S/o" --world-size 2
expect_rc 3
expect_err_re "^shard-reshard: checkpoint '$S/foreign' is incomplete"
expect_absent "$S/o"

# DST exists: the library's CKPT_EEXIST, exit 1, DST untouched
sums "$S/n3" >"$S/n3.before"
run "$RESHARD" "$N4" "$S/n3" --world-size 2
expect_rc 1
expect_err "shard-reshard: cannot save to '$S/n3': it already exists (overwriting was not asked for)"
expect_true cmp -s <(sums "$S/n3") "$S/n3.before"

# usage errors: exit 2, one line
usage() {
    local want=$1
    shift
    run "$RESHARD" "$@"
    expect_rc 2
    expect_out_empty
    expect_err "shard-reshard: $want (see shard-reshard --help)"
}
usage "--world-size needs a number of ranks from 1 to 100000" "$N4" "$S/o" --world-size 0
usage "--world-size needs a number of ranks from 1 to 100000" "$N4" "$S/o" --world-size two
usage "--world-size needs a number of ranks from 1 to 100000" "$N4" "$S/o" --world-size 100001
usage "--world-size M is required" "$N4" "$S/o"
usage "zstd level 99 is outside -131072..22" "$N4" "$S/o" --world-size 2 --compress zstd:99
usage "--compress needs none, zstd or zstd:LEVEL" "$N4" "$S/o" --world-size 2 --compress zstd:fast
usage "--compress needs none, zstd or zstd:LEVEL" "$N4" "$S/o" --world-size 2 --compress lz4
usage "--layout needs file-per-rank or shared, or group[:K]" "$N4" "$S/o" --world-size 2 --layout striped
usage "--max-memory needs a size of at least 4K, e.g. 256M" "$N4" "$S/o" --world-size 2 --max-memory 1K
usage "--split-whole needs a dim from 0 to 7" "$N4" "$S/o" --world-size 2 --split-whole 8
usage "unknown option '--bogus'" "$N4" "$S/o" --world-size 2 --bogus
usage "needs a source SRC and a destination DST" "$N4" --world-size 2
usage "DST '$N4/sub' is or lies inside the source checkpoint '$N4'" "$N4" "$N4/sub" --world-size 2
usage "DST '$N4' is or lies inside the source checkpoint '$N4'" "$N4" "$N4" --world-size 2
expect_absent "$S/o"
run "$RESHARD" --help
expect_rc 0
expect_out "usage: shard-reshard SRC DST --world-size M [--layout file-per-rank|shared|group[:K]]"
expect_out "exit status:"
expect_err_empty
# under an MPI launcher only rank 0 works
run env OMPI_COMM_WORLD_RANK=1 "$RESHARD" "$N4" "$S/rank1" --world-size 2
expect_rc 0
expect_out_empty
expect_absent "$S/rank1"

# --------------------------------------------------------------------------------------------
# memory: a 64 MiB tensor resharded with --max-memory 8M. Peak RSS (getrusage of the child, KiB)
# must stay below that of resharding a tiny checkpoint (the libraries' own footprint) plus
# 2 x 8 MiB. Not asserted under ASan (shadow memory and quarantine), only the result.
"$MAKE" "$S/huge" huge && "$MAKE" "$S/tiny" base || exit 1
peak() {
    $PY -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
}
read -r rc_tiny kib_tiny < <(peak "$RESHARD" "$S/tiny" "$S/tiny3" --world-size 3 --max-memory 8M)
read -r rc_huge kib_huge < <(peak "$RESHARD" "$S/huge" "$S/huge3" --world-size 3 --split-whole 0 --max-memory 8M)
echo "peak RSS: tiny checkpoint $kib_tiny KiB, 64 MiB tensor $kib_huge KiB (budget 8M, margin 16384 KiB)"
RC=$rc_tiny; expect_rc 0
RC=$rc_huge; expect_rc 0
if [ -z "${CKPT_TEST_VARIANT:-}" ]; then
    expect_true test "$kib_huge" -lt $((kib_tiny + 16384))
fi
run "$DIFF" "$S/huge" "$S/huge3"
expect_rc 0
expect_out "1 tensors identical, 0 within tolerance, 0 differ, 0 only in A, 0 only in B, 0 unreadable; 0 attributes equal, 0 differ"
run "$INSPECT" "$S/huge3" --shards huge
expect_out_re '^    2  \[2732:4096, 0:4096\] +2  rank-00002\.h5  /boxes/2 +11$'

# the source was only read
expect_true cmp -s <(sums "$N4") "$S/src.before"

finish
