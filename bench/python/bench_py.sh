#!/usr/bin/env bash
# bench/python: saving and loading SIZE_MB MiB from Python (the ckpt package) vs the same through
# the C API, in the same run: bench_py.py interleaves both in one MPI job, rep by rep, on the
# same buffers. Prints the median and best times of each side and the ratios Python / C.
#
#   bash bench/python/bench_py.sh [BUILD_DIR] [RANKS] [SIZE_MB] [REPS] [FSYNC 1|0] [DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
ranks=${2:-2} size=${3:-1024} reps=${4:-6} fsync=${5:-1} dir=${6:-/tmp/bench-py}
py=/usr/bin/python3   # Debian's interpreter: sees python3-numpy and python3-mpi4py
[ -x "$py" ] || py=python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export CKPT_LIBRARY=$build/libckpt/libckpt.so.0 PYTHONPATH=$here/../../python${PYTHONPATH:+:$PYTHONPATH}
out=$(mktemp)
trap 'rm -rf "$dir" "$out"' EXIT
rm -rf "$dir" && mkdir -p "$dir"
mpirun -n "$ranks" --oversubscribe --bind-to none "$py" "$here/bench_py.py" --dir "$dir" \
  --c-lib "$build/bench/python/libbench-py-c.so" --size-mb "$size" --reps "$reps" --fsync "$fsync" | tee "$out"
"$py" - "$out" "$ranks" "$size" "$fsync" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
t = {(s, k): [float(r[2]) for r in rows if r[:2] == [s, k]] for s in ("c", "py") for k in ("save", "load")}
gib = int(sys.argv[3]) / 1024
print(f"\n{sys.argv[2]} ranks, {gib:g} GiB, fsync {'on' if sys.argv[4] == '1' else 'off'}, {len(t['c', 'save'])} interleaved reps per side:")
for k in ("save", "load"):
    c, p = t["c", k], t["py", k]
    print(f"  {k}: median C {statistics.median(c):.3f} s, Python {statistics.median(p):.3f} s: Python/C "
          f"{statistics.median(p) / statistics.median(c):.3f}; best C {min(c):.3f} s, Python {min(p):.3f} s: "
          f"{min(p) / min(c):.3f}; median of per-rep ratios {statistics.median(x / y for x, y in zip(p, c)):.3f}")
for k in ("save", "load"):
    o = [float(r[2]) for r in rows if r[:2] == ["py", k + "-outside"]]
    print(f"  {k}: time in Python outside the library call (state, checks, agreement): median "
          f"{statistics.median(o) * 1e3:.3f} ms = {statistics.median(o) / statistics.median(t['c', k]) * 100:.3f}% of C's")
c = [a + b for a, b in zip(t["c", "save"], t["c", "load"])]
p = [a + b for a, b in zip(t["py", "save"], t["py", "load"])]
print(f"  save+load: median Python/C {statistics.median(p) / statistics.median(c):.3f}, best {min(p) / min(c):.3f}")
PY
