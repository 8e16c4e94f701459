#!/bin/bash
# test_layouts.sh INSPECT DIFF PER_RANK_N1 SHARED_N2 SHARED_N3 PER_RANK_ZSTD_N3 SHARED_ZSTD_N4 SCRATCH
#
# The tools across layouts and compression: the catalogue of tests/mpi/test_reshard.c saved in the
# file-per-rank and shared layouts, plain and zstd-compressed, at several world sizes (read only;
# damage happens on copies under SCRATCH).
set -u
INSPECT=$1 DIFF=$2 PR1=$3 SH2=$4 SH3=$5 PRZ3=$6 SHZ4=$7 S=$8
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

rm -rf "$S" && mkdir -p "$S" || exit 1
ALLSAME="19 tensors identical, 0 within tolerance, 0 differ, 0 only in A, 0 only in B, 0 unreadable; 4 attributes equal, 0 differ"

# the shared layout: one data.h5, one dataset per tensor, boxes are regions of it
run "$INSPECT" "$SH3" --verify
expect_rc 0
expect_out "layout          shared"
expect_out "world size      3"
expect_out "raw bytes       85322 (83.3 KiB)"
expect_out "verify: ok: 19 tensors, 53 boxes, 85322 bytes read, every checksum matches"
run "$INSPECT" "$SH3" --shards big
expect_rc 0
expect_out "  box  region           rank  file     dataset       pieces"
expect_out "    0  [0:100, 0:70]       0  data.h5  /tensors/big      34"
expect_out "    2  [200:300, 0:70]     2  data.h5  /tensors/big      34"
run "$INSPECT" "$SH3" --json --stats --tensors vec
expect_rc 0
expect_json '
assert d["layout"] == "shared" and d["world_size"] == 3 and d["step"] == 1234
s = d["tensors"][0]["stats"]
assert s["min"] == -31.5 and s["max"] == 29.5 and s["count"] == 13, s'

# zstd: stored bytes below raw bytes, same values
run "$INSPECT" "$PRZ3" --verify --json
expect_rc 0
expect_json '
assert d["layout"] == "file-per-rank" and d["raw_bytes"] == 85322
assert d["stored_bytes"] < d["raw_bytes"] and d["ratio"] > 1, (d["stored_bytes"], d["ratio"])
t = {x["name"]: x for x in d["tensors"]}
assert t["big"]["stored_bytes"] < t["big"]["bytes"] == 84000
assert d["verify"]["ok"] and d["verify"]["bytes_read"] == 85322'
run "$INSPECT" "$SHZ4" --verify
expect_rc 0
expect_out "layout          shared"
expect_out_re '^ratio           ([2-9]|[1-9][0-9])\.[0-9][0-9]$'
expect_out_re '^verify: ok: 19 tensors, [0-9]+ boxes, 85322 bytes read, every checksum matches$'

# the same content whatever the layout, compression and world size
for pair in "$PR1 $SHZ4" "$SH2 $PRZ3" "$SHZ4 $SH3"; do
    run "$DIFF" $pair
    expect_rc 0
    expect_out_all <<EOF
$ALLSAME
EOF
done
run "$DIFF" "$SH2" "$PRZ3" --max-read 100
expect_rc 0
expect_out "$ALLSAME"

# damage: a flipped byte inside a compressed chunk is a checksum mismatch...
cp -r "$PRZ3" "$S/z" && $PY "$HERE/flip_byte.py" "$S/z/rank-00001.h5" big 3 >/dev/null || exit 1
run "$INSPECT" "$S/z" --verify --tensors big
expect_rc 1
expect_out_re "^problem: checksum mismatch in tensor 'big', box 1 \[100:200, 0:70\] \(written by rank 1\), piece 3 of 34, file '.*/z/rank-00001\.h5'"
expect_out "verify: FAILED: 1 problem, 1 of 3 boxes bad, 1 tensor"
# ...a destroyed zstd frame header fails to decompress: each bad run of elements is reported
cp -r "$PRZ3" "$S/z2" || exit 1
$PY - "$S/z2/rank-00001.h5" <<'EOF' || exit 1
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    ds = [f["boxes"][n] for n in f["boxes"] if f["boxes"][n].attrs["tensor"] in ("big", b"big")][0]
    chunks = [ds.id.get_chunk_info(k) for k in (3, 9)]
with open(sys.argv[1], "r+b") as g:
    for c in chunks:
        g.seek(c.byte_offset)
        g.write(b"\xff" * 6)
EOF
run "$INSPECT" "$S/z2" --verify --tensors big --max-read 1000
expect_rc 1
# the reader decompresses zstd pieces itself and names the damaged piece (no bisection needed)
expect_out_re "^problem: tensor 'big' box 1 \[100:200, 0:70\] \(rank-00001\.h5\): cannot read dataset '/boxes/[0-9]+' of data file '.*/z2/rank-00001\.h5' \(truncated or damaged\): the zstd chunk of piece 3 does not decompress"
expect_out_re "^problem: tensor 'big' box 1 \[100:200, 0:70\] \(rank-00001\.h5\): cannot read dataset '/boxes/[0-9]+' of data file '.*/z2/rank-00001\.h5' \(truncated or damaged\): the zstd chunk of piece 9 does not decompress"
expect_out "verify: FAILED: 2 problems, 1 of 3 boxes bad, 1 tensor"
run "$DIFF" "$PR1" "$S/z2"
expect_rc 3
expect_out "tensor 'big': unreadable in B (see stderr)"
expect_err_re "^shard-diff: cannot read B: tensor 'big': cannot read dataset '/boxes/[0-9]+' of data file '.*/z2/rank-00001\.h5' \(truncated or damaged\)"
# a flipped byte in the shared file: named by tensor, box and data.h5
cp -r "$SH3" "$S/s" && $PY "$HERE/flip_byte.py" "$S/s/data.h5" big 7 >/dev/null || exit 1
run "$INSPECT" "$S/s" --verify
expect_rc 1
expect_out_re "^problem: checksum mismatch in tensor 'big', box [0-9] \[[0-9:, ]+\] \(written by rank [0-9]\), piece [0-9]+ of 34, file '.*/s/data\.h5' dataset /tensors/big: "
expect_out_count 1 '^problem:'
# a missing data.h5: every box of every tensor is in it
cp -r "$SH3" "$S/nodata" && rm "$S/nodata/data.h5" || exit 1
run "$INSPECT" "$S/nodata" --verify
expect_rc 1
expect_out_re "^problem: file 'data\.h5': data file '.*/nodata/data\.h5' is missing: No such file or directory$"
expect_out "note: file 'data.h5': 52 more boxes in it not read (same problem)"
expect_out "verify: FAILED: 1 problem, 53 of 53 boxes bad, 19 tensors"

# a manager's root with checkpoints of both layouts; latest by the manager's rule (step-N name)
mkdir -p "$S/root" && cp -r "$SH3" "$S/root/step-00000001" && cp -r "$PRZ3" "$S/root/step-00000002" || exit 1
run "$INSPECT" "$S/root"
expect_rc 0
expect_out "checkpoint root $S/root: 2 checkpoints"
expect_out_re '^  step-00000001  committed +[0-9.]+ KiB  1234 *$'
expect_out_re '^  step-00000002  committed +[0-9.]+ KiB  1234  latest$'

finish
