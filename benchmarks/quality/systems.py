"""Systems under test: name -> callable(audio, sr, fps, phones=None) -> ARKit-52 frames.

A system returns ``frames_for_samples(len(audio), sr, fps)`` frames with the columns
of :data:`audio2face.rigs.ARKIT_52`, or ``None`` when it cannot run on a clip (the
oracle needs phone timings). Add a system by adding an entry to :data:`SYSTEMS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from audio2face.engines.phonemes.synth import default_synthesizer
from audio2face.rigs import ARKIT_52
from audio2face.types import FloatArray, frames_for_samples

Phone = tuple[float, float, str]
System = Callable[..., FloatArray | None]
"""``system(audio, sr, fps, phones=None) -> frames [n, 52] | None``."""


class SystemUnavailableError(RuntimeError):
    """The system cannot be built here (e.g. the default model is not trained yet)."""


def energy(audio: npt.NDArray[np.floating], sr: int, fps: float,
           phones: Sequence[Phone] | None = None) -> FloatArray:
    """Baseline: jawOpen = RMS (50 ms windows) / P95 RMS of the clip, clipped to [0, 1]."""
    n = frames_for_samples(len(audio), sr, fps)
    x = np.asarray(audio, np.float64)
    cs = np.concatenate([[0.0], np.cumsum(x * x)])
    half = max(1, int(0.025 * sr))
    c = np.round(np.arange(n) / fps * sr).astype(np.int64)
    lo, hi = np.clip(c - half, 0, x.size), np.clip(c + half, 0, x.size)
    rms = np.sqrt((cs[hi] - cs[lo]) / np.maximum(hi - lo, 1))
    ref = float(np.percentile(rms, 95)) if n else 0.0
    out = np.zeros((n, len(ARKIT_52)), np.float32)
    if ref > 0:
        out[:, ARKIT_52.index("jawOpen")] = np.clip(rms / ref, 0.0, 1.0)
    return out


def oracle(audio: npt.NDArray[np.floating], sr: int, fps: float,
           phones: Sequence[Phone] | None = None) -> FloatArray | None:
    """Upper reference: the coarticulation synthesiser driven by the true phones."""
    if phones is None:
        return None
    return default_synthesizer().frames(list(phones), frames_for_samples(len(audio), sr, fps), fps)


def _engine_system(engine: object) -> System:
    """Wrap an :class:`~audio2face.types.Engine`: stream 100 ms chunks, map names, resample."""

    def run(audio: npt.NDArray[np.floating], sr: int, fps: float,
            phones: Sequence[Phone] | None = None) -> FloatArray:
        x = np.asarray(audio, np.float32)
        esr = int(engine.sample_rate)  # type: ignore[attr-defined]
        if esr != sr:
            import soxr

            x = soxr.resample(x, sr, esr).astype(np.float32)
        stream = engine.open_stream()  # type: ignore[attr-defined]
        hop = esr // 10
        parts = [stream.push(x[i : i + hop]) for i in range(0, len(x), hop)]
        parts.append(stream.finish())
        raw = np.concatenate(parts, axis=0)
        names = list(engine.output_names)  # type: ignore[attr-defined]
        efps = float(engine.fps)  # type: ignore[attr-defined]
        n = frames_for_samples(len(audio), sr, fps)
        t_src = np.arange(raw.shape[0]) / efps
        t_dst = np.arange(n) / fps
        out = np.zeros((n, len(ARKIT_52)), np.float32)
        for j, name in enumerate(ARKIT_52):
            if name in names and raw.shape[0]:
                out[:, j] = np.interp(t_dst, t_src, raw[:, names.index(name)])
        return out

    return run


def default_model() -> System:
    """The embedded default model engine, or the model file ``AUDIO2FACE_DEFAULT_MODEL``
    names (the recipe compares a previous release that way); raises
    SystemUnavailableError if absent."""
    try:
        from audio2face.engines.default import load_default_engine  # type: ignore[attr-defined]

        engine = load_default_engine(os.environ.get("AUDIO2FACE_DEFAULT_MODEL") or None)
    except Exception as exc:  # any failure means "not available here", reported by name
        raise SystemUnavailableError(f"default engine unavailable: {exc!r}") from exc
    return _engine_system(engine)


SYSTEMS: dict[str, Callable[[], System]] = {
    "energy": lambda: energy,
    "oracle": lambda: oracle,
    "default": default_model,
}
"""Factories, so that loading a model happens only when the system is asked for."""
