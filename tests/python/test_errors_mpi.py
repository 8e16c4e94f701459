"""The library's error paths from Python under mpirun: every rank raises the same ckpt.Error
subclass with the same message (workers/errors.py), for checkpoints saved by 2 and 3 ranks and
loaded by the other count: missing checkpoint, wrong shape, corrupt piece, incomplete
directory, a bad array on one rank only, a coverage gap, an existing destination."""
import os
import re
import shutil
import subprocess
import sys

import pytest

import ckpt
from conftest import HERE, mpirun, rank_reports

FLIP = os.path.join(HERE, "..", "tools", "flip_byte.py")


@pytest.fixture(scope="module", params=[(2, 3), (3, 2)], ids=["n2-m3", "n3-m2"])
def setup(request, tmp_path_factory):
    n, m = request.param
    root = tmp_path_factory.mktemp(f"errors-n{n}")
    good = root / "good"
    run(root, n, "save", good)
    return root, good, n, m


def run(root, ranks, case, path):
    out = root / f"report-{case}-{os.path.basename(path)}"
    shutil.rmtree(out, ignore_errors=True)
    mpirun(ranks, "errors.py", case, path, out)
    return rank_reports(out, ranks)


def everywhere(reports, cls, message):
    """Every rank raised `cls` with exactly `message` (a str, or a compiled regex)."""
    for r in reports:
        assert r["class"] == cls.__name__, reports
        assert r["status"] == cls.status and r["code"] == ckpt.Error(" ", cls.status).code
        if isinstance(message, str):
            assert r["message"] == message
        else:
            assert message.fullmatch(r["message"]), r["message"]
    assert len({r["message"] for r in reports}) == 1


def test_good_checkpoint_loads(setup):
    root, good, n, m = setup
    assert [r["class"] for r in run(root, m, "load", good)] == [None] * m


def test_missing_checkpoint(setup):
    root, good, n, m = setup
    path = root / "nope"
    everywhere(run(root, m, "load", path), ckpt.NotFoundError,
               f"rank 0: no checkpoint at '{path}': No such file or directory")


def test_wrong_shape(setup):
    root, good, n, m = setup
    everywhere(run(root, m, "wrongshape", good), ckpt.MismatchError,
               f"rank 0: tensor 'w': checkpoint '{good}' has shape [7, 6], the state wants [8, 6]")


def test_corrupt_piece(setup):
    root, good, n, m = setup
    bad = root / "corrupt"
    shutil.copytree(good, bad)
    out = subprocess.run([sys.executable, FLIP, str(bad / "rank-00001.h5"), "w", "0"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "/boxes/1"
    off, ext = ckpt.shard_box((7, 6), 0, 1, n)
    pieces = -(-ext[0] // 2)  # 64-byte pieces hold 2 rows of 6 floats
    box = f"[{off[0]}:{off[0] + ext[0]}, 0:6]"
    everywhere(run(root, m, "load", bad), ckpt.CorruptError, re.compile(re.escape(
        f"rank 0: checksum mismatch in tensor 'w', box 1 {box} (written by rank 1), piece 0 of "
        f"{pieces}, file '{bad}/rank-00001.h5' dataset /boxes/1: stored xxh3 ") + "[0-9a-f]{16}, data has [0-9a-f]{16}"))
    # the reader, from this one process, finds it too
    with ckpt.open(bad) as r, pytest.raises(ckpt.CorruptError, match=re.escape(f"checksum mismatch in tensor 'w', box 1 {box}")):
        r.verify()


def test_incomplete_directory(setup):
    root, good, n, m = setup
    inc = root / "incomplete"
    shutil.copytree(good, inc)
    os.unlink(inc / "COMMITTED")
    msg = (f"checkpoint '{inc}' is incomplete: it has no COMMITTED marker (the save was "
           f"interrupted or is still running)")
    everywhere(run(root, m, "load", inc), ckpt.IncompleteError, "rank 0: " + msg)
    with pytest.raises(ckpt.IncompleteError) as e:
        ckpt.open(inc)
    assert str(e.value) == msg


def test_bad_array_on_one_rank(setup):
    root, good, n, m = setup
    off, ext = ckpt.shard_box((7, 6), 0, 1, m)
    everywhere(run(root, m, "badarray", good), ckpt.InvalidArgumentError,
               f"rank 1: tensor 'w': the box at offset {list(off)} has extent {list(ext)} but "
               f"the array has shape [1, 1]")


def test_coverage_gap(setup):
    root, good, n, m = setup
    path = root / "gap"
    missing = ckpt.shard_box((7, 6), 0, 1, m)[1][0] * 6
    everywhere(run(root, m, "gap", path), ckpt.CoverageError,
               f"tensor 'w' [7, 6]: the boxes of all ranks cover {42 - missing} of its 42 "
               f"elements (a gap: some part is held by no rank)")
    assert not os.path.exists(path)


def test_destination_exists(setup):
    root, good, n, m = setup
    everywhere(run(root, m, "exists", good), ckpt.ExistsError,
               f"cannot save to '{good}': it already exists (overwriting was not asked for)")
