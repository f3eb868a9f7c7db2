"""The Ray Serve application (deploy/ray/audio2face_serve.py) on a real Ray cluster on
loopback: two replicas, streams spread over both, one replica killed mid-run, the app
deleted with streams open (drain), and scaling out on open streams.

Slow (a Ray head and its replicas start: about 50 s on 2 cores) and it needs
``ray[serve]``, so it runs only with ``A2F_RAY_TEST=1``::

    A2F_RAY_TEST=1 .venv/bin/python -m pytest -q tests/deploy/test_ray_serve.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from audio2face.client import V1Client, body_request, end_request, start_request
from audio2face.protocol.v1 import DTYPES, ResponseKind

ROOT = Path(__file__).resolve().parents[2]
RAY_APP_DIR = ROOT / "deploy" / "ray"
START_TIMEOUT_S = 180.0
STREAM_S = 4.0
"""Audio per stream, sent in real time, so a stream is still open when a replica dies."""
CHUNK_S = 0.1
KILL_AFTER_S = 1.5
SCALE_STREAM_S = 15.0
"""Streams of the scaling test: long enough for Ray to see the load and add a replica."""
LOST_REPLICA_CODE = 1012
"""What a stream cut by a lost replica ends with ("service restart": reconnect), never a
silent drop (1006) or a normal end."""

pytestmark = pytest.mark.skipif(
    os.environ.get("A2F_RAY_TEST") != "1", reason="Ray cluster test: set A2F_RAY_TEST=1"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Outcome:
    replica: str
    frames: int = 0
    got_end: bool = False
    close_code: int | None = None
    error: str = ""
    started: list[float] = field(default_factory=list)


async def one_stream(url: str, seconds: float) -> Outcome:
    """One v1 utterance paced in real time; what came back and how it ended."""
    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    pcm = 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 2 * t) > 0) * 32767
    raw = pcm.astype("<i2").tobytes()
    step = int(CHUNK_S * rate) * 2
    async with V1Client(url).connect() as conn:
        outcome = Outcome(replica=conn.ws.response.headers.get("x-a2f-replica", ""))

        async def send() -> None:
            if not await conn.send(start_request(sample_rate=rate)):
                return
            for i in range(0, len(raw), step):
                if not await conn.send(body_request(raw[i : i + step])):
                    return
                await asyncio.sleep(CHUNK_S)
            await conn.send(end_request())

        sender = asyncio.create_task(send())
        width = 0
        async for resp in conn.responses():
            if resp.class_name == ResponseKind.START:
                width = DTYPES[resp.dtype].itemsize * len(resp.blendshape_names)
            elif resp.class_name == ResponseKind.BODY and width:
                outcome.frames += len(resp.data) // width
            elif resp.class_name == ResponseKind.END:
                outcome.got_end = True
                break
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        if not outcome.got_end:
            outcome.close_code = conn.close_code
        return outcome


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    ray = pytest.importorskip("ray", reason="pip install 'audio2face[ray]'")
    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    # Ray's unix sockets need a short path; its logs go here too.
    temp = tempfile.mkdtemp(prefix="a2f-ray-")
    port = free_port()
    env = {
        **os.environ,
        # The replicas import the app from deploy/ray, as `serve run --app-dir` would.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(RAY_APP_DIR), os.environ.get("PYTHONPATH")])
        ),
        "RAY_USAGE_STATS_ENABLED": "0",
        # The proxy closes streams of a lost replica with 1012 (docs/deploy.md).
        "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": "audio2face_serve.proxy_middlewares",
        # Load reports every second instead of every 10 s, so the scaling test is short.
        "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "1",
        "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "1",
    }
    # --block keeps `ray start` in the foreground in its own process group: the test
    # stops exactly the cluster it started (never `ray stop`, which stops every Ray
    # process of the machine).
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         f"--port={port}", "--num-cpus=4", "--include-dashboard=false",
         f"--temp-dir={temp}", "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                ray.init(address=f"127.0.0.1:{port}", logging_level="WARNING")
                break
            except (ConnectionError, RuntimeError):
                if time.monotonic() > deadline or head.poll() is not None:
                    raise
                time.sleep(1.0)
        yield temp
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # anything of this cluster still running
        shutil.rmtree(temp, ignore_errors=True)


def test_two_replicas_spread_and_survive_a_lost_one(ray_cluster: str, monkeypatch) -> None:
    import ray
    from ray import serve

    sys.path.insert(0, str(RAY_APP_DIR))
    try:
        import audio2face_serve
    finally:
        sys.path.remove(str(RAY_APP_DIR))

    http_port = free_port()
    monkeypatch.setenv("AUDIO2FACE_SHUTDOWN_DRAIN_S", "2")
    serve.start(http_options={"host": "127.0.0.1", "port": http_port})
    app = audio2face_serve.build({"min_replicas": "2", "max_replicas": "2", "num_cpus": "0.5"})
    t0 = time.monotonic()
    serve.run(app, name="audio2face", route_prefix="/", blocking=False)
    base = f"http://127.0.0.1:{http_port}"
    url = f"ws://127.0.0.1:{http_port}/api/v1/streaming_audio2face/ws"
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                break
        assert time.monotonic() - t0 < START_TIMEOUT_S, "the Ray app did not become ready"
        time.sleep(0.5)
    replicas = {
        a["name"]: a for a in ray.util.list_named_actors(all_namespaces=True)
        if "SERVE_REPLICA" in a["name"] and "audio2face" in a["name"]
    }  # fmt: skip
    assert len(replicas) == 2, replicas

    async def scenario() -> tuple[list[Outcome], list[Outcome], str]:
        first = [asyncio.create_task(one_stream(url, STREAM_S)) for _ in range(20)]
        await asyncio.sleep(KILL_AFTER_S)
        victim = ""
        for name, actor in replicas.items():
            # Actor names end with the replica's id, which the header carries.
            victim = name.rsplit("#", 1)[-1]
            ray.kill(ray.get_actor(name, namespace=actor["namespace"]), no_restart=True)
            break
        # New streams a moment later, as reconnecting clients would open them: by then
        # Ray's routers have dropped the dead replica.
        await asyncio.sleep(1.0)
        second = [asyncio.create_task(one_stream(url, 1.0)) for _ in range(6)]
        return list(await asyncio.gather(*first)), list(await asyncio.gather(*second)), victim

    first, second, victim = asyncio.run(scenario())
    expected = round(STREAM_S * 30)
    served_by = {o.replica for o in first}
    assert len(served_by) == 2 and "" not in served_by, served_by  # both replicas served
    cut = [o for o in first if o.replica == victim]
    kept = [o for o in first if o.replica != victim]
    assert cut and kept, (victim, served_by)
    for o in cut:  # ended by the loss, with a code that says so
        assert not o.got_end and o.close_code == LOST_REPLICA_CODE, o
    for o in kept:  # the survivor's streams never noticed
        assert o.got_end and o.frames == expected, o
    for o in second:  # new streams avoid the dead replica and complete
        assert o.replica != victim and o.got_end and o.frames == 30, o

    async def drain() -> tuple[list[Outcome], float]:
        """Deleting the app while streams are open: Ray stops routing to its replicas
        and waits for their open streams (graceful_shutdown_timeout_s) before it stops
        them, so the streams finish whole."""
        open_streams = [asyncio.create_task(one_stream(url, 3.0)) for _ in range(4)]
        await asyncio.sleep(1.0)
        t = time.monotonic()
        await asyncio.to_thread(serve.delete, "audio2face")
        return list(await asyncio.gather(*open_streams)), time.monotonic() - t

    drained, took = asyncio.run(drain())
    for o in drained:
        assert o.got_end and o.frames == 90, o
    assert took >= 1.5, f"the app was deleted in {took:.1f} s, before its streams ended"
    serve.shutdown()  # the next test starts Serve with its own port


def replica_names() -> set[str]:
    import ray

    return {
        a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
        if "SERVE_REPLICA" in a["name"] and "audio2face" in a["name"]
    }  # fmt: skip


def test_scales_out_on_open_streams(ray_cluster: str) -> None:
    """One replica, a target of 2 streams each: 6 open streams bring a second one."""
    from ray import serve

    sys.path.insert(0, str(RAY_APP_DIR))
    try:
        import audio2face_serve
    finally:
        sys.path.remove(str(RAY_APP_DIR))

    http_port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": http_port})
    app = audio2face_serve.build(
        {"min_replicas": "1", "max_replicas": "2", "target_streams": "2",
         "upscale_delay_s": "1", "num_cpus": "0.5"}
    )  # fmt: skip
    serve.run(app, name="audio2face", route_prefix="/")
    assert len(replica_names()) == 1
    url = f"ws://127.0.0.1:{http_port}/api/v1/streaming_audio2face/ws"

    async def load() -> tuple[list[Outcome], float | None]:
        streams = [asyncio.create_task(one_stream(url, SCALE_STREAM_S)) for _ in range(6)]
        t0, scaled = time.monotonic(), None
        while scaled is None and time.monotonic() - t0 < SCALE_STREAM_S:
            await asyncio.sleep(0.5)
            if len(await asyncio.to_thread(replica_names)) == 2:
                scaled = time.monotonic() - t0
        return list(await asyncio.gather(*streams)), scaled

    outcomes, scaled = asyncio.run(load())
    assert scaled is not None, f"no second replica within {SCALE_STREAM_S} s of 6 streams"
    for o in outcomes:  # scaling out never disturbed the open streams
        assert o.got_end and o.frames == round(SCALE_STREAM_S * 30), o
    serve.delete("audio2face")
    serve.shutdown()
