#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (normal and ASan+UBSan variants of every
# test, in one CTest run whose summary closes the output).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD=${BUILD_DIR:-build}
JOBS=$(nproc)
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCKPT_BUILD_TESTS=ON -DCKPT_SANITIZE_TESTS=ON >"$BUILD.configure.log" 2>&1 \
  || { cat "$BUILD.configure.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" 2>&1 | grep -E 'warning|error' || true
cmake --build "$BUILD" -j "$JOBS" >/dev/null
cd "$BUILD"
exec ctest --output-on-failure -j "$JOBS" --timeout 600
