"""Save with N ranks, load with M ranks in another sharding, N x M in {1,2,3} x {1,2,3}:
every dtype, every kind of box, attributes of every type, bit-exact (workers/matrix.py)."""
import os

import pytest

import ckpt
from conftest import mpirun, rank_reports

LAYOUT = {1: "file-per-rank", 2: "shared", 3: "file-per-rank-zstd"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("matrix")
    out = {}
    for n in (1, 2, 3):
        path = root / f"saved-n{n}"
        mpirun(n, "matrix.py", "save", path, root / f"report-save-n{n}", LAYOUT[n])
        assert [r["tensors"] for r in rank_reports(root / f"report-save-n{n}", n)] == [17] * n
        out[n] = path
    return root, out


@pytest.mark.parametrize("n", [1, 2, 3])
def test_saved_checkpoint_reads_and_verifies(saved, n):
    with ckpt.open(saved[1][n]) as r:
        assert r.world_size == n
        assert r.layout == LAYOUT[n].replace("-zstd", "")
        assert r.compression == ("zstd:1+shuffle" if n == 3 else "none")
        assert len(r.tensors) == 17
        assert r.tensor("blk/grid").nboxes == 4
        assert r.tensor("rep/vec").nboxes == 1  # replicas written once
        assert r.verify() == sum(t.nboxes for t in r.tensors)


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_load_resharded(saved, n, m):
    root, paths = saved
    outdir = root / f"report-load-n{n}-m{m}"
    mpirun(m, "matrix.py", "load", paths[n], outdir)
    reports = rank_reports(outdir, m)
    assert [(r["rank"], r["world"], r["tensors"]) for r in reports] == [(i, m, 17) for i in range(m)]
    assert not os.path.exists(str(paths[n]) + ".tmp")
