"""docs/integrations.md: every block marked *(tested)* runs as written.

The commands run in a temporary folder, in order (the first makes ``speech.wav``), with
the VMC and Live Link ports replaced by loopback receivers' ports, and the server port
18083 by that of an ``audio2face serve`` started for the blocks that need one; each must
exit 0, and what it sends must arrive.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import live_support  # noqa: F401  (puts tests/sinks on the path)
import pytest
from udp_receivers import LiveLinkReceiver, VmcReceiver

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
MARK = "*(tested"
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def marked_blocks() -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    blocks, last = [], 0
    for match in BLOCK.finditer(text):
        if MARK in text[last : match.start()].strip().rsplit("\n\n", 1)[-1]:
            blocks.append((match.group(1), match.group(2)))
        last = match.end()
    return blocks


def cli_on_path(folder: Path) -> str:
    """A PATH whose ``audio2face`` has ``live`` and ``plot``: the installed command when
    it has them, else a shim to their module entry points (until the CLI wires them)."""
    real = Path(sys.executable).with_name("audio2face")
    wired = subprocess.run([str(real), "live", "--help"], capture_output=True).returncode == 0
    shim = folder / "audio2face"
    if wired:
        shim.symlink_to(real)
    else:
        shim.write_text(
            f'#!/bin/sh\ncase "$1" in\n  live|plot) m=$1; shift; exec "{sys.executable}" -m '
            f'audio2face.$m "$@";;\n  *) exec "{real}" "$@";;\nesac\n'
        )
        shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(env: dict[str, str], cwd: Path) -> Iterator[int]:
    """``audio2face serve`` (the default engine) on a free port, until ready."""
    port = free_port()
    log = cwd / "serve.log"
    with open(log, "wb") as err:  # a file, not a pipe: a chatty server never blocks
        proc = subprocess.Popen(
            ["audio2face", "serve", "--port", str(port)], env=env, cwd=cwd,
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {log.read_text()[-1000:]}")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_the_marked_blocks(tmp_path) -> None:
    blocks = marked_blocks()
    assert len(blocks) >= 7, "the doc lost its tested examples"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = dict(os.environ, PATH=cli_on_path(bin_dir))
    server = contextlib.ExitStack()
    server_port: int | None = None
    for kind, code in blocks:
        if "127.0.0.1:18083" in code:
            if server_port is None:
                server_port = server.enter_context(serve(env, tmp_path))
            code = code.replace("127.0.0.1:18083", f"127.0.0.1:{server_port}")
        with VmcReceiver() as vmc, LiveLinkReceiver() as ll:
            code = code.replace("127.0.0.1:39539", f"127.0.0.1:{vmc.port}")
            code = code.replace("127.0.0.1:11111", f"127.0.0.1:{ll.port}")
            argv = (
                ["bash", "-euo", "pipefail", "-c", code]
                if kind == "bash"
                else [sys.executable, "-c", code]
            )
            proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, timeout=300)
            assert proc.returncode == 0, f"{code}\n{proc.stderr.decode()[-2000:]}"
            if "--vmc" in code or "VmcSink" in code:
                assert vmc.wait_frames(10), f"nothing reached the VMC receiver from:\n{code}"
                assert not vmc.unknown
            if "--livelink" in code:
                assert ll.wait_packets(10), f"nothing reached Live Link from:\n{code}"
                assert not ll.errors
        for out in re.findall(r"-o (\S+)", code):
            assert (tmp_path / out).stat().st_size > 0, out
        if kind == "python":
            assert b"utterance done after frame" in proc.stdout
            assert b"interrupted at frame" in proc.stdout
    server.close()
