"""The embedded default engine: our own small speech-to-ARKit model, shipped in the package.

``load_default_engine()`` needs nothing downloaded: it loads
``audio2face_default.onnx`` and its streaming graph ``audio2face_default_stream.onnx``
from this package (or a given path and the file next to it), checks
both sha256 against the sidecar, and returns a :class:`DefaultEngine`. Each stream
gets a :class:`DefaultEngineStream` (log-mel state, per-layer caches, output
buffer); all streams share one onnxruntime session, and streams pushed together
(:meth:`DefaultEngineStream.push_many`) share its runs.

How the model was made: ``training/README.md``; what it is good for and its
limits: ``docs/model-card.md``.
"""

from __future__ import annotations

from pathlib import Path

from audio2face.engines.default.model import (
    MODEL_FILE,
    SIDECAR_FILE,
    DefaultModel,
    ModelInfo,
    packaged_model_path,
)
from audio2face.engines.default.stream import DefaultEngineStream
from audio2face.engines.onnx import OrtOptions
from audio2face.types import BatchObserver, EngineCapabilities

__all__ = [
    "DEFAULT_FPS",
    "MODEL_FILE",
    "SIDECAR_FILE",
    "DefaultEngine",
    "DefaultEngineStream",
    "DefaultModel",
    "ModelInfo",
    "load_default_engine",
    "packaged_model_path",
]

DEFAULT_FPS = 30.0


class DefaultEngine:
    """:class:`~audio2face.types.Engine` over a shared :class:`DefaultModel`.

    ``fps`` is the output frame rate (the model runs at its own rate and frames are
    interpolated), so any rate works; 30 is what the ARKit profiles use.
    """

    name = "default"
    capabilities = EngineCapabilities(batched_push=True, reports_batches=True, any_fps=True)

    def __init__(self, model: DefaultModel, fps: float = DEFAULT_FPS) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.model = model
        self._fps = float(fps)

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.model.info.output_names

    @property
    def sample_rate(self) -> int:
        return self.model.info.features.sample_rate

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def lookahead_s(self) -> float:
        """Audio past a frame's time needed to emit it: network right context, half
        the STFT window and one model step for interpolation (from the metadata)."""
        return self.model.info.lookahead_s

    def attach_batch_observer(self, observer: BatchObserver | None) -> None:
        """Report each inference batch (size, seconds) to ``observer`` (runtime metrics)."""
        self.model.attach_batch_observer(observer)

    def open_stream(self, fps: float | None = None) -> DefaultEngineStream:
        """A new stream; frames are interpolated from the model's rate, so any ``fps`` works."""
        return DefaultEngineStream(self.model, self._fps if fps is None else fps)


def load_default_engine(
    path: Path | str | None = None,
    ort_options: OrtOptions | None = None,
    *,
    workers: int = 1,
    fps: float = DEFAULT_FPS,
) -> DefaultEngine:
    """The default engine from ``path`` or the packaged file, with at most ``workers``
    model runs at a time.

    Raises :class:`~audio2face.errors.ModelNotFoundError` with what to do when the
    model or its sidecar is missing or does not match.
    """
    return DefaultEngine(DefaultModel.load(path, ort_options, workers=workers), fps=fps)
