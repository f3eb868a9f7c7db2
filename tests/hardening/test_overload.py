"""Overload degrades instead of lagging (issue 13): admission on measured capacity
(1013 "at capacity"), a bound on each stream's lag behind real time, and the capacity
estimate itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from hardening_support import (
    body,
    end,
    exchange,
    hardening_settings,
    pcm16,
    speechlike,
    split,
    start,
    start_server,
    steady_profile_dir,
    wait_clean,
)

from audio2face.client import V1Client
from audio2face.loading import load_unitalker_engine
from audio2face.metrics import Metrics
from audio2face.protocol.v1 import ResponseKind
from audio2face.server import admission
from audio2face.server.admission import CapacityEstimate
from audio2face.settings import Settings
from audio2face.types import EngineCapabilities


class SlowEngine:
    """The tiny UniTalker engine, ``delay_s`` slower per push (a model too big for the
    machine); pushed one by one, timed by the runner."""

    def __init__(self, inner, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.output_names = inner.output_names
        self.sample_rate = inner.sample_rate
        self.fps = inner.fps
        self.lookahead_s = inner.lookahead_s
        self.capabilities = EngineCapabilities()

    def open_stream(self, fps=None):
        return _SlowStream(self, self.inner.open_stream(fps))


class _SlowStream:
    def __init__(self, engine: SlowEngine, inner) -> None:
        self.engine = engine
        self.inner = inner

    def push(self, audio, emotion=None):
        time.sleep(self.engine.delay_s)
        return self.inner.push(audio, emotion)

    def finish(self):
        return self.inner.finish()


def slow_server(model: Path, root: Path, delay_s: float, **overrides: object):
    """``steady`` served by a :class:`SlowEngine` (registered as the "unitalker" engine)."""
    settings = hardening_settings(model, steady_profile_dir(root), **overrides)
    engine = SlowEngine(load_unitalker_engine(settings), delay_s)
    return start_server(settings, {"unitalker": engine})


async def paced(url: str, seconds: float, seed: int = 0) -> tuple[int | None, str, int]:
    """A real-time client (100 ms bodies); (close code, reason, frame messages)."""
    pcm = pcm16(speechlike(seconds, seed=seed))
    bodies = 0
    async with V1Client(url).connect() as conn:

        async def read() -> None:
            nonlocal bodies
            async for msg in conn.responses():
                bodies += msg.class_name == ResponseKind.BODY
                if msg.class_name == ResponseKind.END:
                    break

        reader = asyncio.create_task(read())
        await conn.send(start())
        for chunk in split(pcm, 3200):
            if not await conn.send(body(chunk)) or reader.done():
                break
            await asyncio.sleep(0.1)
        await conn.send(end())
        await asyncio.wait_for(reader, 30)
        return conn.close_code, conn.close_reason, bodies


def test_stream_that_falls_behind_is_closed_not_left_to_lag(tiny_unitalker_path, tmp_path):
    """An engine at 2.5x real time: the stream ends with 1013 soon after it is
    max_lag_s behind, instead of growing a backlog."""
    with slow_server(tiny_unitalker_path, tmp_path, 0.25, max_lag_s=0.6,
                     capacity_target=0.0) as server:  # fmt: skip
        t0 = time.monotonic()
        code, reason, bodies = asyncio.run(paced(server.ws_url, 4.0))
        took = time.monotonic() - t0
        assert code == 1013 and "max_lag_s=0.6" in reason, (code, reason)
        assert bodies > 0  # it served what it could in time
        assert took < 4.5, f"closed only after {took:.1f} s"
        m = server.app.state.a2f.metrics
        assert m.refusals.labels(limit="max_lag_s")._value.get() == 1
        wait_clean(server)


def test_client_sending_ahead_of_real_time_is_not_lagging(hard_server) -> None:
    """A file sent all at once is due at its place on the stream's clock, not at its
    arrival: a tight max_lag_s does not close it."""
    state = hard_server.app.state.a2f
    pcm = pcm16(speechlike(20.0, seed=5))
    before = state.metrics.refusals.labels(limit="max_lag_s")._value.get()
    out = asyncio.run(exchange(hard_server.ws_url, [start(), *map(body, split(pcm, 3200)), end()]))
    assert out.got_end
    assert state.metrics.refusals.labels(limit="max_lag_s")._value.get() == before


def test_new_streams_past_measured_capacity_are_refused(tiny_unitalker_path, tmp_path):
    """A push of 100 ms costs 60 ms on the one inference worker: one stream uses 60% of
    the compute, two saturate it. Past capacity_target (0.9) new streams are refused
    with 1013, the admitted ones keep streaming, and /metrics shows the headroom."""
    with slow_server(tiny_unitalker_path, tmp_path, 0.06, max_lag_s=30.0, min_body_s=0.0,
                     inference_workers=1) as server:  # fmt: skip
        url = server.ws_url

        async def scenario() -> list[tuple[int | None, str, int]]:
            tasks = [asyncio.create_task(paced(url, 6.0, seed=1))]
            await asyncio.sleep(2.5)  # measured by now: 60% busy
            tasks.append(asyncio.create_task(paced(url, 3.0, seed=2)))
            await asyncio.sleep(2.0)  # saturated by now
            for i in range(2):
                tasks.append(asyncio.create_task(paced(url, 2.0, seed=3 + i)))
                await asyncio.sleep(1.0)
            return [await t for t in tasks]

        results = asyncio.run(scenario())
        refused = [r for r in results if r[0] == 1013]
        admitted = [r for r in results if r[0] != 1013]
        # The load is measured once a second: the third may still come in as it rises.
        assert refused and results[-1] in refused, results
        assert all(r[1].startswith("at capacity: ") and r[2] == 0 for r in refused), refused
        assert len(admitted) >= 2 and all(r[0] in (None, 1000) and r[2] > 0 for r in admitted)
        text = httpx.get(server.http_url + "/metrics").text
        assert 'a2f_capacity_headroom{engine="unitalker"}' in text
        m = server.app.state.a2f.metrics
        assert m.refusals.labels(limit="capacity_target")._value.get() == len(refused)
        wait_clean(server)


def test_capacity_estimate_from_measured_load(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(admission.time, "monotonic", lambda: clock[0])
    metrics = Metrics()
    audio = {"e": 0.0}
    settings = Settings(inference_workers=1, capacity_target=0.9)
    est = CapacityEstimate(settings, metrics, lambda: dict(audio))
    est.update()  # first sight: the first window starts here
    assert est.streams_for("e", 0) is None  # nothing measured: only max_streams limits
    hist = metrics.inference_seconds.labels(engine="e")

    def window(compute_s: float) -> None:
        clock[0] += 2.0
        audio["e"] += 2.0
        hist.observe(compute_s)
        est.update()

    window(0.6)  # 30% busy with, say, 2 streams; 0.3 s of compute per audio second
    assert est.streams_for("e", 0) == 3  # floor(0.9 * 1 / 0.3)
    assert est.streams_for("e", 2) == 6  # floor(2 * 0.9 / 0.3)
    assert est.headroom(["e", "e"]) == {"e": 4}
    assert est.refusal("e", ["e", "e"]) is None
    for _ in range(4):
        window(2.0)  # saturated
    reason = est.refusal("e", ["e"] * 5)
    assert reason is not None and reason.startswith("at capacity: 5 streams")
    assert est.headroom(["e"] * 5) == {"e": 0}
    for _ in range(4):
        window(0.0)  # idle again: room comes back
    assert est.refusal("e", []) is None
    # capacity_target=0 turns the check off
    off = CapacityEstimate(Settings(capacity_target=0.0), Metrics(), lambda: dict(audio))
    off.update()
    window(2.0)
    off.update()
    assert off.refusal("e", ["e"] * 100) is None
