#!/usr/bin/env bash
# Installs this build into a scratch prefix and builds a separate project against it, once with
# find_package(ckpt) and once with pkg-config, then runs it: the package files really work.
# usage: test_install.sh BUILD_DIR SCRATCH_DIR
set -euo pipefail
build=$1 scratch=$2
rm -rf "$scratch" && mkdir -p "$scratch"
cmake --install "$build" --prefix "$scratch/prefix" >"$scratch/install.log"
here=$(cd "$(dirname "$0")" && pwd)
cmake -S "$here/consumer" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$scratch/prefix" >"$scratch/configure.log"
cmake --build "$scratch/consumer" >"$scratch/build.log"
LD_LIBRARY_PATH="$scratch/prefix/lib" "$scratch/consumer/consumer" "$scratch/ck1"
# pkg-config route
flags=$(PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig" pkg-config --cflags --libs ckpt)
cc -std=c11 -o "$scratch/consumer-pc" "$here/consumer/main.c" $flags
LD_LIBRARY_PATH="$scratch/prefix/lib" "$scratch/consumer-pc" "$scratch/ck2"
# installed programs run from the prefix without LD_LIBRARY_PATH (install RPATH $ORIGIN/../lib),
# also after the prefix is moved elsewhere
for tool in shard-inspect shard-diff shard-reshard shard-merge shard-demo; do
    test -x "$scratch/prefix/bin/$tool" || { echo "install: $tool not installed"; exit 1; }
    readelf -d "$scratch/prefix/bin/$tool" | grep -Eq '(RUNPATH|RPATH).*\$ORIGIN/\.\./' ||
        { echo "install: $tool has no \$ORIGIN RPATH"; readelf -d "$scratch/prefix/bin/$tool" | grep -i path; exit 1; }
done
mv "$scratch/prefix" "$scratch/moved"
out=$(env -u LD_LIBRARY_PATH "$scratch/moved/bin/shard-inspect" "$scratch/ck1" 2>&1) ||
    { echo "$out"; echo "install: the installed shard-inspect does not run"; exit 1; }
echo "$out" | grep -q "^format " || { echo "$out"; echo "install: unexpected shard-inspect output"; exit 1; }
lib=$(env -u LD_LIBRARY_PATH ldd "$scratch/moved/bin/shard-inspect" | grep 'libckpt\.so')
case "$lib" in
*"$scratch/moved/"*) ;;
*) echo "install: shard-inspect loads '$lib', not the installed library"; exit 1 ;;
esac
env -u LD_LIBRARY_PATH "$scratch/moved/bin/shard-diff" "$scratch/ck1" "$scratch/ck2" >/dev/null 2>&1
rc=$?
[ $rc -le 1 ] || { echo "install: the installed shard-diff failed (exit $rc)"; exit 1; }
if [ -x "$scratch/moved/bin/shard-train" ]; then
    env -u LD_LIBRARY_PATH "$scratch/moved/bin/shard-train" --help >/dev/null ||
        { echo "install: the installed shard-train does not run"; exit 1; }
fi
mv "$scratch/moved" "$scratch/prefix"
echo "install: installed tools run from a moved prefix without LD_LIBRARY_PATH ($lib)"
test -f "$scratch/prefix/include/ckpt.h"
ls "$scratch/prefix/lib/hdf5/plugin/libh5zstd.so" >/dev/null
echo "install: find_package(ckpt) and pkg-config consumers built and ran"
