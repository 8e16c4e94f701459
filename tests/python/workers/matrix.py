"""matrix.py save|load DIR OUTDIR [LAYOUT]: the N x M resharding worker of test_mpi_matrix.py.

save (N ranks): every dtype as a [7, 5] Shard(0) tensor, a replicated vector, explicit 2x3
blocks dealt round-robin, a 0-D scalar, an empty tensor, a 3-D Shard(2) and a 4-D Shard(1)
tensor, and every attribute type.
load (M ranks): each in another sharding -- Shard(1), Shard(0), one-row boxes, replicated,
zero boxes on all ranks but 0 -- half into the caller's arrays, half allocated, a float
conversion, an optional tensor that is absent; every loaded byte is compared with the
global tensor rebuilt here."""
import sys

import numpy as np

import ckpt
from common import comm, fail, global_tensor, rank, region, report, same_bits, world

DTYPES = list(ckpt.dtypes.NAMES.values())
SHAPES = {f"dtype/{d}": ((7, 5), d) for d in DTYPES}
SHAPES.update({"rep/vec": ((6,), "f32"), "blk/grid": ((4, 6), "i32"), "scalar": ((), "f64"),
               "empty": ((0, 3), "f32"), "cube": ((3, 4, 5), "f32"), "deep/a/b/c": ((2, 3, 2, 2), "u8")})
BLOCKS = [(0, 0), (0, 3), (2, 0), (2, 3)]
ATTRS = {"step": 12345, "lr": 3e-4, "name": "ünïcode ✓ \"quoted\"", "blob": bytes(range(256)) + b"\0",
         "neg": -2**63, "big": 2**63 - 1, "empty": b"", "nan": float("inf")}
CONV = np.arange(16, dtype=np.float32).reshape(4, 4) * np.float32(0.1)


def G(name):
    shape, dt = SHAPES[name]
    return global_tensor(name, dt, shape)


def mine(name, dim):
    shape, dt = SHAPES[name]
    off, ext = ckpt.shard_box(shape, dim, rank, world)
    return ckpt.shard(region(G(name), off, ext).copy(), shape, dim, rank, world, dtype=dt)


def save(path, layout):
    state = {f"dtype/{d}": mine(f"dtype/{d}", 0) for d in DTYPES}
    state["rep/vec"] = G("rep/vec").copy()  # a bare array: replicated, saved once
    g = G("blk/grid")
    state["blk/grid"] = ckpt.boxes(g.shape, [(o, region(g, o, (2, 3)).copy())
                                             for b, o in enumerate(BLOCKS) if b % world == rank])
    state["scalar"] = ckpt.replicated(G("scalar").copy())
    state["empty"] = mine("empty", 0)
    state["cube"] = mine("cube", 2)
    state["deep/a/b/c"] = mine("deep/a/b/c", 1)
    state["conv"] = ckpt.replicated(CONV.copy())
    compress = "zstd" if layout.endswith("-zstd") else None
    ckpt.save(path, state, comm, attrs=ATTRS, layout=layout.replace("-zstd", ""), compress=compress,
              fsync=False, piece_bytes=64)  # small pieces: many per box
    return len(state)


def load(path):
    want, expect, inplace = {}, {}, {}
    for i, d in enumerate(DTYPES):
        name = f"dtype/{d}"
        off, ext = ckpt.shard_box((7, 5), 1, rank, world)
        expect[name] = region(G(name), off, ext)
        if i % 2 == 0:
            inplace[name] = np.zeros(ext, ckpt.dtypes.numpy_dtype(ckpt.dtypes.code_of(d)))
            want[name] = ckpt.shard(inplace[name], (7, 5), 1, rank, world, dtype=d)
        else:
            want[name] = ckpt.shard(None, (7, 5), 1, rank, world, dtype=d)
    off, ext = ckpt.shard_box((6,), 0, rank, world)
    want["rep/vec"], expect["rep/vec"] = ckpt.shard(None, (6,), 0, rank, world, dtype="f32"), region(G("rep/vec"), off, ext)
    rows = [r for r in range(4) if r % world == rank]
    want["blk/grid"] = ckpt.boxes((4, 6), [((r, 0), (1, 6)) for r in rows], dtype="i32")
    expect["blk/grid"] = [G("blk/grid")[r:r + 1] for r in rows]
    inplace["scalar"] = np.zeros((), np.float64)
    want["scalar"], expect["scalar"] = ckpt.replicated(inplace["scalar"]), G("scalar")
    want["empty"], expect["empty"] = ckpt.replicated(shape=(0, 3), dtype="f32"), G("empty")
    off, ext = ckpt.shard_box((3, 4, 5), 0, rank, world)
    want["cube"], expect["cube"] = ckpt.shard(None, (3, 4, 5), 0, rank, world, dtype="f32"), region(G("cube"), off, ext)
    d = G("deep/a/b/c")
    parts = [((0, 0, 0, 0), np.zeros((1, 3, 2, 2), np.uint8)), ((1, 0, 0, 0), np.zeros((1, 3, 2, 2), np.uint8))]
    want["deep/a/b/c"] = ckpt.boxes(d.shape, parts if rank == 0 else [], dtype="u8")
    expect["deep/a/b/c"] = [d[0:1], d[1:2]] if rank == 0 else []
    want["conv"], expect["conv"] = ckpt.replicated(shape=(4, 4), dtype="f64"), CONV.astype(np.float64)
    want["absent"] = ckpt.replicated(shape=(3,), dtype="f32", optional=True)

    got = ckpt.load(path, want, comm)
    for name, exp in expect.items():
        have = got[name]
        if name in inplace and have is not inplace[name]:
            fail(f"{name}: the load did not return the caller's array")
        pairs = zip(have, exp) if isinstance(exp, list) else [(have, exp)]
        if isinstance(exp, list) and len(have) != len(exp):
            fail(f"{name}: {len(have)} boxes returned, {len(exp)} wanted")
        for h, e in pairs:
            if not same_bits(h, e):
                fail(f"{name}: loaded {h!r} != expected {e!r}")
    if "absent" in got or got.missing != ["absent"]:
        fail(f"optional tensor: got keys {sorted(got)} missing {got.missing}")
    if got.attrs != ATTRS or {k: type(v) for k, v in got.attrs.items()} != {k: type(v) for k, v in ATTRS.items()}:
        fail(f"attributes {got.attrs!r} != {ATTRS!r}")
    return len(expect)


if __name__ == "__main__":
    what, path, outdir = sys.argv[1:4]
    n = save(path, sys.argv[4]) if what == "save" else load(path)
    report(outdir, {"rank": rank, "world": world, "tensors": n})
