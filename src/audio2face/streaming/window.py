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

import numpy as np

from audio2face.streaming.buffer import SampleBuffer
from audio2face.streaming.lifecycle import StreamState, require_open
from audio2face.types import FloatArray, SegmentModel, empty_frames, frames_for_samples

__all__ = ["WindowedStream"]


class WindowedStream:
    """An :class:`~audio2face.types.EngineStream` over a :class:`SegmentModel`.

    Times are converted to whole frames once: ``L = round(left_context_s * fps)``,
    ``H = max(1, round(hop_s * fps))``, ``A = ceil(lookahead_s * fps)`` and
    ``X = min(round(crossfade_s * fps), A)``. Latency is up to ``hop_s + lookahead_s``.
    """

    def __init__(
        self,
        model: SegmentModel,
        left_context_s: float,
        hop_s: float,
        lookahead_s: float,
        crossfade_s: float,
    ) -> None:
        for name, value in (("left_context_s", left_context_s), ("lookahead_s", lookahead_s),
                            ("crossfade_s", crossfade_s)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if hop_s <= 0:
            raise ValueError(f"hop_s must be > 0, got {hop_s}")
        self.model = model
        fps = model.fps
        self.left_frames = round(left_context_s * fps)
        self.hop_frames = max(1, round(hop_s * fps))
        # ceil, with a tolerance so 0.3 s * 30 fps = 9.000000000000002 is 9, not 10.
        self.lookahead_frames = int(np.ceil(lookahead_s * fps - 1e-9))
        self.crossfade_frames = min(round(crossfade_s * fps), self.lookahead_frames)
        self._n_channels = len(model.output_names)
        self._buffer = SampleBuffer()
        self.reset()

    @property
    def latency_s(self) -> float:
        """Longest wait from a frame's time to its emission (hop plus look-ahead)."""
        return (self.hop_frames + self.lookahead_frames) / self.model.fps

    @property
    def frames_emitted(self) -> int:
        return self._emitted

    def reset(self) -> None:
        """Forget all audio and start a new stream."""
        self._buffer.clear()
        self._emitted = 0
        self._tail = empty_frames(self._n_channels)  # previous window's frames from _emitted on
        self._emotion: str | None = None
        self.state = StreamState.OPEN

    def push(self, audio: FloatArray, emotion: str | None = None) -> FloatArray:
        require_open(self.state, "push audio")
        self._emotion = emotion
        self._buffer.append(audio)
        parts = []
        while True:
            i1 = self._emitted + self.hop_frames
            j1 = i1 + self.lookahead_frames
            if self._sample(j1) > self._buffer.end:
                break
            parts.append(self._window(i1, j1, self._sample(j1)))
        # One sample more than sample(j0): a full window may start one sample earlier.
        self._buffer.drop_before(self._sample(max(0, self._emitted - self.left_frames)) - 1)
        if not parts:
            return empty_frames(self._n_channels)
        return np.concatenate(parts, axis=0)

    def finish(self) -> FloatArray:
        require_open(self.state, "finish")
        total = self._buffer.end
        target = frames_for_samples(total, self.model.sample_rate, self.model.fps)
        out = empty_frames(self._n_channels)
        if target > self._emitted:
            out = self._window(target, target, total)
        self.state = StreamState.FINISHED
        return out

    # --- internals ----------------------------------------------------------------
    def _sample(self, frame: int) -> int:
        """Sample position of global frame ``frame`` (round half up, like the clock)."""
        return int(np.floor(frame * self.model.sample_rate / self.model.fps + 0.5))

    def _samples_for(self, n_frames: int) -> int:
        return round(n_frames * self.model.sample_rate / self.model.fps)

    def _window(self, i1: int, j1: int, audio_end: int) -> FloatArray:
        """Infer frames ``[j0, j1)`` from audio ``[sample(j0), audio_end)``; emit ``[i0, i1)``
        with the cross-fade, keep ``[i1, i1 + X)`` as the next tail."""
        i0 = self._emitted
        j0 = max(0, i0 - self.left_frames)
        start = self._sample(j0)
        if j0 > 0 and audio_end == self._sample(j1):
            # Full windows always get the same sample count (the frame grid is not a
            # whole number of samples, so sample(j1) - sample(j0) wobbles by one):
            # equal lengths let windows of different streams share one batch.
            start = max(self._buffer.start, audio_end - self._samples_for(j1 - j0))
        audio = self._buffer.slice(start, audio_end)
        frames = np.asarray(self.model.infer(audio, j1 - j0, self._emotion), dtype=np.float32)
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
