"""The ctypes declarations of python/ckpt/_lib.py match ckpt.h as the C compiler lays it out
(abi_probe.c): every field's offset, every struct's size, and the header's limits."""
import ctypes
import subprocess

import ckpt
from ckpt import _lib
from conftest import tool


def probe():
    out = subprocess.run([tool("python_abi_probe")], capture_output=True, text=True, check=True).stdout
    structs, fields, limits = {}, {}, None
    for line in out.splitlines():
        kind, *rest = line.split()
        if kind == "S":
            structs[rest[0]] = (int(rest[1]), int(rest[2]))
        elif kind == "F":
            fields[rest[0]] = int(rest[1])
        else:
            limits = tuple(map(int, rest))
    return structs, fields, limits


def test_structs_match_the_header():
    structs, fields, limits = probe()
    assert sorted(structs) == sorted(_lib.ABI_STRUCTS)
    for cname, py in _lib.ABI_STRUCTS.items():
        size, align = structs[cname]
        names = [f[0] for f in py._fields_ if f[0] != "_spare"]
        assert sorted(names) == sorted(k.split(".", 1)[1] for k in fields if k.startswith(cname + "."))
        for n in names:
            assert getattr(py, n).offset == fields[f"{cname}.{n}"], (cname, n)
        end = py._spare.offset if hasattr(py, "_spare") else ctypes.sizeof(py)
        assert -(-end // align) * align == size, cname
        if hasattr(py, "_spare"):  # room for a newer library's larger options
            assert ctypes.sizeof(py) >= size + 256
    assert limits == (len(ckpt.dtypes.NAMES), _lib.MAX_NDIM, _lib.MAX_NAME)
