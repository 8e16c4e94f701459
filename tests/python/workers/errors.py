"""errors.py CASE DIR OUTDIR: runs one error case on every rank and reports the exception
(class, status, message) each rank raised, for test_errors_mpi.py to compare.

  save        writes the good checkpoint DIR: w f32 [7, 6] Shard(0), 64-byte pieces (two per rank)
  load        loads w from DIR (the test damaged it, or it does not exist)
  wrongshape  wants w as [8, 6]
  badarray    rank 1 passes an array of the wrong shape (a Python-side error on one rank)
  gap         saves to DIR with rank 1 holding nothing of w (coverage gap)
  exists      saves to DIR, which exists"""
import sys

import numpy as np

import ckpt
from common import comm, rank, report, world

SHAPE = (7, 6)
W = np.arange(42, dtype=np.float32).reshape(SHAPE)


def rows(dim=0, shape=SHAPE):
    off, ext = ckpt.shard_box(shape, dim, rank, world)
    return off, ext


def state():
    off, ext = rows()
    return {"w": ckpt.shard(W[off[0]:off[0] + ext[0]].copy(), SHAPE, 0, rank, world)}


def run(case, path):
    if case == "save":
        ckpt.save(path, state(), comm, attrs={"step": 1}, piece_bytes=64, fsync=False)
    elif case == "exists":
        ckpt.save(path, state(), comm)
    elif case == "load":
        ckpt.load(path, {"w": ckpt.shard(None, SHAPE, 1, rank, world, dtype="f32")}, comm)
    elif case == "wrongshape":
        ckpt.load(path, {"w": ckpt.shard(None, (8, 6), 0, rank, world, dtype="f32")}, comm)
    elif case == "badarray":
        ext = rows()[1]
        out = np.zeros((1, 1) if rank == 1 else ext, np.float32)
        ckpt.load(path, {"w": ckpt.shard(out, SHAPE, 0, rank, world)}, comm)
    elif case == "gap":
        off, ext = rows()
        parts = [] if rank == 1 else [(off, W[off[0]:off[0] + ext[0]].copy())]
        ckpt.save(path, {"w": ckpt.boxes(SHAPE, parts, dtype="f32")}, comm)
    else:
        raise SystemExit(f"unknown case {case}")


if __name__ == "__main__":
    case, path, outdir = sys.argv[1:4]
    try:
        run(case, path)
        got = {"class": None}
    except ckpt.Error as e:
        got = {"class": type(e).__name__, "status": e.status, "code": e.code, "message": str(e),
               "is_ckpt_error": isinstance(e, ckpt.Error)}
    report(outdir, got)
