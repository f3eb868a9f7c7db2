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

from audio2face.jit import kernel
from audio2face.postprocess.base import (
    BindEnv,
    FeatureStep,
    StepContext,
    StepOptions,
    channel_indices,
)
from audio2face.postprocess.batch import KEY_SLOTS, Array, Batch, key_state
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


@kernel
def _unit(v, lo, hi):
    """``v`` from ``lo .. hi`` onto 0..1, clipped (0 when the range is empty)."""
    if hi <= lo:
        return 0.0
    return min(max((v - lo) / (hi - lo), 0.0), 1.0)


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
        arousal = np.empty(len(ctx.prosody), np.float32)
        self._estimate(batch, states, np.zeros((len(ctx.prosody), 0), np.float32), arousal)
        ctx.state = states[0]
        return arousal

    def _estimate(self, b: Batch, states: Array, frames: FloatArray, arousal: Array) -> None:
        """The arousal of each row into ``arousal``; ``frames``' movement channels
        widened by it (none when it has no columns)."""
        o, p = self.options, b.prosody
        assert p is not None
        w = o.weights
        cols = self._cols if frames.shape[1] else self._cols[:0]
        _arousal_kernel(
            states, b.counts, p.nucleus, p.rms_db, p.f0_hz, p.voiced, p.speaking, self.fps,
            self._a_short, self._a_long, self._a_smooth, o.loudness_db, o.calm_range_st,
            o.excited_range_st, o.calm_rate, o.excited_rate, w[0], w[1], w[2], o.widen,
            cols, frames, arousal,
        )  # fmt: skip

    def run_batch(self, frames: FloatArray, batch: Batch, states: Array) -> FloatArray:
        out = frames.copy()
        if batch.prosody is None or out.shape[0] == 0 or self._cols.size == 0:
            return out
        self._estimate(batch, states, out, np.empty(out.shape[0], np.float32))
        return out


@kernel
def _arousal_kernel(  # noqa: PLR0913 - a compiled kernel takes plain arrays and numbers
    states, counts, nucleus, rms_db, f0_hz, voiced, speaking, fps, a_short, a_long,
    a_smooth, loudness_db, calm_range_st, excited_range_st, calm_rate, excited_rate,
    w_loud, w_spread, w_rate, widen, cols, frames, out,
):  # fmt: skip
    """The arousal estimate of each row into ``out``, and ``frames``' columns ``cols``
    times ``1 + widen * arousal``; stream ``i``'s ``counts[i]`` rows after stream
    ``i - 1``'s, each stream's state row advanced in place."""
    total = w_loud + w_spread + w_rate
    if total == 0.0:
        total = 1.0
    row = 0
    for i in range(states.shape[0]):
        st = states[i]
        for _ in range(counts[i]):
            # The moving average of an impulse train (fps per nucleus) is its rate.
            impulse = fps if nucleus[row] > 0 else 0.0
            st[_RATE] += a_short * (impulse - st[_RATE])
            v = voiced[row]
            n_voiced = st[_VOICED] + (1.0 if v else 0.0)
            if v:
                # A plain mean until the average has its full length, so the first
                # seconds are not compared against the first syllable alone.
                warm = 1.0 / max(n_voiced, 1.0)
                lv = float(rms_db[row])
                st[_SHORT] += max(a_short, warm) * (lv - st[_SHORT])
                st[_LONG] += max(a_long, warm) * (lv - st[_LONG])
                semis = 12.0 * math.log2(max(float(f0_hz[row]), 1.0))
                mean = semis if st[_ST_MEAN] == 0.0 else st[_ST_MEAN]
                d = semis - mean
                st[_ST_MEAN] = mean + a_short * d
                st[_ST_VAR] += a_short * (d * d - st[_ST_VAR])
            st[_VOICED] = n_voiced
            target = 0.0
            if speaking[row] and n_voiced > 0:
                loud = _unit(st[_SHORT] - st[_LONG], 0.0, loudness_db)
                spread = _unit(math.sqrt(st[_ST_VAR]), calm_range_st, excited_range_st)
                rate = _unit(st[_RATE], calm_rate, excited_rate)
                target = (w_loud * loud + w_spread * spread + w_rate * rate) / total
            st[_AROUSAL] += a_smooth * (target - st[_AROUSAL])
            out[row] = st[_AROUSAL]
            gain = np.float32(1.0 + widen * out[row])
            for c in range(cols.shape[0]):
                frames[row, cols[c]] *= gain
            row += 1
