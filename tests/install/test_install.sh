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
test -f "$scratch/prefix/include/ckpt.h"
ls "$scratch/prefix/lib/hdf5/plugin/libh5zstd.so" >/dev/null
echo "install: find_package(ckpt) and pkg-config consumers built and ran"
