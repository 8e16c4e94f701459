"""The package in one process (comm=None, no MPI): every dtype through save/load and the
reader, attributes, in-place and allocated loads, the helpers, the reader's API, the manager,
preemption, conversions, Python-side argument errors, help texts, finding the library."""
import inspect
import os
import pydoc
import signal
import subprocess
import sys

import numpy as np
import pytest

import ckpt


ALL = ["f32", "f64", "f16", "bf16", "i8", "i16", "i32", "i64", "u8", "bool"]


def pattern(dtype, shape):
    dt = ckpt.dtypes.numpy_dtype(ckpt.dtypes.code_of(dtype))
    raw = np.random.default_rng(len(dtype)).integers(0, 256, int(np.prod(shape)) * dt.itemsize, dtype=np.uint8)
    if dtype == "bool":
        raw &= 1
    return raw.view(dt).reshape(shape)


def test_every_dtype_bit_exact(tmp_path):
    assert list(ckpt.dtypes.NAMES.values()) == ALL
    data = {d: pattern(d, (5, 3)) for d in ALL}
    ckpt.save(tmp_path / "c", {f"t/{d}": ckpt.replicated(a, dtype="bf16" if d == "bf16" else None)
                               for d, a in data.items()}, fsync=False)
    want = {f"t/{d}": ckpt.shard(None, (5, 3), 1, 1, 2, dtype=d) for d in ALL}
    got = ckpt.load(tmp_path / "c", want)
    for d in ALL:
        assert got[f"t/{d}"].dtype == ckpt.dtypes.numpy_dtype(ckpt.dtypes.code_of(d))
        assert got[f"t/{d}"].tobytes() == np.ascontiguousarray(data[d][:, 2:]).tobytes()
    with ckpt.open(tmp_path / "c") as r:
        assert [t.dtype for t in r.tensors] == sorted(ALL, key=lambda d: f"t/{d}")
        for d in ALL:
            assert r.read(f"t/{d}").tobytes() == data[d].tobytes()


def test_attributes_round_trip(tmp_path):
    attrs = {"i": -2**63, "j": 2**63 - 1, "f": 0.1, "nan": float("nan"), "s": "héllo ✓",
             "b": b"\x00\xff" * 3, "e": b"", "np": np.int32(4), "flag": True, "nf": np.float32(0.5)}
    ckpt.save(tmp_path / "c", {}, attrs=attrs, fsync=False)
    got = ckpt.load(tmp_path / "c", {}).attrs
    assert got.pop("nan") != got.get("nan")  # NaN comes back NaN
    assert got == {"i": -2**63, "j": 2**63 - 1, "f": 0.1, "s": "héllo ✓", "b": b"\x00\xff" * 3,
                   "e": b"", "np": 4, "flag": 1, "nf": 0.5}
    assert type(got["np"]) is int and type(got["nf"]) is float
    with ckpt.open(tmp_path / "c") as r:
        assert r.attrs["s"] == "héllo ✓"


@pytest.mark.parametrize("value,message", [
    (2**63, "attribute 'a': 9223372036854775808 does not fit in int64"),
    ("a\0b", "attribute 'a': a string attribute cannot hold NUL characters (store it as bytes)"),
    ([1], "attribute 'a': list is not int, float, str or bytes"),
])
def test_bad_attributes(tmp_path, value, message):
    with pytest.raises(ckpt.InvalidArgumentError) as e:
        ckpt.save(tmp_path / "c", {}, attrs={"a": value})
    assert str(e.value) == message and e.value.status == -1 and e.value.code == "CKPT_EINVAL"
    assert not (tmp_path / "c").exists()


def test_in_place_and_allocated(tmp_path):
    w = np.arange(30, dtype=np.float32).reshape(6, 5)
    ckpt.save(tmp_path / "c", {"w": w}, fsync=False)
    mine = np.zeros((6, 2), np.float32)
    addr = mine.__array_interface__["data"][0]
    got = ckpt.load(tmp_path / "c", {"w": ckpt.shard(mine, w.shape, 1, 1, 3)})
    assert got["w"] is mine and mine.__array_interface__["data"][0] == addr
    assert np.array_equal(mine, w[:, 2:4])
    parts = ckpt.load(tmp_path / "c", {"w": ckpt.boxes(w.shape, [((0, 0), (1, 5)), ((5, 3), (1, 2))], dtype="f64")})["w"]
    assert [p.dtype for p in parts] == [np.float64] * 2
    assert parts[0].tolist() == [w[0].tolist()] and parts[1].tolist() == [[28.0, 29.0]]
    opt = ckpt.load(tmp_path / "c", {"nope": ckpt.replicated(shape=(2,), dtype="f32", optional=True)})
    assert dict(opt) == {} and opt.missing == ["nope"]


def test_layouts_and_compression(tmp_path):
    w = pattern("f32", (64, 16))
    for i, kw in enumerate([dict(layout="shared"), dict(compress="zstd", level=-3, shuffle=False),
                            dict(layout="shared", compress="zstd", threads=2)]):
        ckpt.save(tmp_path / f"c{i}", {"w": w}, fsync=False, piece_bytes=1024, **kw)
        with ckpt.open(tmp_path / f"c{i}") as r:
            assert r.layout == kw.get("layout", "file-per-rank") and r.piece_bytes == 1024
            assert r.compression == {0: "none", 1: "zstd:-3", 2: "zstd:1+shuffle"}[i]
            assert r.read("w").tobytes() == w.tobytes()
    v = np.arange(w.size, dtype=np.float32).reshape(w.shape)
    ckpt.save(tmp_path / "c0", {"w": v}, overwrite=True, fsync=False)
    assert np.array_equal(ckpt.load(tmp_path / "c0", {"w": np.zeros_like(w)})["w"], v)


def test_helpers_mirror_the_library():
    assert ckpt.shard_box((10, 4), 0, 3, 4) == ((9, 0), (1, 4))   # ceil(10/4) = 3 rows each
    assert ckpt.shard_box((10, 4), -1, 1, 3) == ((0, 2), (10, 2))
    assert ckpt.shard_box((2,), 0, 2, 3) == ((2,), (0,))            # empty shard
    assert ckpt.local_shape((10, 4), 3, 4) == (1, 4)
    with pytest.raises(ckpt.InvalidArgumentError, match=r"^ckpt_shard_box: dim 2 outside 0\.\.1$"):
        ckpt.shard_box((3, 3), 2, 0, 1)
    s = ckpt.replicated(np.zeros((2, 3)))
    assert (s.shape, s.boxes[0].offset, s.boxes[0].extent) == ((2, 3), (0, 0), (2, 3))


@pytest.mark.parametrize("make,message", [
    (lambda: {"w": np.zeros((4, 4), np.float32)[:, :2]},
     "tensor 'w': the array is not C-contiguous (use numpy.ascontiguousarray)"),
    (lambda: {"w": np.zeros(3, np.uint16)},
     "tensor 'w': uint16 is not a ckpt dtype: pass dtype='bf16' to store bfloat16 bits held in a uint16 array"),
    (lambda: {"w": np.zeros(3, np.complex64)},
     "tensor 'w': NumPy dtype complex64 has no ckpt dtype (have: f32, f64, f16, bf16, i8, i16, i32, i64, u8, bool)"),
    (lambda: {"w": np.zeros(3, ">f4")}, "tensor 'w': the array is not aligned or not in native byte order"),
    (lambda: {"w": ckpt.shard(np.zeros((2, 3), np.float32), (5, 3), 0, 0, 2)},
     "tensor 'w': the box at offset [0, 0] has extent [3, 3] but the array has shape [2, 3]"),
    (lambda: {"w": ckpt.replicated(np.zeros(3, np.float32), dtype="f64")},
     "tensor 'w': dtype 'f64' was asked for an array of float32"),
    (lambda: {"w": [1, 2]}, "tensor 'w': expected ckpt.shard(...), ckpt.replicated(...), ckpt.boxes(...) or an array, got list"),
    (lambda: {"a//b": np.zeros(1)}, None),
])
def test_bad_state(tmp_path, make, message):
    with pytest.raises(ckpt.InvalidArgumentError) as e:
        ckpt.save(tmp_path / "c", make())
    if message is not None:
        assert str(e.value) == message
    else:  # the library's own name check
        assert "a//b" in str(e.value)
    assert not (tmp_path / "c").exists()


def test_load_needs_writable_arrays(tmp_path):
    ckpt.save(tmp_path / "c", {"w": np.ones(3, np.float32)}, fsync=False)
    ro = np.zeros(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ckpt.InvalidArgumentError, match="^tensor 'w': the array is read-only and a load must fill it$"):
        ckpt.load(tmp_path / "c", {"w": ro})
    with pytest.raises(ckpt.NotFoundError, match="'x'"):
        ckpt.load(tmp_path / "c", {"x": np.zeros(3, np.float32)})
    with pytest.raises(ckpt.InvalidArgumentError, match="^unknown layout 'striped'"):
        ckpt.save(tmp_path / "d", {}, layout="striped")
    with pytest.raises(TypeError, match="comm must be an mpi4py communicator or None, got int"):
        ckpt.load(tmp_path / "c", {}, comm=3)


def test_reader(tmp_path):
    w = np.arange(24, dtype=np.float32).reshape(4, 6)
    ckpt.save(tmp_path / "c", {"w": ckpt.boxes(w.shape, [((0, 0), w[:, :3].copy()), ((0, 3), w[:, 3:].copy())]),
                               "g/s": np.array(2.5)}, attrs={"step": 3}, fsync=False)
    with ckpt.open(tmp_path / "c") as r:
        assert (r.format_version, r.library_version, r.world_size) == (2, "0.2.0", 1)
        assert r.names() == ["g/s", "w"] and "w" in r and "v" not in r
        t = r.tensor("w")
        assert (t.dtype, t.shape, t.nboxes, t.raw_bytes) == ("f32", (4, 6), 2, 96)
        b = r.boxes("w")
        assert [(x.offset, x.extent, x.writer_rank, x.file) for x in b] == \
            [((0, 0), (4, 3), 0, "rank-00000.h5"), ((0, 3), (4, 3), 0, "rank-00000.h5")]
        assert r.read("w", (1, 2), (2, 2)).tolist() == [[8.0, 9.0], [14.0, 15.0]]
        out = np.zeros((4, 6))
        assert r.read("w", dtype="f64", out=out) is out and np.array_equal(out, w)
        assert r.read("g/s").shape == () and float(r.read("g/s")) == 2.5
        assert r.verify() == 3 and r.verify(["w"], max_bytes=8) == 2
        got = r.load({"w": ckpt.shard(None, (4, 6), 0, 1, 2, dtype="f32")})
        assert np.array_equal(got["w"], w[2:]) and got.attrs == {"step": 3}
        with pytest.raises(ckpt.NotFoundError):
            r.tensor("nope")
        with pytest.raises(ckpt.CoverageError):
            r.read("w", (3, 0), (2, 6))
    with pytest.raises(ValueError, match="the reader is closed"):
        r.read("w")
    with pytest.raises(ckpt.NotFoundError, match="^no checkpoint at '.*nothing': No such file or directory$"):
        ckpt.open(tmp_path / "nothing")


def test_manager(tmp_path):
    warnings = []
    root = tmp_path / "run"
    with ckpt.Manager(root, keep_last=2, keep_best=1, metric="loss", save_every_steps=2, warn=warnings.append) as m:
        assert m.latest() is None and m.step_path(12) == f"{root}/step-00000012"
        saved = []
        for step in range(1, 7):
            if m.should_save(step):
                saved.append(m.save(step, {"w": np.full(3, step, np.float32)}, attrs={"loss": 10.0 - step if step != 2 else 0.5}))
        assert saved == [m.step_path(s) for s in (2, 4, 6)]
        assert [(e.step, e.state, e.metric) for e in m.list()] == [(2, "committed", 0.5), (4, "committed", 6.0), (6, "committed", 4.0)]
        os.makedirs(root / "step-00000009")
        assert m.latest() == (6, m.step_path(6))
        assert warnings == [f"skipping step 9 (incomplete): checkpoint '{root}/step-00000009' is incomplete: it has no "
                            f"COMMITTED marker (the save was interrupted or is still running)"]
        assert m.clean_incomplete() == 1
        with pytest.raises(ckpt.ExistsError):
            m.save(6, {})
        m.save(6, {"w": np.zeros(3, np.float32)}, overwrite=True, attrs={"loss": 9.0})
        assert m.apply_retention() == 0
        m.mark_saved(7)
    with pytest.raises(ValueError):
        m.latest()


def test_preempt():
    ckpt.preempt.install()
    assert ckpt.preempt.requested() is False
    os.kill(os.getpid(), signal.SIGUSR1)
    assert ckpt.preempt.requested() is True
    ckpt.preempt.clear()
    assert ckpt.preempt.requested() is False and ckpt.EXIT_REQUEUE == 75
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_convert():
    x = np.array([1.0, 1.00390625, 1.01171875, 3.4e38, float("nan")], np.float32)
    b = ckpt.convert(x, "bf16")  # round to nearest, ties to even
    assert b.dtype == np.uint16 and b[:3].tolist() == [0x3F80, 0x3F80, 0x3F82] and b[3] == 0x7F80
    assert np.isnan(ckpt.convert(b, "f32", src="bf16")[4])
    assert ckpt.can_cast("f64", "bf16") and not ckpt.can_cast("i32", "f32")
    with pytest.raises(ckpt.InvalidArgumentError):
        ckpt.convert(np.zeros(2, np.int32), "f32")


def test_every_status_has_its_class():
    codes = {c.status: c for c in ckpt.Error.__subclasses__()}
    assert sorted(codes) == list(range(-13, 0))
    for status, cls in codes.items():
        assert ckpt.error_class(status) is cls and cls.__module__ == "ckpt"
        assert ckpt.Error("x", status).code.startswith("CKPT_E")
    assert issubclass(ckpt.InvalidArgumentError, ValueError) and issubclass(ckpt.NoMemoryError, MemoryError)


def test_help_is_useful():
    text = pydoc.render_doc(ckpt.save, renderer=pydoc.plaintext)
    for needle in ("save(path", "comm=None", "ckpt.shard(local, global_shape, dim, rank, world)",
                   "layout", "compress", "ckpt.CoverageError", "same on every rank"):
        assert needle in text
    for name in ckpt.__all__:
        obj = getattr(ckpt, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__ and len(obj.__doc__) > 20, name
    assert "ctypes" in ckpt.__doc__
    assert inspect.signature(ckpt.load).parameters["comm"].default is None


def run_py(code, **env):
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, cwd="/")


def test_library_is_found_or_named():
    bad = run_py("import ckpt", CKPT_LIBRARY="/nonexistent/libckpt.so")
    assert bad.returncode == 1
    assert "ImportError: ckpt: cannot load libckpt from CKPT_LIBRARY='/nonexistent/libckpt.so'" in bad.stderr
    # without CKPT_LIBRARY, the source tree finds the build tree beside it (build/)
    e = {k: v for k, v in os.environ.items() if k != "CKPT_LIBRARY"}
    p = subprocess.run([sys.executable, "-c", "import ckpt; print(ckpt.library_path)"], capture_output=True,
                       text=True, env=dict(e, CKPT_BUILD_DIR=os.path.dirname(os.path.dirname(os.environ["CKPT_LIBRARY"]))), cwd="/")
    assert p.returncode == 0, p.stderr
    assert os.path.samefile(p.stdout.strip(), os.environ["CKPT_LIBRARY"])


def test_works_with_mpi4py_imported_either_side(tmp_path):
    for order in ("import ckpt\nfrom mpi4py import MPI", "from mpi4py import MPI\nimport ckpt"):
        code = order + f"""
import numpy as np
for comm in (MPI.COMM_WORLD, MPI.COMM_SELF, None):
    ckpt.save({str(tmp_path / 'c')!r}, {{'w': np.arange(3.0)}}, comm, overwrite=True, fsync=False)
    assert ckpt.load({str(tmp_path / 'c')!r}, {{'w': np.zeros(3)}}, comm)['w'].tolist() == [0.0, 1.0, 2.0]
print(ckpt.preempt.requested(MPI.COMM_WORLD))
"""
        p = run_py(code)
        assert (p.returncode, p.stdout.strip()) == (0, "False"), p.stderr


