#!/usr/bin/env bash
# Installs every Debian 12 package the project needs. Idempotent: does nothing when all are
# present. Run as root (or with sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libhdf5-openmpi-dev hdf5-tools         # parallel HDF5 (MPI-IO) and h5dump
  openmpi-bin libopenmpi-dev             # MPI
  libzstd-dev libxxhash-dev              # compression, checksums
  libcmocka-dev                          # unit tests
  libjansson-dev                         # JSON of the interchange formats (formats/: safetensors)
  libopenblas-dev                        # trainer matmuls
  python3 python3-h5py python3-numpy python3-xxhash  # the suite reads checkpoints with plain h5py
  fortunes fortunes-min                  # the default training corpus (real text, from Debian)
  clang libclang-rt-14-dev               # libFuzzer targets (tests/fuzz)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
