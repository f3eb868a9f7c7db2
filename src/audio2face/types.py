"""Shared types and protocols: the contracts between pipeline stages.

Data flows one way::

    transport -> StreamRunner -> Session -> EngineStream (default | scheduled | phonemes)
              -> postprocess ChainStream -> FrameBatch -> transport

Engines declare what they can do in :class:`EngineCapabilities`; nothing in the
pipeline discovers a capability by probing attributes.

Audio handed to an engine is always mono float32 in [-1, 1) at the engine's
``sample_rate``. Frames are float32 arrays of shape ``[n_frames, n_channels]``.

The frame clock: after a stream has received ``N`` samples in total and has been
finished, it has produced exactly ``round(N * fps / sample_rate)`` frames, and frame
``i`` shows the face at time ``i / fps`` seconds from the first sample.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from audio2face.errors import StreamClosedError

Providers = Literal["auto", "cpu", "cuda"]
"""onnxruntime providers: ``cpu``, ``cuda``, or ``auto`` (CUDA when the build has it)."""

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


class StreamState(enum.Enum):
    """The lifecycle of every per-stream object (session, engine streams, schedulers,
    feature state): ``OPEN`` until ``finish()`` (``FINISHED``) or an error (``FAILED``);
    ``reset()`` (where offered) returns to ``OPEN``."""

    OPEN = "open"
    FINISHED = "finished"
    FAILED = "failed"


def require_open(state: StreamState, action: str) -> None:
    """Raise :class:`StreamClosedError` unless ``state`` is ``OPEN``."""
    if state is not StreamState.OPEN:
        raise StreamClosedError(
            f"cannot {action}: the stream is {state.value}; open a new stream or call reset()",
            state=state.value,
        )


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
class BatchedEngineStream(EngineStream, Protocol):
    """An engine stream whose pushes can run together with other streams' of the same
    ``batch_key`` in one :meth:`push_many` call (one feature pass, one model run)."""

    @property
    def batch_key(self) -> Hashable:
        """Streams with equal keys share a model and can be pushed together."""
        ...

    @classmethod
    def push_many(
        cls,
        streams: Sequence[BatchedEngineStream],
        audios: Sequence[FloatArray],
        emotions: Sequence[str | None],
    ) -> list[FloatArray]:
        """:meth:`EngineStream.push` for each stream; exactly the frames each would get alone."""
        ...

    @classmethod
    def finish_many(
        cls, streams: Sequence[BatchedEngineStream], tails: Sequence[FloatArray]
    ) -> list[FloatArray]:
        """``push(tail)`` then :meth:`EngineStream.finish` for each stream, together."""
        ...


Phone = tuple[float, float, str]
"""``(start_s, end_s, label)``: a timed phone, seconds from the stream's first sample."""


@runtime_checkable
class PhoneInputStream(EngineStream, Protocol):
    """An engine stream driven by phone timings (TTS); its audio only drives the clock."""

    def push_phones(self, phones: Sequence[Phone]) -> None:
        """Append timed phones, in time order."""
        ...

    def end_phones(self) -> None:
        """No more phones will come: frames past the last phone are rest."""
        ...


BatchObserver = Callable[[int, float], None]
"""Called after each model run with ``(rows in the batch, seconds of the run)``."""


@dataclass(frozen=True, slots=True)
class EngineCapabilities:
    """What an engine can do, declared by the engine (never probed with ``getattr``)."""

    batched_push: bool = False
    """Its streams are :class:`BatchedEngineStream`: many streams' pushes in one call."""
    reports_batches: bool = False
    """It is a :class:`BatchReportingEngine`: it times its own model runs (metrics)."""
    any_fps: bool = False
    """``open_stream(fps)`` works at any output frame rate, not only at ``fps``."""
    phone_input: bool = False
    """Its streams are :class:`PhoneInputStream`: phones drive the face, audio the clock."""


@runtime_checkable
class Engine(Protocol):
    """A loaded model, shared by all streams. Thread-safe ``open_stream``."""

    @property
    def capabilities(self) -> EngineCapabilities: ...

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

    def open_stream(self, fps: float | None = None) -> EngineStream:
        """A new stream. ``fps`` other than :attr:`fps` needs ``capabilities.any_fps``."""
        ...


@runtime_checkable
class BatchReportingEngine(Engine, Protocol):
    """An engine that reports each model run (``capabilities.reports_batches``)."""

    def attach_batch_observer(self, observer: BatchObserver | None) -> None: ...


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

    def infer_batch(
        self, audios: Sequence[FloatArray], n_frames: int, emotion: str | None = None
    ) -> FloatArray:
        """Frames ``[B, n_frames, C]`` for ``B`` segments of equal length (one run where
        the model has a batch axis)."""
        ...
