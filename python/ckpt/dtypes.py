"""The library's dtypes and their NumPy / PyTorch counterparts.

========  ==============  =================  =========================================
ckpt      NumPy           PyTorch            notes
========  ==============  =================  =========================================
f32       float32         torch.float32
f64       float64         torch.float64
f16       float16         torch.float16      IEEE binary16
bf16      uint16 (bits)   torch.bfloat16     NumPy has no bfloat16: see below
i8        int8            torch.int8
i16       int16           torch.int16
i32       int32           torch.int32
i64       int64           torch.int64
u8        uint8           torch.uint8
bool      bool_           torch.bool         one byte, 0 or 1
========  ==============  =================  =========================================

**bf16.** Arrays this package allocates for bf16 are ``uint16`` arrays holding the raw bfloat16
bits (the top 16 bits of the float32), whatever is installed, so code never depends on an
optional package. A ``uint16`` array is taken as bf16 only when ``dtype="bf16"`` is given
(uint16 is not a library dtype, so nothing is guessed). Arrays of ``ml_dtypes.bfloat16`` (if
that package is installed) and ``torch.bfloat16`` tensors are bf16 without being told, and
``arr.view(ml_dtypes.bfloat16)`` turns a returned uint16 array into numbers without a copy.
To get floats instead, load or read with ``dtype="f32"``: the library converts.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Union

import numpy as np

from . import _lib
from .errors import InvalidArgumentError

# Library codes (ckpt_dtype, ckpt.h) -> names as the library writes them on disk.
NAMES: Dict[int, str] = {}
for _code in range(64):
    _n = _lib.lib.ckpt_dtype_name(_code)
    if _n is None:
        break
    NAMES[_code] = _lib.decode(_n)
CODES: Dict[str, int] = {n: c for c, n in NAMES.items()}
BF16 = CODES["bf16"]

# Storage type of each dtype in NumPy (bf16 as its bits).
_NUMPY = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "bf16": np.uint16,
          "i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64, "u8": np.uint8,
          "bool": np.bool_}
NUMPY: Dict[int, np.dtype] = {CODES[n]: np.dtype(t) for n, t in _NUMPY.items() if n in CODES}
_FROM_NUMPY = {d: c for c, d in NUMPY.items() if c != BF16}

DTypeLike = Union[str, int, np.dtype, type, Any]


_ml_bf16_dtype = None
_ml_bf16_looked = False


def _ml_bf16():
    """ml_dtypes.bfloat16 when that optional package is installed (looked up once: a failing
    import costs a search of sys.path each time)."""
    global _ml_bf16_dtype, _ml_bf16_looked
    if not _ml_bf16_looked:
        try:
            import ml_dtypes
            _ml_bf16_dtype = np.dtype(ml_dtypes.bfloat16)
        except ImportError:
            pass
        _ml_bf16_looked = True
    return _ml_bf16_dtype


def _torch_name(dt) -> str:
    return str(dt).replace("torch.", "")


_TORCH = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16", "int8": "i8",
          "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8", "bool": "bool"}


def code_of(spec: DTypeLike) -> int:
    """The library code of a dtype given as a name ("f32", "bf16", also "float32",
    "bfloat16"), a code, a NumPy dtype or type, a torch.dtype or ml_dtypes.bfloat16."""
    if isinstance(spec, int) and not isinstance(spec, bool) and spec in NAMES:
        return spec
    if isinstance(spec, str):
        if spec in CODES:
            return CODES[spec]
        if spec in _TORCH:
            return CODES[_TORCH[spec]]
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(spec, torch.dtype):
        name = _TORCH.get(_torch_name(spec))
        if name is None:
            raise InvalidArgumentError(f"torch dtype {spec} has no ckpt dtype (have: {', '.join(CODES)})")
        return CODES[name]
    try:
        dt = np.dtype(spec)
    except TypeError:
        raise InvalidArgumentError(f"not a dtype: {spec!r} (have: {', '.join(CODES)})") from None
    bf = _ml_bf16()
    if bf is not None and dt == bf:
        return BF16
    if dt == np.uint16:
        raise InvalidArgumentError("uint16 is not a ckpt dtype: pass dtype='bf16' to store "
                                   "bfloat16 bits held in a uint16 array")
    if dt in _FROM_NUMPY:
        return _FROM_NUMPY[dt]
    raise InvalidArgumentError(f"NumPy dtype {dt} has no ckpt dtype (have: {', '.join(CODES)})")


def code_of_array(arr: np.ndarray, spec: DTypeLike = None) -> int:
    """The library dtype of the elements of `arr`: `spec` when given (checked against the
    array's storage type), else the array's own dtype."""
    if spec is None:
        return code_of(arr.dtype)
    code = code_of(spec)
    if code == BF16:
        bf = _ml_bf16()
        if arr.dtype in (np.dtype(np.uint16), np.dtype(np.int16)) or (bf is not None and arr.dtype == bf):
            return code
    elif arr.dtype == NUMPY[code]:
        return code
    raise InvalidArgumentError(f"dtype '{NAMES[code]}' was asked for an array of {arr.dtype}")


def torch_dtype(code: int):
    """The torch.dtype of a library dtype."""
    import torch
    return getattr(torch, next(t for t, n in _TORCH.items() if n == NAMES[code]))


def numpy_dtype(code: int) -> np.dtype:
    """The NumPy type arrays of this library dtype are allocated with (uint16 for bf16)."""
    return NUMPY[code]


def name(code: int) -> str:
    return NAMES[code]


def size(code: int) -> int:
    """Bytes per element (ckpt_dtype_size)."""
    return int(_lib.lib.ckpt_dtype_size(code))
