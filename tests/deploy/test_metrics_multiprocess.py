"""``/metrics`` as one view over worker processes (prometheus-client multiprocess mode)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from audio2face.client import UtteranceOptions, V1Client

# One process of the service, driven line by line: "streams N" opens N streams, "frames N"
# counts N frames sent, "dump" prints what /metrics would say, then a line "END".
WORKER = """
import sys
from prometheus_client import generate_latest
from audio2face.metrics import Metrics
from audio2face.settings import Settings
m = Metrics()
m.record_limits(Settings(max_streams=int(sys.argv[1])))
for line in sys.stdin:
    cmd, *arg = line.split()
    if cmd == "streams":
        m.active_streams.inc(int(arg[0]))
    elif cmd == "frames":
        m.frames_out.inc(int(arg[0]))
    elif cmd == "dump":
        sys.stdout.write(generate_latest(m.registry).decode() + "END\\n")
        sys.stdout.flush()
"""


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of every sample in an exposition text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


class Worker:
    def __init__(self, env: dict[str, str], max_streams: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(max_streams)], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def dump(self) -> dict[str, float]:
        self.send("dump")
        assert self.proc.stdout is not None
        lines = []
        while (line := self.proc.stdout.readline()) not in ("END\n", ""):
            lines.append(line)
        return samples("".join(lines))


def test_processes_share_one_view(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    a, b = Worker(env, max_streams=100), Worker(env, max_streams=300)
    try:
        a.send("streams 2")
        a.send("frames 30")
        b.send("streams 3")
        b.send("frames 45")
        a.dump()  # a has written its values before b reads them
        seen = b.dump()
        assert seen["a2f_active_streams{}"] == 5
        assert seen["a2f_frames_out_total{}"] == 75
        assert seen["a2f_limit{name=max_streams}"] == 300  # the larger of the two
        a.proc.kill()  # as a crashed worker: it never says goodbye
        a.proc.wait(timeout=10)
        seen = b.dump()
        assert seen["a2f_active_streams{}"] == 3  # the dead worker's streams are not open
        assert seen["a2f_frames_out_total{}"] == 75  # totals never go back
    finally:
        for w in (a, b):
            w.proc.kill()
            w.proc.wait(timeout=10)


def test_without_the_variable_each_registry_is_its_own(monkeypatch) -> None:
    from audio2face.metrics import Metrics

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    one, two = Metrics(), Metrics()
    one.active_streams.inc()
    assert two.registry.get_sample_value("a2f_active_streams") == 0
    assert one.registry.get_sample_value("a2f_active_streams") == 1


def test_variable_set_too_late_is_refused(monkeypatch, tmp_path: Path) -> None:
    from audio2face.errors import ConfigError
    from audio2face.metrics import Metrics

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="set after prometheus_client was imported"):
        Metrics()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="not a writable folder"):
        Metrics()


def test_prepare_clears_an_earlier_run(monkeypatch, tmp_path: Path) -> None:
    from audio2face.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

    # setenv first, so the teardown restores "unset" whatever prepare_* exports.
    monkeypatch.setenv(MULTIPROC_ENV, "")
    monkeypatch.delenv(MULTIPROC_ENV)
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    assert prepare_multiprocess_dir(tmp_path) == tmp_path
    assert os.environ[MULTIPROC_ENV] == str(tmp_path)
    assert not list(tmp_path.glob("*.db"))


def test_shared_dir_lives_as_long_as_the_server(monkeypatch) -> None:
    from audio2face.metrics import MULTIPROC_ENV, shared_metrics_dir

    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with shared_metrics_dir() as path:
        assert path.is_dir() and os.environ[MULTIPROC_ENV] == str(path)
    assert not path.exists() and MULTIPROC_ENV not in os.environ


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_workers_report_one_total(tmp_path: Path) -> None:
    """``serve --workers 2``: every scrape, whichever worker answers it, counts the
    streams both workers served."""
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **os.environ, "AUDIO2FACE_PORT": str(port), "AUDIO2FACE_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }  # fmt: skip
    with open(tmp_path / "log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "audio2face.cli", "serve"], env=env,
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "log").read_text()
            time.sleep(0.2)
        client = V1Client(f"ws://127.0.0.1:{port}/api/v1/streaming_audio2face/ws")
        t = np.arange(16000) / 16000
        pcm = (0.3 * np.sin(2 * np.pi * 180 * t) * 32767).astype("<i2").tobytes()

        async def many():
            return await asyncio.gather(
                *[client.stream(pcm, UtteranceOptions(chunk_ms=100)) for _ in range(6)]
            )

        results = asyncio.run(many())
        assert all(r.values.shape == (30, 52) for r in results)
        for _ in range(12):  # new connections: the kernel spreads them over the workers
            with httpx.Client() as http:
                seen = samples(http.get(f"{url}/metrics").text)
            assert seen["a2f_frames_out_total{}"] == 6 * 30, seen
            assert seen["a2f_streams_total{outcome=ok}"] == 6, seen
            assert seen["a2f_active_streams{}"] == 0
        assert len(list(metrics_dir.glob("counter_*.db"))) == 2  # one file per worker
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
