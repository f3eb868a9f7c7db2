"""``serve`` binds its port before it says anything is ready, and never shares a port
with another server (issue 9, part 2, item 3). Real processes on loopback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_support import free_port

START_TIMEOUT_S = 60.0


def serve_argv(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "audio2face.cli", "serve", "--port", str(port), *extra]


def run_serve(port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        serve_argv(port, *extra), capture_output=True, text=True, timeout=START_TIMEOUT_S
    )


def assert_failed_before_ready(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """The process failed with one error line as its last, and never said it was ready."""
    assert proc.returncode not in (0, None), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for never in ("ready:", "Application startup complete", "listening on"):
        assert never not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("audio2face: error: "), proc.stderr
    for word in words:
        assert word in last, last
    return last


@contextmanager
def running_server(port: int, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """``serve`` in a child process, until ``/ready`` answers; SIGTERM at the end."""
    proc = subprocess.Popen(
        serve_argv(port, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"serve exited with {proc.returncode}: {proc.stderr.read()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("serve did not become ready")
            time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("workers", [1, 2])
def test_port_in_use_fails_before_ready(workers: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_serve(port, "--workers", str(workers))
    assert_failed_before_ready(proc, f"127.0.0.1:{port} is already in use", "--port")


def test_a_second_server_on_a_taken_port_is_refused() -> None:
    port = free_port()
    with running_server(port, "--workers", "2") as first:
        # another multi-worker server would join with SO_REUSEPORT: it must not
        assert_failed_before_ready(run_serve(port, "--workers", "2"), str(port), "--port")
        assert_failed_before_ready(run_serve(port), "already in use")
        assert first.poll() is None
    port = free_port()
    with running_server(port):
        assert_failed_before_ready(run_serve(port, "--workers", "2"), "already in use")


@pytest.mark.parametrize("workers", [1, 2])
def test_startup_errors_are_one_line_and_nothing_is_ready(tmp_path: Path, workers: int) -> None:
    missing = tmp_path / "nope.onnx"
    proc = run_serve(free_port(), "--workers", str(workers), "--unitalker-model", str(missing))
    assert_failed_before_ready(proc, "nope.onnx", "does not exist")


def test_bad_host_is_one_line() -> None:
    proc = run_serve(free_port(), "--host", "203.0.113.7")  # TEST-NET-3: not ours
    assert_failed_before_ready(proc, "not an address of this machine")


def test_a_missing_tls_file_is_one_line(tmp_path: Path) -> None:
    proc = run_serve(free_port(), "--ssl-certfile", str(tmp_path / "cert.pem"))
    assert_failed_before_ready(proc, "cert.pem", "not found", "--ssl-certfile")


def test_the_port_lock_closes_the_startup_window() -> None:
    """Two multi-worker servers started together both find the port free (their workers
    have not bound yet); the lock the first holds stops the second."""
    from audio2face.server.serve import port_lock

    port = free_port()
    with port_lock(port):
        proc = run_serve(port, "--workers", "2")
    assert_failed_before_ready(proc, f"port {port} is already being served", "--port")
