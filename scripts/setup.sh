#!/usr/bin/env bash
# Installs every Debian 12 package the project needs, and the npm packages the suite's export
# checks use. Idempotent: does nothing when all are present. Run as root (or with sudo).
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
  python3-mpi4py python3-pytest python3-torch        # the ckpt Python package (python/) and its tests
  python3-setuptools python3-wheel python3-pip python3-venv  # pip install --no-build-isolation ./python, offline
  fortunes fortunes-min                  # the default training corpus (real text, from Debian)
  clang libclang-rt-14-dev               # libFuzzer targets (tests/fuzz)
)

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_install() {
  if [ $apt_updated -eq 0 ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

# The suite's independent parsers of the exports, from the npm registry, run with Node.js (>= 20,
# which they require): @huggingface/gguf (GGUF) and @huggingface/hub (the Hub's safetensors
# parser), installed from tests/convert/node/package-lock.json into tests/convert/node/node_modules
# (ignored by git). Skipped when every locked version is there.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE_DIR=$ROOT/tests/convert/node
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing nodejs npm"
  apt_install nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: warning: Node.js $(node --version) is older than 20, which the export checks require" >&2
fi
# "name@version" of each dependency whose installed version is not the wanted one
stale=$(cd "$NODE_DIR" && node -e '
const deps = require("./package.json").dependencies;
const bad = Object.entries(deps).filter(([n, v]) => {
  try { return require(`./node_modules/${n}/package.json`).version !== v; } catch (e) { return true; }
});
console.log(bad.map(([n, v]) => `${n}@${v}`).join(" "));')
if [ -z "$stale" ]; then
  echo "setup: npm packages of tests/convert/node present"
else
  echo "setup: installing $stale (npm ci in tests/convert/node)"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: done"
