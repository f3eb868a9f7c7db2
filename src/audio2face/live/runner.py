"""The live loop: audio source -> model (in-process or server) -> paced sinks.

Three tasks share one stream::

    feed    source blocks -> level meter, --play buffer -> stream.push (backpressure)
    make    stream.frames() -> (frame-rate conversion) -> queue -> recording
    pace    queue -> Pacer: frame k to every sink at origin + k / fps + delay

Making and pacing are separate tasks because the stream runner only works while its
frames are read: a pacer waiting for a deadline must not stall inference.

Stopping (:meth:`LiveRun.stop`, Ctrl-C) ends the source; the audio already taken is
finished, its frames are still sent, and the sinks are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from audio2face.frames import FrameResampler
from audio2face.live.backends import Backend, LiveStream
from audio2face.live.sources import AudioSource
from audio2face.sinks.base import FrameSink
from audio2face.sinks.pacing import Clock, MonotonicClock, PacedFrame, Pacer
from audio2face.types import FloatArray, FrameBatch

__all__ = ["DEFAULT_LIVE", "LiveOptions", "LiveRun", "LiveStats", "Player"]

LATENCY_WINDOW = 36_000
"""Per-frame latencies kept for the summary: the last 20 minutes at 30 fps."""


class Player(Protocol):
    """``--play`` (:class:`~audio2face.live.playback.DelayedPlayer`)."""

    def start(self, origin: float) -> None: ...

    def write(self, audio: FloatArray) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """Settings of one live run (every limit a setting)."""

    block_s: float = 0.02
    """Audio per block from the source (the microphone's buffer)."""
    delay_s: float | None = None
    """Frame ``k`` leaves at ``origin + k / fps + delay_s``. ``None``: the engine's
    look-ahead + one block + ``margin_s`` (the earliest steady setting)."""
    margin_s: float = 0.03
    """Headroom for inference time in the automatic delay."""
    fps: float | None = None
    """Output frame rate; ``None``: the profile's. Other rates are resampled."""
    duration_s: float | None = None
    """Stop after this much audio (``None``: when the source ends or on :meth:`LiveRun.stop`)."""
    frame_queue_s: float = 10.0
    """Frames made but not yet sent, in seconds, before the model waits for the pacer."""

    def __post_init__(self) -> None:
        if not 0.001 <= self.block_s <= 1.0:
            raise ValueError(f"block_s must be 0.001..1 s, got {self.block_s}")
        if self.delay_s is not None and not 0 <= self.delay_s <= 10:
            raise ValueError(f"delay must be 0..10 s, got {self.delay_s}")
        if self.fps is not None and not (math.isfinite(self.fps) and 0 < self.fps <= 1000):
            raise ValueError(f"fps must be in (0, 1000], got {self.fps}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"duration must be > 0 s, got {self.duration_s}")
        if not self.frame_queue_s > 0:
            raise ValueError("frame_queue_s must be > 0")

    def delay_for(self, lookahead_s: float) -> float:
        if self.delay_s is not None:
            return self.delay_s
        return lookahead_s + self.block_s + self.margin_s


DEFAULT_LIVE = LiveOptions()


@dataclass(slots=True)
class LiveStats:
    """What the status line shows, updated as the run goes."""

    level_dbfs: float = -120.0
    seconds_in: float = 0.0
    frames_made: int = 0
    frames_sent: int = 0
    last_latency_s: float = 0.0
    """Sending time of the latest frame minus the capture time of its audio."""
    late: int = 0
    delay_s: float = 0.0
    fps: float = 0.0
    names: tuple[str, ...] = ()
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    """Per frame: sending time minus capture time of the sample at the frame's time."""
    ready: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    """Per frame: when it was made minus the capture time (before pacing holds it)."""


def level_dbfs(audio: FloatArray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20 * math.log10(max(rms, 1e-6))


class LiveRun:
    """One live run; ``await run()`` until the source ends or :meth:`stop`."""

    def __init__(
        self,
        source: AudioSource,
        backend: Backend,
        make_sinks: Callable[[tuple[str, ...], float], Sequence[FrameSink]],
        options: LiveOptions = DEFAULT_LIVE,
        *,
        clock: Clock | None = None,
        player: Callable[[int, float], Player] | None = None,
        record: bool = False,
    ) -> None:
        """``make_sinks(names, fps)`` builds the sinks once the stream's names are known;
        ``player(rate, delay_s)`` makes a :class:`~audio2face.live.playback.DelayedPlayer`
        (``--play``); ``record`` keeps every frame (``-o``)."""
        self.source = source
        self.backend = backend
        self.options = options
        self.clock: Clock = clock or MonotonicClock()
        self.stats = LiveStats()
        self.sinks: Sequence[FrameSink] = ()
        self.pacer: Pacer | None = None
        self.recorded: list[FrameBatch] = []
        self._make_sinks = make_sinks
        self._player_factory = player
        self._record = record
        self._origin: float | None = None
        self._fps = 0.0
        self._delay = 0.0
        self._origin_set = asyncio.Event()

    def stop(self) -> None:
        """End the input now; what was taken is still animated and sent."""
        self.source.stop()

    @property
    def origin(self) -> float | None:
        return self._origin

    async def run(self) -> LiveStats:
        options = self.options
        async with self.backend.open(self.source.rate) as stream:
            fps = options.fps or stream.fps
            delay = options.delay_for(stream.lookahead_s)
            self.stats.delay_s, self.stats.fps = delay, fps
            self._fps, self._delay = fps, delay
            player = self._player_factory(self.source.rate, delay) if self._player_factory else None
            queue: asyncio.Queue[FrameBatch | None] = asyncio.Queue(
                max(2, round(options.frame_queue_s * stream.fps))
            )
            tasks = [
                asyncio.create_task(self._feed(stream, player), name="a2f-live-feed"),
                asyncio.create_task(self._make(stream, fps, queue), name="a2f-live-make"),
                asyncio.create_task(self._pace(queue), name="a2f-live-pace"),
            ]
            try:
                await _gather_or_fail(tasks)
            finally:
                for sink in self.sinks:
                    sink.close()
                if player is not None:
                    player.close()
        return self.stats

    async def _feed(self, stream: LiveStream, player: Player | None) -> None:
        async with contextlib.aclosing(self.source.blocks()) as blocks:
            async for block in blocks:
                if self._origin is None:
                    self._origin = block.captured
                    if player is not None:
                        player.start(block.captured)
                    self._origin_set.set()
                audio = block.audio
                limit = self.options.duration_s
                if limit is not None:
                    left = round(limit * self.source.rate) - round(
                        self.stats.seconds_in * self.source.rate
                    )
                    audio = audio[: max(0, left)]
                self.stats.level_dbfs = level_dbfs(audio)
                self.stats.seconds_in += audio.shape[0] / self.source.rate
                if player is not None:
                    player.write(audio)
                if audio.shape[0]:
                    await stream.push(audio)
                if audio.shape[0] < block.audio.shape[0]:
                    self.source.stop()
                    break
        self._origin_set.set()  # an empty source: let the other tasks end
        await stream.finish()

    async def _make(
        self, stream: LiveStream, fps: float, queue: asyncio.Queue[FrameBatch | None]
    ) -> None:
        resampler = FrameResampler(stream.fps, fps) if fps != stream.fps else None
        try:
            async for batch in stream.frames():
                if self._origin is not None:
                    now = self.clock.now()
                    for k in range(len(batch)):
                        self.stats.ready.append(
                            now - (self._origin + (batch.first_frame + k) / stream.fps)
                        )
                out = resampler.push(batch) if resampler is not None else batch
                self.stats.frames_made += len(out)
                if len(out):
                    await queue.put(out)
            if resampler is not None:
                tail = resampler.finish(self.stats.seconds_in)
                if len(tail):
                    await queue.put(tail)
        finally:
            await queue.put(None)

    def _start_pacer(self, names: tuple[str, ...], origin: float) -> Pacer:
        """Sinks and pacer, once the first frames tell the names (a v1 server says them
        only after the first audio)."""
        self.stats.names = names
        self.sinks = tuple(self._make_sinks(names, self._fps))
        pacer = Pacer(
            self.sinks, self._fps, delay_s=self._delay, clock=self.clock, on_sent=self._sent
        )
        pacer.start(origin)
        self.pacer = pacer
        return pacer

    async def _pace(self, queue: asyncio.Queue[FrameBatch | None]) -> None:
        while (batch := await queue.get()) is not None:
            await self._origin_set.wait()
            if self._origin is None:
                continue
            if self._record:
                self.recorded.append(batch)
            pacer = self.pacer or self._start_pacer(batch.names, self._origin)
            await pacer.send(batch)

    def _sent(self, frame: PacedFrame) -> None:
        stats = self.stats
        stats.frames_sent += 1
        if self._origin is not None and self.pacer is not None:
            stats.last_latency_s = frame.sent - (self._origin + frame.index / self.pacer.fps)
            stats.latencies.append(stats.last_latency_s)
            stats.late = self.pacer.stats.late

    def recording(self) -> FrameBatch | None:
        """Every frame sent (with ``record``), as one batch."""
        if not self.recorded:
            return None
        out = self.recorded[0]
        for part in self.recorded[1:]:
            out = out.then(part)
        return out


async def _gather_or_fail(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for all tasks; if one fails, cancel the others and raise its error."""
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
