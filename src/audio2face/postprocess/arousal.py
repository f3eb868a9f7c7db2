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

import numpy as np
from pydantic import Field

from audio2face.postprocess.base import (
    BindEnv,
    FeatureStep,
    StepContext,
    StepOptions,
    channel_indices,
)
from audio2face.postprocess.batch import KEY_SLOTS, Array, Batch, clip, key_state
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


# State columns after the key: syllable rate, short and long voiced level, voiced
# frames so far, pitch mean and variance (semitones), the estimate.
_RATE, _SHORT, _LONG, _VOICED, _ST_MEAN, _ST_VAR, _AROUSAL = range(KEY_SLOTS, KEY_SLOTS + 7)
_SIZE = KEY_SLOTS + 7


def _unit(v: Array, lo: float, hi: float) -> Array:
    if hi <= lo:
        return np.zeros_like(v)
    return clip((v - lo) / (hi - lo), 0.0, 1.0)


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
        self.fps = env.fps

    @property
    def state_size(self) -> int:
        return _SIZE

    def state_from_key(self, key: int) -> Array:
        return key_state(key, _SIZE)

    def estimate(self, ctx: StepContext) -> Array:
        """The arousal of each frame of ``ctx.prosody`` for one stream (updates
        ``ctx.state``; for tests and benchmarks)."""
        if ctx.prosody is None:
            return np.zeros(0, np.float32)
        batch = Batch.of(
            [len(ctx.prosody)], [ctx.frame_index], self.fps, ctx.prosody, [ctx.options]
        )
        states = np.array(ctx.state, dtype=np.float64)[None, :]
        out = self._estimate(batch, states)
        ctx.state = states[0]
        return out

    def _estimate(self, b: Batch, states: Array) -> Array:
        o, p = self.options, b.prosody
        assert p is not None
        w = o.weights
        total = sum(w) or 1.0
        a_short, a_long = self._a_short, self._a_long
        # The moving average of an impulse train (fps per nucleus) is its rate.
        impulse = (p.nucleus > 0) * self.fps
        level = p.rms_db.astype(np.float64)
        semis = 12.0 * np.log2(np.maximum(p.f0_hz.astype(np.float64), 1.0))
        out = np.empty(b.n_rows, np.float32)
        for sel, rows in b.slots:
            st = states if sel is None else states[sel]
            st[:, _RATE] += a_short * (impulse[rows] - st[:, _RATE])
            v = p.voiced[rows]
            voiced = st[:, _VOICED] + v
            # A plain mean until the average has its full length, so the first
            # seconds are not compared against the first syllable alone.
            warm = 1.0 / np.maximum(voiced, 1.0)
            lv = level[rows]
            short = st[:, _SHORT] + np.maximum(a_short, warm) * (lv - st[:, _SHORT])
            long = st[:, _LONG] + np.maximum(a_long, warm) * (lv - st[:, _LONG])
            sm = semis[rows]
            mean = np.where(st[:, _ST_MEAN] == 0.0, sm, st[:, _ST_MEAN])
            d = sm - mean
            st[:, _SHORT] = np.where(v, short, st[:, _SHORT])
            st[:, _LONG] = np.where(v, long, st[:, _LONG])
            st[:, _ST_MEAN] = np.where(v, mean + a_short * d, st[:, _ST_MEAN])
            st[:, _ST_VAR] = np.where(
                v, st[:, _ST_VAR] + a_short * (d * d - st[:, _ST_VAR]), st[:, _ST_VAR]
            )
            st[:, _VOICED] = voiced
            loud = _unit(st[:, _SHORT] - st[:, _LONG], 0.0, o.loudness_db)
            spread = _unit(np.sqrt(st[:, _ST_VAR]), o.calm_range_st, o.excited_range_st)
            rate = _unit(st[:, _RATE], o.calm_rate, o.excited_rate)
            target = (w[0] * loud + w[1] * spread + w[2] * rate) / total
            target = np.where(p.speaking[rows] & (voiced > 0), target, 0.0)
            st[:, _AROUSAL] += self._a_smooth * (target - st[:, _AROUSAL])
            out[rows] = st[:, _AROUSAL]
            if sel is not None:
                states[sel] = st
        return out

    def run_batch(self, frames: FloatArray, batch: Batch, states: Array) -> FloatArray:
        out = frames.copy()
        if batch.prosody is None or out.shape[0] == 0 or self._cols.size == 0:
            return out
        gain = 1.0 + self.options.widen * self._estimate(batch, states)
        out[:, self._cols] = out[:, self._cols] * gain[:, None]
        return out
