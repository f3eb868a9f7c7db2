"""WindowedStream: frame clock, look-ahead, cross-fade at joins."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio2face.errors import StreamClosedError
from audio2face.streaming.window import WindowedStream, WindowOptions
from audio2face.types import EngineStream, frames_for_samples

SR, FPS = 16_000, 30.0


def modulated_tone(seconds: float) -> np.ndarray:
    """A 220 Hz tone under a slow syllable-like envelope: smooth frame-to-frame changes."""
    t = np.arange(round(seconds * SR)) / SR
    env = 0.05 + 0.2 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.9 * t)) * (
        0.5 + 0.5 * np.sin(2 * np.pi * 0.23 * t + 1.0)
    )
    return (np.sin(2 * np.pi * 220 * t) * env).astype(np.float32)


def run(stream: WindowedStream, chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([stream.push(c) for c in chunks] + [stream.finish()])


def test_frame_conversion_and_protocol(toy_model) -> None:
    s = WindowedStream(toy_model, WindowOptions(1.0, 0.4, 0.3, 0.1))
    assert isinstance(s, EngineStream)
    assert (s.left_frames, s.hop_frames, s.lookahead_frames, s.crossfade_frames) == (30, 12, 9, 3)
    assert s.latency_s == pytest.approx(0.7)
    # the cross-fade lives in the look-ahead, so it is capped by it
    assert WindowedStream(toy_model, WindowOptions(1.0, 0.4, 0.1, 0.5)).crossfade_frames == 3
    with pytest.raises(ValueError, match="hop_s"):
        WindowedStream(toy_model, WindowOptions(1.0, 0.0, 0.3, 0.1))
    s.finish()
    with pytest.raises(StreamClosedError):
        s.push(np.zeros(10, dtype=np.float32))


def test_frames_come_from_the_aligned_window(toy_model) -> None:
    audio = modulated_tone(2.0)
    s = WindowedStream(toy_model, WindowOptions(1.0, 0.4, 0.3, 0.0))
    first = s.push(audio)[:12]
    direct = toy_model.infer(audio[: round(21 * SR / FPS)], 21)[:12]  # frames [0, 12 + 9)
    np.testing.assert_allclose(first, direct, atol=1e-6)


def test_lookahead_is_respected(toy_model) -> None:
    lookahead_s, hop_s = 0.3, 0.2
    s = WindowedStream(toy_model, WindowOptions(0.5, hop_s, lookahead_s, 0.1))
    audio = modulated_tone(5.0)
    rng = np.random.default_rng(0)
    pushed = emitted = 0
    while pushed < len(audio):
        n = int(rng.integers(1, 3000))
        emitted += s.push(audio[pushed : pushed + n]).shape[0]
        pushed = min(pushed + n, len(audio))
        if emitted:
            last = emitted - 1  # frame `last` shows time last / FPS
            assert last * SR / FPS + lookahead_s * SR <= pushed + 0.5
        # and nothing is held back longer than a hop past its look-ahead
        ready = frames_for_samples(max(0, pushed - round((lookahead_s + hop_s) * SR)), SR, FPS)
        assert emitted >= ready - 1
    assert emitted + s.finish().shape[0] == frames_for_samples(len(audio), SR, FPS)


def _join_steps(out: np.ndarray, stream: WindowedStream) -> tuple[float, np.ndarray]:
    """Largest frame-to-frame step over the joins (and their cross-fade), and all steps."""
    steps = np.abs(np.diff(out, axis=0)).max(axis=1)  # steps[i]: frame i -> i + 1
    h, x = stream.hop_frames, stream.crossfade_frames
    at_join = [steps[j - 1 : j + x].max() for j in range(h, out.shape[0], h)]
    return float(max(at_join)), steps


def test_joins_are_no_steeper_than_the_signal(toy_model) -> None:
    audio = modulated_tone(8.0)
    chunks = np.array_split(audio, 37)
    n = frames_for_samples(len(audio), SR, FPS)
    # The same model on the whole clip: the frame-to-frame change of a join-free output.
    natural = np.abs(np.diff(toy_model.infer(audio, n), axis=0)).max()

    faded = WindowedStream(toy_model, WindowOptions(1.0, 0.4, 0.3, 0.1))
    join_max, _ = _join_steps(run(faded, chunks), faded)
    assert join_max <= natural

    # The toy model does depend on each window's extent: without the fade, joins jump.
    hard = WindowedStream(toy_model, WindowOptions(1.0, 0.4, 0.3, 0.0))
    hard_max, _ = _join_steps(run(hard, chunks), hard)
    assert hard_max > natural


def test_unitalker_model_streams_through_windows(tiny_unitalker_path, unitalker_names) -> None:
    from audio2face.engines.onnx import OrtOptions
    from audio2face.engines.unitalker import UniTalkerModel

    model = UniTalkerModel.load(tiny_unitalker_path, OrtOptions(providers="cpu"),
                                output_names=unitalker_names)
    audio = modulated_tone(2.3)
    out = run(WindowedStream(model, WindowOptions(1.0, 0.4, 0.3, 0.1)), np.array_split(audio, 7))
    assert out.shape == (frames_for_samples(len(audio), SR, FPS), 51)


@settings(max_examples=60, deadline=None)
@given(
    n_samples=st.integers(0, 60_000),
    sizes=st.lists(st.integers(0, 12_000), max_size=15),
    left=st.sampled_from([0.0, 0.25, 1.0]),
    hop=st.sampled_from([0.01, 0.1, 0.4, 1.0]),
    lookahead=st.sampled_from([0.0, 0.05, 0.3]),
    crossfade=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_frame_count_exact_for_any_chunking(
    n_samples: int, sizes: list[int], left: float, hop: float, lookahead: float, crossfade: float
) -> None:
    from conftest import ToyConvModel

    audio = modulated_tone(n_samples / SR)
    stream = WindowedStream(ToyConvModel(), WindowOptions(left, hop, lookahead, crossfade))
    total, pos = 0, 0
    for size in sizes:
        total += stream.push(audio[pos : pos + size]).shape[0]
        pos = min(pos + size, len(audio))
    total += stream.push(audio[pos:]).shape[0]
    total += stream.finish().shape[0]
    assert total == frames_for_samples(len(audio), SR, FPS)
