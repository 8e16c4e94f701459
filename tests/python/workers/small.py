"""small.py DIR VARIANT: from Python, the state tests/tools/make_ckpt.c writes from C
(variant "base"), Shard(0) over this job's ranks; "eps" adds 1e-6 to b[2] as make_ckpt's eps
variant does. Runs under mpirun (any N) or alone."""
import os
import sys

import numpy as np

import ckpt

if "OMPI_COMM_WORLD_SIZE" in os.environ or "PMI_SIZE" in os.environ:
    from common import comm, rank, world
else:  # alone: comm=None, mpi4py never imported
    comm, rank, world = None, 0, 1

path, variant = sys.argv[1], sys.argv[2]
w = np.arange(20, dtype=np.float32).reshape(4, 5) * np.float32(0.25)
w.view(np.uint32)[0, 0] = 0x7FC00000  # the quiet NaN make_ckpt stores
b = np.array([0.0, 1.5, 2.25, -3.0, 1e10])
if variant == "eps":
    b[2] += 1e-6
n = np.array([-5, 0, 9007199254740993], dtype=np.int64)
h = np.array([0x3C00, 0xC000, 0x7C00, 0x0001], dtype=np.uint16).view(np.float16)


def mine(a):
    off, ext = ckpt.shard_box(a.shape, 0, rank, world)
    return ckpt.shard(a[off[0]:off[0] + ext[0]].copy(), a.shape, 0, rank, world)


assert comm is not None or "mpi4py" not in sys.modules
ckpt.save(path, {"w": mine(w), "b": mine(b), "n": ckpt.replicated(n), "h": mine(h)}, comm,
          attrs={"step": 7, "lr": 0.001, "name": 'small "one"', "blob": b"\xde\xad\x01"},
          overwrite=True, fsync=False, piece_bytes=64 * 1024)
