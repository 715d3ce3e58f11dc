"""Run a search in a child process, so that it cannot stall the process that asked for it.

Why: OR-Tools' routing solve holds the Python interpreter lock for its whole time limit. In the
service, the background re-optimisation runs in a thread of the process that answers riders,
so every inquiry, booking and page refresh waited for the solve (measured: 1.25 to 1.7 s at the
p99 of ``GET /health`` with one worker, a 2 s round every 20 s). In a child process the solve
takes only its own lock; the parent's thread waits on a pipe, which releases it. A crash of the
native solver (a segfault) ends the child, not the service: the round keeps the plans it had.

One child per parent process, started on the first call (a fresh interpreter with the parent's
import path: no copy of the parent's threads, locks or store connections) and kept for the next
ones; calls are serialised. It ends when the parent closes it (:func:`close`, also at
interpreter exit), when the parent dies (its pipe closes), or when a call overruns its timeout
(it is killed and the next call starts a new one). Arguments and results go by pickle, so
``fn`` must be a module-level function.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def _child_main(fd: int) -> None:
    """The child: run each (fn, args, kwargs) sent on socket ``fd``, send back (ok, value)."""
    conn = Connection(fd)
    while True:
        try:
            fn, args, kwargs = conn.recv()
        except (EOFError, OSError):  # the parent closed the pipe or died
            return
        try:
            out: tuple[bool, Any] = (True, fn(*args, **kwargs))
        except Exception as exc:  # handed to the parent, which raises it
            out = (False, exc)
        try:
            conn.send(out)
        except (BrokenPipeError, OSError):
            return


class ChildRunner:
    """A child process that runs functions for this one, one call at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id, None while none runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _start(self) -> Connection:
        # A fresh interpreter, not multiprocessing's spawn: that one re-runs the parent's main
        # script in the child, which a script without a __main__ guard does not survive.
        ours, theirs = socket.socketpair()
        env = {**os.environ, "NACHTBUS_SEARCH_CHILD_PATH": json.dumps(sys.path)}
        code = (
            "import json, os, sys; sys.path[:0] = json.loads(os.environ.pop("
            "'NACHTBUS_SEARCH_CHILD_PATH')); from routing.isolated import _child_main; "
            "_child_main(int(sys.argv[1]))"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        self._proc, self._conn = proc, Connection(ours.detach())
        return self._conn

    def run(self, fn: Callable[..., T], *args: Any, timeout_s: float, **kwargs: Any) -> T | None:
        """``fn(*args, **kwargs)`` in the child; None if the child died or overran
        ``timeout_s`` (then it is stopped, and the next call starts a new one). An exception
        ``fn`` raises is raised here."""
        with self._lock:
            conn = self._conn if self.pid is not None else None
            try:
                if conn is None:
                    conn = self._start()
                conn.send((fn, args, kwargs))
                if not conn.poll(timeout_s):
                    log.warning("search in child process overran %.1f s: stopped", timeout_s)
                    self._stop()
                    return None
                ok, value = conn.recv()
            except (EOFError, OSError) as exc:  # the child died (a native crash) mid-call
                log.warning("search child process ended: %r", exc)
                self._stop()
                return None
        if not ok:
            raise value
        return value

    def _stop(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is not None:  # a child in a call sees its pipe closed when it answers
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def close(self) -> None:
        """Stop the child (a no-op if none runs)."""
        with self._lock:
            self._stop()


_RUNNER = ChildRunner()
atexit.register(_RUNNER.close)


def run_isolated(fn: Callable[..., T], *args: Any, timeout_s: float, **kwargs: Any) -> T | None:
    """``fn(*args, **kwargs)`` in this process's search child (see the module docstring)."""
    return _RUNNER.run(fn, *args, timeout_s=timeout_s, **kwargs)


def child_pid() -> int | None:
    """The search child's pid, None while none runs (for tests and the health page)."""
    return _RUNNER.pid


def close() -> None:
    """Stop this process's search child."""
    _RUNNER.close()
