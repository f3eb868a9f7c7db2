"""BatchPusher: pushes from an event loop run in batches on a thread, results exact."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from audio2face.engines.default import load_default_engine
from audio2face.engines.onnx import OrtOptions
from audio2face.errors import EngineError, StreamClosedError
from audio2face.runtime import Runtime
from audio2face.settings import Settings
from audio2face.streaming.pusher import BatchOptions, BatchPusher

SETTINGS = Settings(providers="cpu", intra_op_threads=1, inference_workers=1, batch_wait_ms=0)


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    engine = load_default_engine(ort_options=OrtOptions(providers="cpu"))
    rt = Runtime.start(SETTINGS, engines={"default": engine})
    yield rt
    rt.close()


def speech(seed: int, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    env = (np.sin(2 * np.pi * 3.0 * t + seed) > 0.1).astype(np.float32)
    return (0.2 * env * np.sin(2 * np.pi * 150 * t) + 0.01 * rng.standard_normal(t.shape)).astype(
        np.float32
    )


def open_sessions(runtime: Runtime, n: int):
    return [runtime.open_session("arkit", 16000, seed=k)[0] for k in range(n)]


def test_concurrent_pushes_batch_and_match_pushing_alone(runtime: Runtime) -> None:
    """Eight streams pushing 40 ms bodies at once share runs; each gets the frames a
    session pushed on its own gets."""
    sizes: list[int] = []
    pusher = BatchPusher(BatchOptions(threads=1, max_batch=64, wait_s=0.005))
    runtime.engines["default"].attach_batch_observer(lambda n, _s: sizes.append(n))
    clips = [speech(k) for k in range(8)]

    async def stream(session, clip):
        out = []
        for start in range(0, clip.shape[0], 640):
            out.append((await pusher.push(session, clip[start : start + 640])).values)
        return np.concatenate(out + [session.finish().values])

    async def main():
        return await asyncio.gather(*(stream(s, c) for s, c in zip(open_sessions(runtime, 8), clips, strict=True)))

    try:
        together = asyncio.run(main())
    finally:
        pusher.close()
        pusher.join(5)
        runtime.engines["default"].attach_batch_observer(None)
    assert max(sizes) >= 4  # whole bodies of several streams shared one model run
    for session, clip, got in zip(open_sessions(runtime, 8), clips, together, strict=True):
        alone = [session.push(clip[s : s + 640]).values for s in range(0, clip.shape[0], 640)]
        want = np.concatenate(alone + [session.finish().values])
        assert got.shape == want.shape == (30, 52)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_errors_reach_only_their_stream_and_a_closed_pusher_refuses(runtime: Runtime) -> None:
    pusher = BatchPusher(BatchOptions(threads=2, max_batch=4, wait_s=0.0))
    done, ok = open_sessions(runtime, 2)
    done.finish()

    async def main():
        return await asyncio.gather(
            pusher.push(done, speech(0, 0.04)), pusher.push(ok, speech(1, 0.5)),
            return_exceptions=True,
        )  # fmt: skip

    bad, good = asyncio.run(main())
    assert isinstance(bad, StreamClosedError)
    assert not isinstance(good, Exception) and len(good) > 0
    pusher.close()
    pusher.join(5)
    with pytest.raises(EngineError, match="shut down"):
        asyncio.run(pusher.push(ok, speech(2, 0.04)))


def test_a_cancelled_push_does_not_break_the_others(runtime: Runtime) -> None:
    pusher = BatchPusher(BatchOptions(threads=1, max_batch=64, wait_s=0.05))  # long wait: cancel lands first
    a, b = open_sessions(runtime, 2)

    async def main():
        first = asyncio.ensure_future(pusher.push(a, speech(0, 0.2)))
        second = asyncio.ensure_future(pusher.push(b, speech(1, 0.2)))
        await asyncio.sleep(0)
        first.cancel()
        return await second

    try:
        frames = asyncio.run(main())
    finally:
        pusher.close()
        pusher.join(5)
    assert len(frames) > 0


def test_argument_checks() -> None:
    with pytest.raises(ValueError):
        BatchOptions(threads=0)
    with pytest.raises(ValueError):
        BatchOptions(max_batch=0)
    with pytest.raises(ValueError):
        BatchOptions(wait_s=-1)


def test_streams_that_end_together_finish_in_one_batch(runtime: Runtime) -> None:
    """Finishes queued together run as one finish_many (one model run) and each gets
    exactly the frames it would get alone."""
    runs: list[int] = []
    runtime.engines["default"].attach_batch_observer(lambda n, _s: runs.append(n))
    pusher = BatchPusher(BatchOptions(threads=1, max_batch=64, wait_s=0.05))
    clips = [speech(k, 0.5) for k in range(6)]

    async def main():
        sessions = open_sessions(runtime, 6)
        for s, c in zip(sessions, clips, strict=True):
            await pusher.push(s, c)
        runs.clear()
        return await asyncio.gather(*(pusher.finish(s) for s in sessions))

    try:
        ends = asyncio.run(main())
    finally:
        pusher.close()
        pusher.join(5)
        runtime.engines["default"].attach_batch_observer(None)
    assert max(runs) == 6  # all six last steps in one run
    for session, clip, got in zip(open_sessions(runtime, 6), clips, ends, strict=True):
        session.push(clip)
        np.testing.assert_allclose(got.values, session.finish().values, atol=1e-4)
