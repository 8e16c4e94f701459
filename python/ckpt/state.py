"""A ckpt_state built from Python: tensors, boxes (pointing at the caller's memory) and
attributes; and the attributes read back out of one."""
from __future__ import annotations

import ctypes
import numbers
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from . import _lib, arrays, dtypes
from .boxes import TensorSpec, as_spec
from .errors import Error, InvalidArgumentError, check

AttrValue = Union[int, float, str, bytes]
lib = _lib.lib
_OPTIONAL = 0x1  # CKPT_TENSOR_OPTIONAL
_ATTR_INT, _ATTR_DOUBLE, _ATTR_STRING, _ATTR_BYTES = 0, 1, 2, 3


class State:
    """Owns one ckpt_state and keeps alive every array its boxes point at."""

    def __init__(self) -> None:
        h = ctypes.c_void_p()
        check(lib.ckpt_state_create(ctypes.byref(h)))
        self.handle = h
        self.keep: List[Any] = []
        # name -> (spec, [the object to hand back per box])
        self.out: Dict[str, Tuple[TensorSpec, List[Any]]] = {}

    def close(self) -> None:
        if self.handle:
            lib.ckpt_state_free(self.handle)
            self.handle = ctypes.c_void_p()
        self.keep = []

    def __enter__(self) -> "State":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, name: str, entry: object, load: bool) -> None:
        spec = as_spec(name, entry)
        bname = _lib.encode(name)
        code = _spec_dtype(name, spec)
        ndim = len(spec.shape)
        check(lib.ckpt_state_add_tensor(self.handle, bname, code, ndim, _lib.shape_array(spec.shape),
                                        _OPTIONAL if spec.optional else 0))
        outs = []
        for b in spec.boxes:
            if len(b.offset) != ndim or len(b.extent) != ndim:
                raise InvalidArgumentError(f"tensor '{name}': box offset {list(b.offset)} / extent "
                                           f"{list(b.extent)} do not have the tensor's {ndim} dims")
            if b.data is None:
                if not load:
                    raise InvalidArgumentError(f"tensor '{name}': a save needs the data of every box")
                obj = np.empty(b.extent, dtypes.numpy_dtype(code))
                arr = obj
            else:
                obj = b.data
                arr, _ = arrays.view(obj, f"tensor '{name}'", writable=load)
                if tuple(arr.shape) != tuple(b.extent):
                    raise InvalidArgumentError(
                        f"tensor '{name}': the box at offset {list(b.offset)} has extent "
                        f"{list(b.extent)} but the array has shape {list(arr.shape)}")
            self.keep.append(arr)
            outs.append(obj)
            check(lib.ckpt_state_add_box(self.handle, bname, _lib.shape_array(b.offset),
                                         _lib.shape_array(b.extent), arrays.address(arr)))
        self.out[name] = (spec, outs)

    def set_attrs(self, attrs: Mapping[str, AttrValue]) -> None:
        for key, value in attrs.items():
            set_attr(self.handle, key, value)

    def attrs(self) -> Dict[str, AttrValue]:
        return get_attrs(self.handle)

    def loaded(self, name: str) -> bool:
        got = ctypes.c_int()
        check(lib.ckpt_state_tensor_loaded(self.handle, _lib.encode(name), ctypes.byref(got)))
        return bool(got.value)


def _spec_dtype(name: str, spec: TensorSpec) -> int:
    """The one dtype of a tensor's boxes: spec.dtype, checked against every array."""
    code: Optional[int] = None
    for b in spec.boxes:
        if b.data is None:
            continue
        arr, implied = arrays.view(b.data, f"tensor '{name}'", writable=False)
        try:
            c = dtypes.code_of_array(arr, spec.dtype if spec.dtype is not None else implied)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"tensor '{name}': {e}") from None
        if code is not None and c != code:
            raise InvalidArgumentError(f"tensor '{name}': boxes of dtypes {dtypes.name(code)} "
                                       f"and {dtypes.name(c)}")
        code = c
    if code is None:
        if spec.dtype is None:
            raise InvalidArgumentError(f"tensor '{name}': no box has data; give dtype=")
        try:
            code = dtypes.code_of(spec.dtype)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"tensor '{name}': {e}") from None
    return code


def set_attr(handle, key: str, value: AttrValue) -> None:
    k = _lib.encode(key)
    if isinstance(value, (bool, np.bool_)) or isinstance(value, numbers.Integral):
        v = int(value)
        if not -2**63 <= v < 2**63:
            raise InvalidArgumentError(f"attribute '{key}': {v} does not fit in int64")
        check(lib.ckpt_state_set_int(handle, k, v))
    elif isinstance(value, numbers.Real):
        check(lib.ckpt_state_set_double(handle, k, float(value)))
    elif isinstance(value, str):
        b = _lib.encode(value)
        if b"\0" in b:
            raise InvalidArgumentError(f"attribute '{key}': a string attribute cannot hold NUL "
                                       f"characters (store it as bytes)")
        check(lib.ckpt_state_set_string(handle, k, b))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
        check(lib.ckpt_state_set_bytes(handle, k, b, len(b)))
    else:
        raise InvalidArgumentError(f"attribute '{key}': {type(value).__name__} is not int, float, "
                                   f"str or bytes")


def get_attrs(handle) -> Dict[str, AttrValue]:
    out: Dict[str, AttrValue] = {}
    n = lib.ckpt_state_num_attrs(handle)
    for i in range(n):
        key, typ = ctypes.c_char_p(), ctypes.c_int()
        check(lib.ckpt_state_attr_info(handle, i, ctypes.byref(key), ctypes.byref(typ)))
        k = key.value
        if typ.value == _ATTR_INT:
            v = ctypes.c_int64()
            check(lib.ckpt_state_get_int(handle, k, ctypes.byref(v)))
            out[_lib.decode(k)] = v.value
        elif typ.value == _ATTR_DOUBLE:
            d = ctypes.c_double()
            check(lib.ckpt_state_get_double(handle, k, ctypes.byref(d)))
            out[_lib.decode(k)] = d.value
        elif typ.value == _ATTR_STRING:
            s = ctypes.c_char_p()
            check(lib.ckpt_state_get_string(handle, k, ctypes.byref(s)))
            out[_lib.decode(k)] = _lib.decode(s.value)
        elif typ.value == _ATTR_BYTES:
            p, ln = ctypes.c_void_p(), ctypes.c_size_t()
            check(lib.ckpt_state_get_bytes(handle, k, ctypes.byref(p), ctypes.byref(ln)))
            out[_lib.decode(k)] = ctypes.string_at(p, ln.value) if ln.value else b""
    return out


def build(tensors: Mapping[str, object], attrs: Optional[Mapping[str, AttrValue]], load: bool
          ) -> Tuple[Optional[State], Optional[Error]]:
    """A State holding `tensors` and `attrs`, or the first error met building it (returned,
    not raised, so that the caller agrees on it with the other ranks first)."""
    st = None
    try:
        st = State()
        if not isinstance(tensors, Mapping):
            raise InvalidArgumentError(f"the state must map tensor names to arrays or specs, got "
                                       f"{type(tensors).__name__}")
        for name, entry in tensors.items():
            if not isinstance(name, str):
                raise InvalidArgumentError(f"tensor names are str, got {name!r}")
            st.add(name, entry, load)
        if attrs:
            st.set_attrs(attrs)
        return st, None
    except Error as e:
        if st is not None:
            st.close()
        return None, e
    except (TypeError, ValueError, OverflowError) as e:
        if st is not None:
            st.close()
        return None, InvalidArgumentError(str(e))

