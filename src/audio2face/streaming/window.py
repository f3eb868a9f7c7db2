"""Window scheduler: a non-streaming model streamed at a fixed latency.

Every hop the scheduler infers one window of audio and emits the hop's frames::

    frames   [j0 ........ i0 ====== i1 ~~~~~~ j1)
              left context  emitted   look-ahead (its first X frames kept as "tail")

``j0 = i0 - L`` and ``j1 = i1 + A``, in frames of the global grid; the window's audio
is ``[sample(j0), sample(j1))`` and the model is asked for ``j1 - j0`` frames, so its
frame ``k`` is global frame ``j0 + k``. Frames ``[i0, i1)`` leave as soon as the audio
up to ``sample(i1 + A)`` has arrived: each has at least ``lookahead_s`` of future audio.

Each window sees different context, so two windows disagree about the same frame. The
first ``X`` frames of a window are blended linearly with the previous window's tail
(its frames ``[i1, i1 + X)``) so that a join is a ramp, not a step. ``X`` is at most
``A``: the tail lives in the previous window's look-ahead.

``finish()`` infers one last window ending at the last sample and emits up to
``frames_for_samples(total)``, so the frame clock is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audio2face.streaming.buffer import SampleBuffer
from audio2face.types import (
    FloatArray,
    SegmentModel,
    StreamState,
    empty_frames,
    frames_for_samples,
    require_open,
)

__all__ = ["DEFAULT_WINDOW", "WindowOptions", "WindowedStream"]


@dataclass(frozen=True, slots=True)
class WindowOptions:
    """The window scheduler's latency trade-off, in seconds (the ``window_*`` settings)."""

    left_context_s: float = 1.0
    """Past audio given to each window."""
    hop_s: float = 0.4
    """New frames per window."""
    lookahead_s: float = 0.3
    """Future audio each frame waits for."""
    crossfade_s: float = 0.1
    """Overlap blended at joins (at most ``lookahead_s``)."""

    def __post_init__(self) -> None:
        for name in ("left_context_s", "lookahead_s", "crossfade_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.hop_s <= 0:
            raise ValueError(f"hop_s must be > 0, got {self.hop_s}")


DEFAULT_WINDOW = WindowOptions()


@dataclass(frozen=True, slots=True)
class _Window:
    """One planned model call: frames ``[j0, j1)`` from ``audio``; emits ``[i0, i1)``."""

    i0: int
    i1: int
    j0: int
    j1: int
    audio: FloatArray


class WindowedStream:
    """An :class:`~audio2face.types.EngineStream` over a :class:`SegmentModel`.

    Times are converted to whole frames once: ``L = round(left_context_s * fps)``,
    ``H = max(1, round(hop_s * fps))``, ``A = ceil(lookahead_s * fps)`` and
    ``X = min(round(crossfade_s * fps), A)``. Latency is up to ``hop_s + lookahead_s``.

    :meth:`push_many` pushes several streams of one model together: their due windows
    of equal length share one :meth:`SegmentModel.infer_batch` call.
    """

    def __init__(self, model: SegmentModel, options: WindowOptions = DEFAULT_WINDOW) -> None:
        self.model = model
        self.options = options
        fps = model.fps
        self.left_frames = round(options.left_context_s * fps)
        self.hop_frames = max(1, round(options.hop_s * fps))
        # ceil, with a tolerance so 0.3 s * 30 fps = 9.000000000000002 is 9, not 10.
        self.lookahead_frames = int(np.ceil(options.lookahead_s * fps - 1e-9))
        self.crossfade_frames = min(round(options.crossfade_s * fps), self.lookahead_frames)
        self._n_channels = len(model.output_names)
        self._buffer = SampleBuffer()
        self.reset()

    @property
    def latency_s(self) -> float:
        """Longest wait from a frame's time to its emission (hop plus look-ahead)."""
        return (self.hop_frames + self.lookahead_frames) / self.model.fps

    @property
    def batch_key(self) -> SegmentModel:
        """Streams of one model can be pushed together (:meth:`push_many`)."""
        return self.model

    def reset(self) -> None:
        """Forget all audio and start a new stream."""
        self._buffer.clear()
        self._emitted = 0
        self._tail = empty_frames(self._n_channels)  # previous window's frames from _emitted on
        self._emotion: str | None = None
        self.state = StreamState.OPEN

    def push(self, audio: FloatArray, emotion: str | None = None) -> FloatArray:
        return self.push_many([self], [audio], [emotion])[0]

    @classmethod
    def push_many(
        cls,
        streams: Sequence[WindowedStream],
        audios: Sequence[FloatArray],
        emotions: Sequence[str | None],
    ) -> list[FloatArray]:
        """:meth:`push` for several streams of one model: every window now due, of every
        stream, is planned first; windows of equal length and emotion run as one batch."""
        if not len(streams) == len(audios) == len(emotions):
            raise ValueError("push_many needs one audio chunk and one emotion per stream")
        if not streams:
            return []
        model = streams[0].model
        for stream in streams:  # every check before any state changes
            require_open(stream.state, "push audio")
            if stream.model is not model:
                raise ValueError("push_many needs streams of one model")
        plans = [s._plan(audio, emotion) for s, audio, emotion in zip(streams, audios, emotions, strict=True)]
        groups: dict[tuple[int, int, str | None], list[tuple[int, int]]] = {}
        for k, (stream, plan) in enumerate(zip(streams, plans, strict=True)):
            for w, window in enumerate(plan):
                key = (window.audio.shape[0], window.j1 - window.j0, stream._emotion)
                groups.setdefault(key, []).append((k, w))
        results: list[list[FloatArray | None]] = [[None] * len(plan) for plan in plans]
        for (_, n_frames, emotion), members in groups.items():
            batch = np.asarray(
                model.infer_batch([plans[k][w].audio for k, w in members], n_frames, emotion),
                dtype=np.float32,
            )
            for (k, w), frames in zip(members, batch, strict=True):
                results[k][w] = frames
        outs = []
        for stream, plan, frames in zip(streams, plans, results, strict=True):
            parts = [stream._apply(window, f) for window, f in zip(plan, frames, strict=True) if f is not None]
            # One sample more than sample(j0): a full window may start one sample earlier.
            stream._buffer.drop_before(
                stream._sample(max(0, stream._emitted - stream.left_frames)) - 1
            )
            outs.append(np.concatenate(parts, axis=0) if parts else empty_frames(stream._n_channels))
        return outs

    @classmethod
    def finish_many(
        cls, streams: Sequence[WindowedStream], tails: Sequence[FloatArray]
    ) -> list[FloatArray]:
        """``push(tail)`` then :meth:`finish` for each stream (windows at the end of a
        stream have their own lengths: nothing to share)."""
        return [
            np.concatenate([s.push(t), s.finish()]) for s, t in zip(streams, tails, strict=True)
        ]

    def finish(self) -> FloatArray:
        require_open(self.state, "finish")
        total = self._buffer.end
        target = frames_for_samples(total, self.model.sample_rate, self.model.fps)
        out = empty_frames(self._n_channels)
        if target > self._emitted:
            window = self._window(self._emitted, target, target, total)
            frames = self.model.infer(window.audio, window.j1 - window.j0, self._emotion)
            out = self._apply(window, np.asarray(frames, dtype=np.float32))
        self.state = StreamState.FINISHED
        return out

    # --- internals ----------------------------------------------------------------
    def _sample(self, frame: int) -> int:
        """Sample position of global frame ``frame`` (round half up, like the clock)."""
        return int(np.floor(frame * self.model.sample_rate / self.model.fps + 0.5))

    def _samples_for(self, n_frames: int) -> int:
        return round(n_frames * self.model.sample_rate / self.model.fps)

    def _plan(self, audio: FloatArray, emotion: str | None) -> list[_Window]:
        """Take ``audio``; the windows it makes due, in order (not yet inferred)."""
        self._emotion = emotion
        self._buffer.append(audio)
        windows: list[_Window] = []
        i0 = self._emitted
        while True:
            i1 = i0 + self.hop_frames
            j1 = i1 + self.lookahead_frames
            if self._sample(j1) > self._buffer.end:
                return windows
            windows.append(self._window(i0, i1, j1, self._sample(j1)))
            i0 = i1

    def _window(self, i0: int, i1: int, j1: int, audio_end: int) -> _Window:
        """The call that infers frames ``[j0, j1)`` from audio ``[sample(j0), audio_end)``."""
        j0 = max(0, i0 - self.left_frames)
        start = self._sample(j0)
        if j0 > 0 and audio_end == self._sample(j1):
            # Full windows always get the same sample count (the frame grid is not a
            # whole number of samples, so sample(j1) - sample(j0) wobbles by one):
            # equal lengths let windows of different streams share one batch.
            start = max(self._buffer.start, audio_end - self._samples_for(j1 - j0))
        return _Window(i0, i1, j0, j1, self._buffer.slice(start, audio_end))

    def _apply(self, window: _Window, frames: FloatArray) -> FloatArray:
        """Emit ``[i0, i1)`` of an inferred window with the cross-fade; keep
        ``[i1, i1 + X)`` as the next tail."""
        i0, i1, j0 = window.i0, window.i1, window.j0
        out = frames[i0 - j0 : i1 - j0].copy()
        n_fade = min(self._tail.shape[0], out.shape[0])
        if n_fade:
            # weight of the new window rises 1/(X+1) ... X/(X+1): never a full jump
            x = self._tail.shape[0]
            w = (np.arange(1, n_fade + 1, dtype=np.float32) / (x + 1))[:, None]
            out[:n_fade] = (1.0 - w) * self._tail[:n_fade] + w * out[:n_fade]
        self._tail = frames[i1 - j0 : i1 - j0 + self.crossfade_frames].copy()
        self._emitted = i1
        return out
