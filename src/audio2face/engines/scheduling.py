"""Choose how a model streams: native streaming, window scheduler or silence segments.

- ``streaming``: the engine streams by itself (``Engine.open_stream``).
- ``window``: a :class:`~audio2face.types.SegmentModel` at a fixed latency
  (``window_*`` settings), see :mod:`audio2face.streaming.window`.
- ``segment``: a ``SegmentModel`` on silence-delimited segments, as the original
  service ran UniTalker, see :mod:`audio2face.streaming.segmenter`.
- ``auto``: ``streaming`` for an engine, ``window`` for a segment model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from audio2face.errors import ConfigError
from audio2face.settings import Settings, StreamMode
from audio2face.streaming.segmenter import SegmentedStream
from audio2face.streaming.window import WindowedStream
from audio2face.types import Engine, EngineStream, SegmentModel

__all__ = ["ScheduledEngine", "open_engine_stream", "resolve_mode"]

Resolved = Literal["window", "segment", "streaming"]


def resolve_mode(model_or_engine: Engine | SegmentModel, mode: StreamMode) -> Resolved:
    """The concrete mode for ``mode`` on this object; raises :class:`ConfigError` when
    the object cannot run that way."""
    can_stream = callable(getattr(model_or_engine, "open_stream", None))
    can_segment = callable(getattr(model_or_engine, "infer", None))
    if mode == "auto":
        if can_stream:
            return "streaming"
        if can_segment:
            return "window"
    elif mode == "streaming" and can_stream:
        return "streaming"
    elif mode in ("window", "segment") and can_segment:
        return mode
    kind = type(model_or_engine).__name__
    allowed = (["streaming"] if can_stream else []) + (["window", "segment"] if can_segment else [])
    raise ConfigError(f"{kind} cannot run in mode {mode!r}; allowed: {['auto', *allowed]}")


def open_engine_stream(
    model_or_engine: Engine | SegmentModel, mode: StreamMode, settings: Settings
) -> EngineStream:
    """A new per-stream :class:`EngineStream` for ``model_or_engine`` in ``mode``."""
    resolved = resolve_mode(model_or_engine, mode)
    if resolved == "streaming":
        return model_or_engine.open_stream()  # type: ignore[union-attr]
    model: SegmentModel = model_or_engine  # type: ignore[assignment]
    if resolved == "segment":
        return SegmentedStream(model, settings)
    return WindowedStream(
        model,
        left_context_s=settings.window_left_context_s,
        hop_s=settings.window_hop_s,
        lookahead_s=settings.window_lookahead_s,
        crossfade_s=settings.window_crossfade_s,
    )


class ScheduledEngine:
    """A :class:`SegmentModel` presented as an :class:`Engine`: each stream gets its own
    scheduler (window or segment), all share the model."""

    def __init__(
        self, name: str, model: SegmentModel, settings: Settings, *, mode: StreamMode = "auto"
    ) -> None:
        self._name = name
        self.model = model
        self.settings = settings
        self.mode = resolve_mode(model, mode)

    @property
    def name(self) -> str:
        return self._name

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.model.output_names

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    @property
    def fps(self) -> float:
        return self.model.fps

    @property
    def lookahead_s(self) -> float:
        """Window mode: the configured look-ahead. Segment mode: up to one segment."""
        if self.mode == "segment":
            return self.settings.max_segment_s
        return self.settings.window_lookahead_s

    def open_stream(self) -> EngineStream:
        return open_engine_stream(self.model, self.mode, self.settings)

    def attach_batch_observer(self, observer: Callable[[int, float], None] | None) -> None:
        """Forward to the model, when it reports inference batches (metrics)."""
        attach = getattr(self.model, "attach_batch_observer", None)
        if callable(attach):
            attach(observer)
