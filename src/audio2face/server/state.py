"""Server-wide state shared by the routes (one object per app)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from audio2face.metrics import Metrics
from audio2face.runtime import Runtime
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

    def buffered_seconds(self) -> float:
        """Audio queued for inference, all streams."""
        return sum(stream.buffered_seconds for stream in self.streams)
