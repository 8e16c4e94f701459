"""Packaging, offline, with Debian's tools: `pip install --no-build-isolation ./python` into a
virtual environment (bundling the build tree's libckpt.so), and `cmake --install` into a
prefix (the package finding the library through a path relative to itself, also after the
prefix is moved). Each is imported from elsewhere, without CKPT_LIBRARY or PYTHONPATH."""
import os
import shutil
import subprocess
import sys

from conftest import BUILD, REPO

CHECK = ("import ckpt, numpy as np, sys, tempfile, os\n"
         "d = tempfile.mkdtemp()\n"
         "ckpt.save(d + '/c', {'w': np.arange(4.0)}, attrs={'step': 1}, fsync=False)\n"
         "print(ckpt.load(d + '/c', {'w': np.zeros(4)})['w'].tolist(), ckpt.library_path, ckpt.__file__)\n")


def clean_env():
    e = {k: v for k, v in os.environ.items() if k not in ("CKPT_LIBRARY", "PYTHONPATH", "CKPT_BUILD_DIR")}
    e["PIP_NO_INDEX"] = "1"  # no package index is reachable: prove none is needed
    return e


def run(cmd, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=clean_env(), timeout=300, **kw)
    assert p.returncode == 0, f"{cmd}: {p.stdout}\n{p.stderr}"
    return p.stdout


def test_pip_install_into_a_venv(tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the repository
    shutil.copytree(os.path.join(REPO, "python"), src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    p = subprocess.run([venv / "bin" / "pip", "install", "--no-build-isolation", src], capture_output=True, text=True,
                       env=dict(clean_env(), CKPT_BUILD_DIR=BUILD), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    out = run([venv / "bin" / "python", "-c", CHECK], cwd="/")
    vals, lib, init = out.split()[:-2], out.split()[-2], out.split()[-1]
    assert " ".join(vals) == "[0.0, 1.0, 2.0, 3.0]"
    assert lib.startswith(str(venv)) and lib.endswith("ckpt/_lib/libckpt.so.0")  # the bundled copy
    assert init.startswith(str(venv))
    help_text = run([venv / "bin" / "python", "-c", "import ckpt, pydoc; print(pydoc.render_doc(ckpt.load))"], cwd="/")
    assert "Loads the boxes this rank wants" in help_text


def test_cmake_install_into_a_prefix(tmp_path):
    prefix = tmp_path / "prefix"
    run(["cmake", "--install", BUILD, "--prefix", prefix])
    pydir = subprocess.run(["cmake", "-L", "-N", BUILD], capture_output=True, text=True).stdout
    rel = next(l.split("=", 1)[1] for l in pydir.splitlines() if l.startswith("CKPT_PYTHON_INSTALL_DIR:"))
    moved = tmp_path / "moved"
    os.rename(prefix, moved)  # relocatable: the package finds the library relative to itself
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, cwd="/",
        env=dict(clean_env(), PYTHONPATH=str(moved / rel)), timeout=120)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert " ".join(words[:-2]) == "[0.0, 1.0, 2.0, 3.0]"
    assert os.path.realpath(words[-2]).startswith(str(moved)) and words[-1].startswith(str(moved / rel))
    assert not os.path.exists(moved / rel / "ckpt" / "_lib")
