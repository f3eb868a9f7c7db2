"""The embedded default model file: integrity check, metadata, and a thin ONNX wrapper.

The packaged ``audio2face_default.onnx`` maps log-mel features ``[B, T, n_mels]``
(see :mod:`audio2face.audio.features`) to ARKit-52 weights ``[B, T', 52]`` at the
model rate (50 Hz), with ``T' = (T - receptive_field) // stride + 1``. Output ``j``
of a window starting at feature frame ``s`` shows the face at feature frame
``s + stride * j + left_context``. The graph has dynamic batch and time axes, so a
cross-stream batcher can run ``[B, T, F]`` windows of equal length in one call.

Everything the runtime needs to use the file is in its ONNX ``metadata_props``
(:class:`ModelInfo`); the sidecar ``audio2face_default.json`` holds the file's
sha256, checked at load so a truncated or swapped file fails loudly.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from audio2face.audio.features import FeatureParams
from audio2face.engines.onnx import ModelSource, create_session
from audio2face.errors import EngineError, ModelNotFoundError
from audio2face.settings import Settings
from audio2face.types import FloatArray

__all__ = ["MODEL_FILE", "SIDECAR_FILE", "DefaultModel", "ModelInfo", "packaged_model_path"]

logger = logging.getLogger("audio2face.engines.default")

MODEL_FILE = "audio2face_default.onnx"
SIDECAR_FILE = "audio2face_default.json"
INPUT_NAME = "features"
OUTPUT_NAME = "weights"

SOURCE = ModelSource(
    display_name="default",
    file_name=MODEL_FILE,
    setting="default_model",
    env_var="AUDIO2FACE_DEFAULT_MODEL",
    cli_flag="--default-model",
)
_REINSTALL = ("reinstall audio2face (the model ships inside the package) or set "
              "AUDIO2FACE_DEFAULT_MODEL to a model file with its .json sidecar")  # fmt: skip


def packaged_model_path() -> Path:
    """Path of the ONNX file shipped in this package."""
    return Path(str(resources.files(__package__).joinpath(MODEL_FILE)))


@dataclass(frozen=True)
class ModelInfo:
    """What the ONNX metadata says about the model (all of it is required)."""

    version: str
    output_names: tuple[str, ...]
    features: FeatureParams
    model_rate: float  # outputs per second
    stride: int  # feature frames per output
    receptive_field: int  # feature frames one output sees
    left_context: int
    right_context: int
    lookahead_s: float

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> ModelInfo:
        try:
            return cls(
                version=meta["version"],
                output_names=tuple(json.loads(meta["output_names"])),
                features=FeatureParams(**json.loads(meta["features"])),
                model_rate=float(meta["model_rate"]),
                stride=int(meta["stride"]),
                receptive_field=int(meta["receptive_field"]),
                left_context=int(meta["left_context"]),
                right_context=int(meta["right_context"]),
                lookahead_s=float(meta["lookahead_s"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelNotFoundError(f"default model metadata is incomplete or invalid ({exc!r}); "
                                     f"{_REINSTALL}") from exc  # fmt: skip


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_sidecar(model_path: Path) -> dict[str, object]:
    """Check ``model_path`` against its ``.json`` sidecar's sha256; return the sidecar."""
    sidecar = model_path.with_suffix(".json")
    if not model_path.is_file():
        raise ModelNotFoundError(f"default model {str(model_path)!r} does not exist; {_REINSTALL}")
    if not sidecar.is_file():
        raise ModelNotFoundError(f"default model sidecar {str(sidecar)!r} is missing; {_REINSTALL}")
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        expected = str(data["sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(f"default model sidecar {str(sidecar)!r} is unreadable ({exc!r}); "
                                 f"{_REINSTALL}") from exc  # fmt: skip
    actual = sha256_of(model_path)
    if actual != expected:
        raise ModelNotFoundError(
            f"default model {str(model_path)!r} is corrupt or does not match its sidecar "
            f"(sha256 {actual[:12]}..., expected {expected[:12]}...); {_REINSTALL}"
        )
    return data


class DefaultModel:
    """One shared onnxruntime session plus the model's metadata.

    ``__call__`` is thread-safe (``InferenceSession.run`` is), so every stream of
    every worker thread may share one instance.
    """

    def __init__(self, session: ort.InferenceSession, info: ModelInfo, path: Path) -> None:
        self.session = session
        self.info = info
        self.path = path

    @classmethod
    def load(cls, settings: Settings | None = None, path: Path | str | None = None) -> DefaultModel:
        """Load ``path``, else ``settings.default_model``, else the packaged file.

        Raises :class:`ModelNotFoundError` (with what to do) when the file or its
        sidecar is missing, the sha256 does not match, or the metadata is invalid.
        """
        settings = settings or Settings()
        model_path = Path(path or settings.default_model or packaged_model_path()).expanduser()
        verify_sidecar(model_path)
        session = create_session(model_path, settings, SOURCE)
        meta = dict(session.get_modelmeta().custom_metadata_map)
        info = ModelInfo.from_metadata(meta)
        inputs = session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].shape[-1] != info.features.n_mels:
            raise ModelNotFoundError(f"default model {str(model_path)!r} has unexpected inputs "
                                     f"{[(i.name, i.shape) for i in inputs]}; {_REINSTALL}")  # fmt: skip
        logger.info("default model %s (version %s, look-ahead %.0f ms)", model_path,
                    info.version, info.lookahead_s * 1000)  # fmt: skip
        return cls(session, info, model_path)

    def n_outputs(self, n_frames: int) -> int:
        """Outputs produced by a window of ``n_frames`` feature frames."""
        rf = self.info.receptive_field
        return 0 if n_frames < rf else (n_frames - rf) // self.info.stride + 1

    def __call__(self, feats: FloatArray) -> FloatArray:
        """``[B, T, n_mels]`` (or ``[T, n_mels]``) features -> ``[B, T', n_out]`` weights."""
        x = np.ascontiguousarray(feats, dtype=np.float32)
        single = x.ndim == 2
        if single:
            x = x[None]
        if x.shape[1] < self.info.receptive_field:
            raise ValueError(f"need at least {self.info.receptive_field} feature frames, got {x.shape[1]}")
        try:
            (y,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: x})
        except Exception as exc:  # onnxruntime's errors have no common base class
            raise EngineError(f"default model inference failed: {exc}") from exc
        return y[0] if single else y
