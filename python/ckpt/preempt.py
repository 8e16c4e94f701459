"""Preemption: SIGTERM/SIGUSR1 set a flag that every rank agrees on (ckpt_preempt_*).

Under Open MPI's mpirun send SIGUSR1 to mpirun (it forwards it to every rank); a SIGTERM to
mpirun itself kills the ranks before they can save. After saving, exit with EXIT_REQUEUE (75,
EX_TEMPFAIL), which schedulers' wrappers read as "run me again".

The handlers are the library's C handlers (they only set a flag): they replace Python's own
handlers for these two signals, and a Python handler installed later for them replaces them.
"""
from __future__ import annotations

import ctypes

from . import _lib, comm as _comm
from .errors import check

#: Exit status of a job that saved on preemption and wants to be run again (CKPT_EXIT_REQUEUE).
EXIT_REQUEUE = 75


def install() -> None:
    """Installs the SIGTERM and SIGUSR1 handlers (idempotent)."""
    check(_lib.lib.ckpt_preempt_install())


def requested(comm=None) -> bool:
    """True when SIGTERM or SIGUSR1 arrived on any rank of `comm` since install() (or the
    last clear()); the same on every rank. Collective over comm (one MPI_Allreduce);
    comm=None: this process's flag alone."""
    out = ctypes.c_int()
    check(_lib.lib.ckpt_preempt_requested(_comm.handle(comm), ctypes.byref(out)))
    return bool(out.value)


def clear() -> None:
    """Clears this process's flag (a job that saves on SIGUSR1 and goes on)."""
    _lib.lib.ckpt_preempt_clear()
