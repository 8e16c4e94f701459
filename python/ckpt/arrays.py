"""Memory the library reads from or writes into: NumPy arrays and CPU torch.Tensors, zero-copy.

A torch.Tensor is seen through ``Tensor.numpy()`` (the same memory; a bfloat16 tensor through an
int16 view of it, since NumPy has no bfloat16), so a load into a tensor fills the tensor itself.
Nothing is ever copied here: memory that is not C-contiguous, native-endian and aligned, or that
is read-only when a load must fill it, is refused with a message saying what to do.
"""
from __future__ import annotations

import sys
from typing import Any, Optional, Tuple

import numpy as np

from . import dtypes
from .errors import InvalidArgumentError

ArrayLike = Any  # numpy.ndarray or a CPU torch.Tensor


def is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or is_tensor(x)


def view(x: ArrayLike, what: str, writable: bool) -> Tuple[np.ndarray, Optional[int]]:
    """A NumPy view of `x` (no copy) and the ckpt dtype its type implies (bf16 for
    torch.bfloat16, else None: the view's dtype tells). `what` names it in errors."""
    implied = None
    if is_tensor(x):
        import torch
        if x.device.type != "cpu":
            raise InvalidArgumentError(f"{what}: a torch tensor on {x.device}; only CPU tensors "
                                       f"are supported (use .cpu())")
        if not x.is_contiguous():
            raise InvalidArgumentError(f"{what}: the torch tensor is not contiguous (use .contiguous())")
        t = x.detach()
        if t.dtype == torch.bfloat16:
            arr = t.view(torch.int16).numpy().view(np.uint16)
            implied = dtypes.BF16
        else:
            try:
                arr = t.numpy()
            except (TypeError, RuntimeError) as e:
                raise InvalidArgumentError(f"{what}: torch tensor of {t.dtype}: {e}") from None
    elif isinstance(x, np.ndarray):
        arr = x
    else:
        raise InvalidArgumentError(f"{what}: expected a numpy.ndarray or a CPU torch.Tensor, "
                                   f"got {type(x).__name__}")
    if not arr.flags.c_contiguous:
        raise InvalidArgumentError(f"{what}: the array is not C-contiguous (use numpy.ascontiguousarray)")
    if not arr.flags.aligned or not arr.dtype.isnative:
        raise InvalidArgumentError(f"{what}: the array is not aligned or not in native byte order")
    if writable and not arr.flags.writeable:
        raise InvalidArgumentError(f"{what}: the array is read-only and a load must fill it")
    return arr, implied


def address(arr: np.ndarray) -> int:
    """The address of the first element (what the C API's `void *data` gets)."""
    return arr.__array_interface__["data"][0]
