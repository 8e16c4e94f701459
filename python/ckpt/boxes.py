"""What a rank holds (save) or wants (load) of each tensor: a global shape, a dtype and boxes.

The helpers mirror the C ones: ``shard`` is ckpt_state_add_shard (even Shard(dim) split, the
remainder on the last ranks as torch.chunk/FSDP2 do), ``replicated`` is
ckpt_state_add_replicated, ``boxes`` is ckpt_state_add_tensor + ckpt_state_add_box for any set
of boxes (tensor/pipeline/expert parallel layouts). The split itself is the library's
(ckpt_shard_box): nothing is computed twice.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

from . import _lib, arrays
from .arrays import ArrayLike
from .dtypes import DTypeLike
from .errors import InvalidArgumentError, check

Shape = Sequence[int]


@dataclass
class Box:
    """One box: `offset` and `extent` into the global tensor, and the memory holding it
    (`data`: the caller's array or tensor; None on a load means "allocate it")."""
    offset: Tuple[int, ...]
    extent: Tuple[int, ...]
    data: Optional[ArrayLike] = None


@dataclass
class TensorSpec:
    """A tensor as one rank sees it: global `shape`, `dtype` (None: taken from the arrays),
    this rank's `boxes`, and `optional` (a load does not fail when the checkpoint lacks it).
    `single` says whether a load returns one array (shard, replicated) or a list (boxes)."""
    shape: Tuple[int, ...]
    dtype: Optional[DTypeLike]
    boxes: List[Box] = field(default_factory=list)
    optional: bool = False
    single: bool = True


def _shape(shape: Shape, what: str) -> Tuple[int, ...]:
    try:
        t = tuple(int(s) for s in shape)
    except TypeError:
        raise InvalidArgumentError(f"{what}: a shape must be a sequence of ints, got {shape!r}") from None
    if len(t) > _lib.MAX_NDIM:
        raise InvalidArgumentError(f"{what}: {len(t)} dims, at most {_lib.MAX_NDIM}")
    return t


def _array_shape(data: ArrayLike) -> Tuple[int, ...]:
    return tuple(int(s) for s in data.shape)


def shard_box(shape: Shape, dim: int, rank: int, world: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """(offset, extent) of the box rank `rank` of `world` holds under an even Shard(dim) split
    of a tensor of global `shape` (ckpt_shard_box): dim `dim` cut in chunks of
    ceil(n/world) rows, the last ones smaller or empty; every other dim whole."""
    shape = _shape(shape, "shard_box")
    n = len(shape)
    if dim < 0:
        dim += n
    off = (ctypes.c_int64 * max(1, n))()
    ext = (ctypes.c_int64 * max(1, n))()
    check(_lib.lib.ckpt_shard_box(n, _lib.shape_array(shape), dim, rank, world, off, ext))
    return tuple(off[:n]), tuple(ext[:n])


def shard(data: Optional[ArrayLike], shape: Shape, dim: int, rank: int, world: int, *,
          dtype: Optional[DTypeLike] = None, optional: bool = False) -> TensorSpec:
    """This rank's Shard(`dim`) box of a tensor of global `shape` (see shard_box).

    `data` is the rank's local part, of the box's extent: saved from, or loaded into in place.
    For a load, `data=None` allocates it (`dtype` then says which; returned by ckpt.load).
    A negative `dim` counts from the end."""
    shape = _shape(shape, "shard")
    off, ext = shard_box(shape, dim, rank, world)
    if data is None and dtype is None:
        raise InvalidArgumentError("shard: give the data, or the dtype to allocate it")
    return TensorSpec(shape, dtype, [Box(off, ext, data)], optional)


def replicated(data: Optional[ArrayLike] = None, *, shape: Optional[Shape] = None,
               dtype: Optional[DTypeLike] = None, optional: bool = False) -> TensorSpec:
    """The whole tensor, held by this rank. Saved by several ranks, the copies are replicas
    written once. For a load, give `data` to fill in place, or `shape` and `dtype` to
    allocate. A bare array in a save's state means the same."""
    if data is None:
        if shape is None or dtype is None:
            raise InvalidArgumentError("replicated: give the data, or the shape and dtype to allocate it")
        shape = _shape(shape, "replicated")
    else:
        got = _array_shape(data)
        shape = got if shape is None else _shape(shape, "replicated")
    return TensorSpec(shape, dtype, [Box((0,) * len(shape), shape, data)], optional)


def boxes(shape: Shape, parts: Iterable[Tuple[Shape, object]], *, dtype: Optional[DTypeLike] = None,
          optional: bool = False) -> TensorSpec:
    """Any boxes of a tensor of global `shape`: `parts` is a sequence of ``(offset, data)``
    pairs, the box's extent being the array's shape, or, for a load that allocates,
    ``(offset, extent)`` pairs (then `dtype` is needed). A load returns a list of arrays,
    one per box, in this order. Zero boxes on a rank is allowed."""
    shape = _shape(shape, "boxes")
    out = TensorSpec(shape, dtype, [], optional, single=False)
    for i, part in enumerate(parts):
        try:
            offset, second = part
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"boxes: part {i} is not an (offset, data) or (offset, extent) pair") from None
        offset = _shape(offset, f"boxes: part {i} offset")
        if arrays.is_array(second):
            out.boxes.append(Box(offset, _array_shape(second), second))
        else:
            if dtype is None:
                raise InvalidArgumentError(f"boxes: part {i} gives an extent: a dtype is needed to allocate it")
            out.boxes.append(Box(offset, _shape(second, f"boxes: part {i} extent"), None))
    return out


def as_spec(name: str, entry: object) -> TensorSpec:
    """A state's value as a TensorSpec: TensorSpecs as they are, a bare array as replicated."""
    if isinstance(entry, TensorSpec):
        return entry
    if arrays.is_array(entry):
        return replicated(entry)
    raise InvalidArgumentError(f"tensor '{name}': expected ckpt.shard(...), ckpt.replicated(...), "
                               f"ckpt.boxes(...) or an array, got {type(entry).__name__}")

