"""Arousal from the voice: an *estimate* of how excited the speech sounds, from its
loudness, pitch range and syllable rate, used to widen mouth and brow movement.

This is not emotion recognition: it cannot tell joy from anger, only animated from
calm delivery, and only relative to the same stream's recent speech. Per frame, while
speaking:

* loudness: the voiced level over ``short_s`` against its mean over ``long_s``
  (+``loudness_db`` above the speaker's usual level counts fully);
* pitch range: the spread of F0 in semitones over ``short_s`` (calm speech spreads
  about ``calm_range_st``; ``excited_range_st`` counts fully);
* rate: syllable nuclei per second over ``short_s`` (``calm_rate``..``excited_rate``).

Each cue is mapped to [0, 1], they are averaged with ``weights`` and smoothed over
``smoothing_s``; in pauses the estimate decays. Movement channels (``names``) are
multiplied by ``1 + widen * arousal``, so calm speech is left as the model made it.
Without prosody the step passes frames through.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from audio2face.postprocess.base import (
    BindEnv,
    FeatureStep,
    StepContext,
    StepOptions,
    as_float32,
    channel_indices,
)
from audio2face.types import FloatArray

DEFAULT_PREFIXES = ("jaw", "mouth", "brow")
SKIP = ("mouthClose",)  # lip closure is a contact, not an excursion to widen


class ArousalOptions(StepOptions):
    """Options of :class:`Arousal`."""

    widen: float = Field(0.3, ge=0.0, le=2.0)
    names: tuple[str, ...] | None = None  # default: jaw*, mouth*, brow* except mouthClose
    short_s: float = Field(2.0, gt=0.1, le=30.0)
    long_s: float = Field(20.0, gt=1.0, le=600.0)
    smoothing_s: float = Field(0.5, gt=0.0, le=10.0)
    loudness_db: float = Field(6.0, gt=0.0, le=40.0)
    calm_range_st: float = Field(2.0, ge=0.0, le=24.0)
    excited_range_st: float = Field(5.0, gt=0.0, le=24.0)
    calm_rate: float = Field(3.5, ge=0.0, le=20.0)
    excited_rate: float = Field(6.0, gt=0.0, le=20.0)
    weights: tuple[float, float, float] = (0.4, 0.35, 0.25)  # loudness, pitch range, rate


@dataclass(slots=True)
class ArousalState:
    """Running statistics of one stream."""

    level_short: float = 0.0
    level_long: float = 0.0
    seen: bool = False
    voiced: int = 0
    st_mean: float = 0.0
    st_var: float = 0.0
    rate: float = 0.0
    arousal: float = 0.0


def _unit(v: float, lo: float, hi: float) -> float:
    return 0.0 if hi <= lo else min(1.0, max(0.0, (v - lo) / (hi - lo)))


class Arousal(FeatureStep):
    """Multiply movement channels by ``1 + widen * arousal(t)``."""

    type_name = "arousal"
    feature = "arousal"
    Options = ArousalOptions

    def __init__(self, options: ArousalOptions, input_names: Sequence[str], env: BindEnv):
        self.output_names = tuple(input_names)
        names = options.names
        if names is None:
            names = tuple(
                n for n in input_names if n.startswith(DEFAULT_PREFIXES) and n not in SKIP
            )
        self._cols = np.array(channel_indices(names, input_names, step=self.type_name), np.intp)
        self.options = options
        dt = 1.0 / env.fps
        self._a_short = 1.0 - math.exp(-dt / options.short_s)
        self._a_long = 1.0 - math.exp(-dt / options.long_s)
        self._a_smooth = 1.0 - math.exp(-dt / options.smoothing_s)
        self._fps = env.fps

    def new_state(self, rng: np.random.Generator) -> ArousalState:
        return ArousalState()

    def estimate(self, ctx: StepContext) -> FloatArray:
        """The arousal of each frame of ``ctx.prosody`` (updates the stream's state)."""
        o, st, p = self.options, ctx.state, ctx.prosody
        if p is None:
            return np.zeros(0, np.float32)
        n = len(p)
        out = np.empty(n, np.float32)
        w = o.weights
        total = sum(w) or 1.0
        for k in range(n):
            # The moving average of an impulse train (fps per nucleus) is its rate.
            impulse = self._fps if p.nucleus[k] > 0 else 0.0
            st.rate += self._a_short * (impulse - st.rate)
            target = 0.0
            if p.voiced[k]:
                level = float(p.rms_db[k])
                st.voiced += 1
                st.seen = True
                # A plain mean until the average has its full length, so the first
                # seconds are not compared against the first syllable alone.
                warm = 1.0 / st.voiced
                st.level_short += max(self._a_short, warm) * (level - st.level_short)
                st.level_long += max(self._a_long, warm) * (level - st.level_long)
                semis = 12.0 * math.log2(max(float(p.f0_hz[k]), 1.0))
                if st.st_mean == 0.0:
                    st.st_mean = semis
                d = semis - st.st_mean
                st.st_mean += self._a_short * d
                st.st_var += self._a_short * (d * d - st.st_var)
            if p.speaking[k] and st.seen:
                loud = _unit(st.level_short - st.level_long, 0.0, o.loudness_db)
                spread = _unit(math.sqrt(st.st_var), o.calm_range_st, o.excited_range_st)
                rate = _unit(st.rate, o.calm_rate, o.excited_rate)
                target = (w[0] * loud + w[1] * spread + w[2] * rate) / total
            st.arousal += self._a_smooth * (target - st.arousal)
            out[k] = st.arousal
        return out

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, len(self.output_names), step=self.type_name)
        out = x.copy()
        if ctx.prosody is None or out.shape[0] == 0 or self._cols.size == 0:
            return out
        gain = 1.0 + self.options.widen * self.estimate(ctx)
        out[:, self._cols] = out[:, self._cols] * gain[:, None]
        return out
