"""Natural blinks: placed the way people blink, with human lid kinematics.

* **Rate**: a random (hazard) process at ``speaking_per_min`` while speaking and
  ``quiet_per_min`` otherwise. Bentivoglio et al. 1997 ("Analysis of blink rate
  patterns in normal subjects", Mov. Disord. 12:1028-1034) measured about 17 blinks
  a minute at rest and 26 in conversation (4.5 reading); the defaults (20 and 15)
  sit at the low end, which reads calmer on an avatar. After a blink the hazard is
  zero for ``refractory_s``.
* **Clusters**: a blink follows the end of a phrase (a pause) with probability
  ``boundary_p``, and the start of the next with ``start_p``, after a short delay: blinks concentrate at pauses
  and sentence ends (Nakano & Kitazawa 2010, "Eyeblink entrainment at breakpoints of
  speech", Exp. Brain Res. 205:577-581). A saccade of ``A`` degrees is accompanied
  by a blink with probability ``saccade_p_per_deg * (A - saccade_min_deg)`` (at most
  ``saccade_max_p``): large gaze shifts often carry a blink (Evinger et al. 1994,
  "Not looking while leaping: the linkage of blinking and saccadic gaze shifts", Exp.
  Brain Res. 100:337-344). The random hazard is the target rate minus the recent
  rate of these triggered blinks (averaged over ``balance_s``), so the total stays
  near the target while the blinks cluster where people put them.
* **Shape**: the lid closes fast and opens slowly (Evinger, Manning & Sibony 1991,
  "Eyelid movements: mechanisms and normal data", Invest. Ophthalmol. Vis. Sci.
  32:387-400: the down phase is about a third the length of the up phase): closing
  takes ``close_s`` (70-100 ms), it stays shut ``hold_s``, opening takes ``open_s``
  (170-280 ms), each drawn per blink; some blinks are incomplete (peak
  ``min_peak``..1).

Random choices come from the stream's counter-based generator, keyed by the frame, so
they do not depend on chunking or batching. The step writes the blink channels (``names``) whole (``combine = "replace"``), so a
profile can keep the original's ``custom_blink`` before it as the fallback when a
stream switches ``blinks`` off; ``combine = "max"`` keeps the input's lid values
(squints, an engine's own blinks) where they are larger.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from audio2face.postprocess.base import BindEnv, FeatureStep, StepOptions, channel_indices
from audio2face.postprocess.batch import KEY_SLOTS, Array, Batch, clip, key_state, keys_of, uniforms
from audio2face.postprocess.gaze import SACCADES
from audio2face.types import FloatArray

# State columns after the key: last onset time, recent rate of triggered blinks (per
# second), frames seen, then N_TRIGGERS scheduled onset times (inf: free), then
# N_BLINKS blinks (onset, close, hold, open, peak; peak 0: none).
_LAST, _RATE, _SEEN = KEY_SLOTS, KEY_SLOTS + 1, KEY_SLOTS + 2
N_TRIGGERS = 4
N_BLINKS = 2
_TRIG = slice(KEY_SLOTS + 3, KEY_SLOTS + 3 + N_TRIGGERS)
_BLINK = KEY_SLOTS + 3 + N_TRIGGERS
_SIZE = _BLINK + 5 * N_BLINKS


class NaturalBlinkOptions(StepOptions):
    """Options of :class:`NaturalBlink` (times in seconds)."""

    names: tuple[str, ...] = ("eyeBlinkLeft", "eyeBlinkRight")
    combine: Literal["replace", "max"] = "replace"
    speaking_per_min: float = Field(20.0, ge=0.0, le=120.0)
    quiet_per_min: float = Field(15.0, ge=0.0, le=120.0)
    refractory_s: float = Field(0.8, ge=0.0, le=10.0)
    boundary_p: float = Field(0.4, ge=0.0, le=1.0)
    start_p: float = Field(0.15, ge=0.0, le=1.0)
    boundary_delay_s: tuple[float, float] = (0.05, 0.3)
    saccade_min_deg: float = Field(10.0, ge=0.0, le=90.0)
    saccade_p_per_deg: float = Field(0.03, ge=0.0, le=1.0)
    saccade_max_p: float = Field(0.5, ge=0.0, le=1.0)
    balance_s: float = Field(30.0, gt=0.0, le=600.0)
    close_s: tuple[float, float] = (0.07, 0.10)
    hold_s: tuple[float, float] = (0.0, 0.03)
    open_s: tuple[float, float] = (0.17, 0.28)
    min_peak: float = Field(0.85, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ranges(self) -> NaturalBlinkOptions:
        for name in ("boundary_delay_s", "close_s", "hold_s", "open_s"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi <= 5.0:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high <= 5 s")
        if self.close_s[0] <= 0 or self.open_s[0] <= 0:
            raise ValueError("close_s and open_s must be longer than 0 s")
        return self


def lid_at(t: Array, blinks: Array) -> Array:
    """Lid closure at times ``t [n]`` of blinks ``[n, k, 5]`` (onset, close, hold, open,
    peak): an accelerating close with a soft stop, the hold, then a fast start and a
    long tail as lids open; the largest of the ``k`` blinks."""
    t0, close, hold, opening, peak = (blinks[..., j] for j in range(5))
    u = t[:, None] - t0
    v = clip(u / close, 0.0, 1.0)
    w = clip((u - close - hold) / opening, 0.0, 1.0)
    value = np.where(u < close, v * v * (3.0 - 2.0 * v), (1.0 - w) ** 2)
    live = (u >= 0.0) & (u < close + hold + opening)
    return (peak * value * live).max(axis=1)


class NaturalBlink(FeatureStep):
    """Human-like blinks on the lid channels."""

    type_name = "natural_blink"
    feature = "blinks"
    Options = NaturalBlinkOptions

    def __init__(self, options: NaturalBlinkOptions, input_names: Sequence[str], env: BindEnv):
        self.output_names = tuple(input_names)
        self._cols = np.array(
            channel_indices(options.names, input_names, step=self.type_name), np.intp
        )
        self.options = options
        self.fps = env.fps
        self._rates = np.array([options.quiet_per_min, options.speaking_per_min]) / 60.0
        self._a_balance = 1.0 - math.exp(-1.0 / (env.fps * options.balance_s))

    @property
    def state_size(self) -> int:
        return _SIZE

    def state_from_key(self, key: int) -> Array:
        state = key_state(key, _SIZE)
        state[_LAST] = -1e9
        state[_TRIG] = np.inf
        for j in range(N_BLINKS):  # empty slots: long past, no peak
            state[_BLINK + 5 * j : _BLINK + 5 * j + 5] = (-1e9, 1.0, 0.0, 1.0, 0.0)
        return state

    @staticmethod
    def onsets(state: FloatArray) -> list[float]:
        """Onset times (s) of the blinks a stream's state still holds (tests, benches)."""
        blinks = state[_BLINK:].reshape(N_BLINKS, 5)
        return sorted(float(b[0]) for b in blinks if b[4] > 0)

    def run_batch(self, frames: FloatArray, batch: Batch, states: Array) -> FloatArray:
        out = frames.copy()
        n = out.shape[0]
        if n == 0:
            return out
        o, p = self.options, batch.prosody
        dt = 1.0 / self.fps
        t_rows = batch.frame * dt
        # Per frame: the hazard draw, boundary chance and delay, saccade chance, and a
        # new blink's close, hold, open and peak.
        u = uniforms(keys_of(states)[batch.owner], batch.frame, 8)
        boundary = np.full(n, np.inf)
        speaking = np.zeros(n, np.intp)
        if p is not None:
            speaking = p.speaking.astype(np.intp)
            chance = np.where(p.phrase_end, o.boundary_p, np.where(p.phrase_start, o.start_p, 0.0))
            lo, hi = o.boundary_delay_s
            boundary = np.where(u[:, 1] < chance, t_rows + lo + (hi - lo) * u[:, 2], np.inf)
        after_saccade = np.zeros(n, bool)
        amp = batch.read(SACCADES)
        if amp is not None:
            chance = np.minimum(o.saccade_max_p, o.saccade_p_per_deg * (amp - o.saccade_min_deg))
            after_saccade = (amp > o.saccade_min_deg) & (u[:, 3] < chance)
        hazard = self._rates[speaking] * dt
        lid = np.empty(n)
        for sel, rows in batch.slots:
            st = states if sel is None else states[sel]
            t = t_rows[rows]
            m = st.shape[0]
            trig = st[:, _TRIG]
            # A boundary blink is scheduled in the latest (or a free) trigger slot.
            new = boundary[rows]
            slot = np.argmax(trig, axis=1)
            trig[np.arange(m), slot] = np.where(np.isfinite(new), new, trig[np.arange(m), slot])
            due_slots = trig <= t[:, None]
            due = due_slots.any(axis=1) | after_saccade[rows]
            st[:, _TRIG] = np.where(due_slots, np.inf, trig)
            ready = t - st[:, _LAST] >= o.refractory_s
            rate = hazard[rows] - st[:, _RATE] * dt
            fired = ready & (due | (u[rows, 0] < rate))
            blinks = st[:, _BLINK:].reshape(m, N_BLINKS, 5)
            if fired.any():
                which = np.flatnonzero(fired)
                ends = blinks[which, :, 0] + blinks[which, :, 1] + blinks[which, :, 2]
                free = np.argmin(ends + blinks[which, :, 3], axis=1)
                draw = u[rows[which]]
                start = np.empty((which.shape[0], 5))
                start[:, 0] = t[which]
                start[:, 1] = _between(o.close_s, draw[:, 4])
                start[:, 2] = _between(o.hold_s, draw[:, 5])
                start[:, 3] = _between(o.open_s, draw[:, 6])
                start[:, 4] = o.min_peak + (1.0 - o.min_peak) * draw[:, 7]
                blinks[which, free] = start
                st[:, _BLINK:] = blinks.reshape(m, 5 * N_BLINKS)
                st[:, _LAST] = np.where(fired, t, st[:, _LAST])
            # The moving average of an impulse train (fps per blink) is its rate; a
            # plain mean until the average has its full length.
            seen = st[:, _SEEN] + 1.0
            a = np.maximum(self._a_balance, 1.0 / seen)
            st[:, _RATE] += a * ((fired & due) * self.fps - st[:, _RATE])
            st[:, _SEEN] = seen
            lid[rows] = lid_at(t, blinks)
            if sel is not None:
                states[sel] = st
        col = lid.astype(np.float32)[:, None]
        if o.combine == "replace":
            out[:, self._cols] = col
        else:
            out[:, self._cols] = np.maximum(out[:, self._cols], col)
        return out


def _between(bounds: tuple[float, float], u: Array) -> Array:
    lo, hi = bounds
    return lo + (hi - lo) * u


def blink_rate_per_min(onsets: Sequence[float], seconds: float) -> float:
    """Blinks per minute over ``seconds`` (a helper for tests and benchmarks)."""
    return 0.0 if seconds <= 0 else 60.0 * len(onsets) / seconds
