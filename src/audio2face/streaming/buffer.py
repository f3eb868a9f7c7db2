"""A growable audio buffer addressed by absolute sample index.

Schedulers think in positions from the start of the stream (that is what the frame
clock uses); this buffer lets them slice ``[a, b)`` in those coordinates and drop what
they will never read again, so memory stays bounded by the look-back they need.
"""

from __future__ import annotations

import numpy as np

from audio2face.types import FloatArray

__all__ = ["SampleBuffer"]


class SampleBuffer:
    """Mono float32 samples ``[start, end)`` of a stream, in absolute positions."""

    def __init__(self) -> None:
        self._data = np.zeros(0, dtype=np.float32)
        self._start = 0  # absolute index of self._data[0]

    @property
    def start(self) -> int:
        """Absolute index of the oldest sample still held."""
        return self._start

    @property
    def end(self) -> int:
        """Total samples appended since creation (absolute index one past the newest)."""
        return self._start + int(self._data.shape[0])

    def append(self, audio: FloatArray) -> None:
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"audio must be mono [n_samples], got shape {x.shape}")
        if x.size:
            self._data = np.concatenate([self._data, x])

    def slice(self, a: int, b: int) -> FloatArray:
        """Samples ``[a, b)`` (absolute). Raises if any of them was dropped or not yet appended."""
        if not self._start <= a <= b <= self.end:
            raise IndexError(f"[{a}, {b}) is outside the buffer [{self._start}, {self.end})")
        return self._data[a - self._start : b - self._start]

    def drop_before(self, a: int) -> None:
        """Forget samples before absolute index ``a``."""
        k = min(max(0, a - self._start), int(self._data.shape[0]))
        if k:
            self._data = self._data[k:].copy()
            self._start += k

    def clear(self) -> None:
        self._data = np.zeros(0, dtype=np.float32)
        self._start = 0
