"""Frame-rate conversion of animation frames (30 fps model output to any rate).

The frame clock holds at every rate: ``s`` seconds of audio are worth exactly
``round(s * fps)`` frames (half up, as :func:`audio2face.types.frames_for_samples`), and
output frame ``j`` shows the face at ``j / fps`` seconds. Its value is the linear
interpolation of the two input frames around that time; past the last input frame the
last value is held (the input clock rounds, so it can end up to half a frame early).

:class:`FrameResampler` does this incrementally for live streams and gives exactly the
frames :func:`resample_frames` gives for the whole run, however the input is cut.
"""

from __future__ import annotations

import math

import numpy as np

from audio2face.types import FloatArray, FrameBatch

__all__ = ["FrameResampler", "clock_frames", "resample_frames"]


def clock_frames(seconds: float, fps: float) -> int:
    """Frames that ``seconds`` of audio are worth at ``fps``: ``round(seconds * fps)``,
    halves rounded up (never banker's rounding)."""
    return int(math.floor(seconds * fps + 0.5))


def _check_fps(fps: float) -> None:
    if not (math.isfinite(fps) and 0 < fps <= 1000):
        raise ValueError(f"fps must be a number in (0, 1000], got {fps}")


class FrameResampler:
    """Streaming frame-rate conversion from ``in_fps`` to ``out_fps``.

    ``push(batch)`` returns the output frames whose time is now covered by the input
    (an output frame between two input frames waits for the second); ``finish(seconds)``
    returns the rest, so the total is ``round(seconds * out_fps)`` (``seconds`` defaults
    to the input's own length, ``frames_in / in_fps``).
    """

    def __init__(self, in_fps: float, out_fps: float) -> None:
        _check_fps(in_fps)
        _check_fps(out_fps)
        self.in_fps = float(in_fps)
        self.out_fps = float(out_fps)
        self.frames_in = 0
        self.frames_out = 0
        self._names: tuple[str, ...] = ()
        self._last: FloatArray | None = None  # the latest input frame, for interpolation
        self._finished = False

    @property
    def passthrough(self) -> bool:
        return self.in_fps == self.out_fps

    def _position(self, j: int) -> float:
        """Output frame ``j``'s time in input frames."""
        return j * self.in_fps / self.out_fps

    def push(self, batch: FrameBatch) -> FrameBatch:
        """Take the next input frames; return the output frames they complete."""
        if self._finished:
            raise ValueError("FrameResampler.push after finish(); make a new resampler")
        if batch.first_frame != self.frames_in:
            raise ValueError(
                f"frames must arrive in order: expected frame {self.frames_in}, "
                f"got {batch.first_frame}"
            )
        if not self._names:
            self._names = batch.names
        values = np.asarray(batch.values, dtype=np.float32)
        if len(batch) == 0:
            return self._emit(np.zeros((0, len(batch.names)), np.float32))
        known = values if self._last is None else np.concatenate([self._last[None], values])
        base = self.frames_in - (0 if self._last is None else 1)  # input index of known[0]
        self.frames_in += len(batch)
        self._last = values[-1].copy()
        if self.passthrough:
            self.frames_out += len(batch)
            return FrameBatch(batch.first_frame, batch.names, values, self.out_fps)
        # Output frames whose position p has both neighbours floor(p), ceil(p) <= last.
        last_index = self.frames_in - 1
        end = self.frames_out
        while self._position(end) <= last_index:
            end += 1
        return self._emit(self._interpolate(known, base, self.frames_out, end))

    def _interpolate(self, known: FloatArray, base: int, start: int, end: int) -> FloatArray:
        if end <= start:
            return np.zeros((0, known.shape[1]), np.float32)
        pos = np.arange(start, end, dtype=np.float64) * (self.in_fps / self.out_fps) - base
        pos = np.clip(pos, 0.0, known.shape[0] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, known.shape[0] - 1)
        w = (pos - lo)[:, None].astype(np.float32)
        return (known[lo] * (1.0 - w) + known[hi] * w).astype(np.float32)

    def _emit(self, values: FloatArray) -> FrameBatch:
        first = self.frames_out
        self.frames_out += values.shape[0]
        return FrameBatch(first, self._names, values, self.out_fps)

    def finish(self, seconds: float | None = None) -> FrameBatch:
        """The remaining frames, holding the last input value, up to the clock's count."""
        self._finished = True
        if seconds is None:
            seconds = self.frames_in / self.in_fps
        total = clock_frames(seconds, self.out_fps)
        n = max(0, total - self.frames_out)
        width = len(self._names)
        if self._last is None:
            return self._emit(np.zeros((n, width), np.float32))
        return self._emit(np.repeat(self._last[None], n, axis=0).astype(np.float32))


def resample_frames(batch: FrameBatch, fps: float, *, seconds: float | None = None) -> FrameBatch:
    """``batch`` (a whole run from frame 0) at ``fps``: ``round(seconds * fps)`` frames.

    ``seconds`` is the audio's length; without it, ``len(batch) / batch.fps``. A batch
    already at ``fps`` with the right count is returned as is.
    """
    _check_fps(fps)
    if batch.first_frame != 0:
        raise ValueError("resample_frames takes a whole run starting at frame 0")
    if fps == batch.fps and (seconds is None or clock_frames(seconds, fps) == len(batch)):
        return batch
    resampler = FrameResampler(batch.fps, fps)
    head = resampler.push(batch)
    if seconds is None:
        seconds = len(batch) / batch.fps
    tail = resampler.finish(seconds)
    out = head.then(tail) if len(tail) else head
    total = clock_frames(seconds, fps)
    return out.split_at(total)[0] if len(out) > total else out
