"""A non-streaming model presented as an engine: window scheduler or silence segments.

- ``window``: a :class:`~audio2face.types.SegmentModel` at a fixed latency
  (:class:`~audio2face.streaming.window.WindowOptions`); its streams push together
  (``capabilities.batched_push``), so due windows of many streams share a model run.
- ``segment``: the model on silence-delimited segments, as the original service ran
  UniTalker (:class:`~audio2face.streaming.segmenter.SilenceOptions`).

Which one is chosen by the type of the options given: the choice is made once, at the
composition root (``loading.py``), from the ``unitalker_mode`` setting.
"""

from __future__ import annotations

from collections.abc import Callable

from audio2face.errors import ConfigError
from audio2face.streaming.segmenter import SegmentedStream, SilenceOptions
from audio2face.streaming.window import WindowedStream, WindowOptions
from audio2face.types import BatchObserver, EngineCapabilities, EngineStream, SegmentModel

__all__ = ["ScheduledEngine"]


class ScheduledEngine:
    """A :class:`SegmentModel` as an :class:`~audio2face.types.Engine`: each stream gets
    its own scheduler, all share the model.

    ``attach_observer``, when given, is how the model reports its runs (metrics); the
    engine then declares ``reports_batches``.
    """

    def __init__(
        self,
        name: str,
        model: SegmentModel,
        schedule: WindowOptions | SilenceOptions,
        *,
        attach_observer: Callable[[BatchObserver | None], None] | None = None,
    ) -> None:
        if not isinstance(schedule, WindowOptions | SilenceOptions):
            raise TypeError(f"schedule must be WindowOptions or SilenceOptions, got {schedule!r}")
        self._name = name
        self.model = model
        self.schedule = schedule
        self._attach = attach_observer
        self.mode = "window" if isinstance(schedule, WindowOptions) else "segment"
        self.capabilities = EngineCapabilities(
            batched_push=self.mode == "window", reports_batches=self._attach is not None
        )

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
        if isinstance(self.schedule, SilenceOptions):
            return self.schedule.max_segment_s
        return self.schedule.lookahead_s

    def open_stream(self, fps: float | None = None) -> EngineStream:
        if fps is not None and abs(fps - self.fps) > 1e-9:
            raise ConfigError(
                f"the {self._name!r} engine runs at {self.fps:g} fps only, not {fps:g}"
            )
        if isinstance(self.schedule, SilenceOptions):
            return SegmentedStream(self.model, self.schedule)
        return WindowedStream(self.model, self.schedule)

    def attach_batch_observer(self, observer: BatchObserver | None) -> None:
        """Report the model's runs to ``observer`` (only with ``reports_batches``)."""
        if self._attach is not None:
            self._attach(observer)
