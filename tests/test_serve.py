"""`feedback-lens serve`: the dashboard process is the command's own, so stopping the command stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@pytest.mark.slow
def test_stopping_serve_stops_the_dashboard(tmp_path):
    port = _free_port()
    env = {**os.environ, "FEEDBACK_LENS_AUTH": "none"}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", "--port", str(port),
                             "--store", str(tmp_path / "store")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not _answers(port):
            assert proc.poll() is None, "serve exited before the dashboard answered"
            assert time.monotonic() < deadline, "the dashboard did not answer within 90 s"
            time.sleep(0.5)
        command = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode().split("\0")
        assert "streamlit" in command  # the command's own process serves: nothing is left behind
        assert [a for a in command if a.startswith("--server.port")] == [f"--server.port={port}"]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert not _answers(port)
    finally:
        if proc.poll() is None:
            proc.kill()
