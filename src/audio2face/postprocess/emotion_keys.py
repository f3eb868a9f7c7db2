"""Emotion keys over time: ``(time_s, name, intensity)`` with linear ramps.

A stream's :class:`EmotionTrack` holds the keys a client sent. At each key the
emotion mix ramps linearly, over the key's ``ramp_s``, from whatever it was at that
moment to ``{name: intensity}`` alone (``neutral`` or an empty name ramps to no
emotion). So a new key cross-fades from the old emotion instead of switching, and
keys closer together than their ramps start from a mix that is still moving.

The mix is a pure function of the keys, evaluated at each frame's time
(``frame / fps``), so it does not depend on how frames are chunked. Keys may arrive
in any order; a key for a time whose frames have already been sent only affects
later frames.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from audio2face.types import FloatArray

__all__ = ["DEFAULT_RAMP_S", "MAX_KEYS", "EmotionKey", "EmotionMix", "EmotionTrack"]

DEFAULT_RAMP_S = 0.3
"""Ramp of a key that gives none: about the onset time of a posed expression."""

MAX_KEYS = 4096
"""Keys a stream may hold ahead of its frames (a limit, so a client cannot grow memory)."""

NEUTRAL = ("", "neutral")


@dataclass(frozen=True, slots=True)
class EmotionKey:
    """At ``time_s`` (stream seconds) start ramping to ``name`` at ``intensity``."""

    time_s: float
    name: str
    intensity: float = 1.0
    ramp_s: float = DEFAULT_RAMP_S

    def __post_init__(self) -> None:
        if not np.isfinite(self.time_s) or self.time_s < 0:
            raise ValueError(f"emotion key time must be a finite number >= 0 s, got {self.time_s}")
        if not 0.0 <= self.intensity <= 1.0:
            raise ValueError(f"emotion key intensity must be in [0, 1], got {self.intensity}")
        if not 0.0 <= self.ramp_s <= 60.0:
            raise ValueError(f"emotion key ramp must be in [0, 60] s, got {self.ramp_s}")


@dataclass(frozen=True, slots=True)
class EmotionMix:
    """Per-frame intensities: ``weights[k, j]`` is emotion ``names[j]`` at frame k."""

    names: tuple[str, ...]
    weights: FloatArray


class EmotionTrack:
    """The keys of one stream and the mix they give at any frame."""

    def __init__(self, fps: float) -> None:
        self.fps = float(fps)
        self._times: list[float] = []
        self._keys: list[EmotionKey] = []
        self._starts: list[dict[str, float]] = []  # the mix at each key's time

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: EmotionKey) -> None:
        """Insert a key (after any key at the same time)."""
        if len(self._keys) >= MAX_KEYS:
            raise ValueError(
                f"too many pending emotion keys (limit {MAX_KEYS}); send keys closer to "
                "the audio they belong to"
            )
        i = bisect.bisect_right(self._times, key.time_s)
        self._times.insert(i, key.time_s)
        self._keys.insert(i, key)
        self._recompute(i)

    def clear_after(self, time_s: float) -> None:
        """Forget keys later than ``time_s`` (their audio was dropped by an interrupt)."""
        i = bisect.bisect_right(self._times, time_s)
        del self._times[i:], self._keys[i:], self._starts[i:]

    def forget_before(self, time_s: float) -> None:
        """Drop keys no frame at or after ``time_s`` can need (keeps one before it)."""
        i = bisect.bisect_right(self._times, time_s) - 1
        if i > 0:
            del self._times[:i], self._keys[:i], self._starts[:i]

    def mix_at(self, time_s: float) -> dict[str, float]:
        """The emotion intensities at ``time_s``."""
        i = bisect.bisect_right(self._times, time_s) - 1
        if i < 0:
            return {}
        return _ramp(self._starts[i], self._keys[i], time_s)

    def mix(self, first_frame: int, n: int) -> EmotionMix:
        """The mix at frames ``first_frame .. first_frame + n - 1``."""
        rows = [self.mix_at((first_frame + k) / self.fps) for k in range(n)]
        names = tuple(sorted({name for row in rows for name in row}))
        weights = np.zeros((n, len(names)), np.float32)
        for k, row in enumerate(rows):
            for j, name in enumerate(names):
                weights[k, j] = row.get(name, 0.0)
        return EmotionMix(names, weights)

    def _recompute(self, first: int) -> None:
        del self._starts[first:]
        for i in range(first, len(self._keys)):
            prev = {} if i == 0 else _ramp(self._starts[i - 1], self._keys[i - 1], self._times[i])
            self._starts.append(prev)


def _ramp(start: dict[str, float], key: EmotionKey, time_s: float) -> dict[str, float]:
    """The mix ``time_s`` into the ramp of ``key`` that began at ``start``."""
    a = 1.0 if key.ramp_s == 0 else min(1.0, max(0.0, (time_s - key.time_s) / key.ramp_s))
    target = {} if key.name in NEUTRAL or key.intensity == 0 else {key.name: key.intensity}
    out: dict[str, float] = {}
    for name in start.keys() | target.keys():
        v = (1.0 - a) * start.get(name, 0.0) + a * target.get(name, 0.0)
        if v > 1e-6:
            out[name] = v
    return out
