#!/bin/bash
# test_inspect.sh INSPECT MAKE_CKPT SAVED_N3 SAVED_N1 SCRATCH
#
# shard-inspect on the catalogue of tests/mpi/test_reshard.c saved by 3 ranks (SAVED_N3, read
# only) and on damaged copies of it under SCRATCH: summary, table, --tensors, --shards, --json,
# --verify (intact, flipped bytes, missing data file), --stats, a directory of checkpoints, and
# every exit code.
set -u
INSPECT=$1 MAKE=$2 N3=$3 N1=$4 S=$5
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

rm -rf "$S" && mkdir -p "$S" || exit 1

# --------------------------------------------------------------------------------------------
# summary and table
run "$INSPECT" "$N3"
expect_rc 0
expect_err_empty
expect_out "checkpoint      $N3"
expect_out "format version  2"
expect_out "library version 0.2.0"
expect_out "layout          file-per-rank"
expect_out "world size      3"
expect_out "step            1234"
expect_out "tensors         19"
expect_out "raw bytes       85322 (83.3 KiB)"
expect_out_re '^stored bytes    [0-9]+ \([0-9.]+ KiB\)$'
expect_out_re '^ratio           [0-9]\.[0-9][0-9]$'
expect_out "attributes      4"
expect_out '  config/model  string  "gpt tiny"'
expect_out "  lr            double  0.00029999999999999997"
expect_out "  rng           bytes   40 bytes: 00070e151c232a31383f464d545b6269..."
expect_out "  step          int     1234"
expect_out "name     dtype  shape         boxes  bytes  stored  ratio"
expect_out_re '^big      f32    \[300, 70\] +3  84000   [0-9]+   [0-9.]+$'
expect_out "empty    f32    [0, 4]            0      0       0      -"
expect_out "scalar   f64    []                1      8       8   1.00"
expect_out "t4       f16    [3, 2, 5, 2]      3    120     120   1.00"
expect_out "vec      f32    [13]              3     52      52   1.00"
expect_out_count 19 '^[a-z0-9/]+ +(f32|f64|f16|bf16|i8|i16|i32|i64|u8|bool) +\['

# --tensors GLOB: the summary, then only the matching rows
run "$INSPECT" "$N3" --tensors 'dt/*'
expect_rc 0
tail -n 11 "$OUTF" >"$OUTF.tail" && mv "$OUTF.tail" "$OUTF"
expect_out_all <<'EOF'
name     dtype  shape   boxes  bytes  stored  ratio
dt/bf16  bf16   [6, 3]      3     36      36   1.00
dt/bool  bool   [6, 3]      3     18      18   1.00
dt/f16   f16    [6, 3]      3     36      36   1.00
dt/f32   f32    [6, 3]      3     72      72   1.00
dt/f64   f64    [6, 3]      3    144     144   1.00
dt/i16   i16    [6, 3]      3     36      36   1.00
dt/i32   i32    [6, 3]      3     72      72   1.00
dt/i64   i64    [6, 3]      3    144     144   1.00
dt/i8    i8     [6, 3]      3     18      18   1.00
dt/u8    u8     [6, 3]      3     18      18   1.00
EOF
run "$INSPECT" "$N3" --tensors 'nothing*'
expect_rc 0
expect_out "name  dtype  shape  boxes  bytes  stored  ratio"
expect_no_out "vec"

# --shards NAME: every saved box with rank, file, dataset and pieces (piece_bytes 1000: three
# 280-byte rows of big per piece, 34 pieces per 100-row box)
run "$INSPECT" "$N3" --shards big
expect_rc 0
expect_out "tensor 'big': f32 [300, 70], 3 saved boxes, 84000 bytes (85680 stored)"
expect_out "  box  region           rank  file           dataset   pieces"
expect_out_re '^    0  \[0:100, 0:70\]       0  rank-00000\.h5  /boxes/[0-9]+ +34$'
expect_out_re '^    1  \[100:200, 0:70\]     1  rank-00001\.h5  /boxes/[0-9]+ +34$'
expect_out_re '^    2  \[200:300, 0:70\]     2  rank-00002\.h5  /boxes/[0-9]+ +34$'
expect_no_out "format version"
run "$INSPECT" "$N3" --shards scalar
expect_rc 0
expect_out "tensor 'scalar': f64 [], 1 saved box, 8 bytes (8 stored)"
expect_out_re '^    0  \[\]         0  rank-00000\.h5  /boxes/[0-9]+ +1$'
run "$INSPECT" "$N3" --shards empty
expect_rc 0
expect_out_all <<'EOF'
tensor 'empty': f32 [0, 4], 0 saved boxes, 0 bytes (0 stored)
EOF
run "$INSPECT" "$N3" --shards no/such
expect_rc 2
expect_out_empty
expect_err "shard-inspect: tensor 'no/such' is not in checkpoint '$N3' (it has 19 tensors)"

# --json
run "$INSPECT" "$N3" --json
expect_rc 0
expect_json '
assert d["format_version"] == 2 and d["library_version"] == "0.2.0", d
assert d["world_size"] == 3 and d["step"] == 1234 and d["layout"] == "file-per-rank"
assert d["num_tensors"] == 19 and len(d["tensors"]) == 19
assert d["raw_bytes"] == 85322 and d["stored_bytes"] >= d["raw_bytes"] - 1
assert d["attributes"] == {"step": 1234, "lr": 3e-4, "config/model": "gpt tiny",
    "rng": {"bytes": 40, "hex": "".join("%02x" % (i * 7 % 256) for i in range(40))}}, d["attributes"]
names = [t["name"] for t in d["tensors"]]
assert names == sorted(names) and "dt/bf16" in names
t = {t["name"]: t for t in d["tensors"]}
assert t["big"] == {"name": "big", "dtype": "f32", "shape": [300, 70], "shards": 3, "bytes": 84000,
                    "stored_bytes": 85680}, t["big"]
assert t["scalar"]["shape"] == [] and t["empty"]["shards"] == 0 and t["blocks"]["shards"] == 6
assert t["cube"]["dtype"] == "bf16" and t["rep"]["shards"] == 1
assert "verify" not in d and "stats" not in t["vec"]'
run "$INSPECT" "$N3" --json --tensors 'dt/*' --shards vec
expect_rc 0
expect_json '
assert [t["name"] for t in d["tensors"]] == ["vec"]
b = d["shards"]["boxes"]
assert d["shards"]["tensor"] == "vec" and [x["offset"] for x in b] == [[0], [5], [10]]
assert [x["extent"] for x in b] == [[5], [5], [3]] and [x["rank"] for x in b] == [0, 1, 2]
assert [x["file"] for x in b] == ["rank-00000.h5", "rank-00001.h5", "rank-00002.h5"]
assert all(x["pieces"] == 1 and x["dataset"].startswith("/boxes/") for x in b)'

# --------------------------------------------------------------------------------------------
# --stats: values are pattern_value(tid, i) = ((i*37 + tid*11) % 127 - 63) * 0.5 (tests/common/pattern.h)
run "$INSPECT" "$N3" --stats --tensors vec
expect_rc 0
expect_out "stats"
expect_out "  name  count  nan  inf    min   max      mean     std"
expect_out "  vec      13    0    0  -31.5  29.5  -2.92308  18.134"
run "$INSPECT" "$N3" --stats --json
expect_rc 0
expect_json '
t = {t["name"]: t for t in d["tensors"]}
def pv(tid, i): return ((i * 37 + tid * 11) % 127 - 63) * 0.5
def check(name, vals):
    s = t[name]["stats"]
    n = len(vals); m = sum(vals) / n; sd = math.sqrt(sum((x - m) ** 2 for x in vals) / n)
    assert s["count"] == n and s["nan"] == 0 and s["inf"] == 0 and s["complete"], s
    assert s["min"] == min(vals) and s["max"] == max(vals), (name, s)
    assert math.isclose(s["mean"], m, rel_tol=1e-12, abs_tol=1e-12), (name, s, m)
    assert math.isclose(s["std"], sd, rel_tol=1e-12), (name, s, sd)
check("vec", [pv(1, i) for i in range(13)])
check("big", [pv(8, i) for i in range(300 * 70)])
check("cube", [pv(3, i) for i in range(60)])          # bf16, read as f64
check("dt/i32", [((i * 37 + 15 * 11) % 251) * 100000 - 12500000 for i in range(18)])
check("dt/bool", [((i * 37 + 18 * 11) % 251) & 1 for i in range(18)])
check("scalar", [pv(0, 0)])
e = t["empty"]["stats"]
assert e["count"] == 0 and e["min"] is None and e["std"] is None, e'
# NaN and Inf are counted, not folded into min/max/mean
"$MAKE" "$S/small" base || exit 1
run "$INSPECT" "$S/small" --stats --json
expect_rc 0
expect_json '
t = {t["name"]: t["stats"] for t in d["tensors"]}
assert t["w"]["nan"] == 1 and t["w"]["inf"] == 0 and t["w"]["count"] == 20, t["w"]
assert t["w"]["min"] == 0.25 and t["w"]["max"] == 4.75, t["w"]
assert t["h"]["inf"] == 1 and t["h"]["min"] == -2 and t["h"]["max"] == 1, t["h"]
assert t["n"]["max"] == 9007199254740992.0 and t["n"]["min"] == -5, t["n"]
assert d["step"] == 7 and d["attributes"]["name"] == "small \"one\"" and d["attributes"]["blob"] == {"bytes": 3, "hex": "dead01"}'
run "$INSPECT" "$S/small"
expect_rc 0
expect_out '  name  string  "small \"one\""'
expect_out "  blob  bytes   3 bytes: dead01"
expect_out "world size      1"

# --------------------------------------------------------------------------------------------
# --verify on the intact checkpoint
run "$INSPECT" "$N3" --verify
expect_rc 0
expect_out "verify: ok: 19 tensors, 53 boxes, 85322 bytes read, every checksum matches"
expect_no_out "problem"
# with regions far smaller than a piece (bisection never needed, every piece read)
run "$INSPECT" "$N3" --verify --stats --max-read 64 --json
expect_rc 0
expect_json '
v = d["verify"]
assert v == {"ok": True, "tensors": 19, "boxes": 53, "boxes_failed": 0, "bytes_read": 85322, "problems": []}, v
t = {t["name"]: t for t in d["tensors"]}
assert t["vec"]["stats"]["min"] == -31.5'

# a flipped byte inside a piece of big (box 1 of rank-00001.h5) and inside dt/i32
cp -r "$N3" "$S/flip" || exit 1
$PY "$HERE/flip_byte.py" "$S/flip/rank-00001.h5" big 5 >/dev/null || exit 1
run "$INSPECT" "$S/flip" --verify
expect_rc 1
expect_out_re "^problem: checksum mismatch in tensor 'big', box 1 \[100:200, 0:70\] \(written by rank 1\), piece 5 of 34, file '.*/flip/rank-00001\.h5' dataset /boxes/[0-9]+: stored xxh3 [0-9a-f]{16}, data has [0-9a-f]{16}$"
expect_out "verify: FAILED: 1 problem, 1 of 53 boxes bad, 19 tensors"
expect_out_count 1 '^problem:'
# ...other tensors are not affected
run "$INSPECT" "$S/flip" --verify --tensors 'dt/*'
expect_rc 0
expect_out "verify: ok: 10 tensors, 30 boxes, 594 bytes read, every checksum matches"
# every damaged piece is found, whatever the read size
$PY "$HERE/flip_byte.py" "$S/flip/rank-00001.h5" big 20 >/dev/null || exit 1
$PY "$HERE/flip_byte.py" "$S/flip/rank-00001.h5" dt/i32 0 >/dev/null || exit 1
for mr in 32M 3000 100; do
    run "$INSPECT" "$S/flip" --verify --max-read $mr
    expect_rc 1
    expect_out_count 3 '^problem: checksum mismatch'
    expect_out_re "^problem: checksum mismatch in tensor 'big', box 1 .*piece 5 of 34, file '.*/rank-00001\.h5'"
    expect_out_re "^problem: checksum mismatch in tensor 'big', box 1 .*piece 20 of 34, file '.*/rank-00001\.h5'"
    expect_out_re "^problem: checksum mismatch in tensor 'dt/i32', box 1 \[2:4, 0:3\] .*piece 0 of 1, file '.*/rank-00001\.h5'"
    expect_out "verify: FAILED: 3 problems, 2 of 53 boxes bad, 19 tensors"
done
run "$INSPECT" "$S/flip" --verify --json
expect_rc 1
expect_json '
v = d["verify"]
assert v["ok"] is False and len(v["problems"]) == 3 and v["boxes_failed"] == 2, v
p = v["problems"][0]
assert p["tensor"] == "big" and p["box"] == 1 and p["file"] == "rank-00001.h5", p
assert "checksum mismatch" in p["message"] and "piece 5 of 34" in p["message"]
assert [q["tensor"] for q in v["problems"]] == ["big", "big", "dt/i32"]'
# --stats alone reads with checksums too: the damage is a problem, the stats incomplete
run "$INSPECT" "$S/flip" --stats --tensors dt/i32
expect_rc 1
expect_out_re "^problem: checksum mismatch in tensor 'dt/i32'"
expect_out_re '^  dt/i32 \(incomplete\) +12 '

# a missing data file: one problem naming it, the boxes it held are not read
cp -r "$N3" "$S/nofile" && rm "$S/nofile/rank-00001.h5" || exit 1
run "$INSPECT" "$S/nofile" --verify
expect_rc 1
expect_out_re "^problem: file 'rank-00001\.h5': .*data file '.*/nofile/rank-00001\.h5' \(written by rank 1\) is missing: No such file or directory$"
expect_out "note: file 'rank-00001.h5': 16 more boxes in it not read (same problem)"
expect_out "verify: FAILED: 1 problem, 17 of 53 boxes bad, 19 tensors"
run "$INSPECT" "$S/nofile" --verify --json
expect_rc 1
expect_json '
v = d["verify"]
assert not v["ok"] and v["boxes_failed"] == 17 and len(v["problems"]) == 1, v
p = v["problems"][0]
assert p["tensor"] is None and p["box"] is None and p["file"] == "rank-00001.h5" and "is missing" in p["message"], p'
# summary and table need no data file
run "$INSPECT" "$S/nofile"
expect_rc 0

# a truncated data file: reported once (with the first box it held), nothing crashes
cp -r "$N3" "$S/trunc" && truncate -s 3000 "$S/trunc/rank-00002.h5" || exit 1
run "$INSPECT" "$S/trunc" --verify --stats
expect_rc 1
expect_out_re "^problem: tensor 'big' box 2 \[200:300, 0:70\] \(rank-00002\.h5\): data file '.*/trunc/rank-00002\.h5' \(written by rank 2\) cannot be opened: truncated or not HDF5"
expect_out_count 1 '^problem:'
expect_out_re "^note: file 'rank-00002\.h5': [0-9]+ more boxes in it not read \(same problem\)$"
expect_out_re '^verify: FAILED: 1 problem, [0-9]+ of 53 boxes bad, 19 tensors$'

# --------------------------------------------------------------------------------------------
# cannot open: exit 3 and one line on stderr
cp -r "$N3" "$S/incomplete" && rm "$S/incomplete/COMMITTED" || exit 1
run "$INSPECT" "$S/incomplete"
expect_rc 3
expect_out_empty
expect_err "shard-inspect: checkpoint '$S/incomplete' is incomplete: it has no COMMITTED marker (the save was interrupted or is still running)"
run "$INSPECT" "$S/does-not-exist" --json
expect_rc 3
expect_out_empty
expect_err "shard-inspect: no checkpoint at '$S/does-not-exist': No such file or directory"
cp -r "$N3" "$S/badindex" && printf 'x' >>"$S/badindex/index.h5" || exit 1
run "$INSPECT" "$S/badindex" --verify
expect_rc 3
expect_err_re "^shard-inspect: index '.*/badindex/index\.h5' does not match its commit marker .*: the index was modified or damaged$"
run "$INSPECT" "$N3/index.h5"
expect_rc 3
expect_err "shard-inspect: '$N3/index.h5' is not a checkpoint directory"

# --------------------------------------------------------------------------------------------
# a directory of checkpoints
R="$S/root"
mkdir -p "$R/notes" && echo hi >"$R/notes/readme.txt" || exit 1
cp -r "$N1" "$R/ckpt-a" && "$MAKE" "$R/ckpt-b" base && cp -r "$N1" "$R/ckpt-c" && rm "$R/ckpt-c/COMMITTED" &&
    cp -r "$N1" "$R/ckpt-d" && printf 'x' >>"$R/ckpt-d/index.h5" || exit 1
run "$INSPECT" "$R"
expect_rc 0
expect_out "checkpoint root $R: 4 checkpoints"
expect_out_re '^  name    state       +size  step$'
expect_out_re '^  ckpt-a  committed   +[0-9.]+ KiB  1234 *$'
expect_out_re '^  ckpt-b  committed   +[0-9.]+ KiB     7$'
expect_out_re '^  ckpt-c  incomplete  +[0-9.]+ KiB     -$'
expect_out_re '^  ckpt-d  corrupt     +[0-9.]+ KiB     -$'
expect_out_re "^ckpt-d: index '.*' does not match its commit marker"
expect_no_out notes
run "$INSPECT" "$R" --json
expect_rc 0
expect_json '
c = {x["name"]: x for x in d["checkpoints"]}
assert sorted(c) == ["ckpt-a", "ckpt-b", "ckpt-c", "ckpt-d"], c
assert [c[k]["state"] for k in sorted(c)] == ["committed", "committed", "incomplete", "corrupt"]
assert [c[k]["step"] for k in sorted(c)] == [1234, 7, None, None]
assert [c[k]["latest"] for k in sorted(c)] == [False, False, False, False]  # not step-N: no latest
assert c["ckpt-a"]["bytes"] > 0 and c["ckpt-a"]["error"] is None and "incomplete" in c["ckpt-c"]["error"]'
run "$INSPECT" "$R" --verify
expect_rc 2
expect_err "shard-inspect: '$R' is a directory of checkpoints: --tensors, --shards, --verify and --stats need one checkpoint (see shard-inspect --help)"
# a checkpoint's subdirectory is never taken for a root
run "$INSPECT" "$R/ckpt-a"
expect_rc 0
expect_out "step            1234"

# a manager's root: latest is what ckpt_manager_latest says (the directory name's step), not the
# step attribute; regression: step-00000002 holds step attribute 1234, step-00000005 holds 7
M="$S/mroot"
mkdir -p "$M" && cp -r "$N1" "$M/step-00000002" && "$MAKE" "$M/step-00000005" base && mkdir "$M/step-00000009" ||
    exit 1
run "$INSPECT" "$M"
expect_rc 0
expect_out_re '^  step-00000002  committed +[0-9.]+ KiB  1234 *$'
expect_out_re '^  step-00000005  committed +[0-9.]+ KiB     7  latest$'
run "$MAKE" "$M" latest
expect_rc 0
expect_out "latest 5 step-00000005"
# an overwrite interrupted between its renames (no RENAME_EXCHANGE): step 5 lives on as the
# displaced copy; shard-inspect marks it latest without touching the root, the manager restores it
mv "$M/step-00000005" "$M/step-00000005.tmp-00000000000000ab.old" || exit 1
run "$INSPECT" "$M" --json
expect_rc 0
expect_json '
c = {x["name"]: x for x in d["checkpoints"]}
assert [k for k in sorted(c) if c[k]["latest"]] == ["step-00000005.tmp-00000000000000ab.old"], c'
test -d "$M/step-00000005.tmp-00000000000000ab.old" && _ok || _fail "shard-inspect changed the root"
run "$MAKE" "$M" latest
expect_rc 0
expect_out "latest 5 step-00000005"
expect_err_re "^libckpt: warning: restored step 5 from '.*/mroot/step-00000005.tmp-00000000000000ab.old': an overwrite of it was interrupted"
run "$INSPECT" "$M"
expect_rc 0
expect_out_re '^  step-00000005  committed +[0-9.]+ KiB     7  latest$'

# --------------------------------------------------------------------------------------------
# usage
run "$INSPECT" --help
expect_rc 0
expect_out "usage: shard-inspect PATH [--tensors GLOB] [--shards NAME] [--verify] [--stats] [--json]"
expect_out "  3  PATH cannot be opened: missing, incomplete (no COMMITTED marker), corrupt or modified"
run "$INSPECT"
expect_rc 2
expect_err "shard-inspect: no checkpoint PATH given (see shard-inspect --help)"
run "$INSPECT" "$N3" --bogus
expect_rc 2
expect_err "shard-inspect: unknown option '--bogus' (see shard-inspect --help)"
run "$INSPECT" "$N3" --tensors 'a*' --tensors 'b*'
expect_rc 2
expect_err "shard-inspect: --tensors may be given only once (see shard-inspect --help)"
run "$INSPECT" "$N3" --shards
expect_rc 2
expect_err "shard-inspect: --shards needs a tensor NAME (see shard-inspect --help)"
run "$INSPECT" "$N3" "$N1"
expect_rc 2
run "$INSPECT" "$N3" --max-read 12Q
expect_rc 2
expect_err "shard-inspect: --max-read needs a size of at least 8 bytes, e.g. 64M (see shard-inspect --help)"
run "$INSPECT" "$N3" --tensors=vec --shards=vec --json
expect_rc 0

finish
