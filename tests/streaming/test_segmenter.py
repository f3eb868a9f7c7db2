"""The streaming silence splitter and SegmentedStream."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio2face.errors import StreamClosedError
from audio2face.streaming.segmenter import (
    SegmentedStream,
    SilenceOptions,
    SilenceParams,
    SilenceSplitter,
)
from audio2face.types import EngineStream, frames_for_samples

SR = 16_000
SETTINGS = SilenceOptions()
PARAMS = SilenceParams.from_options(SETTINGS, SR, 30.0)


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise well above the threshold (RMS 0.1, about -20 dBFS)."""
    return np.random.default_rng(seed).normal(0, 0.1, round(seconds * SR)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    """Low noise under the threshold (RMS 0.001)."""
    return np.random.default_rng(99).normal(0, 0.001, round(seconds * SR)).astype(np.float32)


def cuts_of(chunks: list[np.ndarray], params: SilenceParams = PARAMS) -> list[int]:
    splitter = SilenceSplitter(params)
    return [c for chunk in chunks for c in splitter.push(chunk)]


def test_params_follow_the_original() -> None:
    assert (PARAMS.window, PARAMS.hop, PARAMS.min_silence) == (160, 80, 8000)
    assert PARAMS.threshold == pytest.approx(1e4 / 32768**2)


def test_cut_goes_inside_a_long_silence() -> None:
    audio = np.concatenate([speech(1.0), silence(0.8), speech(1.0, 1)])
    cuts = cuts_of([audio])
    assert len(cuts) == 1
    assert SR * 1.0 < cuts[0] < SR * 1.8


def test_short_silence_does_not_cut() -> None:
    assert cuts_of([np.concatenate([speech(1.0), silence(0.3), speech(1.0, 1)])]) == []


def test_silence_straddling_two_bodies_is_found() -> None:
    first = np.concatenate([speech(1.0), silence(0.35)])
    second = np.concatenate([silence(0.35), speech(1.0, 1)])
    splitter = SilenceSplitter(PARAMS)
    assert splitter.push(first) == []  # 0.35 s is not enough on its own
    cuts = splitter.push(second)
    assert len(cuts) == 1 and SR * 1.0 < cuts[0] < SR * 1.7


def test_bodies_shorter_than_a_window() -> None:
    audio = np.concatenate([speech(0.7), silence(0.9), speech(0.5, 1), silence(0.6), speech(0.3)])
    whole = cuts_of([audio])
    tiny = cuts_of([audio[i : i + 50] for i in range(0, len(audio), 50)])
    assert whole == tiny and len(whole) == 2


def test_max_segment_cuts_continuous_speech() -> None:
    params = SilenceParams.from_options(SilenceOptions(max_segment_s=1.5), SR, 30.0)
    cuts = cuts_of([speech(6.0)], params)
    assert len(cuts) >= 3
    bounds = [0, *cuts]
    assert all(0.75 * SR <= b - a <= 1.5 * SR for a, b in zip(bounds, bounds[1:], strict=False))


def test_long_silence_is_emitted_piecewise() -> None:
    cuts = cuts_of([silence(3.0)])
    assert len(cuts) >= 4  # one piece per silence interval, frames keep flowing


def test_no_segment_shorter_than_a_frame() -> None:
    params = SilenceParams.from_options(SilenceOptions(min_interval_s=0.0), SR, 30.0)
    audio = np.concatenate([speech(0.2), silence(0.02), speech(0.2, 1), silence(0.5)])
    cuts = cuts_of([audio], params)
    bounds = [0, *cuts]
    assert all(b - a >= params.min_segment for a, b in zip(bounds, bounds[1:], strict=False))


def test_segmented_stream_emits_during_continuous_speech(toy_model) -> None:
    stream = SegmentedStream(toy_model, SilenceOptions(max_segment_s=1.0))
    assert isinstance(stream, EngineStream)
    got = sum(stream.push(c).shape[0] for c in np.array_split(speech(5.0), 50))
    assert got >= 90  # most of 150 frames before finish()
    assert got + stream.finish().shape[0] == 150
    with pytest.raises(StreamClosedError):
        stream.push(speech(0.1))
    stream.reset()
    assert stream.push(speech(0.1)).shape == (0, 4)


def test_segments_get_frame_clock_counts(toy_model) -> None:
    audio = np.concatenate([speech(1.01), silence(0.77), speech(0.63, 1), silence(0.55)])
    stream = SegmentedStream(toy_model, SETTINGS)
    stream.push(audio)
    stream.finish()
    start = 0
    for n_samples, n_frames in toy_model.calls:
        end = start + n_samples
        assert n_frames == frames_for_samples(end, SR, 30.0) - frames_for_samples(start, SR, 30.0)
        start = end
    assert start == len(audio)


@st.composite
def _audio_and_chunks(draw: st.DrawFn) -> tuple[np.ndarray, list[int]]:
    parts = draw(st.lists(st.tuples(st.booleans(), st.integers(1, 14_000)), min_size=1, max_size=8))
    audio = np.concatenate([speech(n / SR, i) if loud else silence(n / SR)
                            for i, (loud, n) in enumerate(parts)])
    sizes = draw(st.lists(st.integers(0, 9_000), max_size=12))
    return audio, sizes


@settings(max_examples=40, deadline=None)
@given(_audio_and_chunks(), st.floats(0.2, 2.0))
def test_frame_count_exact_for_any_chunking(case, max_segment_s: float) -> None:
    from conftest import ToyConvModel

    audio, sizes = case
    stream = SegmentedStream(ToyConvModel(), SilenceOptions(max_segment_s=max_segment_s))
    total, pos = 0, 0
    for size in sizes:
        total += stream.push(audio[pos : pos + size]).shape[0]
        pos = min(pos + size, len(audio))
    total += stream.push(audio[pos:]).shape[0]
    total += stream.finish().shape[0]
    assert total == frames_for_samples(len(audio), SR, 30.0)
