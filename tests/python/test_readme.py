"""The README's Python example runs exactly as printed: its python block is written to
example.py and its shell block's commands are run as they stand, in a scratch directory, with
`python3` on PATH being an interpreter that imports ckpt (this one, with the build tree's
library), as it is in the venv the README sets up."""
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

pytest.importorskip("torch", reason="torch cannot be imported")


def blocks():
    text = open(os.path.join(REPO, "README.md")).read()
    at = text.index("<!-- python-example")
    py, sh = re.findall(r"```(?:python|sh)\n(.*?)```", text[at:], re.S)[:2]
    return py, [line.split("#")[0].strip() for line in sh.strip().splitlines()]


def test_example_is_ten_lines():
    py, cmds = blocks()
    assert len(py.strip().splitlines()) == 10
    assert cmds == ["mpirun --allow-run-as-root --oversubscribe -n 2 python3 example.py",
                    "mpirun --allow-run-as-root --oversubscribe -n 3 python3 example.py"]


def test_example_runs_as_printed(tmp_path):
    py, cmds = blocks()
    (tmp_path / "example.py").write_text(py)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(sys.executable, bindir / "python3")
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    outs = []
    for cmd in cmds:
        p = subprocess.run(cmd, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        # (the ranks' output may interleave mid-line: mpirun forwards it in chunks)
        outs.append(sorted(re.findall(r"rank \d+/\d+: step \d+, equal: (?:True|False)", p.stdout)))
    assert outs == [[f"rank {r}/2: step 100, equal: True" for r in range(2)],
                    [f"rank {r}/3: step 100, equal: True" for r in range(3)]]
    assert os.listdir(tmp_path / "demo-ckpt") == ["step-00000100"]
