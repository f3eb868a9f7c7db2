"""UniTalker ONNX model as a :class:`~audio2face.types.SegmentModel`.

The published ``unitalker_v0.4.0_base.onnx`` maps one whole audio segment to frames:

- ``audio``: float32 ``[1, N]`` at 16 kHz, normalised per segment (zero mean, unit
  variance) as Wav2Vec2's feature extractor does;
- ``emo_id``: int32 ``[1]`` (10 is neutral);
- ``time_steps``: int32 ``[1]``, the number of frames wanted;
- output 0: float32 ``[1, time_steps, 51]``, ARKit shapes without TongueOut.

It does not stream; :mod:`audio2face.engines.scheduling` wraps it in a window or
segment scheduler. The session is loaded once and shared by every stream
(``InferenceSession.run`` is thread-safe), so :meth:`UniTalkerModel.infer` blocks the
calling worker thread only, with no polling.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
import onnxruntime as ort

from audio2face.engines.onnx import ModelSource, OrtOptions, create_session
from audio2face.engines.slots import CappedSession
from audio2face.errors import ConfigError, EngineError, ModelNotFoundError
from audio2face.types import BatchObserver, FloatArray

__all__ = [
    "NORM_EPS",
    "UNITALKER_FPS",
    "UNITALKER_SAMPLE_RATE",
    "UNITALKER_SOURCE",
    "UniTalkerModel",
    "normalize_audio",
]

logger = logging.getLogger("audio2face.engines.unitalker")

UNITALKER_SAMPLE_RATE = 16_000
UNITALKER_FPS = 30.0
UNITALKER_CHANNELS = 51
NEUTRAL_EMO_ID = 10
"""UniTalker's ``emo_id`` for neutral speech."""
NORM_EPS = 1e-7
"""Variance epsilon of transformers' ``Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm``."""
MIN_INPUT_SAMPLES = 1600
"""Shorter segments are zero-padded (after normalisation) to this length: WavLM's conv
front end needs 400 samples for one feature, and 0.1 s leaves room for its padding."""

UNITALKER_SOURCE = ModelSource(
    display_name="UniTalker",
    file_name="unitalker_v0.4.0_base.onnx",
    url="https://github.com/LazyBusyYang/CatStream/releases/download/a2f_cicd_files/"
    "unitalker_v0.4.0_base.onnx",
    setting="unitalker_model",
    env_var="AUDIO2FACE_UNITALKER_MODEL",
    cli_flag="--unitalker-model",
)

# name -> (onnx element type, rank) the published model declares.
_EXPECTED_INPUTS = {
    "audio": ("tensor(float)", 2),
    "emo_id": ("tensor(int32)", 1),
    "time_steps": ("tensor(int32)", 1),
}


def normalize_audio(audio: FloatArray) -> FloatArray:
    """Zero mean, unit variance, as Wav2Vec2's feature extractor: ``(x - m) / sqrt(v + 1e-7)``.

    Statistics are computed in float64 so long segments do not lose precision.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0, dtype=np.float32)
    return ((x - x.mean()) / np.sqrt(x.var() + NORM_EPS)).astype(np.float32)


def _default_output_names() -> tuple[str, ...]:
    from audio2face.rigs import load_rig

    try:
        return load_rig("unitalker51")
    except KeyError as exc:
        raise ConfigError(
            "the 'unitalker51' rig is not installed in audio2face.rigs; "
            "pass output_names to UniTalkerModel explicitly"
        ) from exc


class UniTalkerModel:
    """The UniTalker ONNX session plus its pre-processing; one instance per process.

    ``emo_id`` is the id used when no emotion label maps to one; ``emotion_ids`` maps
    emotion labels to model ids. No mapping from the service's emotion names to
    UniTalker's ids is documented, so it is empty unless the operator passes one.
    """

    def __init__(
        self,
        session: ort.InferenceSession | CappedSession,
        *,
        output_names: Sequence[str] | None = None,
        emo_id: int = NEUTRAL_EMO_ID,
        emotion_ids: Mapping[str, int] | None = None,
    ) -> None:
        names = tuple(output_names) if output_names is not None else _default_output_names()
        if len(names) != UNITALKER_CHANNELS:
            raise ConfigError(
                f"UniTalker has {UNITALKER_CHANNELS} output channels, got {len(names)} names"
            )
        self._session = session
        self._names = names
        self._emo_id = int(emo_id)
        self._emotion_ids = MappingProxyType(dict(emotion_ids or {}))
        self._output_name, self._batch_dynamic, self._emo_dynamic = self._validate(session)

    @classmethod
    def load(
        cls,
        path: Path | str | None,
        ort_options: OrtOptions | None = None,
        *,
        workers: int = 1,
        emo_id: int = NEUTRAL_EMO_ID,
        output_names: Sequence[str] | None = None,
        emotion_ids: Mapping[str, int] | None = None,
    ) -> UniTalkerModel:
        """Load ``path`` with at most ``workers`` runs at a time. Raises
        :class:`ModelNotFoundError` with a download hint."""
        session = create_session(path, ort_options or OrtOptions(), UNITALKER_SOURCE)
        return cls(
            CappedSession(session, workers=workers, name="unitalker"),
            output_names=output_names,
            emo_id=emo_id,
            emotion_ids=emotion_ids,
        )

    # --- SegmentModel -------------------------------------------------------------
    @property
    def output_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def sample_rate(self) -> int:
        return UNITALKER_SAMPLE_RATE

    @property
    def fps(self) -> float:
        return UNITALKER_FPS

    def attach_batch_observer(self, observer: BatchObserver | None) -> None:
        """Report each inference batch (size, seconds) to ``observer``, when batched."""
        if isinstance(self._session, CappedSession):
            self._session.set_observer(observer)

    @property
    def supports_batch(self) -> bool:
        """Whether the graph takes ``[B, N]`` audio with B > 1 (the published one does not)."""
        return self._batch_dynamic

    def emo_id_for(self, emotion: str | None) -> int:
        """The model's ``emo_id`` for an emotion label; the configured id when unmapped."""
        if emotion is None:
            return self._emo_id
        return self._emotion_ids.get(emotion, self._emo_id)

    def infer(self, audio: FloatArray, n_frames: int, emotion: str | None = None) -> FloatArray:
        """Exactly ``n_frames`` frames ``[n_frames, 51]`` for one segment of 16 kHz audio."""
        return self.infer_batch([audio], n_frames, emotion)[0]

    def infer_batch(
        self, audios: Sequence[FloatArray], n_frames: int, emotion: str | None = None
    ) -> FloatArray:
        """Frames ``[B, n_frames, 51]`` for ``B`` segments of equal length.

        One run with batch ``B`` when the graph allows it, else one run per segment.
        """
        if n_frames < 0:
            raise ValueError(f"n_frames must be >= 0, got {n_frames}")
        if not audios:
            return np.zeros((0, n_frames, UNITALKER_CHANNELS), dtype=np.float32)
        lengths = {int(np.asarray(a).shape[-1]) for a in audios}
        if len(lengths) != 1:
            raise ValueError(f"infer_batch needs segments of equal length, got {sorted(lengths)}")
        if n_frames == 0:
            return np.zeros((len(audios), 0, UNITALKER_CHANNELS), dtype=np.float32)
        batch = np.stack([self._prepare(a) for a in audios])
        emo = self.emo_id_for(emotion)
        if self._batch_dynamic:
            return self._run(batch, emo, n_frames)
        return np.concatenate([self._run(row[None], emo, n_frames) for row in batch])

    # --- internals ----------------------------------------------------------------
    def _prepare(self, audio: FloatArray) -> FloatArray:
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"audio must be mono [n_samples], got shape {x.shape}")
        x = normalize_audio(x)
        if x.shape[0] < MIN_INPUT_SAMPLES:
            x = np.pad(x, (0, MIN_INPUT_SAMPLES - x.shape[0]))
        return x

    def _run(self, batch: FloatArray, emo: int, n_frames: int) -> FloatArray:
        b = batch.shape[0]
        feeds = {
            "audio": batch,
            "emo_id": np.full(b if self._emo_dynamic else 1, emo, dtype=np.int32),
            "time_steps": np.array([n_frames], dtype=np.int32),
        }
        try:
            (out,) = self._session.run([self._output_name], feeds)
        except Exception as exc:  # onnxruntime's errors have no common base class
            raise EngineError(f"UniTalker inference failed: {type(exc).__name__}: {exc}") from exc
        expected = (b, n_frames, UNITALKER_CHANNELS)
        if out.shape != expected:
            raise EngineError(f"UniTalker returned shape {out.shape}, expected {expected}")
        return np.asarray(out, dtype=np.float32)

    @staticmethod
    def _validate(session: ort.InferenceSession | CappedSession) -> tuple[str, bool, bool]:
        """Check the graph's signature once at load; return (output name, batch>1, emo [B])."""
        inputs = {i.name: i for i in session.get_inputs()}
        if set(inputs) != set(_EXPECTED_INPUTS):
            raise ModelNotFoundError(
                f"not a UniTalker model: inputs are {sorted(inputs)}, "
                f"expected {sorted(_EXPECTED_INPUTS)}"
            )
        for name, (dtype, rank) in _EXPECTED_INPUTS.items():
            arg = inputs[name]
            if arg.type != dtype or len(arg.shape) != rank:
                raise ModelNotFoundError(
                    f"not a UniTalker model: input {name!r} is {arg.type} {arg.shape}, "
                    f"expected {dtype} of rank {rank}"
                )
        outputs = session.get_outputs()
        out = outputs[0] if outputs else None
        if out is None or out.type != "tensor(float)" or len(out.shape) != 3:
            raise ModelNotFoundError(
                "not a UniTalker model: output 0 must be float32 [1, time_steps, 51]"
            )
        if isinstance(out.shape[2], int) and out.shape[2] != UNITALKER_CHANNELS:
            raise ModelNotFoundError(
                f"not a UniTalker model: output has {out.shape[2]} channels, "
                f"expected {UNITALKER_CHANNELS}"
            )
        batch_dim = inputs["audio"].shape[0]
        emo_dim = inputs["emo_id"].shape[0]
        batch_dynamic = not (isinstance(batch_dim, int) and batch_dim == 1)
        emo_dynamic = not (isinstance(emo_dim, int) and emo_dim == 1)
        return out.name, batch_dynamic, emo_dynamic
