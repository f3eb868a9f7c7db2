"""Shared types and protocols: the contracts between pipeline stages.

Data flows one way::

    transport -> Session -> scheduler (segmenter | window | streaming) -> EngineStream
              -> postprocess ChainStream -> FrameBatch -> transport

Audio handed to an engine is always mono float32 in [-1, 1) at the engine's
``sample_rate``. Frames are float32 arrays of shape ``[n_frames, n_channels]``.

The frame clock: after a stream has received ``N`` samples in total and has been
finished, it has produced exactly ``round(N * fps / sample_rate)`` frames, and frame
``i`` shows the face at time ``i / fps`` seconds from the first sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
"""float32 array. Audio is ``[n_samples]``, frames are ``[n_frames, n_channels]``."""


def frames_for_samples(n_samples: int, sample_rate: int, fps: float) -> int:
    """The frame clock: how many frames ``n_samples`` of audio are worth.

    Rounds half up (not banker's rounding), so the count never depends on parity.
    """
    return int(np.floor(n_samples * fps / sample_rate + 0.5))


def empty_frames(n_channels: int) -> FloatArray:
    """A ``[0, n_channels]`` float32 array."""
    return np.zeros((0, n_channels), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """A run of consecutive output frames.

    ``values[k]`` is frame number ``first_frame + k`` of the stream, at time
    ``(first_frame + k) / fps``.
    """

    first_frame: int
    names: tuple[str, ...]
    values: FloatArray
    fps: float

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def then(self, tail: FrameBatch) -> FrameBatch:
        """This batch followed by ``tail``, the stream's next frames."""
        if len(self) == 0:
            return tail
        values = np.concatenate([self.values, tail.values], axis=0)
        return FrameBatch(self.first_frame, self.names, values, self.fps)

    def split_at(self, n: int) -> tuple[FrameBatch, FrameBatch | None]:
        """The first ``n`` frames, and the rest (``None`` when there is no rest)."""
        if n >= len(self):
            return self, None
        head = FrameBatch(self.first_frame, self.names, self.values[:n], self.fps)
        rest = FrameBatch(self.first_frame + n, self.names, self.values[n:], self.fps)
        return head, rest


@runtime_checkable
class EngineStream(Protocol):
    """Per-stream inference state of an engine. Never shared between streams."""

    def push(self, audio: FloatArray, emotion: str | None = None) -> FloatArray:
        """Feed more audio; return the new frames that the audio so far allows.

        ``emotion`` is the emotion label of this audio (``None`` for neutral); engines
        that cannot use it ignore it.
        """
        ...

    def finish(self) -> FloatArray:
        """End of audio: return every remaining frame so the frame clock is exact."""
        ...


@runtime_checkable
class Engine(Protocol):
    """A loaded model, shared by all streams. Thread-safe ``open_stream``."""

    @property
    def name(self) -> str: ...

    @property
    def output_names(self) -> tuple[str, ...]: ...

    @property
    def sample_rate(self) -> int: ...

    @property
    def fps(self) -> float: ...

    @property
    def lookahead_s(self) -> float:
        """Audio past a frame's time that the engine needs before it can emit it."""
        ...

    def open_stream(self) -> EngineStream: ...


@runtime_checkable
class SegmentModel(Protocol):
    """A non-streaming model that maps a whole audio segment to frames (UniTalker).

    Schedulers in :mod:`audio2face.streaming` turn it into an :class:`EngineStream`.
    """

    @property
    def output_names(self) -> tuple[str, ...]: ...

    @property
    def sample_rate(self) -> int: ...

    @property
    def fps(self) -> float: ...

    def infer(self, audio: FloatArray, n_frames: int, emotion: str | None = None) -> FloatArray:
        """Return exactly ``n_frames`` frames for ``audio``.

        Frame ``k`` shows the face at ``k / fps`` seconds from the segment's first sample.
        """
        ...
