#!/bin/bash
# test_diff.sh DIFF MAKE_CKPT SAVED_N2 SAVED_N4 SCRATCH
#
# shard-diff: the catalogue of tests/mpi/test_reshard.c saved by 2 and by 4 ranks (read only) is
# the same content in different shardings; damaged copies under SCRATCH; small one-process
# checkpoints from make_ckpt that differ in known ways (tolerances, NaN payloads, -0.0, missing
# tensors and attributes, shape and dtype mismatches); every exit code.
set -u
DIFF=$1 MAKE=$2 N2=$3 N4=$4 S=$5
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

rm -rf "$S" && mkdir -p "$S" || exit 1
for v in base eps nanbits negzero missing shape dtype big bigdiff; do
    "$MAKE" "$S/$v" $v || exit 1
done
"$MAKE" "$S/base2" base || exit 1

ALLSAME="19 tensors identical, 0 within tolerance, 0 differ, 0 only in A, 0 only in B, 0 unreadable; 4 attributes equal, 0 differ"

# --------------------------------------------------------------------------------------------
# same content, different world sizes and shardings
run "$DIFF" "$N2" "$N4"
expect_rc 0
expect_err_empty
expect_out_all <<EOF
$ALLSAME
EOF
# the same with regions smaller than any piece, so reads straddle boxes and pieces
run "$DIFF" "$N4" "$N2" --max-read 40
expect_rc 0
expect_out "$ALLSAME"
run "$DIFF" "$N2" "$N4" --json
expect_rc 0
expect_json '
assert d["equal"] is True and d["atol"] == 0 and d["rtol"] == 0
assert d["summary"] == {"identical": 19, "within_tolerance": 0, "differ": 0, "only_a": 0, "only_b": 0,
                        "unreadable": 0, "attributes_equal": 4, "attributes_differ": 0}, d["summary"]
t = {x["name"]: x for x in d["tensors"]}
assert len(t) == 19 and all(x["status"] == "identical" for x in t.values())
assert t["big"]["elements"] == 21000 and t["big"]["differing"] == 0 and t["big"]["max_abs_diff"] is None
assert t["big"]["a"] == {"dtype": "f32", "shape": [300, 70]} == t["big"]["b"]
assert [a["status"] for a in d["attributes"]] == ["equal"] * 4 and d["attributes"][1]["a"] == 3e-4'

# --------------------------------------------------------------------------------------------
# a flipped byte: diff verifies checksums, so it is an unreadable tensor (exit 3), not a difference
cp -r "$N4" "$S/flip" || exit 1
$PY "$HERE/flip_byte.py" "$S/flip/rank-00001.h5" big 2 >/dev/null || exit 1
run "$DIFF" "$N2" "$S/flip"
expect_rc 3
expect_out_all <<EOF
tensor 'big': unreadable in B (see stderr)
18 tensors identical, 0 within tolerance, 0 differ, 0 only in A, 0 only in B, 1 unreadable; 4 attributes equal, 0 differ
EOF
expect_err_re "^shard-diff: cannot read B: checksum mismatch in tensor 'big', box 1 \[75:150, 0:70\] \(written by rank 1\), piece 2 of [0-9]+, file '.*/flip/rank-00001\.h5' dataset /boxes/[0-9]+: stored xxh3 [0-9a-f]{16}, data has [0-9a-f]{16}$"
run "$DIFF" "$S/flip" "$N2" --json
expect_rc 3
expect_json '
t = {x["name"]: x for x in d["tensors"]}
assert t["big"]["status"] == "error" and t["big"]["error"].startswith("cannot read A: checksum mismatch"), t["big"]
assert d["summary"]["unreadable"] == 1 and d["summary"]["identical"] == 18 and d["equal"] is False'

# --------------------------------------------------------------------------------------------
# tolerances: b[2] = 2.25 + 1e-6 on one side
run "$DIFF" "$S/base" "$S/eps"
expect_rc 1
expect_out_all <<'EOF'
tensor 'b': 1 of 5 elements differ, max abs diff 1e-06 at [2], max rel diff 4.44444e-07
3 tensors identical, 0 within tolerance, 1 differ, 0 only in A, 0 only in B, 0 unreadable; 4 attributes equal, 0 differ
EOF
run "$DIFF" "$S/base" "$S/eps" --atol 1e-5
expect_rc 0
expect_out_all <<'EOF'
tensor 'b': within tolerance: 1 of 5 elements differ, max abs diff 1e-06 at [2], max rel diff 4.44444e-07
3 tensors identical, 1 within tolerance, 0 differ, 0 only in A, 0 only in B, 0 unreadable; 4 attributes equal, 0 differ
EOF
run "$DIFF" "$S/base" "$S/eps" --atol 1e-7
expect_rc 1
run "$DIFF" "$S/base" "$S/eps" --rtol 1e-6
expect_rc 0
run "$DIFF" "$S/base" "$S/eps" --rtol=1e-7
expect_rc 1
run "$DIFF" "$S/base" "$S/eps" --json
expect_rc 1
expect_json '
t = {x["name"]: x for x in d["tensors"]}
b = t["b"]
assert b["status"] == "differs" and b["differing"] == 1 and b["outside_tolerance"] == 1 and b["elements"] == 5, b
assert abs(b["max_abs_diff"] - 1e-6) < 1e-15 and b["max_abs_diff_at"] == [2], b
assert abs(b["max_rel_diff"] - 1e-6 / (2.25 + 1e-6)) < 1e-15, b
assert d["equal"] is False and d["summary"]["differ"] == 1'

# NaN equals NaN only when bitwise identical (w[0][0] is a NaN in every variant)
run "$DIFF" "$S/base" "$S/base2"
expect_rc 0
expect_out "4 tensors identical, 0 within tolerance, 0 differ, 0 only in A, 0 only in B, 0 unreadable; 4 attributes equal, 0 differ"
run "$DIFF" "$S/base" "$S/nanbits" --atol 1
expect_rc 1
expect_out "tensor 'w': 1 of 20 elements differ, 1 NaN mismatch"
# -0.0 and +0.0 are not the same bytes but are equal numbers
run "$DIFF" "$S/base" "$S/negzero"
expect_rc 0
expect_out "tensor 'b': within tolerance: 1 of 5 elements differ, max abs diff 0 at [0], max rel diff 0"

# missing tensors, attributes of another type or value
run "$DIFF" "$S/base" "$S/missing"
expect_rc 1
expect_out_all <<'EOF'
tensor 'n': only in A (i64 [3])
tensor 'x': only in B (i64 [3])
attribute 'lr': 0.001 vs 0.002
attribute 'name': only in A (string "small \"one\"")
attribute 'step': type int vs string
3 tensors identical, 0 within tolerance, 0 differ, 1 only in A, 1 only in B, 0 unreadable; 1 attributes equal, 3 differ
EOF
run "$DIFF" "$S/missing" "$S/base" --json
expect_rc 1
expect_json '
t = {x["name"]: x["status"] for x in d["tensors"]}
assert t == {"b": "identical", "h": "identical", "n": "only_b", "w": "identical", "x": "only_a"}, t
a = {x["key"]: x for x in d["attributes"]}
assert a["lr"]["status"] == "differs" and a["lr"]["a"] == 0.002 and a["lr"]["b"] == 0.001
assert a["name"]["status"] == "only_b" and a["name"]["a"] is None and a["name"]["b"] == "small \"one\""
assert a["step"]["status"] == "type" and a["step"]["a"] == "seven" and a["step"]["b"] == 7
assert a["blob"] == {"key": "blob", "status": "equal", "a": {"bytes": 3, "hex": "dead01"}, "b": {"bytes": 3, "hex": "dead01"}}
assert d["summary"]["only_a"] == 1 and d["summary"]["only_b"] == 1 and d["summary"]["attributes_differ"] == 3'
# a close double attribute counts as equal under the tolerance
run "$DIFF" "$S/base" "$S/missing" --atol 0.01
expect_rc 1
expect_no_out "attribute 'lr'"

# shape and dtype mismatches
run "$DIFF" "$S/base" "$S/shape"
expect_rc 1
expect_out "tensor 'w': shape [4, 5] vs [5, 4]"
expect_out "3 tensors identical, 0 within tolerance, 1 differ, 0 only in A, 0 only in B, 0 unreadable; 4 attributes equal, 0 differ"
run "$DIFF" "$S/base" "$S/dtype"
expect_rc 1
expect_out "tensor 'b': dtype f64 vs f32"

# a 4 MB tensor in many small regions: both differences found, with their positions
run "$DIFF" "$S/big" "$S/bigdiff" --max-read 64K
expect_rc 1
expect_out_all <<'EOF'
tensor 'big': 2 of 1000000 elements differ, max abs diff 1 at [999, 998], max rel diff 0.00347222
0 tensors identical, 0 within tolerance, 1 differ, 0 only in A, 0 only in B, 0 unreadable; 0 attributes equal, 0 differ
EOF
run "$DIFF" "$S/big" "$S/bigdiff" --atol 1
expect_rc 0
expect_out "tensor 'big': within tolerance: 2 of 1000000 elements differ, max abs diff 1 at [999, 998], max rel diff 0.00347222"

# --------------------------------------------------------------------------------------------
# cannot open: exit 3, one line on stderr
run "$DIFF" "$N2" "$S/nope"
expect_rc 3
expect_out_empty
expect_err "shard-diff: no checkpoint at '$S/nope': No such file or directory"
cp -r "$N2" "$S/incomplete" && rm "$S/incomplete/COMMITTED" || exit 1
run "$DIFF" "$S/incomplete" "$N2" --json
expect_rc 3
expect_out_empty
expect_err "shard-diff: checkpoint '$S/incomplete' is incomplete: it has no COMMITTED marker (the save was interrupted or is still running)"
# a missing data file is an unreadable tensor: exit 3
cp -r "$N4" "$S/nofile" && rm "$S/nofile/rank-00003.h5" || exit 1
run "$DIFF" "$N2" "$S/nofile"
expect_rc 3
expect_err_re "^shard-diff: cannot read B: tensor '[a-z0-9/]+': data file '.*/nofile/rank-00003\.h5' \(written by rank 3\) is missing: No such file or directory$"
expect_out_re '^[0-9]+ tensors identical, 0 within tolerance, 0 differ, 0 only in A, 0 only in B, [1-9][0-9]* unreadable; 4 attributes equal, 0 differ$'

# usage
run "$DIFF" --help
expect_rc 0
expect_out "usage: shard-diff A B [--atol X] [--rtol Y] [--json] [--max-read BYTES]"
run "$DIFF" "$N2"
expect_rc 2
expect_err "shard-diff: needs two checkpoints A and B (see shard-diff --help)"
run "$DIFF" "$N2" "$N4" "$N2"
expect_rc 2
run "$DIFF" "$N2" "$N4" --atol -1
expect_rc 2
expect_err "shard-diff: --atol needs a finite number >= 0 (see shard-diff --help)"
run "$DIFF" "$N2" "$N4" --rtol abc
expect_rc 2
run "$DIFF" "$N2" "$N4" --atol
expect_rc 2
run "$DIFF" "$N2" "$N4" --frobnicate
expect_rc 2
expect_err "shard-diff: unknown option '--frobnicate' (see shard-diff --help)"

finish
