"""Flat row-sharded (FSDP-style) state dicts <-> the boxes of a save or a load.

A model trained with its parameters and optimizer state split by rows across ranks (FSDP's
Shard(0), ZeRO-3) keeps, on each rank, a flat ``{name: local rows}`` dict, plus the global
shape of each entry. These helpers turn such a dict into the state of ckpt.save and, at any
other world size, into the ``want`` of ckpt.load that fills the new local rows in place::

    local, shapes = ckpt.split_state_dict(model.state_dict(), rank, world)  # rows + global shapes
    ckpt.save(path, ckpt.shard_state_dict(local, shapes, rank, world), comm)
    # later, at another world size:
    mine = ckpt.alloc_shards(shapes, torch.float32, rank, world)           # this rank's rows
    ckpt.load(path, ckpt.shard_state_dict(mine, shapes, rank, world), comm)

0-D entries (scalars) cannot be split: every rank holds them whole (replicated).
The split is the library's (ckpt.shard_box): ceil(n/world) rows per rank, the last ones
smaller or empty.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple, Union

import numpy as np

from . import dtypes
from .boxes import Shape, TensorSpec, replicated, shard, shard_box
from .dtypes import DTypeLike


def local_shape(shape: Shape, rank: int, world: int, dim: int = 0) -> Tuple[int, ...]:
    """The shape of this rank's rows of a tensor of global `shape`."""
    shape = tuple(shape)
    return shape if not shape else shard_box(shape, dim, rank, world)[1]


def split_state_dict(full: Mapping[str, Any], rank: int, world: int, *, dim: int = 0
                     ) -> Tuple[Dict[str, Any], Dict[str, Tuple[int, ...]]]:
    """This rank's rows of every entry of a full (unsharded) state dict, and the global
    shapes: ``(local, shapes)``. Along dim 0 the rows are views of the full tensors (no
    copy); along another dim they are contiguous copies. 0-D entries are kept whole."""
    local: Dict[str, Any] = {}
    shapes: Dict[str, Tuple[int, ...]] = {}
    for name, t in full.items():
        shape = tuple(int(s) for s in t.shape)
        shapes[name] = shape
        if not shape:
            local[name] = t
            continue
        off, ext = shard_box(shape, dim, rank, world)
        d = dim % len(shape)
        index = tuple(slice(o, o + e) if i == d else slice(None) for i, (o, e) in enumerate(zip(off, ext)))
        part = t[index]
        local[name] = part if d == 0 else (part.contiguous() if hasattr(part, "contiguous") else np.ascontiguousarray(part))
    return local, shapes


def shard_state_dict(local: Mapping[str, Any], shapes: Mapping[str, Shape], rank: int,
                     world: int, *, dim: int = 0, prefix: str = "") -> Dict[str, TensorSpec]:
    """``{prefix + name: ckpt.shard(local[name], shapes[name], dim, rank, world)}`` for every
    entry of `local` (arrays or CPU tensors holding this rank's rows): the state of a save,
    or the want of an in-place load."""
    out: Dict[str, TensorSpec] = {}
    for name, t in local.items():
        shape = tuple(shapes[name])
        out[prefix + name] = (replicated(t, shape=shape) if not shape
                              else shard(t, shape, dim, rank, world))
    return out


def alloc_shards(shapes: Mapping[str, Shape], dtype: Union[DTypeLike, Mapping[str, DTypeLike]],
                 rank: int, world: int, *, dim: int = 0, torch: bool = True) -> Dict[str, Any]:
    """Zeroed local rows for every entry of `shapes`: torch tensors (torch=True) or numpy
    arrays. `dtype` is one dtype for all, or a dict by name."""
    out: Dict[str, Any] = {}
    for name, shape in shapes.items():
        dt = dtype[name] if isinstance(dtype, Mapping) else dtype
        code = dtypes.code_of(dt)
        ls = local_shape(shape, rank, world, dim)
        if torch:
            import torch as _torch
            out[name] = _torch.zeros(ls, dtype=dtypes.torch_dtype(code))
        else:
            out[name] = np.zeros(ls, dtypes.numpy_dtype(code))
    return out
