"""Faults: a failing engine, a client leaving mid-inference, a slow reader, and
SIGTERM on a real server process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from hardening_support import (
    HEALTHY_PCM,
    RESP_END,
    body,
    end,
    exchange,
    expected_frames,
    hardening_settings,
    healthy_alone,
    healthy_messages,
    pcm16,
    speechlike,
    split,
    start,
    start_server,
    steady_profile_dir,
    wait_clean,
)
from v1_client import Reply, read_replies

from audio2face.client import UtteranceOptions, V1Client
from audio2face.loading import load_unitalker_engine
from audio2face.types import EngineCapabilities

HERE = Path(__file__).resolve().parent


class WrappedEngine:
    """The tiny UniTalker engine under another name, with a fault per stream."""

    def __init__(self, inner, name: str, *, fail_after: int | None = None,
                 delay_s: float = 0.0) -> None:  # fmt: skip
        self.inner = inner
        self.name = name
        self.fail_after = fail_after
        self.delay_s = delay_s
        self.in_push = threading.Event()
        self.pushes_done = 0
        self.output_names = inner.output_names
        self.sample_rate = inner.sample_rate
        self.fps = inner.fps
        self.lookahead_s = inner.lookahead_s
        self.capabilities = EngineCapabilities()  # pushed one by one: the fault is per stream

    def open_stream(self, fps=None):
        return _FaultyStream(self, self.inner.open_stream(fps))


class _FaultyStream:
    def __init__(self, engine: WrappedEngine, inner) -> None:
        self.engine = engine
        self.inner = inner
        self.pushes = 0

    def push(self, audio, emotion=None):
        self.pushes += 1
        self.engine.in_push.set()
        if self.engine.fail_after is not None and self.pushes > self.engine.fail_after:
            raise RuntimeError("injected fault: the GPU fell off the bus")
        time.sleep(self.engine.delay_s)
        out = self.inner.push(audio, emotion)
        self.engine.pushes_done += 1
        return out

    def finish(self):
        return self.inner.finish()


def faulty_profiles(root: Path) -> Path:
    """``steady`` on the real engine; ``faulty`` on the wrapped one (registered as
    "default")."""
    steady_profile_dir(root)
    text = (root / "steady.toml").read_text(encoding="utf-8")
    (root / "faulty.toml").write_text(
        text.replace('name = "steady"', 'name = "faulty"').replace(
            'engine = "unitalker"', 'engine = "default"'
        ),
        encoding="utf-8",
    )
    return root


def faulty_server(model: Path, root: Path, wrapped_kwargs: dict, **overrides):
    settings = hardening_settings(model, faulty_profiles(root), **overrides)
    real = load_unitalker_engine(settings)
    wrapped = WrappedEngine(load_unitalker_engine(settings), "default", **wrapped_kwargs)
    return start_server(settings, {"unitalker": real, "default": wrapped}), wrapped


def _poll(done, deadline: float) -> None:
    """Wait for a condition on the server (another thread's loop) until ``deadline``."""
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)


# --- an engine that raises ---------------------------------------------------------------


def test_failing_engine_ends_its_stream_with_1011_others_unaffected(tiny_unitalker_path, tmp_path):
    server, _ = faulty_server(tiny_unitalker_path, tmp_path, {"fail_after": 3})
    with server:
        reference = healthy_alone(server.ws_url)
        pcm = pcm16(speechlike(2.0, seed=3))
        bad_msgs = [start(profile="faulty"), *[body(c) for c in split(pcm, 3200)], end()]

        async def both():
            return await asyncio.gather(
                exchange(server.ws_url, bad_msgs), exchange(server.ws_url, healthy_messages())
            )

        bad, healthy = asyncio.run(both())
        assert bad.close_code == 1011
        assert "inference failed" in bad.close_reason
        assert "injected fault" in bad.close_reason
        assert not bad.got_end
        assert healthy.got_end
        np.testing.assert_array_equal(healthy.frames(), reference)
        wait_clean(server)
        m = server.app.state.a2f.metrics
        assert m.errors.labels(kind="EngineError")._value.get() == 1
        assert m.streams.labels(outcome="EngineError")._value.get() == 1
        # and it keeps serving, the failing profile included (each stream fails alone)
        assert np.array_equal(healthy_alone(server.ws_url), reference)


# --- a client that leaves mid-inference ---------------------------------------------------


def test_disconnect_mid_inference_leaves_nothing_behind(tiny_unitalker_path, tmp_path):
    server, wrapped = faulty_server(tiny_unitalker_path, tmp_path, {"delay_s": 0.4})
    with server:
        state = server.app.state.a2f

        async def leave_mid_inference(abrupt: bool) -> None:
            async with V1Client(server.ws_url).connect() as conn:
                await conn.send(start(profile="faulty"))
                for c in split(pcm16(speechlike(3.0)), 16000):
                    await conn.send(body(c))
                await asyncio.to_thread(wrapped.in_push.wait, 10)
                if abrupt:
                    conn.abort()  # no close frame, as a crashed client

        for abrupt in (False, True):
            wrapped.in_push.clear()
            asyncio.run(leave_mid_inference(abrupt))
            assert state.streams  # the push is still running in the pool
            wait_clean(server)
        assert state.metrics.streams.labels(outcome="disconnected")._value.get() == 2
        # the worker pool is free again: a new stream is served in full
        out = asyncio.run(exchange(server.ws_url, [start(), body(pcm16(speechlike(1.0))), end()]))
        assert out.got_end and out.frames().shape[0] == 30


# --- a client that sends but never reads --------------------------------------------------


def test_slow_reader_is_closed_with_bounded_memory(tiny_unitalker_path, tmp_path, caplog):
    """Backpressure: the inbox stops reading at max_buffered_s, sends time out after
    send_timeout_s, the stream is closed and counted; a healthy stream keeps its pace."""
    profiles = steady_profile_dir(tmp_path)
    # idle_timeout_s: when the client's own sends stall first (the server's socket
    # buffer absorbed every frame), the client is idle as well as deaf, and the idle
    # limit is what closes it; which limit fires depends on timing.
    settings = hardening_settings(
        tiny_unitalker_path,
        profiles,
        max_buffered_s=2.0,
        send_timeout_s=1.0,
        idle_timeout_s=2.0,
    )
    with start_server(settings) as server:
        state = server.app.state.a2f
        reference = healthy_alone(server.ws_url)
        # 30 s bodies: the tiny model turns them into frames faster than loopback
        # buffers (megabytes) can hide a reader that never reads.
        chunk = pcm16(speechlike(1.0, seed=9)) * 30
        peak = 0.0
        sent_s = 0.0
        clogged = asyncio.Event()  # made in asyncio.run's loop (Python >= 3.10)

        async def slow_reader() -> None:
            nonlocal sent_s
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            async with V1Client(server.ws_url).connect(sock=sock, max_queue=1) as conn:
                await conn.send(start(chunk=1))  # one frame per message: many small sends
                deadline = time.monotonic() + 20
                try:
                    while time.monotonic() < deadline:
                        if not await asyncio.wait_for(conn.send(body(chunk)), 2.0):
                            break  # the server closed
                        sent_s += 30.0
                        if sent_s >= 60.0:  # more than the server may buffer: clogged
                            clogged.set()
                except TimeoutError:
                    pass
                clogged.set()  # sends stall or were refused: clogged too
                # wait for the server to give up on us, still not reading
                await asyncio.to_thread(_poll, lambda: not state.streams, deadline)
                conn.abort()

        async def healthy_paced() -> tuple[float, np.ndarray]:
            """1 s of audio in real time, 100 ms bodies; returns End sent -> End back."""
            await asyncio.wait_for(clogged.wait(), 25)  # let the slow reader clog first
            options = UtteranceOptions(chunk_ms=100, pace=True)
            result = await V1Client(server.ws_url).stream(HEALTHY_PCM, options)
            return result.end_received - result.end_sent, result.values

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, state.buffered_seconds())
                await asyncio.sleep(0.01)

        async def main():
            watcher = asyncio.create_task(watch())
            try:
                return await asyncio.gather(slow_reader(), healthy_paced())
            finally:
                watcher.cancel()

        with caplog.at_level(logging.WARNING, logger="audio2face.server.v1"):
            t0 = time.monotonic()
            _, (after_end_s, frames) = asyncio.run(main())
            took = time.monotonic() - t0
        print(f"slow reader: sent {sent_s:.0f} s of audio, peak inbox {peak:.1f} s, {took:.1f} s")
        np.testing.assert_array_equal(frames, reference)
        assert after_end_s < 2.0, (
            f"healthy stream's End took {after_end_s:.2f} s beside the slow reader"
        )
        assert took < 15, "the slow reader was not closed in time"
        # memory: the slow reader's inbox never held more than its bound, or one body
        # let into an empty queue; ``buffered_seconds`` sums every stream, so the healthy
        # stream's queued 100 ms bodies count too.
        assert peak <= max(settings.max_buffered_s, 30.0) + 0.5, peak
        m = state.metrics
        hits = {lim: m.refusals.labels(limit=lim)._value.get()
                for lim in ("send_timeout_s", "idle_timeout_s")}  # fmt: skip
        assert sum(hits.values()) == 1, hits
        assert any(
            "send_timeout_s=1" in r.getMessage() or "idle_timeout_s=2" in r.getMessage()
            for r in caplog.records
        )
        wait_clean(server)


# --- SIGTERM on a real process ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_drains_a_real_server(tiny_unitalker_path):
    port = _free_port()
    env = dict(
        os.environ,
        AUDIO2FACE_UNITALKER_MODEL=str(tiny_unitalker_path),
        AUDIO2FACE_DEFAULT_PROFILE="unitalker",
        AUDIO2FACE_PORT=str(port),
        AUDIO2FACE_SHUTDOWN_DRAIN_S="10",
        AUDIO2FACE_INFERENCE_WORKERS="1",
    )
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "serve_tiny.py")], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/api/v1/streaming_audio2face/ws"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("server did not start:\n" + (proc.stdout.read() if proc.stdout else ""))
            time.sleep(0.1)

        pcm = pcm16(speechlike(2.0, seed=4))
        seen: dict[str, object] = {}

        async def in_flight():
            """A 2 s utterance paced in real time; SIGTERM arrives 0.5 s in."""
            async with V1Client(url).connect() as conn:
                await conn.send(start())
                for i, c in enumerate(split(pcm, 3200)):
                    await conn.send(body(c))
                    await asyncio.sleep(0.1)
                    if i == 4:
                        proc.send_signal(signal.SIGTERM)
                    if i == 8:
                        seen["ready"] = (
                            await asyncio.to_thread(httpx.get, base + "/ready")
                        ).status_code
                        refused = await exchange(url, [start(), end()])
                        seen["refused"] = (refused.close_code, refused.close_reason)
                await conn.send(end())
                return (await read_replies(conn, Reply())).messages

        got = asyncio.run(in_flight())
        assert got[-1].class_name == RESP_END
        names = len(got[0].blendshape_names)
        n = sum(len(r.data) // 4 // names for r in got[1:-1])
        assert n == expected_frames(len(pcm) // 2)
        assert seen["ready"] == 503
        code, reason = seen["refused"]
        assert code == 1013 and "shutting down" in reason
        assert proc.wait(timeout=20) == 0
        log = proc.stdout.read() if proc.stdout else ""
        assert "draining: 1 stream(s) in flight" in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
