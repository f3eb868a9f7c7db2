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

from audio2face.jit import kernel
from audio2face.postprocess.base import BindEnv, FeatureStep, StepOptions, channel_indices
from audio2face.postprocess.batch import KEY_SLOTS, Array, Batch, key_of, key_state, uniform
from audio2face.postprocess.gaze import SACCADES
from audio2face.types import FloatArray

# State columns after the key: last onset time, recent rate of triggered blinks (per
# second), frames seen, then N_TRIGGERS scheduled onset times (inf: free), then
# N_BLINKS blinks (onset, close, hold, open, peak; peak 0: none).
_LAST, _RATE, _SEEN = KEY_SLOTS, KEY_SLOTS + 1, KEY_SLOTS + 2
N_TRIGGERS = 4
N_BLINKS = 2
_TRIG0 = KEY_SLOTS + 3
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
        state[_TRIG0 : _TRIG0 + N_TRIGGERS] = np.inf
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
        none = np.zeros(0, bool)
        amp = batch.read(SACCADES)
        lid = np.empty(n)
        _blink_kernel(
            states, batch.counts, batch.first, self.fps, p is not None,
            none if p is None else p.speaking, none if p is None else p.phrase_start,
            none if p is None else p.phrase_end, amp is not None,
            np.zeros(0) if amp is None else amp, self._rates, self._a_balance,
            o.refractory_s, o.boundary_p, o.start_p, o.boundary_delay_s[0],
            o.boundary_delay_s[1], o.saccade_min_deg, o.saccade_p_per_deg, o.saccade_max_p,
            o.close_s[0], o.close_s[1], o.hold_s[0], o.hold_s[1], o.open_s[0], o.open_s[1],
            o.min_peak, lid,
        )  # fmt: skip
        col = lid.astype(np.float32)[:, None]
        if o.combine == "replace":
            out[:, self._cols] = col
        else:
            out[:, self._cols] = np.maximum(out[:, self._cols], col)
        return out


@kernel
def _lid(t, st):
    """Lid closure at time ``t`` of the blinks in state row ``st`` (onset, close, hold,
    open, peak): an accelerating close with a soft stop, the hold, then a fast start
    and a long tail as lids open; the largest of them."""
    best = 0.0
    for j in range(N_BLINKS):
        b = _BLINK + 5 * j
        t0, close, hold, opening, peak = st[b], st[b + 1], st[b + 2], st[b + 3], st[b + 4]
        u = t - t0
        if u < 0.0 or u >= close + hold + opening:
            continue
        if u < close:
            v = u / close
            value = v * v * (3.0 - 2.0 * v)
        else:
            w = min(max((u - close - hold) / opening, 0.0), 1.0)
            value = (1.0 - w) ** 2
        best = max(best, peak * value)
    return best


@kernel
def _blink_kernel(  # noqa: PLR0913 - a compiled kernel takes plain arrays and numbers
    states, counts, first, fps, has_prosody, speaking, phrase_start, phrase_end,
    has_saccades, saccades, rates, a_balance, refractory_s, boundary_p, start_p,
    delay_lo, delay_hi, saccade_min_deg, saccade_p_per_deg, saccade_max_p, close_lo,
    close_hi, hold_lo, hold_hi, open_lo, open_hi, min_peak, lid,
):  # fmt: skip
    """Each stream's frames in order (stream ``i``'s ``counts[i]`` rows from frame
    ``first[i]``, after stream ``i - 1``'s): schedule boundary blinks, fire blinks,
    and the lid closure per row, each stream's state row advanced in place.

    Random numbers per frame (lanes of :func:`uniform`): 1 the hazard draw, 2-3 the
    boundary chance and delay, 4 the saccade chance, 5-8 a new blink's close, hold,
    open and peak."""
    dt = 1.0 / fps
    row = 0
    for i in range(states.shape[0]):
        st = states[i]
        key = key_of(st)
        for k in range(counts[i]):
            frame = first[i] + k
            t = frame * dt
            # A boundary blink is scheduled in the latest (or a free) trigger slot.
            if has_prosody:
                chance = boundary_p if phrase_end[row] else (start_p if phrase_start[row] else 0.0)
                if uniform(key, frame, 2) < chance:
                    slot = _TRIG0
                    for j in range(1, N_TRIGGERS):
                        if st[_TRIG0 + j] > st[slot]:
                            slot = _TRIG0 + j
                    st[slot] = t + delay_lo + (delay_hi - delay_lo) * uniform(key, frame, 3)
            due = False
            for j in range(N_TRIGGERS):
                if st[_TRIG0 + j] <= t:
                    due = True
                    st[_TRIG0 + j] = np.inf
            if has_saccades and saccades[row] > saccade_min_deg:
                p = min(saccade_max_p, saccade_p_per_deg * (saccades[row] - saccade_min_deg))
                due = due or uniform(key, frame, 4) < p
            ready = t - st[_LAST] >= refractory_s
            hazard = rates[1 if has_prosody and speaking[row] else 0] * dt
            rate = hazard - st[_RATE] * dt
            fired = ready and (due or uniform(key, frame, 1) < rate)
            if fired:
                free = _BLINK
                for j in range(1, N_BLINKS):  # the slot whose blink ends first
                    b = _BLINK + 5 * j
                    end = st[b] + st[b + 1] + st[b + 2] + st[b + 3]
                    if end < st[free] + st[free + 1] + st[free + 2] + st[free + 3]:
                        free = b
                st[free] = t
                st[free + 1] = close_lo + (close_hi - close_lo) * uniform(key, frame, 5)
                st[free + 2] = hold_lo + (hold_hi - hold_lo) * uniform(key, frame, 6)
                st[free + 3] = open_lo + (open_hi - open_lo) * uniform(key, frame, 7)
                st[free + 4] = min_peak + (1.0 - min_peak) * uniform(key, frame, 8)
                st[_LAST] = t
            # The moving average of an impulse train (fps per blink) is its rate; a
            # plain mean until the average has its full length.
            seen = st[_SEEN] + 1.0
            a = max(a_balance, 1.0 / seen)
            st[_RATE] += a * ((fps if fired and due else 0.0) - st[_RATE])
            st[_SEEN] = seen
            lid[row] = _lid(t, st)
            row += 1


def blink_rate_per_min(onsets: Sequence[float], seconds: float) -> float:
    """Blinks per minute over ``seconds`` (a helper for tests and benchmarks)."""
    return 0.0 if seconds <= 0 else 60.0 * len(onsets) / seconds
