"""ckpt.save: a collective save of every rank's boxes (ckpt_save)."""
from __future__ import annotations

import ctypes
import os
from typing import Mapping, Optional, Union

from . import _lib, comm as _comm
from .errors import InvalidArgumentError, check
from .state import AttrValue, build

PathLike = Union[str, "os.PathLike[str]"]
_LAYOUTS = {"file-per-rank": 0, "per-rank": 0, "shared": 1, "file-per-group": 2, "group": 2}
_COMPRESS = {None: 0, "none": 0, "zstd": 1}


def save_options(layout: str = "file-per-rank", compress: Optional[str] = None,
                 level: Optional[int] = None, shuffle: Optional[bool] = None,
                 threads: Optional[int] = None, overwrite: bool = False, fsync: bool = True,
                 piece_bytes: Optional[int] = None, group_size: Optional[int] = None) -> _lib.SaveOptions:
    """A ckpt_save_options: the library's defaults (ckpt_save_options_init), then what is given."""
    o = _lib.SaveOptions()
    _lib.lib.ckpt_save_options_init(ctypes.byref(o))
    if layout not in _LAYOUTS:
        raise InvalidArgumentError(f"unknown layout {layout!r} (have: file-per-rank, shared, file-per-group)")
    if compress not in _COMPRESS:
        raise InvalidArgumentError(f"unknown compression {compress!r} (have: None, 'zstd')")
    o.layout = _LAYOUTS[layout]
    o.compress = _COMPRESS[compress]
    o.overwrite = int(bool(overwrite))
    o.fsync = int(bool(fsync))
    if level is not None:
        o.level = int(level)
    if shuffle is not None:
        o.shuffle = int(bool(shuffle))
    if threads is not None:
        o.threads = int(threads)
    if piece_bytes is not None:
        o.piece_bytes = int(piece_bytes)
    if group_size is not None:
        o.group_size = int(group_size)
    return o


def save(path: PathLike, state: Mapping[str, object], comm=None, *,
         attrs: Optional[Mapping[str, AttrValue]] = None, layout: str = "file-per-rank",
         compress: Optional[str] = None, level: Optional[int] = None,
         shuffle: Optional[bool] = None, threads: Optional[int] = None, overwrite: bool = False,
         fsync: bool = True, piece_bytes: Optional[int] = None, group_size: Optional[int] = None) -> None:
    """Saves this rank's part of a sharded state to the checkpoint directory `path`.

    Collective over `comm` (an mpi4py communicator; None: this process alone): every rank
    calls it with the same path and options.

    state: maps tensor names ("model/wte", '/' separates groups) to what this rank holds:
        ckpt.shard(local, global_shape, dim, rank, world)  this rank's Shard(dim) rows
        ckpt.replicated(array) or a bare array             the whole tensor (replicas saved once)
        ckpt.boxes(global_shape, [(offset, array), ...])   any boxes
      Arrays are numpy.ndarrays or CPU torch.Tensors, C-contiguous; they are written from
      where they are (no copy). dtype follows the array (bf16: torch.bfloat16,
      ml_dtypes.bfloat16, or uint16 bits with dtype="bf16").
    attrs: int, float, str or bytes values (step, RNG state, config); rank 0's are written.
    layout: "file-per-rank" (one HDF5 file per rank), "shared" (one file through MPI-IO,
      which plain h5py reads whole) or "file-per-group" (one file per node, or per
      group_size ranks, written by the group through MPI-IO).
    compress: None or "zstd" (level: zstd level, default 1, negative = fast; shuffle: byte
      shuffle first, default on; threads: compression threads per rank).
    overwrite: replace an existing checkpoint atomically (else ckpt.ExistsError).
    fsync: fsync before commit (default on). piece_bytes: checksum piece size (default 4 MiB).

    The library checks that every rank's declarations agree and that the boxes cover every
    tensor exactly once, writes under a temporary name and commits atomically; on failure
    nothing is left at `path`. Raises a ckpt.Error subclass (ckpt.CoverageError,
    ckpt.MismatchError, ckpt.ExistsError, ckpt.IOFailureError, ...) -- the same on every rank.

    Example (2 ranks, rows of w split between them)::

        rank, world = comm.Get_rank(), comm.Get_size()
        w = np.arange(12, dtype=np.float32).reshape(6, 2)
        off, ext = ckpt.shard_box(w.shape, 0, rank, world)
        ckpt.save("ckpt/step-1", {"w": ckpt.shard(w[off[0]:off[0] + ext[0]], w.shape, 0, rank, world)},
                  comm, attrs={"step": 1})
    """
    c = _comm.handle(comm)
    bpath = _lib.encode(os.fspath(path))
    run_save(comm, state, attrs, dict(layout=layout, compress=compress, level=level, shuffle=shuffle,
                                      threads=threads, overwrite=overwrite, fsync=fsync,
                                      piece_bytes=piece_bytes, group_size=group_size),
             lambda st, opts: check(_lib.lib.ckpt_save(c, bpath, st, ctypes.byref(opts))))


def run_save(comm, state: Mapping[str, object], attrs: Optional[Mapping[str, AttrValue]],
             options: dict, call) -> None:
    """Builds the options and the state, agrees on local errors over `comm`, then runs
    `call(state handle, options)` (the library's save)."""
    st, err = None, None
    try:
        opts = save_options(**options)
    except InvalidArgumentError as e:
        opts, err = None, e
    if err is None:
        st, err = build(state, attrs, load=False)
    try:
        _comm.agree(comm, err)
        call(st.handle, opts)
    finally:
        if st is not None:
            st.close()
