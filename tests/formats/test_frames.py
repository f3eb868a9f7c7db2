"""Frame-rate conversion keeps the clock rule round(seconds * fps) and frame times."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio2face.frames import FrameResampler, clock_frames, resample_frames
from audio2face.types import FrameBatch


def line(n: int, fps: float = 30.0) -> FrameBatch:
    """A channel equal to its frame's time: resampled frames must show their own time."""
    t = (np.arange(n) / fps).astype(np.float32)[:, None]
    return FrameBatch(0, ("t",), np.concatenate([t, 1 - t], axis=1), fps)


@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0, 50.0, 60.0, 120.0, 30000 / 1001])
def test_count_and_frame_times(fps: float) -> None:
    seconds = 2.345
    out = resample_frames(line(clock_frames(seconds, 30.0)), fps, seconds=seconds)
    assert len(out) == clock_frames(seconds, fps) == int(np.floor(seconds * fps + 0.5))
    assert out.fps == fps
    times = np.arange(len(out)) / fps
    inside = times <= (clock_frames(seconds, 30.0) - 1) / 30  # after the last input: held
    np.testing.assert_allclose(out.values[inside, 0], times[inside], atol=1e-6)


def test_clock_rounds_half_up() -> None:
    assert clock_frames(0.5 / 60, 60.0) == 1
    assert clock_frames(2.5 / 60, 60.0) == 3  # banker's rounding would give 2


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 80),
    fps=st.sampled_from([24.0, 50.0, 60.0, 90.0]),
    cuts=st.lists(st.integers(1, 9), min_size=1, max_size=12),
)
def test_streaming_equals_whole(n: int, fps: float, cuts: list[int]) -> None:
    batch = line(n)
    whole = resample_frames(batch, fps)
    resampler = FrameResampler(30.0, fps)
    parts, start, i = [], 0, 0
    while start < n:
        step = cuts[i % len(cuts)]
        parts.append(
            resampler.push(FrameBatch(start, batch.names, batch.values[start : start + step], 30.0))
        )
        start += step
        i += 1
    parts.append(resampler.finish(n / 30.0))
    got = np.concatenate([p.values for p in parts]) if parts else np.zeros((0, 2))
    assert [p.first_frame for p in parts] == list(np.cumsum([0] + [len(p) for p in parts[:-1]]))
    np.testing.assert_array_equal(got, whole.values)


def test_bad_rates_refused() -> None:
    with pytest.raises(ValueError, match=r"fps must be a number in \(0, 1000\]"):
        resample_frames(line(3), 0.0)
    with pytest.raises(ValueError, match="in order"):
        FrameResampler(30, 60).push(FrameBatch(5, ("t",), np.zeros((1, 1), np.float32), 30.0))
