"""Builds the ckpt wheel with the libckpt.so it binds to bundled inside (ckpt/_lib/), so the
installed package works wherever the build tree goes. Which library is bundled:

  $CKPT_LIBRARY      the path of libckpt.so (or of its directory), when set;
  $CKPT_BUILD_DIR    a CMake build directory (its libckpt/);
  ../build           the repository's default build directory.

When none exists the package is installed without a bundled library and finds an installed
one at import (see ckpt/_lib.py); a message says so.
"""
import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

SONAME = "libckpt.so.0"
HERE = os.path.dirname(os.path.abspath(__file__))


def find_library():
    env = os.environ.get("CKPT_LIBRARY")
    if env:
        path = os.path.join(env, SONAME) if os.path.isdir(env) else env
        if not os.path.exists(path):
            sys.exit(f"setup.py: CKPT_LIBRARY={env!r}: {path} does not exist")
        return path
    dirs = [os.environ.get("CKPT_BUILD_DIR"), os.path.join(HERE, "..", "build")]
    for d in dirs:
        if d and os.path.exists(os.path.join(d, "libckpt", SONAME)):
            return os.path.join(d, "libckpt", SONAME)
    return None


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        lib = find_library()
        dest = os.path.join(self.build_lib, "ckpt", "_lib")
        if lib is None:
            print("setup.py: no libckpt.so found (build it first, or set CKPT_LIBRARY); the "
                  "package will look for an installed one at import", file=sys.stderr)
            return
        os.makedirs(dest, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), os.path.join(dest, SONAME))
        print(f"setup.py: bundling {os.path.realpath(lib)}", file=sys.stderr)


class BinaryDistribution(Distribution):
    """A wheel with a shared library inside is specific to the platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
