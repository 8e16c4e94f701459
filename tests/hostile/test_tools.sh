#!/bin/bash
# test_tools.sh INSPECT MERGE MAKE_DAMAGED SRC SCRATCH
#
# shard-inspect (plain and --verify) and shard-merge on every hostile checkpoint class of
# tests/hostile/damage.c: the exit code, the one-line error the library gives (make_damaged
# prints it; hostile.api pins the messages themselves), never a crash, never a byte of a secret
# printed, and shard-merge never commits a checkpoint from a damaged source. Then a checkpoint
# root with a damaged newest step: listed as corrupt, the previous step marked latest.
set -u
INSPECT=$1 MERGE=$2 MAKE=$3 SRC=$4 S=$5
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tools/lib.sh"

rm -rf "$S" && mkdir -p "$S" || exit 1
S=$(cd "$S" && pwd)

no_secret() {
    if grep -q SECR "$OUTF" "$ERRF"; then _fail "a secret's bytes were printed"; else _ok; fi
}
no_crash() {
    if [ "$RC" -ge 128 ]; then _fail "killed by signal $((RC - 128))"; else _ok; fi
}
# a "problem: ..." line of stdout ending in ": MSG" (the first box of the file at fault names it)
expect_problem() {
    if awk -v m=": $1" 'index($0, "problem: ") == 1 && substr($0, length($0) - length(m) + 1) == m { f = 1 } END { exit !f }' "$OUTF"
    then _ok; else _fail "no problem line ending in: $1"; fi
}
# the only line of stderr
expect_err_only() {
    if [ "$(wc -l <"$ERRF")" -eq 1 ] && grep -Fxq -- "$1" "$ERRF"; then _ok; else _fail "stderr is not the one line: $1"; fi
}

n=0
while IFS=$'\t' read -r cls where what; do
    n=$((n + 1))
    d=$S/$cls out=$S/$cls.merged
    "$MAKE" "$SRC" "$d" "$cls" 2 >"$S/$cls.said" 2>&1 || { echo "FAIL: make_damaged $cls"; FAILS=$((FAILS + 1)); continue; }
    open_msg=$(sed -n 's/^open [A-Z_]* //p' "$S/$cls.said")
    read_msg=$(sed -n 's/^read [A-Z_]* //p' "$S/$cls.said")

    run "$INSPECT" "$d"
    no_crash; no_secret
    if [ "$where" = open ]; then
        expect_rc 3; expect_err_only "shard-inspect: $open_msg"; expect_out_empty
    else
        expect_rc 0; expect_err_empty
    fi

    run "$INSPECT" --verify "$d"
    no_crash; no_secret
    case $where in
    open) expect_rc 3; expect_err_only "shard-inspect: $open_msg"; expect_out_empty ;;
    opens) expect_rc 0; expect_out_re '^verify: ok: 3 tensors, 6 boxes, [0-9]+ bytes read, every checksum matches$' ;;
    *)
        expect_rc 1
        expect_problem "${read_msg#tensor \'w\': }"
        expect_out_re '^verify: FAILED: [0-9]+ problems?, [0-9]+ of 6 boxes bad, 3 tensors$' ;;
    esac

    rm -rf "$out"
    run "$MERGE" "$d" "$out"
    no_crash; no_secret
    case $where in
    open) expect_rc 3; expect_err_only "shard-merge: $open_msg"; expect_absent "$out" ;;
    opens)
        expect_rc 0; expect_true test -f "$out/COMMITTED"
        run "$INSPECT" --verify "$out"; expect_rc 0 ;;
    *)
        expect_rc 1; expect_absent "$out"
        if [ "$(wc -l <"$ERRF")" -eq 1 ] && grep -Eq "^shard-merge: cannot read the source: .*; nothing written at '$out'$" "$ERRF"
        then _ok; else _fail "shard-merge did not refuse in one line naming '$out'"; fi ;;
    esac
done < <("$MAKE" "$SRC" list)
echo "$n classes"

# a root whose newest step is damaged: corrupt, the previous one latest
R=$S/root
mkdir -p "$R"
"$MAKE" "$SRC" "$R/step-00000001" grid-chunk-extra 1 >/dev/null
"$MAKE" "$SRC" "$R/step-00000002" v2-overlap-gap 2 >/dev/null
run "$INSPECT" "$R"
expect_rc 0
expect_out_re '^  step-00000001  committed +[0-9.]+ KiB +1  latest$'
expect_out_re '^  step-00000002  corrupt +[0-9.]+ KiB +-$'
expect_out "step-00000002: index '$R/step-00000002/index.h5' is malformed: tensor 'x': saved boxes [0:2, 2:6] and [1:3, 2:6] overlap"

finish
