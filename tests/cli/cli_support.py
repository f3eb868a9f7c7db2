"""Helpers of the CLI tests: running ``main`` and reading its one-line errors, speech
files, a server that wants a token, and a proxy that refuses every upgrade.

Plain functions and context managers (a second ``conftest.py`` would clash with
``tests/conftest.py``: the test folders are not packages)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TOKEN = "s3cret-token-1234"


@dataclass(frozen=True)
class CliRun:
    """What one ``main(argv)`` call returned and printed."""

    rc: int
    out: str
    err: str

    def error_line(self) -> str:
        """The one error line; fails unless stderr is exactly that, without a traceback."""
        lines = self.err.strip().splitlines()
        assert self.rc != 0, f"expected a failure, got rc 0: {self.out}"
        assert "Traceback" not in self.err, self.err
        assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{self.err}"
        assert lines[0].startswith("audio2face: error: "), lines[0]
        return lines[0]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> CliRun:
    """Run the CLI in-process with ``argv``; what it printed, from ``capsys``."""
    from audio2face.cli import main

    capsys.readouterr()  # drop what earlier steps printed
    rc = main(list(argv))
    captured = capsys.readouterr()
    return CliRun(rc, captured.out, captured.err)


def write_speech(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """A voiced-looking signal: a 180 Hz tone switched on and off 2.5 times a second."""
    t = np.arange(int(rate * seconds)) / rate
    audio = 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 2.5 * t) > 0)
    sf.write(path, audio.astype(np.float32), rate)
    return path


def free_port() -> int:
    """A loopback port nobody listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def auth_server(tiny_unitalker_path: Path):
    """A live v1 server (a context manager) on the tiny UniTalker model that wants
    :data:`TOKEN`."""
    from audio2face.settings import Settings
    from conftest import start_server

    settings = Settings(
        unitalker_model=tiny_unitalker_path,
        default_profile="unitalker",
        auth_token=TOKEN,
        window_left_context_s=0.3,
        window_hop_s=0.2,
        window_lookahead_s=0.1,
    )
    return start_server(settings)


@contextlib.contextmanager
def refusing_proxy(status: int) -> Iterator[str]:
    """A ws:// URL whose server answers every request with HTTP ``status``, as an
    authenticating reverse proxy in front of the service would."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(
                    f"HTTP/1.1 {status} Refused\r\nContent-Length: 0\r\n"
                    "WWW-Authenticate: Bearer\r\nConnection: close\r\n\r\n".encode()
                )

    threading.Thread(target=answer, daemon=True).start()
    port = listener.getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/api/v1/streaming_audio2face/ws"
    finally:
        listener.close()
