"""Tongue: ``tongueOut`` on interdental sounds (English /θ/ and /ð/, "th"), from a
small logistic classifier over the prosody tracker's spectral-shape bands.

The classifier (``data/tongue_dental.json``) is a linear model over the frame's
bands, the previous frame's bands, their difference, the frame level relative to
the recent speech level and the voicing flag. It was trained by
:mod:`audio2face.postprocess.tongue_train` on espeak-ng speech with espeak's own
phone timings; the file records how, and its held-out precision and recall. It is
weak on real voices (espeak's fricatives are synthetic), so the default ``gain`` is
modest and the output is smoothed: the tongue shows on clear "th" sounds and stays
in elsewhere. ``tongueOut = max(input, gain * ramp(p))``, where ``ramp`` maps the
probability from ``threshold``..1 onto 0..1, with ``attack_s``/``release_s``
smoothing.

Without prosody, or when the sample rate cannot carry the bands the model was
trained on, the step passes frames through (no tongue).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from audio2face.errors import ConfigError
from audio2face.postprocess.base import (
    BindEnv,
    FeatureStep,
    StepContext,
    StepOptions,
    as_float32,
    channel_indices,
    load_json_path,
)
from audio2face.types import FloatArray

if TYPE_CHECKING:
    from audio2face.audio.prosody import Prosody

BUILTIN_MODEL = "tongue_dental.json"


@dataclass(frozen=True, slots=True)
class TongueModel:
    """Standardisation and logistic weights over :func:`tongue_features`."""

    mean: FloatArray
    std: FloatArray
    weights: FloatArray
    bias: float
    n_bands: int
    meta: dict = field(default_factory=dict)

    def probability(self, features: FloatArray) -> FloatArray:
        z = (features - self.mean) / self.std
        # An elementwise product and a row sum, not a matrix product: the result of
        # each row must not depend on how many rows there are (chunking).
        logit = (z * self.weights).sum(axis=1) + self.bias
        return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)

    @classmethod
    def from_json(cls, data: dict, source: str) -> TongueModel:
        try:
            model = cls(
                mean=np.asarray(data["mean"], np.float32),
                std=np.maximum(np.asarray(data["std"], np.float32), 1e-6),
                weights=np.asarray(data["weights"], np.float32),
                bias=float(data["bias"]),
                n_bands=int(data["n_bands"]),
                meta={k: v for k, v in data.items() if k not in ("mean", "std", "weights")},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"tongue model {source}: {exc}") from exc
        size = feature_size(model.n_bands)
        if not model.mean.shape == model.std.shape == model.weights.shape == (size,):
            raise ConfigError(f"tongue model {source}: expected {size} features per frame")
        return model


def feature_size(n_bands: int) -> int:
    return 3 * n_bands + 2


def tongue_features(
    prosody: Prosody, prev_bands: FloatArray | None, level_ref: float
) -> tuple[FloatArray, FloatArray, float]:
    """Per-frame features ``[n, 3 B + 2]``; returns them, the last bands row and the
    updated speech level reference (for the next chunk)."""
    bands = prosody.bands
    n, b = bands.shape
    prev = np.empty_like(bands)
    if n:
        prev[0] = bands[0] if prev_bands is None else prev_bands
        prev[1:] = bands[:-1]
    rel = np.empty(n, np.float32)
    ref = level_ref
    for k in range(n):
        level = float(prosody.rms_db[k])
        if prosody.speaking[k]:
            ref = level if ref <= -99.0 else ref + 0.02 * (level - ref)
        rel[k] = level - (ref if ref > -99.0 else level)
    feats = np.concatenate(
        [bands, prev, bands - prev, rel[:, None], prosody.voiced[:, None].astype(np.float32)],
        axis=1,
    ).astype(np.float32)
    last = bands[-1].copy() if n else prev_bands
    return feats, last if last is not None else np.zeros(b, np.float32), ref


@cache
def builtin_model() -> TongueModel:
    text = resources.files("audio2face.postprocess").joinpath("data", BUILTIN_MODEL)
    return TongueModel.from_json(json.loads(text.read_text(encoding="utf-8")), BUILTIN_MODEL)


class TongueOptions(StepOptions):
    """Options of :class:`Tongue`."""

    name: str = "tongueOut"
    model: str | None = None  # a JSON file like the built-in one; None: built-in
    gain: float = Field(0.6, ge=0.0, le=1.0)
    threshold: float = Field(0.9, ge=0.0, lt=1.0)
    attack_s: float = Field(0.02, gt=0.0, le=1.0)
    release_s: float = Field(0.06, gt=0.0, le=1.0)


@dataclass(slots=True)
class TongueState:
    prev_bands: FloatArray | None = None
    level_ref: float = -100.0
    value: float = 0.0


class Tongue(FeatureStep):
    """``tongueOut`` from a dental-sound classifier on the voice."""

    type_name = "tongue"
    feature = "tongue"
    Options = TongueOptions

    def __init__(self, options: TongueOptions, input_names: Sequence[str], env: BindEnv):
        self.output_names = tuple(input_names)
        self._col = channel_indices([options.name], input_names, step=self.type_name)[0]
        if options.model is None:
            self.model = builtin_model()
        else:
            path, data = load_json_path(options.model, env)
            if not isinstance(data, dict):
                raise ConfigError(f"tongue model {path}: expected a JSON object")
            self.model = TongueModel.from_json(data, str(path))
        self.options = options
        dt = 1.0 / env.fps
        self._a_up = 1.0 - math.exp(-dt / options.attack_s)
        self._a_down = 1.0 - math.exp(-dt / options.release_s)

    def new_state(self, rng: np.random.Generator) -> TongueState:
        return TongueState()

    def probability(self, ctx: StepContext) -> FloatArray | None:
        """P(interdental) per frame of ``ctx.prosody`` (updates the stream's state)."""
        p, st = ctx.prosody, ctx.state
        if p is None or not p.bands_valid or p.bands.shape[1] != self.model.n_bands:
            return None
        feats, st.prev_bands, st.level_ref = tongue_features(p, st.prev_bands, st.level_ref)
        return self.model.probability(feats)

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, len(self.output_names), step=self.type_name)
        out = x.copy()
        if out.shape[0] == 0:
            return out
        p, o, st = ctx.prosody, self.options, ctx.state
        if p is not None and st.value == 0.0 and not p.speaking.any():
            # Nothing to show and no speech to classify: skip the classifier (most
            # of a listener's frames), but keep the context the next chunk needs.
            if p.bands_valid and p.bands.shape[1] == self.model.n_bands:
                st.prev_bands = p.bands[-1].copy()
            return out
        prob = self.probability(ctx)
        if prob is None or p is None:
            return out
        values = np.empty(out.shape[0], np.float32)
        v = st.value
        scale = o.gain / (1.0 - o.threshold)
        speaking = p.speaking.tolist()
        # Scalar code: a call covers a frame or two. Only during speech, frame by frame
        # (which also makes skipping silent chunks above exact: their targets are 0).
        for k, q in enumerate(prob.tolist()):
            g = min(o.gain, max(0.0, (q - o.threshold) * scale)) if speaking[k] else 0.0
            v += (self._a_up if g > v else self._a_down) * (g - v)
            if g == 0.0 and v < 1e-4:
                v = 0.0  # exactly at rest, so the silent-chunk shortcut above is exact
            values[k] = v
        st.value = v
        out[:, self._col] = np.maximum(out[:, self._col], values)
        return out
