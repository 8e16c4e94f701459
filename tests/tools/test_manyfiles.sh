#!/usr/bin/env bash
# test_manyfiles.sh RESHARD INSPECT DIFF MERGE MAKE_CKPT DIR -- a checkpoint of 1,000 data files is
# written, read, verified, merged and resharded by one process under `ulimit -n 256` (the readers
# and the writer keep a bounded number of files open), and to the file-per-group layout; every
# result equals the source (shard-diff). With a bound above the limit, running out of
# descriptors is reported as that, not as a damaged file.
set -u
. "$(dirname "$0")/lib.sh"
RESHARD=$1 INSPECT=$2 DIFF=$3 MERGE=$4 MAKE=$5 D=$6
rm -rf "$D"; mkdir -p "$D"
ulimit -n 256

run "$MAKE" "$D/src" big               # one f32 tensor [1000, 1000]
expect_rc 0
run "$RESHARD" "$D/src" "$D/k" --world-size 1100 --split-whole 0
expect_rc 0
expect_out "wrote $D/k: 1 tensors, 1000 boxes, 4000000 bytes; file-per-rank, world size 1100, compression none"
expect_true test "$(ls "$D/k" | grep -c '^rank-.*\.h5$')" -eq 1000

run "$INSPECT" "$D/k" --verify
expect_rc 0
expect_out "verify: ok: 1 tensor, 1000 boxes, 4000000 bytes read, every checksum matches"
run "$DIFF" "$D/src" "$D/k"
expect_rc 0
run "$MERGE" "$D/k" "$D/m"
expect_rc 0
run "$DIFF" "$D/src" "$D/m"
expect_rc 0
run "$RESHARD" "$D/k" "$D/r3" --world-size 3
expect_rc 0
run "$DIFF" "$D/k" "$D/r3"
expect_rc 0
# the same 1000 ranks in 16 files of 64 ranks each
run "$RESHARD" "$D/k" "$D/g" --world-size 1000 --layout group:64
expect_rc 0
expect_out "wrote $D/g: 1 tensors, 1000 boxes, 4000000 bytes; file-per-group, world size 1000, compression none"
expect_true test "$(ls "$D/g" | grep -c '^group-.*\.h5$')" -eq 16
run "$INSPECT" "$D/g" --verify
expect_rc 0
run "$DIFF" "$D/src" "$D/g"
expect_rc 0

# a bound the limit cannot honour: said plainly
CKPT_MAX_OPEN_FILES=100000 run "$INSPECT" "$D/k" --verify
expect_rc 1
expect_out_re "out of file descriptors \(Too many open files; this reader keeps at most 100000 data files open: lower CKPT_MAX_OPEN_FILES or raise ulimit -n\)"

finish
