"""Session: frame clock, emotion timeline, resampling, failure handling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio2face.errors import EngineError, StreamClosedError
from audio2face.streaming.session import (
    INTERRUPT_RELEASE_S,
    EmotionTimeline,
    FrameRateConverter,
    Session,
)
from audio2face.types import EngineCapabilities, StreamState, frames_for_samples


class RmsStream:
    """Test double: frame i = RMS of the 16 kHz audio around i/30 s (no look-ahead
    beyond one frame). Emits frames as soon as their audio has arrived."""

    def __init__(self, fps: float = 30.0, rate: int = 16000) -> None:
        self.fps, self.rate = fps, rate
        self.audio = np.zeros(0, np.float32)
        self.emitted = 0

    def _ready(self, n_frames: int) -> np.ndarray:
        out = []
        for i in range(self.emitted, n_frames):
            a = int(i * self.rate / self.fps)
            seg = self.audio[a : a + int(self.rate / self.fps)]
            out.append([float(np.sqrt(np.mean(seg**2))) if seg.size else 0.0, float(i)])
        self.emitted = max(self.emitted, n_frames)
        return np.asarray(out, np.float32).reshape(-1, 2)

    def push(self, audio, emotion=None):
        self.audio = np.concatenate([self.audio, audio])
        complete = int(self.audio.size * self.fps / self.rate) - 1
        return self._ready(max(complete, self.emitted))

    def finish(self):
        return self._ready(frames_for_samples(self.audio.size, self.rate, self.fps))


class TagEmotion:
    """Chain double: adds 1 to column 0 when the emotion is 'happy'; records calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None]] = []

    def __call__(self, values, emotion):
        self.calls.append((values.shape[0], emotion))
        out = values.copy()
        if emotion == "happy":
            out[:, 0] += 1.0
        return out


class FakeEngine:
    """Engine double around a stream class: declares its capabilities like a real one."""

    def __init__(self, make, *, batched: bool = False, fps: float = 30.0, any_fps: bool = False):
        self._make = make
        self.fps = fps
        self.sample_rate = 16000
        self.output_names = ("rms", "index")
        self.lookahead_s = 1 / 30
        self.capabilities = EngineCapabilities(batched_push=batched, any_fps=any_fps)

    def open_stream(self, fps=None):
        return self._make()


def make_session(input_rate: int = 16000, chain=None, fps: float = 30.0) -> Session:
    return Session(
        FakeEngine(RmsStream),
        chain or TagEmotion(),
        names=("rms", "index"),
        fps=fps,
        input_rate=input_rate,
    )


def run(session: Session, audio: np.ndarray, cuts: list[int]) -> np.ndarray:
    parts, last = [], 0
    for c in [*sorted(cuts), audio.size]:
        parts.append(session.push(audio[last:c]).values)
        last = c
    parts.append(session.finish().values)
    return np.concatenate(parts)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 16000 * 3),
    cuts=st.lists(st.integers(0, 16000 * 3), max_size=12),
)
def test_frame_clock_exact_for_any_split(n: int, cuts: list[int]) -> None:
    audio = np.random.default_rng(n).uniform(-0.5, 0.5, n).astype(np.float32)
    session = make_session()
    out = run(session, audio, [c for c in cuts if c <= n])
    assert out.shape[0] == frames_for_samples(n, 16000, 30.0)
    # frame i is the face at i / fps: the test engine writes i into column 1
    np.testing.assert_array_equal(out[:, 1], np.arange(out.shape[0], dtype=np.float32))


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_frame_clock_follows_input_rate_after_resampling(rate: int) -> None:
    seconds = 2.37
    audio = np.sin(np.linspace(0, 900, int(rate * seconds))).astype(np.float32) * 0.3
    session = make_session(input_rate=rate)
    out = run(session, audio, list(range(0, audio.size, rate // 50)))
    assert out.shape[0] == frames_for_samples(audio.size, rate, 30.0)
    assert session.frames_out == out.shape[0]


def test_emotion_applies_to_the_frames_of_its_audio() -> None:
    session = make_session()
    one_second = np.full(16000, 0.1, np.float32)
    parts = [session.push(one_second, None).values, session.push(one_second, "happy").values]
    parts.append(session.finish().values)
    out = np.concatenate(parts)
    assert out.shape[0] == 60
    happy = out[:, 0] > 0.5
    # frames showing the second second (30..59) are happy, the first 30 are not
    assert not happy[:30].any()
    assert happy[30:].all()


def test_emotion_timeline_lookup_and_forgetting() -> None:
    t = EmotionTimeline()
    t.set(0, "a")
    t.set(100, "b")
    t.set(100, "c")  # same start: replaces
    t.set(200, "c")  # same label: no new entry
    assert [t.at(s) for s in (0, 99, 100, 250)] == ["a", "a", "c", "c"]
    t.forget_before(150)
    assert t.at(150) == "c"


class Boom:
    def push(self, audio, emotion=None):
        raise RuntimeError("kernel exploded")

    def finish(self):
        return np.zeros((0, 2), np.float32)


class NaNStream(RmsStream):
    def push(self, audio, emotion=None):
        out = super().push(audio, emotion)
        out[:] = np.nan
        return out


def test_engine_failure_becomes_engine_error_and_closes_session() -> None:
    session = Session(FakeEngine(Boom), TagEmotion(), names=("a", "b"), fps=30.0, input_rate=16000)
    with pytest.raises(EngineError, match="kernel exploded"):
        session.push(np.zeros(1600, np.float32))
    assert session.state is StreamState.FAILED
    with pytest.raises(StreamClosedError):
        session.push(np.zeros(1600, np.float32))


def test_non_finite_engine_output_is_an_error_not_zeros() -> None:
    session = Session(
        FakeEngine(NaNStream), TagEmotion(), names=("a", "b"), fps=30.0, input_rate=16000
    )
    with pytest.raises(EngineError, match="non-finite"):
        session.push(np.zeros(16000, np.float32))


# --- pushing many sessions together ---------------------------------------------------


class BatchRms(RmsStream):
    """RmsStream that can be pushed in batches; records each batch's size."""

    batches: list[int]
    fail_batch = False

    def __init__(self, key: object) -> None:
        super().__init__()
        self.batch_key = key

    @classmethod
    def push_many(cls, streams, audios, emotions=None):
        cls.batches.append(len(streams))
        if cls.fail_batch:
            raise RuntimeError("model run failed")
        return [s.push(a) for s, a in zip(streams, audios, strict=True)]


def batch_session(key: object) -> Session:
    return Session(FakeEngine(lambda: BatchRms(key), batched=True), TagEmotion(),
                   names=("rms", "index"), fps=30.0, input_rate=16000)  # fmt: skip


def test_push_sessions_batches_by_key_and_matches_single_pushes() -> None:
    from audio2face.streaming.session import push_sessions

    BatchRms.batches, BatchRms.fail_batch = [], False
    x = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    together = [batch_session("a"), batch_session("a"), batch_session("b"), make_session()]
    alone = [batch_session("a"), batch_session("a"), batch_session("b"), make_session()]
    assert [s.batch_key for s in together] == ["a", "a", "b", None]
    for start in range(0, 16000, 640):
        piece = x[start : start + 640]
        results = push_sessions([(s, piece, "happy") for s in together])
        for got, single in zip(results, alone, strict=True):
            want = single.push(piece, "happy")
            assert got.first_frame == want.first_frame
            np.testing.assert_array_equal(got.values, want.values)
    assert set(BatchRms.batches[:2]) == {2, 1}  # "a" pushed as a pair, "b" alone


def test_push_sessions_keeps_errors_with_their_session() -> None:
    from audio2face.streaming.session import push_sessions

    BatchRms.batches, BatchRms.fail_batch = [], False
    done, ok, other_key = batch_session("a"), batch_session("a"), batch_session("b")
    done.finish()
    piece = np.zeros(640, np.float32)
    results = push_sessions([(done, piece, None), (ok, piece, None), (other_key, piece, None)])
    assert isinstance(results[0], StreamClosedError)
    assert not isinstance(results[1], Exception) and not isinstance(results[2], Exception)
    # A failed model run fails every session in that run, and only those.
    BatchRms.fail_batch = True
    a2, b2 = batch_session("a"), batch_session("b")
    results = push_sessions([(ok, piece, None), (a2, piece, None), (b2, piece, None)])
    assert all(isinstance(r, EngineError) for r in results)
    assert ok.state is StreamState.FAILED and a2.state is StreamState.FAILED
    BatchRms.fail_batch = False
    plain = make_session()
    nan = Session(FakeEngine(NaNStream), TagEmotion(), names=("rms", "index"), fps=30.0,
                  input_rate=16000)  # fmt: skip
    results = push_sessions(
        [(nan, np.ones(16000, np.float32), None), (plain, np.ones(16000, np.float32), None)]
    )
    assert isinstance(results[0], EngineError) and "non-finite" in str(results[0])
    assert len(results[1]) > 0


# --- flush, interrupt, frame-rate conversion --------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 9000), min_size=1, max_size=8),
    flush_after=st.lists(st.booleans(), min_size=8, max_size=8),
    rate=st.sampled_from([16000, 22050, 44100]),
)
def test_flush_keeps_the_clock_across_utterances(sizes, flush_after, rate) -> None:
    """However audio and flushes interleave, frames so far == round(samples * fps / rate)
    after every flush, indices run on, and the frames show their own time."""
    session = make_session(input_rate=rate)
    out = []
    total = 0
    for size, flush in zip(sizes, flush_after, strict=False):
        out.append(session.push(np.full(size, 0.2, np.float32)).values)
        total += size
        if flush:
            out.append(session.flush().values)
            assert session.frames_out == frames_for_samples(total, rate, 30.0)
    out.append(session.finish().values)
    values = np.concatenate(out)
    assert values.shape[0] == frames_for_samples(total, rate, 30.0) == session.frames_out


def test_flush_aligns_the_new_segment_with_the_clock() -> None:
    """The test engine writes its own frame index into column 1: after a flush at a
    sample count that is not on the frame grid, the new segment's frames are still the
    session's frames (skip of the lead frame), so column 1 restarts at 1, never 0."""
    session = make_session()
    first = session.push(np.full(16000 + 250, 0.2, np.float32))
    flushed = session.flush()
    n = len(first) + len(flushed)
    assert n == frames_for_samples(16250, 16000, 30.0)
    nxt = session.push(np.full(8000, 0.2, np.float32))
    assert nxt.first_frame == n
    assert nxt.values[0, 1] == 1.0  # engine frame 0 (the lead) was skipped


def test_interrupt_eases_to_rest_and_keeps_the_clock() -> None:
    session = make_session()
    loud = session.push(np.full(16000, 0.5, np.float32))
    assert loud.values[-1, 0] > 0.4
    release = session.interrupt()
    assert len(release) == round(INTERRUPT_RELEASE_S * 30)
    assert release.first_frame == loud.first_frame + len(loud)
    np.testing.assert_allclose(release.values[-1, 0], 0.0)  # at rest within 100 ms
    assert np.all(np.diff(release.values[:, 0]) <= 0)  # eases, never jumps up
    assert session.frames_out == frames_for_samples(session.samples_in, 16000, 30.0)
    session.push(np.full(4000, 0.5, np.float32))
    session.finish()
    assert session.frames_out == frames_for_samples(session.samples_in, 16000, 30.0)


@pytest.mark.parametrize("fps", [24.0, 50.0, 60.0])
def test_profile_fps_other_than_the_engine_is_resampled(fps: float) -> None:
    session = make_session(fps=fps)  # the test engine runs at 30 fps only
    audio = np.linspace(0, 1, 16000 * 2, dtype=np.float32)
    out = run(session, audio, list(range(0, audio.size, 700)))
    assert out.shape[0] == frames_for_samples(audio.size, 16000, fps)
    # Column 1 is the engine's frame index: at fps it must read i * 30 / fps.
    want = np.arange(out.shape[0]) * 30.0 / fps
    np.testing.assert_allclose(out[: out.shape[0] - 2, 1], want[: out.shape[0] - 2], atol=1e-4)


def test_frame_rate_converter_streams_like_whole() -> None:
    src = np.arange(40, dtype=np.float32)[:, None]
    whole = FrameRateConverter(30.0, 60.0, 1)
    all_at_once = np.concatenate([whole.push(src), whole.finish(80)])
    parts = FrameRateConverter(30.0, 60.0, 1)
    pieces = [parts.push(src[i : i + 3]) for i in range(0, 40, 3)] + [parts.finish(80)]
    np.testing.assert_allclose(np.concatenate(pieces), all_at_once)
    assert all_at_once.shape[0] == 80
    np.testing.assert_allclose(all_at_once[:78, 0], np.arange(78) / 2)


def test_a_finished_session_refuses_with_stream_closed_error() -> None:
    session = make_session()
    session.finish()
    for call in (lambda: session.push(np.zeros(10, np.float32)), session.finish, session.flush,
                 session.interrupt):  # fmt: skip
        with pytest.raises(StreamClosedError, match="finished"):
            call()


# --- alive chains: many streams postprocessed together ----------------------------------


class Arkit52(BatchRms):
    """BatchRms widened to the 52 ARKit channels (the alive chains' input)."""

    def _ready(self, n_frames: int) -> np.ndarray:
        base = super()._ready(n_frames)
        return np.tile(base[:, :1], (1, 52)) * np.linspace(0.5, 2.0, 52, dtype=np.float32)


def alive_session(chain, seed: int, off: frozenset[str] = frozenset()) -> Session:
    from audio2face.audio.prosody import ProsodyTracker
    from audio2face.postprocess import StreamOptions

    engine = FakeEngine(lambda: Arkit52("k"), batched=True)
    engine.output_names = tuple(f"c{i}" for i in range(52))
    return Session(engine, chain.new_stream(seed, StreamOptions(off=off)), names=chain.output_names,
                   fps=30.0, input_rate=16000, prosody=ProsodyTracker(16000, 30.0),
                   runner=chain)  # fmt: skip


def test_alive_sessions_batched_give_what_each_gives_alone() -> None:
    """Sessions of one alive chain are postprocessed together (one prosody analysis,
    one run of each alive step); each gets exactly what it gets alone, whatever its
    body sizes, its switches, its emotions and its batch companions."""
    from audio2face.profiles import ProfileRegistry
    from audio2face.streaming.session import push_sessions

    chain = ProfileRegistry(engines=("default",)).get("arkit-head").build_chain()
    rng = np.random.default_rng(3)
    t = np.arange(16000 * 4) / 16000
    voice = (0.2 * np.sin(2 * np.pi * 140 * t) * (np.sin(2 * np.pi * 2.2 * t) > -0.3)).astype(
        np.float32
    )
    offs = [frozenset(), frozenset(), frozenset({"head", "gaze"}), frozenset({"blinks"})]
    together = [alive_session(chain, s, off) for s, off in enumerate(offs)]
    alone = [alive_session(chain, s, off) for s, off in enumerate(offs)]
    pos = [0] * len(offs)
    BatchRms.batches, BatchRms.fail_batch = [], False
    for step in range(60):
        items, pieces = [], []
        for i, session in enumerate(together):
            size = int(rng.choice([320, 640, 1280, 1600]))  # 0 to 3 frames a body
            piece = voice[pos[i] : pos[i] + size]
            pos[i] += size
            emotion = "happiness_1" if (i == 1 and step % 7 == 3) else None
            items.append((session, piece, emotion))
            pieces.append((piece, emotion))
        results = push_sessions(items)
        for got, single, (piece, emotion) in zip(results, alone, pieces, strict=True):
            want = single.push(piece, emotion)
            assert got.first_frame == want.first_frame
            np.testing.assert_array_equal(got.values, want.values)
    assert max(BatchRms.batches) == len(offs)
    out = np.concatenate([s.finish().values for s in together])
    assert out[:, 52:].any() and np.isfinite(out).all()
