#!/usr/bin/env python3
"""The HDF5 zstd filter plugin (libh5zstd.so, filter 32015) makes stock HDF5 tools read and write
libckpt's compressed datasets.

  1. test_codec_zstd --write-fixture writes a file with libckpt's built-in filter (pipeline-written
     datasets at several levels, with and without shuffle, f32 and bf16-as-uint16, and one dataset
     of self-compressed chunks written with H5Dwrite_chunk).
  2. h5py (Debian's, linked to the serial libhdf5), with only HDF5_PLUGIN_PATH pointing at the
     plugin folder, reads every dataset bit-exactly against values computed here.
  3. The same h5py WITHOUT the plugin (HDF5_PLUGIN_PATH = an empty folder) cannot read them --
     proving the plugin is what makes step 2 work.
  4. h5py writes with compression=32015 (+shuffle, negative level) and reads back; libckpt's own
     filter (test_codec_zstd --verify-h5py-file) reads that file too.
  5. Debian's h5dump shows FILTER_ID 32015 and dumps the data correctly (binary dumps compared
     byte for byte; h5dump prints an empty DATA block and exits 0 when a filter is missing, so the
     data is what is checked, and the check is shown to fail without the plugin).
  6. The plugin links no libhdf5/MPI, references no HDF5 symbol and exports only H5PLget_*.

Run by CTest (tests/codec/CMakeLists.txt) with an interpreter that imports h5py and numpy. If this
one cannot, it re-runs itself under one that can (/usr/bin/python3 first) or fails saying why.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

F32_SHAPE = (300, 257)
U16_N = 100003
U16_SHAPE2 = (123, 457)
DIR_SHAPE = (130, 70)

COMPRESSED = ["f32_shuffle_l3", "f32_l19", "bf16_l-1", "bf16_shuffle_l0", "f32_small", "f32_direct_l-5"]
H5PY_DATASETS = ["h5py_f32_shuffle_l5", "h5py_f32_l-1", "h5py_u16_shuffle_l1"]


def ensure_h5py():
    try:
        import h5py  # noqa: F401
        import numpy  # noqa: F401
        return
    except ImportError as e:
        err = e
    tried = [sys.executable]
    if not os.environ.get("CKPT_H5PY_REEXEC"):
        cands = ["/usr/bin/python3", shutil.which("python3"), shutil.which("python")]
        seen = {os.path.realpath(sys.executable)}
        for c in cands:
            if not c or not os.path.exists(c) or os.path.realpath(c) in seen:
                continue
            seen.add(os.path.realpath(c))
            tried.append(c)
            r = subprocess.run([c, "-c", "import h5py, numpy"], capture_output=True)
            if r.returncode == 0:
                print(f"test_plugin_h5py: {sys.executable} has no h5py ({err}); re-running under {c}", flush=True)
                env = dict(os.environ, CKPT_H5PY_REEXEC="1")
                os.execve(c, [c] + sys.argv, env)
    print(f"test_plugin_h5py: FAIL: no Python interpreter here can import h5py and numpy "
          f"({err}; tried {', '.join(tried)}). Install Debian's python3-h5py and python3-numpy "
          f"or configure with -DCKPT_H5PY_PYTHON=<python with h5py>.", file=sys.stderr)
    sys.exit(1)


# --------------------------------------------------------------------------------------------
# Expected values (the same formulas as test_codec_zstd.c; exact in float32 / uint16)
# --------------------------------------------------------------------------------------------

def fx_f32(n, start=0):
    import numpy as np
    i = np.arange(start, start + n, dtype=np.int64)
    return (((i * 7919) % 8191) - 4095).astype(np.float32) * np.float32(0.015625)


def fx_u16(n):
    import numpy as np
    i = np.arange(n, dtype=np.uint64)
    return (((i * np.uint64(40503)) ^ (i >> np.uint64(3))) & np.uint64(0xFFFF)).astype(np.uint16)


def expected():
    import numpy as np
    return {
        "f32_shuffle_l3": fx_f32(F32_SHAPE[0] * F32_SHAPE[1]).reshape(F32_SHAPE),
        "f32_l19": fx_f32(F32_SHAPE[0] * F32_SHAPE[1]).reshape(F32_SHAPE),
        "bf16_l-1": fx_u16(U16_N),
        "bf16_shuffle_l0": fx_u16(U16_SHAPE2[0] * U16_SHAPE2[1]).reshape(U16_SHAPE2),
        "f32_small": (np.arange(10, dtype=np.float32) * np.float32(0.5) - np.float32(2.0)),
        "f32_direct_l-5": fx_f32(DIR_SHAPE[0] * DIR_SHAPE[1], start=17).reshape(DIR_SHAPE),
        "h5py_f32_shuffle_l5": fx_f32(F32_SHAPE[0] * F32_SHAPE[1]).reshape(F32_SHAPE),
        "h5py_f32_l-1": fx_f32(F32_SHAPE[0] * F32_SHAPE[1]).reshape(F32_SHAPE),
        "h5py_u16_shuffle_l1": fx_u16(U16_N),
    }


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------------------------
# Child processes (each gets its own HDF5_PLUGIN_PATH: HDF5 reads it once per process)
# --------------------------------------------------------------------------------------------

def child_read(path):
    import h5py
    exp = expected()
    with h5py.File(path, "r") as f:
        for name in COMPRESSED:
            ds = f[name]
            filters = ds._filters
            if "32015" not in filters and 32015 not in filters:
                print(f"child_read: {name}: filter 32015 not in {filters}")
                return 1
            a = ds[...]
            if not same_bits(a, exp[name]):
                print(f"child_read: {name}: data differs ({a.dtype}{a.shape} vs {exp[name].dtype}{exp[name].shape})")
                return 1
            if a.ndim == 2:  # a partial read crossing chunk boundaries
                if not same_bits(ds[5:101, 3:77], exp[name][5:101, 3:77]):
                    print(f"child_read: {name}: slice differs")
                    return 1
            print(f"child_read: {name} {a.dtype}{a.shape} bit-exact, filters {sorted(map(str, filters))}")
    return 0


def child_noplugin(path):
    import h5py
    failures = 0
    with h5py.File(path, "r") as f:
        for name in COMPRESSED:
            try:
                f[name][...]
            except Exception as e:  # h5py raises OSError ("Can't read data ... filter")
                failures += 1
                print(f"child_noplugin: {name}: read fails as expected: {type(e).__name__}: {str(e)[:100]}")
            else:
                print(f"child_noplugin: {name}: UNEXPECTEDLY readable without the plugin")
    return 0 if failures == len(COMPRESSED) else 1


def child_write(path):
    import h5py
    exp = expected()
    with h5py.File(path, "w") as f:
        f.create_dataset("h5py_f32_shuffle_l5", data=exp["h5py_f32_shuffle_l5"], chunks=(64, 64),
                         compression=32015, compression_opts=(5,), shuffle=True)
        # level -1: a signed int stored in an unsigned cd_value
        f.create_dataset("h5py_f32_l-1", data=exp["h5py_f32_l-1"], chunks=(100, 100),
                         compression=32015, compression_opts=(0xFFFFFFFF,))
        f.create_dataset("h5py_u16_shuffle_l1", data=exp["h5py_u16_shuffle_l1"], chunks=(10000,),
                         compression=32015, compression_opts=(1,), shuffle=True)
    with h5py.File(path, "r") as f:
        for name in H5PY_DATASETS:
            ds = f[name]
            a = ds[...]
            if not same_bits(a, exp[name]):
                print(f"child_write: {name}: read back differs")
                return 1
            mask, raw = ds.id.read_direct_chunk((0,) * ds.ndim)
            if mask != 0 or raw[:4] != b"\x28\xb5\x2f\xfd":
                print(f"child_write: {name}: chunk 0 is not a zstd frame (mask {mask}, {raw[:8]!r})")
                return 1
            stored = ds.id.get_storage_size()
            print(f"child_write: {name}: written and read back bit-exact, "
                  f"{a.nbytes} -> {stored} bytes ({a.nbytes / max(stored, 1):.2f}x)")
    return 0


# --------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------

class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)
    print(f"ok: {msg}", flush=True)


def env_with(plugin_path):
    env = dict(os.environ)
    env.pop("HDF5_PLUGIN_PRELOAD", None)
    if plugin_path is None:
        env.pop("HDF5_PLUGIN_PATH", None)
    else:
        env["HDF5_PLUGIN_PATH"] = plugin_path
    return env


def run(cmd, env, **kw):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, **kw)
    return r


def run_child(mode, path, env):
    r = run([sys.executable, os.path.abspath(__file__), "--child", mode, path], env)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stdout.write(r.stderr[-4000:])
    return r.returncode


def h5dump_binary(h5dump, path, name, out, env):
    if os.path.exists(out):
        os.unlink(out)
    r = run([h5dump, "-d", "/" + name, "-b", "LE", "-o", out, path], env)
    data = b""
    if os.path.exists(out):
        with open(out, "rb") as fh:
            data = fh.read()
    return r, data


def h5dump_text_values(h5dump, path, name, env):
    r = run([h5dump, "-d", "/" + name, "-w", "0", path], env)
    m = re.search(r"DATA\s*\{(.*?)\}", r.stdout, re.S)
    vals = []
    if m:
        for line in m.group(1).splitlines():
            if "):" in line:
                vals += [float(x) for x in line.split("):", 1)[1].replace(",", " ").split()]
    return r, vals


def check_plugin_binary(plugin):
    readelf, nm = shutil.which("readelf"), shutil.which("nm")
    if not readelf or not nm:
        print("note: readelf/nm not found; skipping the plugin linkage checks")
        return
    dyn = subprocess.run([readelf, "-d", plugin], capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]", dyn)
    check(not any("hdf5" in n or "mpi" in n for n in needed) and any("zstd" in n for n in needed),
          f"plugin links libzstd and no libhdf5/MPI (NEEDED: {', '.join(needed)})")
    und = subprocess.run([nm, "-D", "--undefined-only", plugin], capture_output=True, text=True).stdout.split()
    h5und = [s for s in und if s.startswith("H5")]
    check(not h5und, f"plugin references no HDF5 symbol{(' (found ' + ', '.join(h5und) + ')') if h5und else ''}")
    defs = [l.split()[-1] for l in subprocess.run([nm, "-D", "--defined-only", plugin], capture_output=True,
                                                   text=True).stdout.splitlines() if l.strip()]
    exported = sorted(s for s in defs if not s.startswith("_"))
    check(exported == ["H5PLget_plugin_info", "H5PLget_plugin_type"],
          f"plugin exports exactly H5PLget_plugin_type/H5PLget_plugin_info ({exported})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--helper", required=True, help="test_codec_zstd executable")
    ap.add_argument("--plugin", required=True, help="built libh5zstd.so")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--h5dump", default=shutil.which("h5dump"))
    args = ap.parse_args()

    import numpy as np
    exp = expected()

    plugin_dir = os.environ.get("HDF5_PLUGIN_PATH") or os.path.dirname(os.path.abspath(args.plugin))
    check(os.path.isfile(os.path.join(plugin_dir, "libh5zstd.so")),
          f"HDF5_PLUGIN_PATH={plugin_dir} holds libh5zstd.so")
    os.makedirs(args.workdir, exist_ok=True)
    empty_dir = os.path.join(args.workdir, "no-plugins")
    os.makedirs(empty_dir, exist_ok=True)
    for fn in os.listdir(empty_dir):
        os.unlink(os.path.join(empty_dir, fn))
    fixture = os.path.join(args.workdir, "fixture.h5")
    h5py_file = os.path.join(args.workdir, "h5py_written.h5")
    for p in (fixture, h5py_file):
        if os.path.exists(p):
            os.unlink(p)

    check_plugin_binary(args.plugin)

    # 1. libckpt writes (its built-in filter; no plugin path needed).
    r = run([args.helper, "--write-fixture", fixture], env_with(None))
    check(r.returncode == 0 and os.path.exists(fixture),
          f"libckpt wrote {fixture}" + ("" if r.returncode == 0 else f": rc {r.returncode} {r.stderr[-2000:]}"))

    with_plugin = env_with(plugin_dir)
    without_plugin = env_with(empty_dir)

    # 2./3. h5py reads with the plugin, cannot without.
    check(run_child("read", fixture, with_plugin) == 0, "h5py reads every dataset bit-exactly through the plugin")
    check(run_child("noplugin", fixture, without_plugin) == 0,
          "h5py without the plugin (HDF5_PLUGIN_PATH=empty folder) cannot read them")

    # 4. h5py writes through the plugin; libckpt reads it.
    check(run_child("write", h5py_file, with_plugin) == 0, "h5py writes compression=32015 and reads back")
    r = run([args.helper, "--verify-h5py-file", h5py_file], env_with(None))
    check(r.returncode == 0, "libckpt's built-in filter reads the h5py-written file"
          + ("" if r.returncode == 0 else f": {r.stdout}{r.stderr[-2000:]}"))

    # 5. h5dump.
    if not args.h5dump:
        raise Fail("h5dump not found (Debian package hdf5-tools)")
    r = run([args.h5dump, "-p", "-H", fixture], with_plugin)
    n_filter = r.stdout.count("FILTER_ID 32015")
    check(r.returncode == 0 and n_filter == len(COMPRESSED) and "SHUFFLE" in r.stdout,
          f"h5dump -p -H shows FILTER_ID 32015 on all {len(COMPRESSED)} datasets (found {n_filter}) and SHUFFLE")
    out = os.path.join(args.workdir, "dump.bin")
    for path, names in ((fixture, COMPRESSED), (h5py_file, H5PY_DATASETS)):
        for name in names:
            want = exp[name].astype(exp[name].dtype.newbyteorder("<")).tobytes()
            r, data = h5dump_binary(args.h5dump, path, name, out, with_plugin)
            check(r.returncode == 0 and data == want,
                  f"h5dump -b LE of {os.path.basename(path)}:/{name} is byte-exact ({len(data)}/{len(want)} bytes)")
    r, vals = h5dump_text_values(args.h5dump, fixture, "f32_small", with_plugin)
    check(vals == [float(x) for x in exp["f32_small"]], f"h5dump text of /f32_small: {vals}")

    # Without the plugin h5dump does not produce the data (and may still exit 0): the checks above
    # would have caught it.
    r, data = h5dump_binary(args.h5dump, fixture, "f32_shuffle_l3", out, without_plugin)
    check(data != exp["f32_shuffle_l3"].tobytes(),
          f"h5dump without the plugin does not produce the data (rc {r.returncode}, {len(data)} bytes)")
    r, vals = h5dump_text_values(args.h5dump, fixture, "f32_small", without_plugin)
    check(vals != [float(x) for x in exp["f32_small"]],
          f"h5dump text without the plugin has no data (rc {r.returncode}, values {vals})")
    print("test_plugin_h5py: PASS")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        ensure_h5py()
        mode, path = sys.argv[2], sys.argv[3]
        sys.exit({"read": child_read, "noplugin": child_noplugin, "write": child_write}[mode](path))
    ensure_h5py()
    try:
        sys.exit(main())
    except Fail as e:
        print(f"test_plugin_h5py: FAIL: {e}", file=sys.stderr)
        sys.exit(1)
