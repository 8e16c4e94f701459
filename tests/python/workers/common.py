"""What the MPI workers share: the communicator, a per-rank JSON report, and deterministic
global tensors every rank can rebuild to check what it loaded."""
import json
import os
import sys
import zlib

from mpi4py import MPI
import numpy as np

import ckpt

comm = MPI.COMM_WORLD
rank, world = comm.Get_rank(), comm.Get_size()


def report(outdir: str, data: dict) -> None:
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, f"rank-{rank}.json"), "w") as f:
        json.dump(data, f)


def global_tensor(name: str, dtype: str, shape) -> np.ndarray:
    """Random bytes seeded by the name (bool: 0/1), viewed as the dtype: every bit pattern,
    NaN payloads and subnormals included, so that any conversion would show."""
    dt = ckpt.dtypes.numpy_dtype(ckpt.dtypes.code_of(dtype))
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    raw = np.random.default_rng(zlib.crc32(name.encode())).integers(0, 256, n * dt.itemsize, dtype=np.uint8)
    if dtype == "bool":
        raw &= 1
    return raw.view(dt).reshape(shape)


def region(a: np.ndarray, offset, extent) -> np.ndarray:
    return a[tuple(slice(o, o + e) for o, e in zip(offset, extent))]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def fail(msg: str) -> None:
    print(f"rank {rank}: {msg}", file=sys.stderr, flush=True)
    comm.Abort(1)
