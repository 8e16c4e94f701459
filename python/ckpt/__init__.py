"""ckpt -- distributed, reshardable checkpoints of NumPy arrays and PyTorch CPU tensors.

A thin binding (ctypes) over libckpt's public C API (ckpt.h); nothing the library does is
done again in Python. A tensor is a global array (name, dtype, shape); each rank says which
boxes of it it holds (save) or wants (load), and a load works at any world size and in any
sharding, reading only the overlapping pieces, checksums verified.

    ckpt.save(path, state, comm=None, attrs=..., layout=..., compress=...)   collective
    ckpt.load(path, want, comm=None) -> ckpt.Loaded (name -> array, .attrs)  collective
    ckpt.shard(a, global_shape, dim, rank, world) / ckpt.replicated(a) / ckpt.boxes(...)
    ckpt.open(path) -> ckpt.Reader           tensors, boxes, attrs, read(region), verify()
    ckpt.Manager(root, comm, keep_last=...)  latest(), should_save(), save(step, state)
    ckpt.preempt.install() / requested(comm) / EXIT_REQUEUE
    ckpt.split_state_dict / shard_state_dict / alloc_shards   FSDP-style row-sharded dicts
    ckpt.Error and one subclass per status (NotFoundError, CorruptError, ...)

comm is an mpi4py communicator (import mpi4py.MPI first) or None for one process. Errors
of collective calls are the same on every rank. bf16 arrays are uint16 bits (see
ckpt.dtypes). The library is found as described in ckpt._lib (CKPT_LIBRARY overrides).
"""
from . import dtypes, preempt
from ._lib import path as library_path
from .boxes import Box, TensorSpec, boxes, replicated, shard, shard_box
from .dtypes import torch_dtype
from .errors import (CorruptError, CoverageError, Error, ExistsError, IncompleteError,
                     InvalidArgumentError, IOFailureError, MismatchError, MPIError, NoMemoryError,
                     NotFoundError, UnsupportedError, VersionError, BusyError, error_class)
from .load import Loaded, load
from .manager import Entry, Manager
from .reader import BoxInfo, Reader, TensorInfo, open
from .save import save
from .sharded import alloc_shards, local_shape, shard_state_dict, split_state_dict

__version__ = "0.2.0"

#: Exit status after a save on preemption (CKPT_EXIT_REQUEUE, 75).
EXIT_REQUEUE = preempt.EXIT_REQUEUE


def can_cast(src, dst) -> bool:
    """Whether a load or read converts dtype `src` to `dst` (ckpt_dtype_can_cast): any dtype
    to itself, and among f32/f64/f16/bf16."""
    from . import _lib
    return bool(_lib.lib.ckpt_dtype_can_cast(dtypes.code_of(src), dtypes.code_of(dst)))


def convert(array, dtype, *, src=None):
    """`array` converted to `dtype` as loads do (ckpt_dtype_convert: round to nearest even,
    NaN stays NaN, overflow gives Inf), as a new numpy array. `src` names the array's dtype
    when its storage does not (uint16 bits as "bf16")."""
    import numpy as np
    from . import _lib, arrays
    from .errors import check
    a, implied = arrays.view(array, "convert", writable=False)
    s = dtypes.code_of_array(a, src if src is not None else implied)
    d = dtypes.code_of(dtype)
    out = np.empty(a.shape, dtypes.numpy_dtype(d))
    check(_lib.lib.ckpt_dtype_convert(s, arrays.address(a), d, arrays.address(out), a.size))
    return out


__all__ = [
    "save", "load", "Loaded", "shard", "replicated", "boxes", "shard_box", "Box", "TensorSpec",
    "open", "Reader", "TensorInfo", "BoxInfo", "Manager", "Entry", "preempt", "EXIT_REQUEUE",
    "shard_state_dict", "split_state_dict", "alloc_shards", "local_shape", "dtypes", "torch_dtype", "can_cast",
    "convert", "library_path", "Error", "error_class", "InvalidArgumentError", "NoMemoryError",
    "IOFailureError", "NotFoundError", "IncompleteError", "CorruptError", "MismatchError",
    "CoverageError", "VersionError", "MPIError", "ExistsError", "UnsupportedError", "BusyError",
]
