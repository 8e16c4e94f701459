"""bench_py.py --dir DIR --c-lib libbench-py-c.so [--size-mb S] [--tensors T] [--reps R] [--fsync 0|1]
(under mpirun): saving and loading S MiB through the ckpt Python package vs through the C API,
in the same process, on the same buffers, interleaved rep by rep so that the noise of a shared
machine falls on both sides alike.

After one untimed warm-up rep, each rep saves twice -- once with ckpt.save (the state built from ckpt.shard specs), once with
bench_c_save (bench_c.c: the state declared with ckpt_state_add_shard, ckpt_save), in an order
that alternates -- to fresh directories, fsync included (unless --fsync 0), barriers around each; then loads both
back the same way into preallocated arrays, checksums verified. Every load is checked
against the saved bytes. Rank 0 prints one line per timed call: "SIDE OP SECONDS", and for
the Python calls also "py OP-outside SECONDS": the part of the call spent outside the library's
ckpt_save/ckpt_load (building the state, checks, agreement) -- the package's own overhead, which
the I/O noise of a shared machine does not blur."""
import argparse
import ctypes
import time

from mpi4py import MPI
import numpy as np

import ckpt
from ckpt import _lib

COLS = 4096
p = argparse.ArgumentParser()
p.add_argument("--dir", required=True)
p.add_argument("--c-lib", required=True)
p.add_argument("--size-mb", type=int, default=1024)
p.add_argument("--tensors", type=int, default=16)
p.add_argument("--reps", type=int, default=5)
p.add_argument("--fsync", type=int, default=1)
a = p.parse_args()
comm = MPI.COMM_WORLD
rank, world = comm.Get_rank(), comm.Get_size()
clib = ctypes.CDLL(a.c_lib)
for f in (clib.bench_c_save, clib.bench_c_load):
    f.restype = ctypes.c_int
    f.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int64, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int]
fcomm = comm.py2f()

rows = a.size_mb * 1024 * 1024 // 4 // COLS // a.tensors
names = [f"model/layer{t:03d}/w" for t in range(a.tensors)]
shape = (rows, COLS)
off, ext = ckpt.shard_box(shape, 0, rank, world)
src = []
for t in range(a.tensors):
    i = np.arange(off[0] * COLS, (off[0] + ext[0]) * COLS, dtype=np.int64) + t
    src.append(((i % 65521).astype(np.float32) * np.float32(1e-4)).reshape(ext))
dst = [np.full(ext, 0.0, np.float32) for _ in range(a.tensors)]  # touched (np.zeros would not be)


inside = {"t": 0.0}


def clocked(fn):
    def call(*args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            inside["t"] += time.perf_counter() - t0
    return call


# time spent inside the library's collective call, to tell the package's own time apart
_lib.lib.ckpt_save = clocked(_lib.lib.ckpt_save)
_lib.lib.ckpt_load = clocked(_lib.lib.ckpt_load)


def pointers(arrs):
    return (ctypes.c_void_p * len(arrs))(*[x.ctypes.data for x in arrs])


def timed(side, op, fn):
    comm.Barrier()
    inside["t"] = 0.0
    t0 = time.perf_counter()
    fn()
    t1 = time.perf_counter()
    comm.Barrier()
    dt = time.perf_counter() - t0
    outside = comm.allreduce(t1 - t0 - inside["t"], op=MPI.MAX)
    if rank == 0:
        print(f"{side} {op} {dt:.6f}", flush=True)
        if side == "py":
            print(f"py {op}-outside {outside:.6f}", flush=True)


def check():
    for x, y in zip(src, dst):
        if x.tobytes() != y.tobytes():
            raise SystemExit("loaded data differ from the saved data")
        y.fill(0.0)


def py_save(path):
    ckpt.save(path, {n: ckpt.shard(x, shape, 0, rank, world) for n, x in zip(names, src)}, comm, fsync=bool(a.fsync))


def py_load(path):
    ckpt.load(path, {n: ckpt.shard(x, shape, 0, rank, world) for n, x in zip(names, dst)}, comm)


def c_call(fn, path, arrs):
    if fn(fcomm, path.encode(), a.tensors, rows, pointers(arrs), a.fsync) != 0:
        raise SystemExit("bench_c failed (see the library's message on stderr)")


OPS = {("py", "save"): lambda path: py_save(path), ("py", "load"): lambda path: py_load(path),
       ("c", "save"): lambda path: c_call(clib.bench_c_save, path, src),
       ("c", "load"): lambda path: c_call(clib.bench_c_load, path, dst)}
for r in range(-1, a.reps):  # rep -1 warms both sides up (first calls, lazy loading) untimed
    sides = ["py", "c"] if r % 2 == 0 else ["c", "py"]
    for op in ("save", "load"):
        for side in sides:
            path = f"{a.dir}/{side}-{r}"
            if r < 0:
                OPS[side, op](path)
            else:
                timed(side, op, lambda: OPS[side, op](path))
            if op == "load":
                check()
