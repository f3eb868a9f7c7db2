"""Sending frames at their time: absolute deadlines on a monotonic clock.

Frame ``k`` is due at ``origin + k / fps + delay_s``, where ``origin`` is when the
stream's first audio sample was captured (or started playing). Deadlines are absolute,
so a late wake-up (the OS sleeps a little longer than asked) delays one packet and never
the ones after it: over a minute of audio the packet clock does not drift. A frame that
arrives after its deadline (the model fell behind) goes out at once and is counted as
late; frames are never dropped or reordered.

The clock is injectable (:class:`Clock`) so tests can run a minute of pacing in
milliseconds with a :class:`ManualClock` that also models oversleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from audio2face.sinks.base import FrameSink
from audio2face.types import FrameBatch

__all__ = ["Clock", "ManualClock", "MonotonicClock", "PacedFrame", "Pacer", "PacerStats"]


class Clock(Protocol):
    """Seconds on a monotonic clock, and a way to wait until a time on it."""

    def now(self) -> float: ...

    async def sleep_until(self, deadline: float) -> None: ...


class MonotonicClock:
    """``time.monotonic`` and asyncio sleeps: the real thing."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class ManualClock:
    """A clock that jumps to each deadline (plus an optional oversleep), for tests.

    ``yield_s``: real seconds each sleep gives the rest of the program, so a receiver
    on the same machine can drain its socket while a minute of frames goes out."""

    def __init__(
        self,
        start: float = 0.0,
        oversleep: Callable[[], float] | None = None,
        *,
        yield_s: float = 0.0,
    ) -> None:
        self.t = start
        self._oversleep = oversleep
        self._yield_s = yield_s

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        if deadline > self.t:
            self.t = deadline + (self._oversleep() if self._oversleep is not None else 0.0)
        await asyncio.sleep(self._yield_s)


@dataclass(slots=True)
class PacerStats:
    frames: int = 0
    late: int = 0
    """Frames sent after their deadline (by more than ``late_after_s``)."""
    last_lateness_s: float = 0.0
    max_lateness_s: float = 0.0


@dataclass(frozen=True, slots=True)
class PacedFrame:
    """One frame as it left: its index, due time and the clock's time at sending."""

    index: int
    due: float
    sent: float


class Pacer:
    """Sends the frames of one stream to its sinks, each at its deadline."""

    def __init__(
        self,
        sinks: Sequence[FrameSink],
        fps: float,
        *,
        delay_s: float = 0.0,
        clock: Clock | None = None,
        late_after_s: float = 0.005,
        on_sent: Callable[[PacedFrame], None] | None = None,
    ) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s}")
        self.sinks = tuple(sinks)
        self.fps = float(fps)
        self.delay_s = delay_s
        self.clock: Clock = clock or MonotonicClock()
        self.late_after_s = late_after_s
        self.origin: float | None = None
        self.stats = PacerStats()
        self._on_sent = on_sent

    def start(self, origin: float) -> None:
        """Set the time of the first audio sample (frame 0's time), once."""
        if self.origin is None:
            self.origin = origin

    def due(self, index: int) -> float:
        if self.origin is None:
            raise ValueError("Pacer.start(origin) must come before frames are paced")
        return self.origin + index / self.fps + self.delay_s

    async def send(self, batch: FrameBatch) -> None:
        """Send each frame of ``batch`` at its deadline (waiting as needed)."""
        for k in range(len(batch)):
            index = batch.first_frame + k
            due = self.due(index)
            await self.clock.sleep_until(due)
            now = self.clock.now()
            for sink in self.sinks:
                sink.send(index, batch.values[k], index / self.fps)
            lateness = now - due
            stats = self.stats
            stats.frames += 1
            stats.last_lateness_s = lateness
            stats.max_lateness_s = max(stats.max_lateness_s, lateness)
            if lateness > self.late_after_s:
                stats.late += 1
            if self._on_sent is not None:
                self._on_sent(PacedFrame(index, due, now))

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
