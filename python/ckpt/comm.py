"""Communicators: an mpi4py communicator (jobs launched with mpirun) or None (one process).

The C API takes an MPI_Comm by value. mpi4py gives the C handle of a communicator
(``MPI._handleof``): with Open MPI a pointer, with MPICH an int (``MPI._sizeof(MPI.Comm)`` says
which), and it is passed to the library as exactly that. mpi4py and libckpt must use the same
MPI library (Debian's python3-mpi4py and libckpt both link Open MPI's libmpi.so.40).

``comm=None`` passes MPI_COMM_NULL: the call is local to this process. This module never
imports mpi4py itself (importing mpi4py.MPI initialises MPI); it uses it only when the caller
already did.
"""
from __future__ import annotations

import ctypes
import sys
from typing import Any, Optional, Tuple

from . import _lib
from .errors import Error, make

Comm = Any  # mpi4py.MPI.Comm or None


def _mpi():
    return sys.modules.get("mpi4py.MPI")


def _null_without_mpi4py():
    # MPI is usually not initialised then, and the library ignores the value; should something
    # else have initialised it, pass the real MPI_COMM_NULL of the MPI the library links.
    try:
        return ctypes.c_void_p(ctypes.addressof(ctypes.c_char.in_dll(_lib.lib, "ompi_mpi_comm_null")))
    except ValueError:
        return ctypes.c_int(0x04000000)  # MPICH's MPI_COMM_NULL


def handle(comm: Comm):
    """The ctypes value of the MPI_Comm to pass for `comm`."""
    MPI = _mpi()
    if comm is None:
        if MPI is None:
            return _null_without_mpi4py()
        comm = MPI.COMM_NULL
    elif MPI is None or not isinstance(comm, MPI.Comm):
        raise TypeError(f"comm must be an mpi4py communicator or None, got {type(comm).__name__}")
    return _lib.comm_type(MPI._sizeof(MPI.Comm))(MPI._handleof(comm))


def active(comm: Comm) -> bool:
    """Whether calls over `comm` involve other ranks (the library's rule: a real
    communicator of an initialised, not finalised MPI)."""
    MPI = _mpi()
    return (comm is not None and MPI is not None and comm != MPI.COMM_NULL
            and MPI.Is_initialized() and not MPI.Is_finalized())


def rank_size(comm: Comm) -> Tuple[int, int]:
    if not active(comm):
        return 0, 1
    return comm.Get_rank(), comm.Get_size()


def agree(comm: Comm, err: Optional[Error]) -> None:
    """Raises on every rank when any rank failed before a collective call (a bad array on
    one rank must not leave the others waiting in the library): the lowest failing rank's
    exception, its message prefixed "rank N: " as the library's own agreement does. One
    MPI_Allreduce when all is well."""
    if not active(comm):
        if err is not None:
            raise err
        return
    rank, size = comm.Get_rank(), comm.Get_size()
    first = comm.allreduce(rank if err is not None else size, op=_mpi().MIN)
    if first == size:
        return
    status, msg = comm.bcast((err.status, err.message) if rank == first else None, root=first)
    raise make(status, f"rank {first}: {msg}")
