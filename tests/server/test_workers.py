"""Several server processes on one port (``--workers``), drained by one SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import psutil
from v1_client import pcm16, speechlike

from audio2face.client import UtteranceOptions, V1Client
from audio2face.server.serve import worker_settings
from audio2face.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_worker_settings_share_the_threads() -> None:
    s = worker_settings(Settings(workers=2, intra_op_threads=2, inference_workers=1))
    assert (s.intra_op_threads, s.inference_workers) == (2, 1)  # set by the operator: kept
    s = worker_settings(Settings(workers=4))
    assert s.intra_op_threads * s.inference_workers * 4 <= max(4, os.cpu_count() or 1) * 4


def test_two_workers_serve_and_drain(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "AUDIO2FACE_PORT": str(port), "AUDIO2FACE_WORKERS": "2"}
    env.pop("OPENBLAS_NUM_THREADS", None)
    with open(tmp_path / "log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "audio2face.cli", "serve"], env=env,
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "log").read_text()
            time.sleep(0.2)
        # Each worker's BLAS gets its share of the cores, not a thread per core.
        workers = [
            c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())
        ]
        assert len(workers) == 2
        share = str(max(1, (os.cpu_count() or 1) // 2))
        assert [w.environ().get("OPENBLAS_NUM_THREADS") for w in workers] == [share, share]
        client = V1Client(f"ws://127.0.0.1:{port}/api/v1/streaming_audio2face/ws")
        pcm = pcm16(speechlike(1.5))
        options = UtteranceOptions(chunk_ms=100)

        async def many():
            return await asyncio.gather(*[client.stream(pcm, options) for _ in range(6)])

        for result in asyncio.run(many()):
            assert result.values.shape == (45, 52)
            assert np.isfinite(result.values).all()
        # Two signals at once (an orchestrator and a timeout, say): the parent must still
        # exit. (The deadlock this once caused depended on timing; see serve_workers.)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
