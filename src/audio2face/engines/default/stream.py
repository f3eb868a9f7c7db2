"""Per-stream inference for the default model: features in, frames out, any chunking.

Clocks (for the shipped model: features at 100 Hz, model outputs at 50 Hz):

* feature frame ``g`` is centred on sample ``g * hop``; frames ``g < 0`` are digital
  silence (the stream is treated as if preceded by zeros), which is what training
  padded clips with;
* model output ``j`` shows the face at feature frame ``stride * j``. It needs feature
  frames ``stride*j - left_context .. stride*j + right_context``;
* engine frame ``i`` (at ``fps``) is linear interpolation between the outputs on
  either side of ``i / fps``.

Each ``push`` extracts the new feature frames and feeds them, an even number at a
time, to the model's streaming step together with this stream's caches (the last
frames of every convolution's input; they start as "everything before was
silence"). A step's outputs are exactly those the full-window graph gives for the
same features, so any chunking yields the same frames. An odd leftover feature
waits for the next push: steps end on the even frames that outputs' windows end on,
so the leftover never holds an output back. The push then emits the frames whose two
interpolation neighbours exist. ``finish`` appends silence features and flushes to
exactly ``frames_for_samples(N, sample_rate, fps)`` frames.

:meth:`DefaultEngineStream.push_many` does the same for several streams at once, which
is how the server runs them (``streaming/pusher.py``): their new audio goes through one
FFT, and streams whose steps have the same length share one model run, their caches
concatenated along the batch axis. ``push`` is ``push_many`` of one stream, so there
is a single code path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from audio2face.audio.features import LogMelExtractor
from audio2face.engines.default.model import DefaultModel
from audio2face.types import FloatArray, StreamState, frames_for_samples, require_open

__all__ = ["DefaultEngineStream"]

MAX_STEP_FRAMES = 6000  # 60 s of features per step: bounds activation memory on huge pushes


class DefaultEngineStream:
    """Streaming state of one audio stream; the :class:`DefaultModel` is shared."""

    def __init__(self, model: DefaultModel, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self._model = model
        self._fps = float(fps)
        info = model.info
        self._extractor = LogMelExtractor(info.features)
        self._silence = np.float32(math.log(info.features.eps))
        self._rate = info.model_rate
        self._n_out = len(info.output_names)
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next push starts a new stream."""
        info = self._model.info
        self._fe_state = self._extractor.new_state()
        self._caches = list(self._model.initial_caches)  # never written in place
        # Features not yet fed to the model; a fresh stream starts with the silence
        # frames that put its steps in the stride phase of the offline windows.
        self._pending = np.full((info.stream_lead, info.features.n_mels), self._silence, np.float32)
        self._n_feats = 0  # real feature frames seen (global index of the next one)
        self._j_next = -info.stream_preroll  # output index of the next step's first row
        # Model outputs not yet consumed; row 0 is output index self._out0.
        self._out0 = 0
        self._outs = np.zeros((0, self._n_out), np.float32)
        self._next_frame = 0
        self._n_samples = 0
        self.state = StreamState.OPEN

    def push(self, audio: FloatArray, emotion: str | None = None) -> FloatArray:
        """Feed audio (mono float32 at 16 kHz); return the frames it completes."""
        return self.push_many([self], [audio], [emotion])[0]

    @property
    def batch_key(self) -> DefaultModel:
        """Streams of the same model can be pushed together (:meth:`push_many`)."""
        return self._model

    @classmethod
    def push_many(
        cls,
        streams: Sequence[DefaultEngineStream],
        audios: Sequence[FloatArray],
        emotions: Sequence[str | None],
    ) -> list[FloatArray]:
        """:meth:`push` for several streams of one model at once: their features in one
        FFT, their model steps in one run per step length. Each stream gets exactly the
        frames its own :meth:`push` would give; a server pushing a batch of 40 ms
        bodies pays the per-call costs once instead of once per stream. ``emotions``
        is accepted for the engine interface; this model has no emotion input."""
        if not streams:
            return []
        rows = _take_audio(streams, audios, "push audio")
        for stream, new in zip(streams, rows, strict=True):
            stream._add_features(new)
        model = streams[0]._model
        _run_model(model, streams)
        rate = model.info.features.sample_rate
        return [s._emit(frames_for_samples(s._n_samples, rate, s._fps)) for s in streams]

    def finish(self) -> FloatArray:
        """End of audio: pad with silence and return every remaining frame."""
        return self.finish_many([self], [np.zeros(0, np.float32)])[0]

    @classmethod
    def finish_many(
        cls, streams: Sequence[DefaultEngineStream], tails: Sequence[FloatArray]
    ) -> list[FloatArray]:
        """``push(tail)`` then :meth:`finish` for several streams of one model at once:
        the tails' features in one FFT, every stream's last steps in one model run per
        step length. A server ends dozens of utterances a second; alone, each end would
        cost its own model run."""
        if not streams:
            return []
        rows = _take_audio(streams, tails, "finish")
        totals = [s._prepare_finish(new) for s, new in zip(streams, rows, strict=True)]
        _run_model(streams[0]._model, streams)
        return [
            s._emit(total) if total else np.zeros((0, s._n_out), np.float32)
            for s, total in zip(streams, totals, strict=True)
        ]

    def _prepare_finish(self, tail_features: FloatArray) -> int:
        """Close the stream: its last features (the tail's, the extractor's, silence up
        to the last output's window); return its total frame count."""
        self.state = StreamState.FINISHED
        info = self._model.info
        self._add_features(tail_features)
        self._add_features(self._extractor.finish(self._fe_state))
        total = frames_for_samples(self._n_samples, info.features.sample_rate, self._fps)
        if total == 0:
            return 0
        last_out = math.ceil((total - 1) * self._rate / self._fps - 1e-9)
        need = info.stride * last_out + info.right_context  # last feature frame required
        have = self._n_feats - 1
        if need > have:
            self._add_features(np.full((need - have, info.features.n_mels), self._silence, np.float32))
        return total

    # ------------------------------------------------------------------ internals
    def _add_features(self, rows: FloatArray) -> None:
        if rows.shape[0]:
            self._pending = np.concatenate([self._pending, rows]) if self._pending.shape[0] else rows
            self._n_feats += rows.shape[0]

    def _step_length(self) -> int:
        """Pending features the next step takes: a whole number of strides."""
        stride = self._model.info.stride
        return min(self._pending.shape[0] // stride * stride, MAX_STEP_FRAMES)

    def _take_step(self, n: int, y: FloatArray, caches: list[FloatArray]) -> None:
        """Record one step of ``n`` features: its outputs ``y`` and the new caches."""
        self._caches = caches
        self._pending = self._pending[n:]
        skip = max(0, -self._j_next)  # a fresh stream's outputs before time 0
        self._j_next += y.shape[0]
        if y.shape[0] > skip:
            y = y[skip:]
            self._outs = np.concatenate([self._outs, y]) if self._outs.shape[0] else y

    def _emit(self, limit: int) -> FloatArray:
        """Interpolate frames ``next_frame ..`` while both neighbours exist (and < limit)."""
        n_have = self._out0 + self._outs.shape[0]  # outputs 0..n_have-1 are known
        if n_have == 0:
            return np.zeros((0, self._n_out), np.float32)
        # Frame i needs output ceil(i * rate / fps) < n_have.
        last = math.floor((n_have - 1) * self._fps / self._rate + 1e-9)
        end = min(limit, last + 1)
        if end <= self._next_frame:
            return np.zeros((0, self._n_out), np.float32)
        u = np.arange(self._next_frame, end, dtype=np.float64) * (self._rate / self._fps)
        j0 = np.floor(u + 1e-9).astype(np.int64)
        a = np.clip(u - j0, 0.0, 1.0)[:, None]
        j1 = np.minimum(j0 + 1, n_have - 1)
        y0 = self._outs[j0 - self._out0]
        y1 = self._outs[j1 - self._out0]
        frames = ((1.0 - a) * y0 + a * y1).astype(np.float32)
        self._next_frame = end
        # Outputs before the next frame's left neighbour are done with.
        drop = int(math.floor(end * self._rate / self._fps + 1e-9)) - self._out0
        if drop > 0:
            self._outs = self._outs[drop:]
            self._out0 += drop
        return frames


def _take_audio(
    streams: Sequence[DefaultEngineStream], audios: Sequence[FloatArray], action: str
) -> list[FloatArray]:
    """Check every stream before any changes (open, one model), count the new audio and
    return its feature rows, one FFT for all streams."""
    if len(streams) != len(audios):
        raise ValueError(f"{len(streams)} streams but {len(audios)} audio chunks")
    model = streams[0]._model
    for stream in streams:
        require_open(stream.state, action)
        if stream._model is not model:
            raise ValueError("streams pushed or finished together need one model")
    xs = [np.asarray(audio, np.float32).reshape(-1) for audio in audios]
    for stream, x in zip(streams, xs, strict=True):
        stream._n_samples += x.shape[0]
    return streams[0]._extractor.push_many([s._fe_state for s in streams], xs)


def _run_model(model: DefaultModel, streams: Sequence[DefaultEngineStream]) -> None:
    """Feed every stream's pending features to the streaming step, in whole strides;
    streams whose steps have the same length share one run."""
    while True:
        by_length: dict[int, list[DefaultEngineStream]] = {}
        for stream in streams:
            if (n := stream._step_length()) > 0:
                by_length.setdefault(n, []).append(stream)
        if not by_length:
            return
        for n, group in by_length.items():
            if len(group) == 1:
                feats = group[0]._pending[None, :n]
                caches = group[0]._caches
            else:
                feats = np.stack([s._pending[:n] for s in group])
                caches = [np.concatenate(c) for c in zip(*(s._caches for s in group), strict=True)]
            y, new = model.step(feats, caches)
            for i, stream in enumerate(group):
                stream._take_step(n, y[i], [c[i : i + 1] for c in new])
