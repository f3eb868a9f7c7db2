"""The composition root of the engines: build each engine from :class:`Settings`.

Nothing under ``engines/`` or ``streaming/`` reads settings: engines and schedulers
take small frozen option objects (:class:`OrtOptions`, :class:`WindowOptions`,
:class:`SilenceOptions`), built here. The server's process start
(:func:`load_checked`) and the runtime load engines through this module, so the
transports never touch an engine's construction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from audio2face.engines.onnx import OrtOptions
from audio2face.errors import Audio2FaceError
from audio2face.settings import Settings
from audio2face.streaming.segmenter import SilenceOptions
from audio2face.streaming.window import WindowOptions
from audio2face.types import Engine

__all__ = [
    "load_checked",
    "load_engines",
    "load_unitalker_engine",
    "ort_options",
    "silence_options",
    "try_load_engines",
    "unitalker_model_path",
    "window_options",
]

logger = logging.getLogger("audio2face.engines")

WEIGHTS_FILE = Path("weights") / "unitalker_v0.4.0_base.onnx"
"""Where the original service's quick start put UniTalker (``-v $PWD/weights:...``)."""
UNITALKER_HINT = (
    "download unitalker_v0.4.0_base.onnx and put it in weights/ or point "
    "AUDIO2FACE_UNITALKER_MODEL (or `--unitalker-model PATH`) at it"
)


def ort_options(settings: Settings, *, intra_op_threads: int | None = None) -> OrtOptions:
    return OrtOptions(
        providers=settings.providers,
        intra_op_threads=intra_op_threads or settings.intra_op_threads,
        inter_op_threads=settings.inter_op_threads,
    )


def window_options(settings: Settings) -> WindowOptions:
    return WindowOptions(
        left_context_s=settings.window_left_context_s,
        hop_s=settings.window_hop_s,
        lookahead_s=settings.window_lookahead_s,
        crossfade_s=settings.window_crossfade_s,
    )


def silence_options(settings: Settings) -> SilenceOptions:
    return SilenceOptions(
        window_s=settings.silence_window_s,
        hop_s=settings.silence_hop_s,
        threshold=settings.silence_threshold,
        min_interval_s=settings.silence_min_interval_s,
        max_segment_s=settings.max_segment_s,
    )


def unitalker_model_path(settings: Settings) -> Path | None:
    """``unitalker_model`` if set; else ``weights/unitalker_v0.4.0_base.onnx`` under
    ``weights_dir``'s parent (the original's mount point) when that file exists."""
    if settings.unitalker_model is not None:
        return settings.unitalker_model
    candidate = settings.weights_dir / WEIGHTS_FILE.name
    return candidate if candidate.is_file() else None


def load_unitalker_engine(settings: Settings, path: Path | None = None) -> Engine:
    """UniTalker from ``path`` (else :func:`unitalker_model_path`) behind the scheduler
    that ``unitalker_mode`` picks (``auto`` is ``window``)."""
    from audio2face.engines.scheduling import ScheduledEngine
    from audio2face.engines.unitalker import UniTalkerModel

    model = UniTalkerModel.load(
        path or unitalker_model_path(settings),
        ort_options(settings),
        workers=settings.inference_workers,
        emo_id=settings.unitalker_emo_id,
    )
    schedule = (
        silence_options(settings) if settings.unitalker_mode == "segment" else window_options(settings)
    )
    return ScheduledEngine(
        "unitalker", model, schedule, attach_observer=model.attach_batch_observer
    )


def _loaders(settings: Settings) -> dict[str, Callable[[], Engine]]:
    """How to load each engine the settings ask for, by name."""
    from audio2face.engines.default import load_default_engine
    from audio2face.engines.phonemes import PhonemeEngine

    loaders: dict[str, Callable[[], Engine]] = {
        "default": lambda: load_default_engine(
            settings.default_model,
            ort_options(settings, intra_op_threads=settings.default_model_threads),
            workers=settings.inference_workers,
        ),
        "phonemes": PhonemeEngine,
    }
    unitalker = unitalker_model_path(settings)
    if unitalker is not None:
        if settings.unitalker_model is None:
            logger.info("found %s: enabling the unitalker engine", unitalker)
        loaders["unitalker"] = lambda: load_unitalker_engine(settings, unitalker)
    return loaders


def try_load_engines(settings: Settings) -> tuple[dict[str, Engine], dict[str, str]]:
    """Each engine the settings ask for, loaded on its own, so one that fails (a missing
    UniTalker file) does not hide the others: ``(loaded, {name: why not})``. An engine
    that is not configured at all is listed with what to do to get it."""
    engines: dict[str, Engine] = {}
    errors: dict[str, str] = {}
    for name, load in _loaders(settings).items():
        try:
            engines[name] = load()
        except (Audio2FaceError, ValueError, OSError) as exc:
            errors[name] = " ".join((str(exc) or type(exc).__name__).split())
    if "unitalker" not in engines and "unitalker" not in errors:
        errors["unitalker"] = f"no model configured; {UNITALKER_HINT}"
    return engines, errors


def load_engines(settings: Settings) -> dict[str, Engine]:
    """The embedded default engine and the phonemes engine, plus UniTalker when a model
    is configured or mounted (:func:`unitalker_model_path`).

    A configured UniTalker model that cannot be loaded is an error (the operator asked
    for it); the default model ships with the package and must always load.
    """
    return {name: load() for name, load in _loaders(settings).items()}


def load_checked(settings: Settings, engines: Mapping[str, Engine] | None) -> dict[str, Engine]:
    """Load the engines (unless given) and check the profiles now, so that their
    errors come out as one :class:`~audio2face.errors.ConfigError` line at start-up
    instead of a failed lifespan's traceback."""
    from audio2face.profiles import ProfileRegistry

    loaded = dict(engines) if engines is not None else load_engines(settings)
    ProfileRegistry(
        engines=loaded.keys(),
        profile_dir=settings.profile_dir,
        default_profile=settings.default_profile,
    )
    return loaded
