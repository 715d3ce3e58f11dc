"""Waiting for a started service: up, died first, or never up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nachtbus.procs import wait_until_healthy
from tests.helpers import free_port

# a stand-in for `nachtbus serve` that answers /health after a moment (200) and 503 elsewhere
SERVER = """
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()
    def log_message(self, *args):
        pass
time.sleep(0.5)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def test_returns_once_health_answers() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        wait_until_healthy(port, proc, 60)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_ends_first_is_told_with_what_it_said() -> None:
    said = "nachtbus: error: --port: a port is 0 to 65535"
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import sys; print({said!r}); sys.exit(2)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    with pytest.raises(RuntimeError, match="ended with 2 before answering: nachtbus: error"):
        wait_until_healthy(free_port(), proc, 60)
    proc.wait()


def test_a_service_that_never_answers_times_out() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(RuntimeError, match=r"did not answer .*/health within 1 s"):
            wait_until_healthy(free_port(), proc, 1)
    finally:
        proc.kill()
        proc.wait()
