"""Finding and loading libckpt.so, and the ctypes prototypes of its public API (ckpt.h).

This is the only module that knows the C declarations. Every struct below mirrors one of
ckpt.h field for field; the versioned option structs get trailing spare room so that a newer
library whose ``*_options_init`` fills a larger struct never writes past our buffer (the
library reads the fields it knows from the version it wrote itself).

Where the library is looked for, first found wins:

1. ``$CKPT_LIBRARY``: the path of ``libckpt.so`` (or of the directory holding it). When set,
   nothing else is tried, so a wrong value is an error and not a silent fallback.
2. The copy bundled into the package by ``pip install ./python`` (``ckpt/_lib/``).
3. The library a CMake install put beside this package (``_install_config.py``, a path
   relative to this directory, so the installed tree may be moved).
4. The build tree of a source checkout: ``<repo>/build/libckpt/`` and ``$CKPT_BUILD_DIR``.
5. The dynamic linker's search (``ldconfig`` cache, ``LD_LIBRARY_PATH``): ``libckpt.so.0``.
"""
from __future__ import annotations

import ctypes
import os
from ctypes import (POINTER, Structure, c_char, c_char_p, c_double, c_int, c_int64, c_size_t,
                    c_uint, c_void_p)
from typing import List, Optional

SONAME = "libckpt.so.0"
MAX_NDIM = 8
MAX_NAME = 1024

_here = os.path.dirname(os.path.abspath(__file__))


def _candidates() -> List[str]:
    found: List[str] = []
    bundled = os.path.join(_here, "_lib", SONAME)
    if os.path.exists(bundled):
        found.append(bundled)
    try:
        from . import _install_config  # written by the CMake install
        found.append(os.path.normpath(os.path.join(_here, _install_config.LIBRARY)))
    except ImportError:
        pass
    build_dirs = []
    if os.environ.get("CKPT_BUILD_DIR"):
        build_dirs.append(os.environ["CKPT_BUILD_DIR"])
    build_dirs.append(os.path.join(_here, "..", "..", "build"))  # python/ckpt -> <repo>/build
    for b in build_dirs:
        found.append(os.path.normpath(os.path.join(b, "libckpt", SONAME)))
    return found


def _load() -> ctypes.CDLL:
    env = os.environ.get("CKPT_LIBRARY")
    if env:
        path = os.path.abspath(os.path.join(env, SONAME) if os.path.isdir(env) else env)
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            raise ImportError(f"ckpt: cannot load libckpt from CKPT_LIBRARY={env!r}: {e}") from None
    tried = []
    for path in _candidates():
        if not os.path.exists(path):
            tried.append(f"{path} (absent)")
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
    try:
        return ctypes.CDLL(SONAME)
    except OSError as e:
        tried.append(f"{SONAME} from the linker's search path ({e})")
    raise ImportError("ckpt: libckpt.so not found; build it (cmake --build build), then set "
                      "CKPT_LIBRARY=/path/to/libckpt.so, or install it (cmake --install build, or "
                      "pip install ./python after the build). Tried: " + "; ".join(tried))


lib = _load()
#: The file the library was loaded from.
path: str = lib._name


class SaveOptions(Structure):
    _fields_ = [("version", c_uint), ("layout", c_int), ("overwrite", c_int), ("fsync", c_int),
                ("piece_bytes", c_int64), ("compress", c_int), ("level", c_int),
                ("shuffle", c_int), ("threads", c_int), ("group_size", c_int), ("_spare", c_char * 256)]


class LoadOptions(Structure):
    _fields_ = [("version", c_uint), ("verify", c_int), ("threads", c_int),
                ("_spare", c_char * 256)]


class TensorInfo(Structure):
    _fields_ = [("name", c_char_p), ("dtype", c_int), ("ndim", c_int),
                ("shape", c_int64 * MAX_NDIM), ("nboxes", c_int64), ("raw_bytes", c_int64),
                ("stored_bytes", c_int64)]


class BoxInfo(Structure):
    _fields_ = [("offset", c_int64 * MAX_NDIM), ("extent", c_int64 * MAX_NDIM),
                ("writer_rank", c_int), ("file", c_char_p), ("dataset", c_char_p),
                ("npieces", c_int64)]


WARN_FN = ctypes.CFUNCTYPE(None, c_char_p, c_void_p)


class ManagerOptions(Structure):
    _fields_ = [("version", c_uint), ("keep_last", c_int), ("keep_every", c_int64),
                ("keep_best", c_int), ("best_metric", c_char_p), ("best_mode", c_int),
                ("save_every_steps", c_int64), ("save_every_secs", c_double),
                ("warn", WARN_FN), ("warn_user", c_void_p), ("_spare", c_char * 256)]


class ManagerEntry(Structure):
    _fields_ = [("step", c_int64), ("state", c_int), ("status", c_int), ("bytes", c_int64),
                ("has_metric", c_int), ("metric", c_double), ("name", c_char * 256)]


# The struct sizes without the spare room, for the ABI test against the C compiler's view.
ABI_STRUCTS = {"ckpt_save_options": SaveOptions, "ckpt_load_options": LoadOptions,
               "ckpt_tensor_info": TensorInfo, "ckpt_box_info": BoxInfo,
               "ckpt_manager_options": ManagerOptions, "ckpt_manager_entry": ManagerEntry}


def comm_type(size: int):
    """The ctypes type of an MPI_Comm of `size` bytes (a pointer in Open MPI, an int in MPICH)."""
    return c_void_p if size == ctypes.sizeof(c_void_p) else c_int


P64 = POINTER(c_int64)
vp = c_void_p
_protos = {
    # errors
    "ckpt_errmsg": (c_char_p, []),
    "ckpt_errcode": (c_int, []),
    "ckpt_status_name": (c_char_p, [c_int]),
    # dtypes
    "ckpt_dtype_size": (c_size_t, [c_int]),
    "ckpt_dtype_name": (c_char_p, [c_int]),
    "ckpt_dtype_can_cast": (c_int, [c_int, c_int]),
    "ckpt_dtype_convert": (c_int, [c_int, vp, c_int, vp, c_size_t]),
    "ckpt_shard_box": (c_int, [c_int, P64, c_int, c_int, c_int, P64, P64]),
    # state
    "ckpt_state_create": (c_int, [POINTER(vp)]),
    "ckpt_state_free": (None, [vp]),
    "ckpt_state_add_tensor": (c_int, [vp, c_char_p, c_int, c_int, P64, c_uint]),
    "ckpt_state_add_box": (c_int, [vp, c_char_p, P64, P64, vp]),
    "ckpt_state_tensor_loaded": (c_int, [vp, c_char_p, POINTER(c_int)]),
    "ckpt_state_set_int": (c_int, [vp, c_char_p, c_int64]),
    "ckpt_state_set_double": (c_int, [vp, c_char_p, c_double]),
    "ckpt_state_set_string": (c_int, [vp, c_char_p, c_char_p]),
    "ckpt_state_set_bytes": (c_int, [vp, c_char_p, c_char_p, c_size_t]),
    "ckpt_state_get_int": (c_int, [vp, c_char_p, P64]),
    "ckpt_state_get_double": (c_int, [vp, c_char_p, POINTER(c_double)]),
    "ckpt_state_get_string": (c_int, [vp, c_char_p, POINTER(c_char_p)]),
    "ckpt_state_get_bytes": (c_int, [vp, c_char_p, POINTER(vp), POINTER(c_size_t)]),
    "ckpt_state_num_attrs": (c_int, [vp]),
    "ckpt_state_attr_info": (c_int, [vp, c_int, POINTER(c_char_p), POINTER(c_int)]),
    # save / load
    "ckpt_save_options_init": (None, [POINTER(SaveOptions)]),
    "ckpt_load_options_init": (None, [POINTER(LoadOptions)]),
    "ckpt_layout_name": (c_char_p, [c_int]),
    # reader
    "ckpt_reader_open": (c_int, [c_char_p, POINTER(vp)]),
    "ckpt_reader_close": (None, [vp]),
    "ckpt_reader_format_version": (c_int, [vp]),
    "ckpt_reader_library_version": (c_char_p, [vp]),
    "ckpt_reader_world_size": (c_int, [vp]),
    "ckpt_reader_layout": (c_int, [vp]),
    "ckpt_reader_compression": (c_char_p, [vp]),
    "ckpt_reader_piece_bytes": (c_int64, [vp]),
    "ckpt_reader_num_tensors": (c_int, [vp]),
    "ckpt_reader_tensor_info": (c_int, [vp, c_int, POINTER(TensorInfo)]),
    "ckpt_reader_find": (c_int, [vp, c_char_p, POINTER(c_int)]),
    "ckpt_reader_box_info": (c_int, [vp, c_int, c_int64, POINTER(BoxInfo)]),
    "ckpt_reader_read": (c_int, [vp, c_char_p, c_int, P64, P64, vp, c_int]),
    "ckpt_reader_set_threads": (c_int, [vp, c_int]),
    "ckpt_reader_load": (c_int, [vp, vp, POINTER(LoadOptions)]),
    "ckpt_reader_attrs": (vp, [vp]),
    # manager (the collective ones get their comm type in bind_comm)
    "ckpt_manager_options_init": (None, [POINTER(ManagerOptions)]),
    "ckpt_manager_close": (None, [vp]),
    "ckpt_manager_step_path": (c_int, [vp, c_int64, c_char_p, c_size_t]),
    "ckpt_manager_latest": (c_int, [vp, P64, c_char_p, c_size_t]),
    "ckpt_manager_list": (c_int, [vp, POINTER(POINTER(ManagerEntry)), POINTER(c_int)]),
    "ckpt_manager_should_save": (c_int, [vp, c_int64, POINTER(c_int)]),
    "ckpt_manager_mark_saved": (c_int, [vp, c_int64]),
    "ckpt_manager_save": (c_int, [vp, c_int64, vp, POINTER(SaveOptions)]),
    "ckpt_manager_apply_retention": (c_int, [vp, POINTER(c_int)]),
    "ckpt_manager_clean_incomplete": (c_int, [vp, POINTER(c_int)]),
    # preemption
    "ckpt_preempt_install": (c_int, []),
    "ckpt_preempt_clear": (None, []),
}
for _name, (_res, _args) in _protos.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

# libc's free, for the arrays the library malloc's for the caller (ckpt_manager_list).
_libc = ctypes.CDLL(None)
free = _libc.free
free.restype = None
free.argtypes = [c_void_p]


# The calls that take an MPI_Comm: its C type depends on the MPI implementation (comm.py makes
# the ctypes value), so their arguments are passed as ctypes objects, undeclared.
for _name in ("ckpt_save", "ckpt_load", "ckpt_manager_open", "ckpt_preempt_requested"):
    getattr(lib, _name).restype = c_int


def shape_array(values) -> "ctypes.Array":
    """An int64_t[] holding `values` (at least one element, so the pointer is never NULL)."""
    vals = [int(v) for v in values]
    return (c_int64 * max(1, len(vals)))(*vals)


def decode(b: Optional[bytes]) -> str:
    return "" if b is None else b.decode("utf-8", "surrogateescape")


def encode(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")
