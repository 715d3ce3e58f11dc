"""Processes that end with the one that started them.

A process started with ``NACHTBUS_PARENT_PID`` set to its starter's pid asks Linux for SIGTERM
when that starter ends (``prctl(PR_SET_PDEATHSIG)``), and ends at once if the starter is gone
already. ``nachtbus serve`` does so for its workers, and tests and benchmarks for the ``nachtbus
serve`` they start: a starter killed without its clean-up (SIGKILL, a CI timeout) leaves no
service holding a port, and the service's own shutdown stops its embedded store. The signal
comes when the starting *thread* ends, so a starter calls this from a thread that lives as long
as it does (its main thread). Elsewhere than Linux nothing is done.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request

PARENT_PID_VAR = "NACHTBUS_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def parent_env() -> dict[str, str]:
    """The variable a child needs to end with this process."""
    return {PARENT_PID_VAR: str(os.getpid())}


def end_with_parent() -> None:
    """In the child: ask for SIGTERM when the starter named by ``NACHTBUS_PARENT_PID`` ends."""
    parent = os.environ.get(PARENT_PID_VAR)
    if not parent or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # the starter died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def wait_until_healthy(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    """Wait until the ``nachtbus serve`` that ``proc`` started answers ``GET /health`` with 200
    on ``port``. Raises :class:`RuntimeError` when ``proc`` ends first (with what it printed,
    if its output was piped) or after ``timeout_s``; the caller stops ``proc``."""
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{port}/health"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    while time.monotonic() < deadline:
        # refused, reset, timed out, an error status: not up yet
        with contextlib.suppress(OSError), direct.open(url, timeout=1) as answer:
            if answer.status == 200:
                return
        if proc.poll() is not None:
            said = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"nachtbus serve ended with {proc.returncode} before answering"
                               + (f": {said.strip()[-2000:]}" if said.strip() else ""))  # fmt: skip
        time.sleep(0.2)
    raise RuntimeError(f"nachtbus serve did not answer {url} within {timeout_s:.0f} s")
