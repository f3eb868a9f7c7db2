"""Log-mel features: streaming equals whole-signal, exactly, for any chunking."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio2face.audio.features import DEFAULT_FEATURES, LogMelExtractor, log_mel, mel_filterbank
from audio2face.errors import StreamClosedError


def _signal(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _stream(x: np.ndarray, sizes: list[int]) -> np.ndarray:
    ex = LogMelExtractor()
    state = ex.new_state()
    rows, i = [], 0
    for n in sizes:
        rows.append(ex.push(state, x[i : i + n]))
        i += n
    rows.append(ex.push(state, x[i:]))
    rows.append(ex.finish(state))
    return np.concatenate(rows)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 9000), sizes=st.lists(st.integers(0, 1500), max_size=12), seed=st.integers(0, 3))
def test_streaming_equals_whole_signal(n: int, sizes: list[int], seed: int) -> None:
    x = _signal(n, seed)
    whole = log_mel(x)
    streamed = _stream(x, sizes)
    assert whole.shape == (-(-n // 160), 40)
    assert streamed.shape == whole.shape
    np.testing.assert_array_equal(streamed, whole)


def test_frame_is_centred_on_its_sample() -> None:
    # An impulse at sample 1600 is seen by frames 9..11 only (window +-200 samples).
    x = np.zeros(4000, np.float32)
    x[1600] = 1.0
    f = log_mel(x)
    loud = np.flatnonzero(f.max(axis=1) > np.log(DEFAULT_FEATURES.eps) + 1)
    assert loud.tolist() == [9, 10, 11]


def test_silence_is_log_eps_and_sine_peaks_in_its_band() -> None:
    assert np.allclose(log_mel(np.zeros(1600, np.float32)), np.log(DEFAULT_FEATURES.eps))
    fb = mel_filterbank()
    f = log_mel(_signal(16000))
    band = int(np.argmax(fb[round(220 * 512 / 16000)]))
    assert int(np.argmax(f[50])) == band


def test_misuse_is_an_error() -> None:
    ex = LogMelExtractor()
    state = ex.new_state()
    ex.finish(state)
    with pytest.raises(StreamClosedError):
        ex.push(state, np.zeros(10, np.float32))
    with pytest.raises(StreamClosedError):
        ex.finish(state)
    with pytest.raises(ValueError):
        log_mel(np.zeros((2, 10), np.float32))


@settings(max_examples=20, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 4000), min_size=1, max_size=5),
    rounds=st.lists(st.lists(st.integers(0, 900), min_size=5, max_size=5), max_size=6),
)
def test_push_many_equals_each_stream_alone(lengths: list[int], rounds: list[list[int]]) -> None:
    """Streams pushed together (one FFT for all) get exactly their own whole-signal rows."""
    signals = [_signal(n, seed) for seed, n in enumerate(lengths)]
    ex = LogMelExtractor()
    states = [ex.new_state() for _ in signals]
    rows: list[list[np.ndarray]] = [[] for _ in signals]
    pos = [0] * len(signals)
    for sizes in [*rounds, [10**6] * 5]:  # the last round pushes every remainder
        chunks = []
        for k, x in enumerate(signals):
            chunks.append(x[pos[k] : pos[k] + sizes[k]])
            pos[k] += chunks[-1].shape[0]
        for k, out in enumerate(ex.push_many(states, chunks)):
            rows[k].append(out)
    for k, x in enumerate(signals):
        rows[k].append(ex.finish(states[k]))
        np.testing.assert_array_equal(np.concatenate(rows[k]), log_mel(x))


def test_push_many_checks_its_arguments() -> None:
    ex = LogMelExtractor()
    with pytest.raises(ValueError, match="states"):
        ex.push_many([ex.new_state()], [])
    done = ex.new_state()
    ex.finish(done)
    with pytest.raises(StreamClosedError):
        ex.push_many([ex.new_state(), done], [np.zeros(10), np.zeros(10)])
