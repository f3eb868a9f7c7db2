"""Server-wide state shared by the routes (one object per app)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from audio2face.metrics import Metrics
from audio2face.runtime import Runtime
from audio2face.server.admission import CapacityEstimate, ConnectionGuard, LoadShedder
from audio2face.settings import Settings


@dataclass
class ServerState:
    """What the routes share. The counters let tests and operators check that every
    stream was cleaned up: after all clients leave, ``streams`` and ``tasks`` are
    empty, ``buffered_seconds()`` is 0 and ``streams_opened == streams_closed``."""

    settings: Settings
    metrics: Metrics
    runtime: Runtime | None = None
    draining: bool = False
    streams: set[Any] = field(default_factory=set)
    """Open WebSocket streams (``server.connection.Connection``, any protocol)."""
    uploads: int = 0
    """HTTP animate requests in progress (they count towards ``max_streams``)."""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    """Helper tasks spawned per stream (receive loops), kept referenced until done."""
    streams_opened: int = 0
    streams_closed: int = 0
    internal_errors: int = 0
    """Unexpected exceptions caught per stream: a bug each, never a crash."""
    uploads_waiting: int = 0
    """Uploads read and waiting for one of the ``max_uploads`` turns."""
    audio_done: dict[str, float] = field(default_factory=dict)
    """Seconds of audio animated per engine by streams and uploads that have ended."""
    capacity: CapacityEstimate = field(init=False)
    """Streams each engine has room for, measured (see ``server/admission.py``)."""
    guard: ConnectionGuard | None = None
    """The TCP edge's connection count, when the server runs the guarded protocols."""
    upload_slots: asyncio.Semaphore = field(init=False)
    shedder: LoadShedder = field(init=False)
    """Closes the newest stream of an overloaded engine (see ``server/admission.py``)."""

    def __post_init__(self) -> None:
        self.capacity = CapacityEstimate(
            self.settings, self.metrics, self.audio_by_engine, self.open_engines,
            self.shed_overload,
        )  # fmt: skip
        self.upload_slots = asyncio.Semaphore(self.settings.max_uploads)
        self.shedder = LoadShedder(self.settings.max_lag_s)

    def buffered_seconds(self) -> float:
        """Audio queued for inference, all streams."""
        return sum(stream.buffered_seconds for stream in self.streams)

    def audio_by_engine(self) -> dict[str, float]:
        """Seconds of audio animated per engine so far, open streams included."""
        totals = dict(self.audio_done)
        for stream in self.streams:
            runner = stream.runner
            if runner is not None:
                totals[runner.engine] = totals.get(runner.engine, 0.0) + runner.seconds_in
        return totals

    def add_audio_done(self, engine: str, seconds: float) -> None:
        self.audio_done[engine] = self.audio_done.get(engine, 0.0) + seconds

    def shed_overload(self) -> None:
        """Shed load newest first (``LoadShedder``: while a stream on an engine is more
        than half of ``max_lag_s`` behind real time, its youngest stream is closed with
        1013). Called every ``SHED_TICK_S`` (0.2 s)."""
        self.shedder(self.streams)

    def open_engines(self) -> list[str]:
        """The engine of each open stream."""
        return [s.runner.engine for s in self.streams if s.runner is not None]
