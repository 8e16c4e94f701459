"""Exceptions: one ckpt.Error subclass per library status, carrying the library's message.

Collective calls agree on failure (ckpt.h): when one rank fails, every rank raises the same
class with the same message, which then starts with ``"rank N: "`` (N the lowest failing rank).
"""
from __future__ import annotations

from typing import Dict, Optional, Type

from . import _lib


class Error(Exception):
    """A libckpt error. ``status`` is the library's negative ckpt_status code, ``code`` its
    name (``"CKPT_ECORRUPT"``), ``str(e)`` the library's message naming what and where."""

    #: The ckpt_status of this class (ckpt.h).
    status: int = 0

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    @property
    def code(self) -> str:
        return _lib.decode(_lib.lib.ckpt_status_name(self.status))


class InvalidArgumentError(Error, ValueError):
    """CKPT_EINVAL: bad argument (bad name, dims, dtype, an array that does not fit its box)."""
    status = -1


class NoMemoryError(Error, MemoryError):
    """CKPT_ENOMEM: an allocation failed."""
    status = -2


class IOFailureError(Error):
    """CKPT_EIO: the file system or HDF5 failed to read or write."""
    status = -3


class NotFoundError(Error):
    """CKPT_ENOTFOUND: no such checkpoint, file, tensor or attribute."""
    status = -4


class IncompleteError(Error):
    """CKPT_EINCOMPLETE: the checkpoint directory has no commit marker."""
    status = -5


class CorruptError(Error):
    """CKPT_ECORRUPT: checksum mismatch, truncated or malformed file."""
    status = -6


class MismatchError(Error):
    """CKPT_EMISMATCH: shape/dtype/type disagreement (across ranks or with the checkpoint)."""
    status = -7


class CoverageError(Error):
    """CKPT_ECOVERAGE: boxes out of bounds, overlapping, or leaving a gap."""
    status = -8


class VersionError(Error):
    """CKPT_EVERSION: a format version this library does not know."""
    status = -9


class MPIError(Error):
    """CKPT_EMPI: an MPI call failed."""
    status = -10


class ExistsError(Error):
    """CKPT_EEXIST: the destination exists and overwriting was not asked for."""
    status = -11


class UnsupportedError(Error):
    """CKPT_EUNSUPPORTED: a valid request this build or layout cannot do."""
    status = -12


class BusyError(Error):
    """CKPT_EBUSY: the checkpoint root is in use by another job (its lock names the holder)."""
    status = -13


_BY_STATUS: Dict[int, Type[Error]] = {c.status: c for c in (
    InvalidArgumentError, NoMemoryError, IOFailureError, NotFoundError, IncompleteError,
    CorruptError, MismatchError, CoverageError, VersionError, MPIError, ExistsError,
    UnsupportedError, BusyError)}


def error_class(status: int) -> Type[Error]:
    """The exception class of a status (ckpt.Error itself for a code this package does not know)."""
    return _BY_STATUS.get(status, Error)


def make(status: int, message: str) -> Error:
    return error_class(status)(message, status)


def last(status: int) -> Error:
    """The exception for `status` just returned on this thread, with the library's message."""
    return make(status, _lib.decode(_lib.lib.ckpt_errmsg()))


def check(status: int) -> None:
    """Raises the library's error when `status` is not CKPT_OK."""
    if status != 0:
        raise last(status)


for _c in (Error, *_BY_STATUS.values()):
    _c.__module__ = "ckpt"  # shown as ckpt.CorruptError, as users name them
