"""Server-wide state shared by the routes (one object per app)."""

from __future__ import annotations

from dataclasses import dataclass, field

from audio2face.metrics import Metrics
from audio2face.runtime import Runtime
from audio2face.settings import Settings


@dataclass
class ServerState:
    settings: Settings
    metrics: Metrics
    runtime: Runtime | None = None
    draining: bool = False
    active_streams: int = 0
    streams: set[object] = field(default_factory=set)
