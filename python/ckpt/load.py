"""ckpt.load: a collective, resharding load into the boxes each rank wants (ckpt_load)."""
from __future__ import annotations

import ctypes
import os
from typing import Any, Dict, List, Mapping, Optional

from . import _lib, comm as _comm
from .errors import check
from .save import PathLike
from .state import AttrValue, State, build


class Loaded(dict):
    """What a load returns: a dict from tensor name to the array it filled -- the caller's
    own array or tensor when one was given, else a newly allocated numpy array (a list of
    them, one per box, for ckpt.boxes entries) -- plus `attrs` (every attribute of the
    checkpoint) and `missing` (the optional tensors the checkpoint does not hold; not keys)."""

    attrs: Dict[str, AttrValue]
    missing: List[str]


def load_options(verify: bool = True, threads: Optional[int] = None) -> _lib.LoadOptions:
    o = _lib.LoadOptions()
    _lib.lib.ckpt_load_options_init(ctypes.byref(o))
    o.verify = int(bool(verify))
    if threads is not None:
        o.threads = int(threads)
    return o


def results(st: State) -> Loaded:
    out = Loaded()
    out.attrs = st.attrs()
    out.missing = []
    for name, (spec, objs) in st.out.items():
        if spec.optional and not st.loaded(name):
            out.missing.append(name)
            continue
        out[name] = objs[0] if spec.single and len(objs) == 1 else list(objs)
    return out


def run_load(want: Mapping[str, Any], comm, call) -> Loaded:
    """Builds the state of `want`, agrees on local errors over `comm`, runs `call(handle)`
    (the library's load) and collects the results."""
    st, err = build(want, None, load=True)
    try:
        _comm.agree(comm, err)
        call(st.handle)
        return results(st)
    finally:
        if st is not None:
            st.close()


def load(path: PathLike, want: Mapping[str, Any], comm=None, *, verify: bool = True,
         threads: Optional[int] = None) -> Loaded:
    """Loads the boxes this rank wants from the checkpoint at `path`, at any world size and
    in any sharding.

    Collective over `comm` (an mpi4py communicator; None: this process alone); the world
    size that saved does not matter. Each rank reads only the saved pieces overlapping its
    boxes, checks their checksums (verify=True) and converts float dtypes where asked
    (f32/f64/f16/bf16 among each other).

    want: maps tensor names to what this rank wants, as in ckpt.save:
        ckpt.shard(out, global_shape, dim, rank, world)    fill `out` (array or CPU tensor)
        ckpt.shard(None, shape, dim, rank, world, dtype="f32")   allocate it
        ckpt.replicated(out) / ckpt.replicated(shape=..., dtype=...)
        ckpt.boxes(shape, [(offset, out or extent), ...], dtype=...)
      optional=True on any of them: no error when the checkpoint lacks the tensor.
      Every tensor asked for must exist with the same global shape (else ckpt.NotFoundError,
      ckpt.MismatchError).
    threads: zstd decompression threads per rank.

    Returns a ckpt.Loaded dict: name -> the filled array (yours, or allocated), with
    `.attrs` (the checkpoint's attributes) and `.missing`. Raises a ckpt.Error subclass
    (ckpt.NotFoundError, ckpt.IncompleteError, ckpt.CorruptError, ckpt.MismatchError, ...)
    -- the same on every rank.

    Example (any number of ranks, resharded along dim 1)::

        out = np.empty(ckpt.shard_box((6, 2), 1, rank, world)[1], np.float32)
        got = ckpt.load("ckpt/step-1", {"w": ckpt.shard(out, (6, 2), 1, rank, world)}, comm)
        step = got.attrs["step"]
    """
    c = _comm.handle(comm)
    bpath = _lib.encode(os.fspath(path))
    opts = load_options(verify, threads)

    return run_load(want, comm, lambda h: check(_lib.lib.ckpt_load(c, bpath, h, ctypes.byref(opts))))
