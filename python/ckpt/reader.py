"""ckpt.open: a committed checkpoint seen from one process, no MPI needed (ckpt_reader_*)."""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import _lib, arrays, dtypes
from .dtypes import DTypeLike
from .errors import InvalidArgumentError, check
from .load import Loaded, load_options, run_load
from .save import PathLike
from .state import AttrValue, get_attrs

lib = _lib.lib
_LAYOUT_NAMES = {0: "file-per-rank", 1: "shared", 2: "file-per-group"}


@dataclass(frozen=True)
class TensorInfo:
    """A saved tensor: name, dtype name ("f32", "bf16", ...), global shape, number of saved
    boxes (replicas once), bytes of the whole tensor and bytes its datasets take on disk."""
    name: str
    dtype: str
    shape: Tuple[int, ...]
    nboxes: int
    raw_bytes: int
    stored_bytes: int


@dataclass(frozen=True)
class BoxInfo:
    """A saved box: offset, extent, the rank that wrote it, its file (relative to the
    checkpoint directory), the HDF5 dataset inside it, and its number of checksummed pieces."""
    offset: Tuple[int, ...]
    extent: Tuple[int, ...]
    writer_rank: int
    file: str
    dataset: str
    npieces: int


class Reader:
    """An open checkpoint (see ckpt.open). Use as a context manager or call close()."""

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)
        self._h = ctypes.c_void_p()
        h = ctypes.c_void_p()
        check(lib.ckpt_reader_open(_lib.encode(self.path), ctypes.byref(h)))
        self._h = h
        self.format_version: int = lib.ckpt_reader_format_version(h)
        #: The libckpt version that wrote the checkpoint.
        self.library_version: str = _lib.decode(lib.ckpt_reader_library_version(h))
        #: Ranks that saved it.
        self.world_size: int = lib.ckpt_reader_world_size(h)
        #: "file-per-rank", "shared" or "file-per-group".
        self.layout: str = _lib.decode(lib.ckpt_layout_name(lib.ckpt_reader_layout(h)))
        #: "none", or e.g. "zstd:1+shuffle".
        self.compression: str = _lib.decode(lib.ckpt_reader_compression(h))
        self.piece_bytes: int = lib.ckpt_reader_piece_bytes(h)
        #: The checkpoint's attributes.
        self.attrs: Dict[str, AttrValue] = get_attrs(lib.ckpt_reader_attrs(h))

    def close(self) -> None:
        if getattr(self, "_h", None):
            lib.ckpt_reader_close(self._h)
            self._h = ctypes.c_void_p()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def _handle(self):
        if not self._h:
            raise InvalidArgumentError(f"checkpoint '{self.path}': the reader is closed")
        return self._h

    def _info(self, i: int) -> TensorInfo:
        ti = _lib.TensorInfo()
        check(lib.ckpt_reader_tensor_info(self._handle(), i, ctypes.byref(ti)))
        return TensorInfo(_lib.decode(ti.name), dtypes.name(ti.dtype), tuple(ti.shape[:ti.ndim]),
                          ti.nboxes, ti.raw_bytes, ti.stored_bytes)

    def _index(self, name: str) -> int:
        i = ctypes.c_int()
        check(lib.ckpt_reader_find(self._handle(), _lib.encode(name), ctypes.byref(i)))
        return i.value

    @property
    def tensors(self) -> List[TensorInfo]:
        """Every tensor, in name order."""
        return [self._info(i) for i in range(lib.ckpt_reader_num_tensors(self._handle()))]

    def names(self) -> List[str]:
        return [t.name for t in self.tensors]

    def __contains__(self, name: str) -> bool:
        i = ctypes.c_int()
        return lib.ckpt_reader_find(self._handle(), _lib.encode(name), ctypes.byref(i)) == 0

    def tensor(self, name: str) -> TensorInfo:
        """The tensor `name` (ckpt.NotFoundError when absent)."""
        return self._info(self._index(name))

    def boxes(self, name: str) -> List[BoxInfo]:
        """The saved boxes of tensor `name`, in the index's order."""
        i = self._index(name)
        info = self._info(i)
        n = len(info.shape)
        out = []
        for j in range(info.nboxes):
            b = _lib.BoxInfo()
            check(lib.ckpt_reader_box_info(self._handle(), i, j, ctypes.byref(b)))
            out.append(BoxInfo(tuple(b.offset[:n]), tuple(b.extent[:n]), b.writer_rank,
                               _lib.decode(b.file), _lib.decode(b.dataset), b.npieces))
        return out

    def read(self, name: str, offset: Optional[Sequence[int]] = None,
             extent: Optional[Sequence[int]] = None, *, dtype: Optional[DTypeLike] = None,
             out: Optional[Any] = None, verify: bool = True) -> Any:
        """Reads the region [offset, offset + extent) of tensor `name` (default: all of it).

        Only the saved pieces overlapping the region are read, their checksums verified
        (verify=True; ckpt.CorruptError on a mismatch). dtype: the dtype to return (default
        the saved one; float dtypes convert among each other). out: an array or CPU tensor
        of the region's shape to fill in place (returned); else a new numpy array (bf16 as
        uint16 bits, see ckpt.dtypes)."""
        info = self.tensor(name)
        n = len(info.shape)
        off = tuple(offset) if offset is not None else (0,) * n
        if len(off) != n:
            raise InvalidArgumentError(f"tensor '{name}': offset {list(off)} for a {n}-D tensor")
        ext = tuple(extent) if extent is not None else tuple(s - o for s, o in zip(info.shape, off))
        if out is None:
            code = dtypes.code_of(dtype if dtype is not None else info.dtype)
            arr = obj = np.empty(ext, dtypes.numpy_dtype(code))
        else:
            obj = out
            arr, implied = arrays.view(out, f"tensor '{name}'", writable=True)
            code = dtypes.code_of_array(arr, dtype if dtype is not None else implied)
            if tuple(arr.shape) != tuple(ext):
                raise InvalidArgumentError(f"tensor '{name}': region extent {list(ext)} but `out` "
                                           f"has shape {list(arr.shape)}")
        check(lib.ckpt_reader_read(self._handle(), _lib.encode(name), code, _lib.shape_array(off),
                                   _lib.shape_array(ext), arrays.address(arr), int(bool(verify))))
        return obj

    def verify(self, names: Optional[Iterable[str]] = None, max_bytes: int = 64 << 20) -> int:
        """Reads every saved box of the tensors `names` (default: all) with checksum
        verification, at most about `max_bytes` at a time, and returns the number of boxes
        verified. Raises the first ckpt.Error met (ckpt.CorruptError, ckpt.NotFoundError for
        a missing data file, ...), naming tensor, box and file."""
        count = 0
        for name in (list(names) if names is not None else self.names()):
            info = self.tensor(name)
            item = dtypes.size(dtypes.code_of(info.dtype))
            for b in self.boxes(name):
                for off, ext in _slabs(b.offset, b.extent, item, max_bytes):
                    self.read(name, off, ext, verify=True)
                count += 1
        return count

    def load(self, want: Mapping[str, Any], *, verify: bool = True,
             threads: Optional[int] = None) -> Loaded:
        """ckpt.load from this process alone (ckpt_reader_load): `want` as for ckpt.load."""
        opts = load_options(verify, threads)
        h = self._handle()
        return run_load(want, None, lambda st: check(lib.ckpt_reader_load(h, st, ctypes.byref(opts))))

    def __repr__(self) -> str:
        return (f"<ckpt.Reader {self.path!r}: {self.layout}, world size {self.world_size}, "
                f"{lib.ckpt_reader_num_tensors(self._h) if self._h else 0} tensors>")


def _slabs(offset, extent, item: int, max_bytes: int):
    """The box cut along dim 0 into slabs of at most max_bytes (at least one row)."""
    if not extent:
        yield offset, extent
        return
    row = item
    for e in extent[1:]:
        row *= e
    rows = max(1, max_bytes // max(1, row))
    start = 0
    while True:
        n = min(rows, extent[0] - start)
        yield (offset[0] + start,) + tuple(offset[1:]), (n,) + tuple(extent[1:])
        start += n
        if start >= extent[0]:
            return


def open(path: PathLike) -> Reader:  # noqa: A001 (ckpt.open, as the issue names it)
    """Opens the committed checkpoint directory `path` for reading, from one process
    (no MPI). Raises ckpt.NotFoundError (no such checkpoint), ckpt.IncompleteError (no
    commit marker), ckpt.VersionError or ckpt.CorruptError.

    ::

        with ckpt.open("ckpt/step-1") as r:
            print(r.world_size, r.layout, r.attrs)
            for t in r.tensors: print(t.name, t.dtype, t.shape)
            rows = r.read("w", (0, 0), (2, 2))       # any region, checksums verified
            r.verify()                                # every piece of every tensor
    """
    return Reader(path)
