"""Prometheus metrics, one registry per app so several apps (tests) never clash."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from audio2face.settings import Settings

LIMIT_SETTINGS = (
    "max_streams",
    "max_message_bytes",
    "max_buffered_s",
    "max_utterance_s",
    "idle_timeout_s",
    "send_timeout_s",
    "shutdown_drain_s",
)
"""The settings exported as ``a2f_limit``."""

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0)
_INFER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Metrics:
    """Every metric the service exports on ``/metrics``."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.active_streams = Gauge("a2f_active_streams", "Streams open now", registry=r)
        self.streams = Counter(
            "a2f_streams", "Streams ended, by outcome", ["outcome"], registry=r
        )
        self.frames_out = Counter("a2f_frames_out", "Frames sent to clients", registry=r)
        self.audio_seconds_in = Counter(
            "a2f_audio_seconds_in", "Seconds of audio received", registry=r
        )
        self.frame_latency = Histogram(
            "a2f_frame_latency_seconds",
            "Time from the arrival of the audio that completes a frame's look-ahead "
            "to the frame being sent",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "a2f_inference_seconds",
            "Wall time of one engine call",
            ["engine"],
            buckets=_INFER_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "a2f_batch_size",
            "Rows per model run (one row: one stream's request)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.queue_depth = Gauge(
            "a2f_queue_depth", "Bodies waiting for inference, all streams", registry=r
        )
        self.errors = Counter("a2f_errors", "Errors, by kind", ["kind"], registry=r)
        self.refusals = Counter(
            "a2f_refusals", "Requests refused, by the limit hit", ["limit"], registry=r
        )
        self.limit = Gauge("a2f_limit", "Configured limits", ["name"], registry=r)

    def record_limits(self, settings: Settings) -> None:
        """Export every configured limit as ``a2f_limit{name=...}``, so dashboards can
        draw usage against its cap."""
        for name in LIMIT_SETTINGS:
            self.limit.labels(name=name).set(float(getattr(settings, name)))
