"""A checkpoint written from Python equals, by shard-diff, the same state written from C
(tests/tools/make_ckpt.c), whatever the world size; the tools (shard-inspect --verify,
shard-reshard, shard-diff) read it; the Python reader reads the C one."""
import os
import subprocess
import sys

import numpy as np
import pytest

import ckpt
from conftest import WORKERS, mpirun, tool

SAME = ("4 tensors identical, 0 within tolerance, 0 differ, 0 only in A, 0 only in B, "
        "0 unreadable; 4 attributes equal, 0 differ")


def sh(*cmd):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("vs_c")
    for v in ("base", "eps"):
        p = sh(tool("tools_make_ckpt"), d / f"c-{v}", v)
        assert p.returncode == 0, p.stderr
    return d


@pytest.mark.parametrize("ranks", [0, 1, 2, 3])  # 0: one process without mpirun / mpi4py
def test_python_equals_c(made, ranks):
    py = made / f"py-{ranks}"
    if ranks == 0:
        p = sh(sys.executable, os.path.join(WORKERS, "small.py"), py, "base")
        assert p.returncode == 0, p.stderr
    else:
        mpirun(ranks, "small.py", py, "base")
    d = sh(tool("shard-diff"), made / "c-base", py)
    assert (d.returncode, d.stdout.strip(), d.stderr) == (0, SAME, "")
    v = sh(tool("shard-inspect"), py, "--verify")
    assert v.returncode == 0, v.stdout + v.stderr
    assert v.stdout.strip().splitlines()[-1].startswith("verify: ok: 4 tensors, ")
    assert f"world size      {max(1, ranks)}" in v.stdout
    # the reshard tool rewrites it for 3 ranks, and it still equals the C one
    out = made / f"py-{ranks}-resharded"
    r = sh(tool("shard-reshard"), py, out, "--world-size", 3)
    assert r.returncode == 0, r.stderr
    d = sh(tool("shard-diff"), out, made / "c-base")
    assert (d.returncode, d.stdout.strip()) == (0, SAME)


def test_a_difference_shows(made):
    mpirun(2, "small.py", made / "py-eps", "eps")
    d = sh(tool("shard-diff"), made / "py-eps", made / "c-base")
    assert d.returncode == 1
    assert d.stdout.splitlines()[0].startswith("tensor 'b': 1 of 5 elements differ, max abs diff ")
    d = sh(tool("shard-diff"), made / "py-eps", made / "c-eps")
    assert (d.returncode, d.stdout.strip()) == (0, SAME)


def test_reader_reads_the_c_checkpoint(made):
    with ckpt.open(made / "c-base") as r:
        assert r.names() == ["b", "h", "n", "w"]
        assert r.attrs == {"step": 7, "lr": 0.001, "name": 'small "one"', "blob": b"\xde\xad\x01"}
        assert r.world_size == 1 and r.layout == "file-per-rank" and r.piece_bytes == 65536
        assert r.read("b").tolist() == [0.0, 1.5, 2.25, -3.0, 1e10]
        assert r.read("n").tolist() == [-5, 0, 9007199254740993]
        assert r.read("h").view(np.uint16).tolist() == [0x3C00, 0xC000, 0x7C00, 0x0001]
        w = r.read("w")
        assert w.view(np.uint32)[0, 0] == 0x7FC00000
        assert w.ravel()[1:].tolist() == [i * 0.25 for i in range(1, 20)]
        assert r.read("w", (1, 2), (2, 3)).tolist() == [[1.75, 2.0, 2.25], [3.0, 3.25, 3.5]]
        assert r.read("h", dtype="f32").tolist() == [1.0, -2.0, float("inf"), 2.0**-24]
