"""The embedded default model files: integrity check, metadata, and a thin ONNX wrapper.

Two graphs of the same trained weights ship in this package:

* ``audio2face_default.onnx``, the full-window graph: log-mel features
  ``[B, T, n_mels]`` (see :mod:`audio2face.audio.features`) to ARKit-52 weights
  ``[B, T', 52]`` at the model rate (50 Hz), ``T' = (T - receptive_field) // stride + 1``;
  output ``j`` of a window starting at feature frame ``s`` shows the face at feature
  frame ``s + stride * j + left_context``. It is the reference (what training exported
  and verified against torch, and what the model card's sha256 names); the runtime only
  loads it when :meth:`DefaultModel.__call__` is used.
* ``audio2face_default_stream.onnx``, the streaming step the engine runs: ``n`` new
  feature frames (``n`` even) plus one cache per convolution ``[B, C, frames]`` to
  ``n / 2`` new outputs plus the updated caches. Every push computes only its new
  outputs instead of re-running the 660 ms receptive field. All inputs and outputs
  have a dynamic batch axis, so streams pushed together
  (:meth:`~audio2face.engines.default.stream.DefaultEngineStream.push_many`) share one run.

Everything the runtime needs is in the streaming graph's ONNX ``metadata_props``
(:class:`ModelInfo`); the sidecar ``audio2face_default.json`` holds both files' sha256,
checked at load so a truncated or swapped file fails loudly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from audio2face.audio.features import FeatureParams
from audio2face.engines.onnx import ModelSource, OrtOptions, create_session
from audio2face.engines.slots import CappedSession, OrtLikeSession
from audio2face.errors import EngineError, ModelNotFoundError
from audio2face.types import BatchObserver, FloatArray

__all__ = [
    "MODEL_FILE",
    "SIDECAR_FILE",
    "DefaultModel",
    "ModelInfo",
    "packaged_model_path",
    "silence_caches",
]

logger = logging.getLogger("audio2face.engines.default")

MODEL_FILE = "audio2face_default.onnx"
SIDECAR_FILE = "audio2face_default.json"
INPUT_NAME = "features"
OUTPUT_NAME = "weights"
STREAM_SUFFIX = "_stream.onnx"  # the streaming graph sits next to the full-window one
NEW_CACHE_PREFIX = "new_"  # output ``new_<cache>`` is the next value of input ``<cache>``

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
    stream_lead: int  # silence frames a stream's feature buffer starts with (stride phase)
    stream_preroll: int  # outputs of a fresh stream's first step that precede output 0

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
                stream_lead=int(meta["stream_lead_frames"]),
                stream_preroll=int(meta["stream_preroll_outputs"]),
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


def _check_sha256(path: Path, expected: str) -> None:
    if not path.is_file():
        raise ModelNotFoundError(f"default model {str(path)!r} does not exist; {_REINSTALL}")
    actual = sha256_of(path)
    if actual != expected:
        raise ModelNotFoundError(
            f"default model {str(path)!r} is corrupt or does not match its sidecar "
            f"(sha256 {actual[:12]}..., expected {expected[:12]}...); {_REINSTALL}"
        )


def verify_sidecar(model_path: Path) -> dict[str, object]:
    """Check ``model_path`` and its streaming graph against the ``.json`` sidecar's
    sha256s; return the sidecar."""
    sidecar = model_path.with_suffix(".json")
    if not model_path.is_file():
        raise ModelNotFoundError(f"default model {str(model_path)!r} does not exist; {_REINSTALL}")
    if not sidecar.is_file():
        raise ModelNotFoundError(f"default model sidecar {str(sidecar)!r} is missing; {_REINSTALL}")
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        expected = str(data["sha256"])
        stream = data["stream"]
        stream_file, stream_sha = str(stream["file"]), str(stream["sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(
            f"default model sidecar {str(sidecar)!r} is unreadable or names no streaming graph "
            f"({exc!r}; export both with python -m training.export); {_REINSTALL}"
        ) from exc
    _check_sha256(model_path, expected)
    _check_sha256(model_path.with_name(Path(stream_file).name), stream_sha)
    return data


def silence_caches(session: OrtLikeSession) -> list[FloatArray]:
    """Caches ``[1, C, frames]`` of a stream that so far heard only digital silence.

    Runs the step once on zero caches and ``2 * receptive_field`` silence frames: the
    caches after a step depend only on its last ``receptive_field`` input frames, so
    the zeros are flushed and what is left is the "preceded by silence" state that
    the offline graph sees (it pads clips with the silence feature).
    """
    inputs = session.get_inputs()
    meta = dict(session.get_modelmeta().custom_metadata_map)  # type: ignore[attr-defined]  # OrtLikeSession omits it; a real session has it
    n_mels = int(inputs[0].shape[-1])
    n = 2 * int(meta["receptive_field"])
    silence = np.float32(np.log(json.loads(meta["features"])["eps"]))
    feeds = {inputs[0].name: np.full((1, n, n_mels), silence, np.float32)}
    feeds |= {i.name: np.zeros((1, *i.shape[1:]), np.float32) for i in inputs[1:]}
    _, *caches = session.run(None, feeds)
    return [np.ascontiguousarray(c, dtype=np.float32) for c in caches]


class DefaultModel:
    """The shared streaming session, its initial caches and the model's metadata.

    :meth:`step` is thread-safe (``InferenceSession.run`` and :class:`CappedSession`
    are), so every stream of every thread shares one instance; each stream keeps its
    own caches. Batches are formed by the caller (``DefaultEngineStream.push_many``).
    """

    def __init__(self, session: OrtLikeSession, info: ModelInfo, path: Path,
                 initial_caches: Sequence[FloatArray], ort_options: OrtOptions | None = None) -> None:  # fmt: skip
        self.session = session
        self.info = info
        self.path = path
        self.initial_caches = tuple(initial_caches)
        self._cache_names = tuple(i.name for i in session.get_inputs()[1:])
        self._output_names = [OUTPUT_NAME] + [NEW_CACHE_PREFIX + n for n in self._cache_names]
        self._ort_options = ort_options or OrtOptions()
        self._window: ort.InferenceSession | None = None
        self._window_lock = threading.Lock()

    @classmethod
    def load(
        cls, path: Path | str | None = None, ort_options: OrtOptions | None = None, *, workers: int = 1
    ) -> DefaultModel:
        """Load ``path``, else the packaged file (with the streaming graph next to it),
        with at most ``workers`` model runs at a time.

        Raises :class:`ModelNotFoundError` (with what to do) when a file or the
        sidecar is missing, a sha256 does not match, or the metadata is invalid.
        """
        ort_options = ort_options or OrtOptions()
        model_path = Path(path or packaged_model_path()).expanduser()
        sidecar = verify_sidecar(model_path)
        stream_path = model_path.with_name(Path(str(sidecar["stream"]["file"])).name)  # type: ignore[index]  # verify_sidecar checked the shape
        raw = create_session(stream_path, ort_options, SOURCE)
        info = ModelInfo.from_metadata(dict(raw.get_modelmeta().custom_metadata_map))
        inputs, outputs = raw.get_inputs(), [o.name for o in raw.get_outputs()]
        if (inputs[0].name != INPUT_NAME or inputs[0].shape[-1] != info.features.n_mels
                or outputs != [OUTPUT_NAME] + [NEW_CACHE_PREFIX + i.name for i in inputs[1:]]):  # fmt: skip
            raise ModelNotFoundError(f"default model {str(stream_path)!r} has unexpected inputs or outputs "
                                     f"{[(i.name, i.shape) for i in inputs]} -> {outputs}; {_REINSTALL}")  # fmt: skip
        initial = silence_caches(raw)  # a one-off run at load, outside the metrics
        logger.info("default model %s (version %s, look-ahead %.0f ms)", model_path,
                    info.version, info.lookahead_s * 1000)  # fmt: skip
        session = CappedSession(raw, workers=workers, name="default")
        return cls(session, info, model_path, initial, ort_options)

    def attach_batch_observer(self, observer: BatchObserver | None) -> None:
        """Report each model run (batch size, seconds) to ``observer``."""
        if isinstance(self.session, CappedSession):
            self.session.set_observer(observer)

    def step(self, feats: FloatArray, caches: Sequence[FloatArray]) -> tuple[FloatArray, list[FloatArray]]:
        """Streaming step of ``B`` streams at once: ``[B, n, n_mels]`` new features
        (``n`` even, the same for all) and their caches (``[B, C, frames]`` each, the
        streams' own caches concatenated) -> ``[B, n / 2, n_out]`` outputs and the new
        caches, in the same layout."""
        feeds = {INPUT_NAME: np.ascontiguousarray(feats, dtype=np.float32)}
        feeds.update(zip(self._cache_names, caches, strict=True))
        try:
            y, *new = self.session.run(self._output_names, feeds)
        except Exception as exc:  # onnxruntime's errors have no common base class
            raise EngineError(f"default model inference failed: {exc}") from exc
        return y, new

    def __call__(self, feats: FloatArray) -> FloatArray:
        """The full-window graph (the reference; loaded on first use):
        ``[B, T, n_mels]`` (or ``[T, n_mels]``) features -> ``[B, T', n_out]`` weights."""
        x = np.ascontiguousarray(feats, dtype=np.float32)
        single = x.ndim == 2
        if single:
            x = x[None]
        if x.shape[1] < self.info.receptive_field:
            raise ValueError(f"need at least {self.info.receptive_field} feature frames, got {x.shape[1]}")
        with self._window_lock:
            if self._window is None:
                self._window = create_session(self.path, self._ort_options, SOURCE)
        try:
            (y,) = self._window.run([OUTPUT_NAME], {INPUT_NAME: x})
        except Exception as exc:  # onnxruntime's errors have no common base class
            raise EngineError(f"default model inference failed: {exc}") from exc
        return y[0] if single else y
