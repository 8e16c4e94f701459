"""ckpt.Manager: step-numbered checkpoints under one root directory (ckpt_manager_*)."""
from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, Tuple

from . import _lib, comm as _comm
from .errors import NotFoundError, check
from .save import PathLike, run_save
from .state import AttrValue

lib = _lib.lib
_ENTRY_STATES = {0: "committed", 1: "incomplete", 2: "corrupt", 3: "unreadable", 4: "temporary"}


@dataclass(frozen=True)
class Entry:
    """A step directory under the root: its step, state ("committed", "incomplete",
    "corrupt", "unreadable", "temporary"), the status that says why it is not committed
    (0 when it is), its bytes, its metric (None when it has none) and its name."""
    step: int
    state: str
    status: int
    bytes: int
    metric: Optional[float]
    name: str


class Manager:
    """The checkpoints of one training run under `root`, one per step (ROOT/step-00001200).

    Collective over `comm` (an mpi4py communicator; None: this process alone): rank 0 reads
    and changes the root, every rank gets the same answers and errors. Call the collective
    methods in the same order on every rank.

    Retention, applied after each save: keep_last (the newest K committed; 0 = all),
    keep_every (also steps that are multiples of N), keep_best (also the best K by the
    attribute `metric`, lower is better unless mode="max"). The newest committed checkpoint
    always survives. Save policy for should_save: save_every_steps, save_every_secs.
    warn: a callable taking one message string, for warnings about skipped or removed
    directories (default: printed to stderr by the library on rank 0).

    A training loop with preemption::

        ckpt.preempt.install()
        with ckpt.Manager("ckpt", comm, keep_last=3, save_every_steps=100) as m:
            step = 0
            latest = m.latest()
            if latest:
                step, path = latest
                ckpt.load(path, want, comm)
            for step in range(step + 1, last + 1):
                train_one_step()
                stop = ckpt.preempt.requested(comm)
                if m.should_save(step) or stop:
                    m.save(step, state, attrs={"step": step})
                if stop:
                    sys.exit(ckpt.preempt.EXIT_REQUEUE)
    """

    def __init__(self, root: PathLike, comm=None, *, keep_last: int = 0, keep_every: int = 0,
                 keep_best: int = 0, metric: Optional[str] = None, mode: str = "min",
                 save_every_steps: int = 0, save_every_secs: float = 0.0,
                 warn: Optional[Callable[[str], None]] = None):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.root = os.fspath(root)
        self.comm = comm
        o = _lib.ManagerOptions()
        lib.ckpt_manager_options_init(ctypes.byref(o))
        o.keep_last = keep_last
        o.keep_every = keep_every
        o.keep_best = keep_best
        self._metric = _lib.encode(metric) if metric is not None else None
        o.best_metric = self._metric
        o.best_mode = 1 if mode == "max" else 0
        o.save_every_steps = save_every_steps
        o.save_every_secs = save_every_secs
        self._warn = None
        if warn is not None:
            def trampoline(msg, _user, warn=warn):
                try:
                    warn(_lib.decode(msg))
                except Exception as e:  # never unwind through C
                    print(f"ckpt: warning callback raised {e!r}", file=sys.stderr)
            self._warn = _lib.WARN_FN(trampoline)  # kept alive as long as the manager
            o.warn = self._warn
        h = ctypes.c_void_p()
        check(lib.ckpt_manager_open(_comm.handle(comm), _lib.encode(self.root), ctypes.byref(o),
                                    ctypes.byref(h)))
        self._h = h

    def close(self) -> None:
        """Frees the manager (call it on every rank, before MPI is finalised)."""
        if getattr(self, "_h", None):
            lib.ckpt_manager_close(self._h)
            self._h = ctypes.c_void_p()

    def __enter__(self) -> "Manager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _handle(self):
        if not self._h:
            raise ValueError(f"manager of '{self.root}' is closed")
        return self._h

    def step_path(self, step: int) -> str:
        """ROOT/step-%08d of `step` (local)."""
        buf = ctypes.create_string_buffer(len(_lib.encode(self.root)) + 64)
        check(lib.ckpt_manager_step_path(self._handle(), step, buf, len(buf)))
        return _lib.decode(buf.value)

    def latest(self) -> Optional[Tuple[int, str]]:
        """(step, path) of the newest committed checkpoint, or None when there is none.
        Incomplete and corrupt directories are skipped with a warning. Collective."""
        step = ctypes.c_int64()
        buf = ctypes.create_string_buffer(len(_lib.encode(self.root)) + 4096)
        try:
            check(lib.ckpt_manager_latest(self._handle(), ctypes.byref(step), buf, len(buf)))
        except NotFoundError:
            return None
        return step.value, _lib.decode(buf.value)

    def should_save(self, step: int) -> bool:
        """Whether the save policy says to save at `step` (rank 0 decides). Collective."""
        out = ctypes.c_int()
        check(lib.ckpt_manager_should_save(self._handle(), step, ctypes.byref(out)))
        return bool(out.value)

    def mark_saved(self, step: int) -> None:
        """Records that `step` was saved by other means (restarts the timer). Local."""
        check(lib.ckpt_manager_mark_saved(self._handle(), step))

    def save(self, step: int, state: Mapping[str, object], *,
             attrs: Optional[Mapping[str, AttrValue]] = None, overwrite: bool = False,
             **options) -> str:
        """ckpt.save of `state` (and `attrs`) to step_path(step), then retention; returns
        the path. `options` are ckpt.save's (layout, compress, level, fsync, ...). A
        committed checkpoint of that step is ckpt.ExistsError unless overwrite. Collective."""
        h = self._handle()
        run_save(self.comm, state, attrs, dict(options, overwrite=overwrite),
                 lambda st, opts: check(lib.ckpt_manager_save(h, step, st, ctypes.byref(opts))))
        return self.step_path(step)

    def apply_retention(self) -> int:
        """Deletes the committed checkpoints no retention rule keeps; returns how many.
        Collective."""
        n = ctypes.c_int()
        check(lib.ckpt_manager_apply_retention(self._handle(), ctypes.byref(n)))
        return n.value

    def clean_incomplete(self) -> int:
        """Removes incomplete step directories and debris of interrupted saves (only while
        no save into this root runs); returns how many. Collective."""
        n = ctypes.c_int()
        check(lib.ckpt_manager_clean_incomplete(self._handle(), ctypes.byref(n)))
        return n.value

    def list(self) -> List[Entry]:
        """Every step and temporary directory under the root, by step. Local."""
        p = ctypes.POINTER(_lib.ManagerEntry)()
        n = ctypes.c_int()
        check(lib.ckpt_manager_list(self._handle(), ctypes.byref(p), ctypes.byref(n)))
        try:
            return [Entry(e.step, _ENTRY_STATES.get(e.state, str(e.state)), e.status, e.bytes,
                          e.metric if e.has_metric else None, _lib.decode(e.name))
                    for e in (p[i] for i in range(n.value))]
        finally:
            if p:
                _lib.free(p)
