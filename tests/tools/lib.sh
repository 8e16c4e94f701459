# lib.sh -- assertions for the tool tests: run a command, then check its exit code and exact lines
# of its stdout/stderr. Every failed check is reported; `finish` exits 1 if any failed.
FAILS=0
CHECKS=0
LAST_CMD=""
LIB_TMP=$(mktemp -d)
trap 'rm -rf "$LIB_TMP"' EXIT
OUTF="$LIB_TMP/out"
ERRF="$LIB_TMP/err"

# run CMD ARGS...: runs it with stdout/stderr captured; $RC holds the exit code
run() {
    LAST_CMD="$*"
    "$@" >"$OUTF" 2>"$ERRF"
    RC=$?
}

_fail() {
    FAILS=$((FAILS + 1))
    echo "FAIL: $1"
    echo "  command: $LAST_CMD"
    echo "  --- stdout:"; sed 's/^/  | /' "$OUTF" | head -60
    echo "  --- stderr:"; sed 's/^/  | /' "$ERRF" | head -20
}

_ok() { CHECKS=$((CHECKS + 1)); }

expect_rc() { if [ "$RC" -eq "$1" ]; then _ok; else _fail "exit code $RC, expected $1"; fi; }
# an exact line of stdout / stderr
expect_out() { if grep -Fxq -- "$1" "$OUTF"; then _ok; else _fail "no stdout line: $1"; fi; }
expect_err() { if grep -Fxq -- "$1" "$ERRF"; then _ok; else _fail "no stderr line: $1"; fi; }
# a line matching an extended regex (anchor it yourself)
expect_out_re() { if grep -Eq -- "$1" "$OUTF"; then _ok; else _fail "no stdout line matching: $1"; fi; }
expect_err_re() { if grep -Eq -- "$1" "$ERRF"; then _ok; else _fail "no stderr line matching: $1"; fi; }
# no line containing the fixed string
expect_no_out() { if grep -Fq -- "$1" "$OUTF"; then _fail "unexpected stdout text: $1"; else _ok; fi; }
expect_out_empty() { if [ -s "$OUTF" ]; then _fail "stdout not empty"; else _ok; fi; }
expect_err_empty() { if [ -s "$ERRF" ]; then _fail "stderr not empty"; else _ok; fi; }
# the whole stdout, given on stdin
expect_out_all() {
    local want="$LIB_TMP/want"
    cat >"$want"
    if diff -u "$want" "$OUTF" >/dev/null; then _ok; else _fail "stdout differs: $(diff -u "$want" "$OUTF" | tail -n +3 | head -40)"; fi
}
# number of stdout lines matching an extended regex
expect_out_count() {
    local n
    n=$(grep -Ec -- "$2" "$OUTF")
    if [ "$n" -eq "$1" ]; then _ok; else _fail "$n stdout lines match '$2', expected $1"; fi
}
# a python3 snippet that reads the JSON on stdin as `d` and asserts
expect_json() {
    if /usr/bin/python3 -c "import json,sys,math
d=json.load(sys.stdin)
$1" <"$OUTF" 2>"$LIB_TMP/py"; then _ok; else _fail "JSON check failed: $(cat "$LIB_TMP/py")"; fi
}

# a shell condition that must hold (the message names it)
expect_true() { if "$@"; then _ok; else _fail "condition failed: $*"; fi; }
# no file or directory at PATH, and no temporary PATH.tmp-* beside it
expect_absent() {
    if [ -e "$1" ] || compgen -G "$1.tmp-*" >/dev/null; then _fail "$1 (or $1.tmp-*) exists"; else _ok; fi
}

finish() {
    echo "$CHECKS checks passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}
