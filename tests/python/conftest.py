"""Shared setup of the Python tests: where the library, tools and launcher are, and running
a worker script under mpirun. CTest (tests/python/CMakeLists.txt) sets the environment; run
by hand, the defaults below find the build tree:

    CKPT_LIBRARY=build/libckpt/libckpt.so PYTHONPATH=python /usr/bin/python3 -m pytest tests/python
"""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("CKPT_BUILD_DIR", os.path.join(REPO, "build"))
WORKERS = os.path.join(HERE, "workers")
MPIEXEC = os.environ.get("CKPT_MPIEXEC", "mpirun")

# As every MPI test of the suite: root allowed, oversubscribed, one thread per rank.
for k, v in {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
             "OMPI_MCA_rmaps_base_oversubscribe": "1", "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
             "OMPI_MCA_btl": "self,vader", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1"}.items():
    os.environ.setdefault(k, v)
os.environ.setdefault("CKPT_LIBRARY", os.path.join(BUILD, "libckpt", "libckpt.so.0"))
if os.path.join(REPO, "python") not in sys.path:
    sys.path.insert(0, os.path.join(REPO, "python"))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [os.path.join(REPO, "python"), WORKERS] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def tool(name: str) -> str:
    """A program built in the build tree (shard-diff, tools_make_ckpt, ...)."""
    env = os.environ.get("CKPT_TOOL_" + name.replace("-", "_").upper())
    if env:
        return env
    for sub in ("tools", "tests/tools", "tests/python"):
        p = os.path.join(BUILD, sub, name)
        if os.path.exists(p):
            return p
    pytest.fail(f"{name} is not built (looked in {BUILD}); build the project first")


def mpirun(n: int, script: str, *args, timeout: int = 300, check: bool = True):
    """Runs workers/<script> on n ranks with this interpreter; returns the CompletedProcess."""
    cmd = [MPIEXEC, "-n", str(n), "--oversubscribe", "--bind-to", "none", sys.executable,
           os.path.join(WORKERS, script), *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}")
    return p


def rank_reports(outdir: str, n: int):
    """The JSON each rank of a worker wrote to outdir/rank-<r>.json."""
    out = []
    for r in range(n):
        with open(os.path.join(outdir, f"rank-{r}.json")) as f:
            out.append(json.load(f))
    return out
