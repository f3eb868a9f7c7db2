"""Tongue: ``tongueOut`` on dental and alveolar sounds, from a small classifier on
the voice.

ARKit has one tongue shape, ``tongueOut``. It shows fully on the interdental
fricatives (English /θ ð/, "th", where the tongue tip sits between the teeth) and a
little on the alveolars /t d n l/ (the tip on the ridge behind the upper teeth,
glimpsed between parted lips). The alveolar sibilants /s z/ are left out on purpose:
the teeth are nearly closed for them and the tongue is not seen. Nowhere else.

The classifier (``data/tongue.json``) is a 24-unit network over the prosody
tracker's spectral-shape bands: the frame's bands, the previous frame's, their
difference, the frame level relative to the recent speech level and the voicing flag.
It was trained by :mod:`audio2face.postprocess.tongue_train` on espeak-ng speech with
espeak's own phone timings; the file records how, and its held-out precision and
recall per class. It is weaker on real voices (espeak's consonants are synthetic), so
the tongue shows only from a high probability (``threshold``, ``alveolar_threshold``)
and is smoothed (``attack_s``/``release_s``): ``tongueOut = max(input, v)`` where
``v`` follows the largest ``gain_c * ramp_c(p_c)``, ``ramp`` mapping the class's
probability from its threshold..1 onto 0..1.

**Lip gate.** The tongue cannot show through closed lips, and the classifier (on
spectral shape alone) takes some /m b/ for /n d/. So the target is scaled by how far
the *incoming* frame's lips are apart (the quality benchmark's aperture: ``jawOpen -
mouthClose`` plus the lower and upper lip's opening): nothing at or below
``lips_closed`` and fully from ``lips_open``. Measured on espeak-ng speech with the
default engine, the false tongue on bilabials sat at aperture 0.01 (median) and the
true /θ ð t d n l/ frames at 0.11 or more (10th percentile). Rigs without these
channels, or ``lips_open = 0``, skip the gate.

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
from audio2face.jit import kernel
from audio2face.postprocess.base import (
    DEFAULT_STREAM_OPTIONS,
    BindEnv,
    FeatureStep,
    StepOptions,
    channel_indices,
    load_json_path,
)
from audio2face.postprocess.batch import KEY_SLOTS, Array, Batch, key_state
from audio2face.types import FloatArray

if TYPE_CHECKING:
    from audio2face.audio.prosody import Prosody

BUILTIN_MODEL = "tongue.json"
TONGUE_CLASSES = ("interdental", "alveolar")


@dataclass(frozen=True, slots=True)
class TongueModel:
    """Standardisation and a small network over :func:`tongue_features`: one tanh
    hidden layer, a softmax over "neither" and the ``classes``. (A file with a flat
    ``weights`` list and a ``bias`` is a logistic model of the interdental class, the
    first version's format.)"""

    mean: FloatArray
    std: FloatArray
    w1: FloatArray  # [features, hidden]; for a logistic model [features, 1]
    b1: FloatArray
    w2: FloatArray | None  # [hidden, 1 + classes]; None for a logistic model
    b2: FloatArray | None
    classes: tuple[str, ...]
    n_bands: int
    meta: dict = field(default_factory=dict)

    def probabilities(self, features: FloatArray) -> FloatArray:
        """``[n, len(classes)]`` probabilities of each class per frame."""
        # Rows as columns: the layer kernel runs across frames in its innermost loop,
        # where it vectorises, and sums each frame's products in the order of the
        # inputs, so a row's result does not depend on how many rows there are
        # (chunking, batching), as one matrix product's could (BLAS picks kernels by
        # shape). numpy's stacked per-row product did the same at twice the cost.
        x = np.ascontiguousarray(features, np.float32)
        z = np.empty((x.shape[1], x.shape[0]), np.float32)
        _standardized_kernel(x, self.mean, self.std, z)
        h = np.empty((self.w1.shape[1], z.shape[1]), np.float32)
        _layer_kernel(z, self.w1, self.b1, h)
        if self.w2 is None or self.b2 is None:
            return (1.0 / (1.0 + np.exp(-h))).T.astype(np.float32)
        np.tanh(h, out=h)
        logits = np.empty((self.w2.shape[1], z.shape[1]), np.float32)
        _layer_kernel(h, self.w2, self.b2, logits)
        out = np.empty((z.shape[1], logits.shape[0] - 1), np.float32)
        _softmax_kernel(logits, out)
        return out

    @classmethod
    def from_json(cls, data: dict, source: str) -> TongueModel:
        try:
            arr = lambda key: np.asarray(data[key], np.float32)  # noqa: E731
            n_bands = int(data["n_bands"])
            w2: FloatArray | None
            b2: FloatArray | None
            if "w1" in data:
                classes = tuple(str(c) for c in data["classes"])
                w1, b1, w2, b2 = arr("w1"), arr("b1"), arr("w2"), arr("b2")
            else:
                classes = ("interdental",)
                w1, b1 = arr("weights")[:, None], np.asarray([float(data["bias"])], np.float32)
                w2 = b2 = None
            model = cls(
                mean=arr("mean"),
                std=np.maximum(arr("std"), 1e-6),
                w1=w1,
                b1=b1,
                w2=w2,
                b2=b2,
                classes=classes,
                n_bands=n_bands,
                meta={k: v for k, v in data.items() if k not in _ARRAYS},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"tongue model {source}: {exc}") from exc
        size = feature_size(model.n_bands)
        hidden = model.w1.shape[1] if model.w1.ndim == 2 else -1
        shapes_ok = (
            model.mean.shape == model.std.shape == (size,)
            and model.w1.shape == (size, hidden)
            and model.b1.shape == (hidden,)
            and (
                model.w2 is None
                or (model.w2.shape == (hidden, len(classes) + 1) and model.b2 is not None
                    and model.b2.shape == (len(classes) + 1,))
            )
        )  # fmt: skip
        if not shapes_ok:
            raise ConfigError(
                f"tongue model {source}: arrays do not fit {size} features per frame and "
                f"classes {list(classes)}"
            )
        return model


_ARRAYS = ("mean", "std", "w1", "b1", "w2", "b2", "weights")


def feature_size(n_bands: int) -> int:
    return 3 * n_bands + 2


def tongue_features(
    prosody: Prosody, prev_bands: FloatArray | None, level_ref: float
) -> tuple[FloatArray, FloatArray, float]:
    """One stream's per-frame features ``[n, 3 B + 2]``; returns them, the last bands
    row and the updated speech level reference (for the next chunk)."""
    n, b = prosody.bands.shape
    state = np.zeros(_SIZE_OF(b))
    state[_REF] = level_ref
    if prev_bands is not None:
        state[_HAS_PREV] = 1.0
        state[_PREV : _PREV + b] = prev_bands
    from audio2face.postprocess.batch import Batch

    batch = Batch.of([n], [prosody.first_frame], prosody.fps, prosody, [DEFAULT_STREAM_OPTIONS])
    states = state[None, :]
    feats = batch_features(batch, states)
    last = states[0, _PREV : _PREV + b].astype(np.float32)
    return feats, last, float(states[0, _REF])


# State columns after the key: the smoothed output, the speech level reference
# (-100: none yet), whether the previous frame's bands are known, then those bands.
_VALUE, _REF, _HAS_PREV, _PREV = KEY_SLOTS, KEY_SLOTS + 1, KEY_SLOTS + 2, KEY_SLOTS + 3


@kernel
def _standardized_kernel(x, mean, std, out):
    """``out[f, r] = (x[r, f] - mean[f]) / std[f]``: standardised, rows as columns."""
    for r in range(x.shape[0]):
        for f in range(x.shape[1]):
            out[f, r] = (x[r, f] - mean[f]) / std[f]


@kernel
def _softmax_kernel(logits, out):
    """Per column ``r`` of ``logits``, the softmax's classes 1.. (class 0: "neither")."""
    for r in range(logits.shape[1]):
        top = logits[0, r]
        for c in range(1, logits.shape[0]):
            top = max(top, logits[c, r])
        total = np.float32(0.0)
        for c in range(logits.shape[0]):
            total += np.float32(math.exp(logits[c, r] - top))
        for c in range(1, logits.shape[0]):
            out[r, c - 1] = np.float32(math.exp(logits[c, r] - top)) / total


@kernel
def _layer_kernel(x, w, b, out):
    """``out[j, r] = b[j] + sum_f x[f, r] w[f, j]``, the sum in the order of ``f``: a
    dense layer over the columns of ``x``, frames innermost (that loop vectorises)."""
    n, nf = x.shape[1], w.shape[0]
    nf4 = nf - nf % 4
    for j in range(w.shape[1]):
        acc = out[j]
        for r in range(n):
            acc[r] = 0.0
        # Four inputs per pass over the frames (fewer loads and stores of ``acc``),
        # added one after the other: the same sums as one input per pass.
        for f in range(0, nf4, 4):
            w0, w1, w2, w3 = w[f, j], w[f + 1, j], w[f + 2, j], w[f + 3, j]
            x0, x1, x2, x3 = x[f], x[f + 1], x[f + 2], x[f + 3]
            for r in range(n):
                acc[r] = (((acc[r] + x0[r] * w0) + x1[r] * w1) + x2[r] * w2) + x3[r] * w3
        for f in range(nf4, nf):
            wf = w[f, j]
            xf = x[f]
            for r in range(n):
                acc[r] += xf[r] * wf
        for r in range(n):
            acc[r] += b[j]


def _SIZE_OF(n_bands: int) -> int:  # noqa: N802 - a size, like the column constants
    return _PREV + n_bands


def batch_features(b: Batch, states: Array) -> FloatArray:
    """Features ``[rows, 3 B + 2]`` of a batch's frames: the bands, the previous
    frame's, their difference, the level relative to the recent speech level, the
    voicing flag. ``states`` (level reference, last bands) advance in place."""
    p = b.prosody
    assert p is not None
    feats = np.empty((b.n_rows, feature_size(p.bands.shape[1])), np.float32)
    _features_kernel(states, b.counts, p.bands, p.rms_db, p.speaking, p.voiced, feats)
    return feats


@kernel
def _features_kernel(states, counts, bands, rms_db, speaking, voiced, feats):
    """:func:`batch_features`, stream ``i``'s ``counts[i]`` rows after stream ``i - 1``'s."""
    nb = bands.shape[1]
    row = 0
    for i in range(states.shape[0]):
        st = states[i]
        for k in range(counts[i]):
            # The previous frame's bands: this batch's, the state's, or none yet (then
            # the frame's own, so the difference is 0).
            carried = k == 0 and st[_HAS_PREV] > 0.5
            for j in range(nb):
                cur = bands[row, j]
                prev = bands[row - 1, j] if k > 0 else cur
                if carried:
                    prev = np.float32(st[_PREV + j])
                feats[row, j] = cur
                feats[row, nb + j] = prev
                feats[row, 2 * nb + j] = cur - prev
            lv = float(rms_db[row])
            ref = st[_REF]
            if speaking[row]:
                ref = lv if ref <= -99.0 else ref + 0.02 * (lv - ref)
            st[_REF] = ref
            feats[row, 3 * nb] = lv - (ref if ref > -99.0 else lv)
            feats[row, 3 * nb + 1] = 1.0 if voiced[row] else 0.0
            row += 1
        if counts[i] > 0:
            for j in range(nb):
                st[_PREV + j] = bands[row - 1, j]
            st[_HAS_PREV] = 1.0


@kernel
def _tongue_kernel(  # noqa: PLR0913 - a compiled kernel takes plain arrays and numbers
    states, counts, prob, thr, gain, speaking, frames, lips, lips_closed, lips_open,
    a_up, a_down, out, col,
):  # fmt: skip
    """``tongueOut`` per row into ``out[:, col]`` (the larger of it and what is there),
    stream ``i``'s ``counts[i]`` rows after stream ``i - 1``'s: per class, the
    probability from its threshold to 1 mapped onto 0..gain, the largest class wins (a
    frame is one sound), in speech only; times the lip gate (``lips``: the columns of
    jawOpen, mouthClose, the lower and the upper lip's two channels; empty: no gate);
    then the attack and release, each stream's value advanced in place."""
    row = 0
    for i in range(states.shape[0]):
        v = states[i, _VALUE]
        for _ in range(counts[i]):
            target = 0.0
            if speaking[row]:
                for j in range(prob.shape[1]):
                    ramp = min(max((prob[row, j] - thr[j]) / (1.0 - thr[j]), 0.0), 1.0) * gain[j]
                    target = max(target, ramp)
            if lips.shape[0]:
                f = frames[row]
                apart = (
                    min(max(f[lips[0]] - f[lips[1]], 0.0), 1.0)
                    + 0.25 * (f[lips[2]] + f[lips[3]]) + 0.125 * (f[lips[4]] + f[lips[5]])
                )  # fmt: skip
                target *= min(max((apart - lips_closed) / (lips_open - lips_closed), 0.0), 1.0)
            v = v + (a_up if target > v else a_down) * (target - v)
            if target == 0.0 and v < 1e-4:
                v = 0.0  # exactly at rest
            out[row, col] = max(out[row, col], np.float32(v))
            row += 1
        states[i, _VALUE] = v


@cache
def builtin_model() -> TongueModel:
    text = resources.files("audio2face.postprocess").joinpath("data", BUILTIN_MODEL)
    return TongueModel.from_json(json.loads(text.read_text(encoding="utf-8")), BUILTIN_MODEL)


_LIP_CHANNELS = ("jawOpen", "mouthClose", "mouthLowerDownLeft", "mouthLowerDownRight",
                 "mouthUpperUpLeft", "mouthUpperUpRight")  # fmt: skip


def _lip_columns(names: Sequence[str]) -> list[int] | None:
    """Columns of the lip-aperture channels (``_LIP_CHANNELS``, ARKit names, any case),
    or ``None`` when the rig lacks one of them."""
    index = {n.casefold(): i for i, n in enumerate(names)}
    cols: list[int] = []
    for name in _LIP_CHANNELS:
        col = index.get(name.casefold())
        if col is None:
            return None
        cols.append(col)
    return cols


class TongueOptions(StepOptions):
    """Options of :class:`Tongue`: per class, the probability from which the tongue
    shows (``threshold``) and how far it comes out at certainty (``gain``)."""

    name: str = "tongueOut"
    model: str | None = None  # a JSON file like the built-in one; None: built-in
    gain: float = Field(0.6, ge=0.0, le=1.0)  # interdental: between the teeth
    threshold: float = Field(0.9, ge=0.0, lt=1.0)
    alveolar_gain: float = Field(0.25, ge=0.0, le=1.0)  # tip on the ridge: a glimpse
    alveolar_threshold: float = Field(0.9, ge=0.0, lt=1.0)
    attack_s: float = Field(0.02, gt=0.0, le=1.0)
    release_s: float = Field(0.06, gt=0.0, le=1.0)
    lips_closed: float = Field(0.03, ge=0.0, le=1.0)  # lip gate (module doc): no tongue below
    lips_open: float = Field(0.08, ge=0.0, le=1.0)  # all of it from here; 0: no gate

    def thresholds(self) -> dict[str, float]:
        return {"interdental": self.threshold, "alveolar": self.alveolar_threshold}

    def gains(self) -> dict[str, float]:
        return {"interdental": self.gain, "alveolar": self.alveolar_gain}


class Tongue(FeatureStep):
    """``tongueOut`` from a dental and alveolar sound classifier on the voice."""

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
        self.fps = env.fps
        # Per model class: threshold and gain (classes the options do not know: off).
        thr, gain = options.thresholds(), options.gains()
        self._thr = np.array([thr.get(c, 0.5) for c in self.model.classes], np.float32)
        self._gain = np.array([gain.get(c, 0.0) for c in self.model.classes], np.float32)
        lips = _lip_columns(input_names) if options.lips_open > 0.0 else None
        self._lips = np.array(lips or [], np.intp)  # empty: no lip gate
        dt = 1.0 / env.fps
        self._a_up = 1.0 - math.exp(-dt / options.attack_s)
        self._a_down = 1.0 - math.exp(-dt / options.release_s)

    @property
    def state_size(self) -> int:
        return _SIZE_OF(self.model.n_bands)

    def state_from_key(self, key: int) -> Array:
        state = key_state(key, _SIZE_OF(self.model.n_bands))
        state[_REF] = -100.0
        return state

    def usable(self, prosody: Prosody | None) -> bool:
        """Whether ``prosody`` carries the bands the model was trained on."""
        return (
            prosody is not None
            and prosody.bands_valid
            and prosody.bands.shape[1] == self.model.n_bands
        )

    def run_batch(self, frames: FloatArray, batch: Batch, states: Array) -> FloatArray:
        out = frames.copy()
        p = batch.prosody
        if out.shape[0] == 0 or p is None or not self.usable(p):
            return out
        prob = self.model.probabilities(batch_features(batch, states))
        o = self.options
        _tongue_kernel(
            states, batch.counts, prob, self._thr, self._gain, p.speaking, out, self._lips,
            o.lips_closed, max(o.lips_open, o.lips_closed + 1e-3), self._a_up, self._a_down,
            out, self._col,
        )  # fmt: skip
        return out
