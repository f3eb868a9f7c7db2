"""The stream runner: the same frames as a bare session, re-chunking, flush, interrupt,
backpressure, abort, strict names and engine errors. Waiting is on events, not sleeps."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from audio2face.engines.onnx import OrtOptions
from audio2face.errors import EngineError, StreamClosedError, UnknownNameError
from audio2face.runtime import Runtime
from audio2face.settings import Settings
from audio2face.streaming.runner import Ended, Flushed, FramesEvent, Interrupted
from audio2face.types import EngineCapabilities, StreamState, frames_for_samples


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Runtime:
    """The default and phonemes engines; profile "plain" is the raw ARKit 52 (no steps)."""
    from audio2face.engines.default import load_default_engine
    from audio2face.engines.phonemes import PhonemeEngine

    profiles = tmp_path_factory.mktemp("profiles")
    (profiles / "plain.toml").write_text('name = "plain"\nrig = "arkit52"\n', "utf-8")
    engines = {
        "default": load_default_engine(ort_options=OrtOptions(providers="cpu")),
        "phonemes": PhonemeEngine(),
    }
    settings = Settings(batch_wait_ms=0, max_buffered_s=1.0, profile_dir=profiles)
    rt = Runtime.start(settings, engines=engines)
    yield rt
    rt.close()


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    env = (np.sin(2 * np.pi * 3.0 * t + seed) > 0.1).astype(np.float32)
    return (0.3 * env * np.sin(2 * np.pi * 150 * t) + 0.01 * rng.standard_normal(t.shape)).astype(
        np.float32
    )


async def collect(stream) -> list:
    return [event async for event in stream.events()]


async def feed_and_collect(stream, feed) -> list:
    """Run ``feed(stream)`` as the producer while this task consumes, as a transport does
    (a producer alone would wait forever on a full inbox)."""
    producer = asyncio.ensure_future(feed(stream))
    events = await collect(stream)
    await producer
    return events


def test_frames_equal_a_bare_session_and_leave_in_whole_chunks(runtime: Runtime) -> None:
    audio = speech(2.0)
    bodies = [audio[i : i + 16000] for i in range(0, audio.shape[0], 16000)]  # two 1 s bodies

    async def feed(stream) -> None:
        for body in bodies:
            await stream.push(body)
        await stream.finish()

    async def main() -> list:
        async with runtime.open_stream("plain", 16000, chunk_frames=7) as stream:
            return await feed_and_collect(stream, feed)

    events = asyncio.run(main())
    frames = [e for e in events if isinstance(e, FramesEvent)]
    assert isinstance(events[-1], Ended) and events[-1].frames == 60
    got = np.concatenate([e.batch.values for e in frames])
    session, _ = runtime.open_session("plain", 16000)
    want = np.concatenate([session.push(b).values for b in bodies] + [session.finish().values])
    np.testing.assert_allclose(got, want, atol=1e-5)
    # Within a run the frames leave in multiples of chunk_frames, whatever the cuts.
    run_events = [e for e in frames if e.latency_s is not None]
    assert all(len(e.batch) % 7 == 0 for e in run_events[:-1])
    firsts = [e.batch.first_frame for e in frames]
    assert firsts == sorted(firsts) and firsts[0] == 0


def test_flushes_keep_the_clock_and_report_the_total(runtime: Runtime) -> None:
    sizes = [8000, 12345, 333, 16000]

    async def feed(stream) -> None:
        for size in sizes:
            await stream.push(speech(size / 16000, seed=size))
            await stream.flush()
        await stream.finish()

    async def main() -> list:
        async with runtime.open_stream("plain", 16000) as stream:
            return await feed_and_collect(stream, feed)

    events = asyncio.run(main())
    flushed = [e.frames for e in events if isinstance(e, Flushed)]
    totals = np.cumsum(sizes)
    assert flushed == [frames_for_samples(int(m), 16000, 30.0) for m in totals]
    n = sum(len(e.batch) for e in events if isinstance(e, FramesEvent))
    assert n == events[-1].frames == flushed[-1]


def test_interrupt_drops_queued_audio_and_eases_to_rest(runtime: Runtime) -> None:
    async def main() -> list:
        async with runtime.open_stream("plain", 16000) as stream:
            events: list = []
            await stream.push(speech(0.5))
            gen = stream.events()
            events.append(await anext(gen))  # the first frames: inference is running
            for _ in range(3):  # 0.75 s more fits the 1 s inbox: queued, to be dropped
                await stream.push(speech(0.25, seed=1))
            await stream.interrupt()
            await stream.finish()
            events += [e async for e in gen]
            return events

    events = asyncio.run(main())
    kinds = [type(e).__name__ for e in events]
    assert "Interrupted" in kinds
    i = kinds.index("Interrupted")
    interrupted = events[i]
    release = events[i + 1]
    assert isinstance(interrupted, Interrupted) and isinstance(release, FramesEvent)
    assert release.batch.first_frame == interrupted.frame
    assert len(release.batch) == 3  # 100 ms at 30 fps
    jaw = release.batch.names.index("jawOpen")
    assert release.batch.values[-1, jaw] <= 0.02  # at rest
    total = events[-1].frames
    assert total < frames_for_samples(16000 * 5 // 4, 16000, 30.0)  # queued audio was dropped
    assert sum(len(e.batch) for e in events if isinstance(e, FramesEvent)) == total


def test_a_full_inbox_holds_the_producer_until_the_consumer_reads(runtime: Runtime) -> None:
    async def main() -> tuple[bool, int]:
        async with runtime.open_stream("plain", 16000) as stream:  # max_buffered_s = 1
            await stream.push(speech(0.9))
            blocked = asyncio.ensure_future(stream.push(speech(0.9, seed=2)))
            done, _ = await asyncio.wait({blocked}, timeout=0.2)
            was_blocked = not done
            consumer = asyncio.ensure_future(collect(stream))
            await blocked  # the consumer drained the inbox
            await stream.finish()
            events = await consumer
            return was_blocked, events[-1].frames

    was_blocked, total = asyncio.run(main())
    assert was_blocked
    assert total == frames_for_samples(2 * int(0.9 * 16000), 16000, 30.0)


def test_abort_ends_the_events_and_fails_the_session(runtime: Runtime) -> None:
    async def main():
        stream = runtime.open_stream("plain", 16000)
        async with stream:
            await stream.push(speech(0.3))
            await stream.abort()
            events = await collect(stream)
            with pytest.raises(StreamClosedError):
                await stream.push(speech(0.1))
        return stream, events

    stream, events = asyncio.run(main())
    assert not any(isinstance(e, Ended) for e in events)
    assert stream.session.state is StreamState.FAILED


def test_names_are_checked_strictly_except_for_v1(runtime: Runtime) -> None:
    async def main() -> None:
        with pytest.raises(UnknownNameError, match=r"unknown profile 'nope'; known: \[.*'plain'"):
            runtime.open_stream("nope", 16000)
        async with runtime.open_stream("mmd", 16000) as stream:
            await stream.push(speech(0.1), "happiness_2")
            with pytest.raises(UnknownNameError, match="unknown emotion 'glee' for profile 'mmd'"):
                await stream.push(speech(0.1), "glee")
        async with runtime.open_stream("mmd", 16000, strict_emotions=False) as stream:
            await stream.push(speech(0.1), "glee")  # v1: warned and treated as neutral

    asyncio.run(main())


def test_phone_timings_drive_the_phonemes_engine_through_the_runner(runtime: Runtime) -> None:
    phones = [(0.0, 0.2, "sil"), (0.2, 0.35, "M"), (0.35, 0.6, "AA"), (0.6, 1.0, "sil")]
    frames = runtime.animate_phones("plain", phones, 1.0)
    assert len(frames) == 30
    jaw = frames.values[:, frames.names.index("jawOpen")]
    close = frames.values[:, frames.names.index("mouthClose")]
    assert jaw[14] > jaw[8] and close[8] > close[14]  # M closes, AA opens


class _Exploding:
    name = "default"
    output_names = ("a",)
    sample_rate = 16000
    fps = 30.0
    lookahead_s = 0.0
    capabilities = EngineCapabilities()

    def open_stream(self, fps=None):
        return self

    def push(self, audio, emotion=None):
        raise RuntimeError("the model fell over")

    def finish(self):
        return np.zeros((0, 1), np.float32)


def test_engine_errors_surface_from_the_events_and_fail_the_stream(tmp_path) -> None:
    (tmp_path / "plain.toml").write_text('name = "plain"\noutput_names = ["a"]\n', "utf-8")
    rt = Runtime.start(
        Settings(profile_dir=tmp_path, default_profile="plain"), engines={"default": _Exploding()}
    )

    async def main():
        async with rt.open_stream("plain", 16000) as stream:
            await stream.push(np.zeros(1600, np.float32))
            with pytest.raises(EngineError, match="the model fell over"):
                await collect(stream)
            return stream

    try:
        stream = asyncio.run(main())
    finally:
        rt.close()
    assert stream.session.state is StreamState.FAILED


def test_alive_profiles_get_the_voices_prosody_the_same_whatever_the_chunking() -> None:
    """The session feeds a prosody tracker only for chains that use it (arkit-alive),
    in step with the frames; the face is the same however the audio was cut."""
    from audio2face.engines.default import load_default_engine

    rt = Runtime.start(
        Settings(), engines={"default": load_default_engine(ort_options=OrtOptions(providers="cpu"))}
    )
    try:
        audio = speech(2.0, seed=3)
        outs = []
        for step in (16000, 640, 3333):
            session, _ = rt.open_session("arkit-alive", 16000, seed=7)
            assert session._prosody is not None
            parts = [session.push(audio[i : i + step]).values for i in range(0, audio.size, step)]
            outs.append(np.concatenate([*parts, session.finish().values]))
        # The model itself differs by float rounding between chunkings (1e-6), no more.
        np.testing.assert_allclose(outs[0], outs[1], atol=1e-4)
        np.testing.assert_allclose(outs[0], outs[2], atol=1e-4)
        plain, _ = rt.open_session("arkit", 16000)
        assert plain._prosody is None
        keyed, _ = rt.open_session("mmd", 16000)
        keyed.key_emotion(0.5, "happiness", 0.8, ramp_s=0.2)
        with pytest.raises(UnknownNameError, match="unknown emotion 'glee'"):
            keyed.key_emotion(0.5, "glee")
        smile = keyed.names.index("笑い")
        out = np.concatenate([keyed.push(np.zeros(16000, np.float32)).values, keyed.finish().values])
        assert out[:10, smile].max() < 1e-3 and out[-5:, smile].min() > 0.05  # eased in at 0.5 s
    finally:
        rt.close()


def test_a_refused_input_ends_animate_with_the_error_not_a_hang(runtime: Runtime) -> None:
    audio = speech(0.5)
    with pytest.raises(UnknownNameError, match="unknown emotion 'glee'"):
        runtime.convert(audio, 16000, "mmd", emotion_keys=[(0.1, "glee", 1.0)])
    with pytest.raises(ValueError, match="takes audio only"):
        runtime.convert(audio, 16000, "plain", phones=[(0.0, 0.2, "AA")])
    keyed = runtime.convert(np.zeros(16000, np.float32), 16000, "mmd",
                            emotion_keys=[(0.5, "happiness", 1.0)])  # fmt: skip
    smile = keyed.values[:, keyed.names.index("笑い")]
    assert smile[:10].max() < 1e-3 and smile[-3:].min() > 0.1
