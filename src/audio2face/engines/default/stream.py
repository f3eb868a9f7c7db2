"""Per-stream inference for the default model: features in, frames out, any chunking.

Clocks (for the shipped model: features at 100 Hz, model outputs at 50 Hz):

* feature frame ``g`` is centred on sample ``g * hop``; frames ``g < 0`` are digital
  silence (the stream is treated as if preceded by zeros), which is what training
  padded clips with;
* model output ``j`` shows the face at feature frame ``stride * j``. It needs feature
  frames ``stride*j - left_context .. stride*j + right_context``;
* engine frame ``i`` (at ``fps``) is linear interpolation between the outputs on
  either side of ``i / fps``.

Each ``push`` extracts the new feature frames, runs the model once on exactly the
feature span its new outputs need (starting on the stride grid, so every output
is computed from the same window it would be offline), and emits the frames whose
two interpolation neighbours exist. ``finish`` appends silence features and
flushes to exactly ``frames_for_samples(N, sample_rate, fps)`` frames.
"""

from __future__ import annotations

import enum
import math

import numpy as np

from audio2face.audio.features import LogMelExtractor
from audio2face.engines.default.model import DefaultModel
from audio2face.types import FloatArray, frames_for_samples

__all__ = ["DefaultEngineStream", "StreamState"]


class StreamState(enum.Enum):
    OPEN = "open"
    FINISHED = "finished"


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
        # Feature buffer; row 0 is global feature frame self._feat0 (negative = silence).
        self._feat0 = -info.left_context
        self._feats = np.full((info.left_context, info.features.n_mels), self._silence, np.float32)
        self._n_feats = 0  # real feature frames seen (global index of the next one)
        # Model outputs not yet consumed; row 0 is output index self._out0.
        self._out0 = 0
        self._outs = np.zeros((0, self._n_out), np.float32)
        self._next_frame = 0
        self._n_samples = 0
        self.state = StreamState.OPEN

    def push(self, audio: FloatArray, emotion: str | None = None) -> FloatArray:
        """Feed audio (mono float32 at 16 kHz); return the frames it completes."""
        if self.state is not StreamState.OPEN:
            raise RuntimeError("push() after finish(); call reset() to start a new stream")
        x = np.asarray(audio, np.float32).reshape(-1)
        self._n_samples += x.shape[0]
        self._add_features(self._extractor.push(self._fe_state, x))
        self._run_model(self._feat0 + self._feats.shape[0] - 1)
        return self._emit(frames_for_samples(self._n_samples, self._model.info.features.sample_rate, self._fps))

    def finish(self) -> FloatArray:
        """End of audio: pad with silence and return every remaining frame."""
        if self.state is not StreamState.OPEN:
            raise RuntimeError("finish() called twice; call reset() to start a new stream")
        self.state = StreamState.FINISHED
        info = self._model.info
        self._add_features(self._extractor.finish(self._fe_state))
        total = frames_for_samples(self._n_samples, info.features.sample_rate, self._fps)
        if total == 0:
            return np.zeros((0, self._n_out), np.float32)
        last_out = math.ceil((total - 1) * self._rate / self._fps - 1e-9)
        need = info.stride * last_out + info.right_context  # last feature frame required
        have = self._feat0 + self._feats.shape[0] - 1
        if need > have:
            pad = np.full((need - have, info.features.n_mels), self._silence, np.float32)
            self._feats = np.concatenate([self._feats, pad])
        self._run_model(max(need, have))
        return self._emit(total)

    # ------------------------------------------------------------------ internals
    def _add_features(self, rows: FloatArray) -> None:
        if rows.shape[0]:
            self._feats = np.concatenate([self._feats, rows])
            self._n_feats += rows.shape[0]

    def _run_model(self, last_feature: int) -> None:
        """Compute every output whose window ends at or before ``last_feature``."""
        info = self._model.info
        j_next = self._out0 + self._outs.shape[0]
        j_end = (last_feature - info.right_context) // info.stride + 1  # exclusive
        if j_end <= j_next:
            return
        lo = info.stride * j_next - info.left_context  # first feature of output j_next
        hi = info.stride * (j_end - 1) + info.right_context + 1
        window = self._feats[lo - self._feat0 : hi - self._feat0]
        y = self._model(window)
        self._outs = np.concatenate([self._outs, y]) if self._outs.shape[0] else y
        # Features before the next output's window are never needed again.
        keep_from = info.stride * j_end - info.left_context
        self._feats = self._feats[keep_from - self._feat0 :]
        self._feat0 = keep_from

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
