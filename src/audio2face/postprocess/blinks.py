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

The step writes the blink channels (``names``) whole (``combine = "replace"``), so a
profile can keep the original's ``custom_blink`` before it as the fallback when a
stream switches ``blinks`` off; ``combine = "max"`` keeps the input's lid values
(squints, an engine's own blinks) where they are larger.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from audio2face.postprocess.base import (
    BindEnv,
    FeatureStep,
    StepContext,
    StepOptions,
    as_float32,
    channel_indices,
)
from audio2face.postprocess.gaze import SACCADES
from audio2face.types import FloatArray


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


@dataclass(slots=True)
class Blink:
    """One blink: onset time and its drawn kinematics (seconds)."""

    t0: float
    close: float
    hold: float
    open: float
    peak: float

    @property
    def end(self) -> float:
        return self.t0 + self.close + self.hold + self.open

    def at(self, t: float) -> float:
        u = t - self.t0
        if u < 0.0 or u >= self.close + self.hold + self.open:
            return 0.0
        if u < self.close:
            v = u / self.close
            return self.peak * v * v * (3.0 - 2.0 * v)  # accelerating close, soft stop
        u -= self.close
        if u < self.hold:
            return self.peak
        v = (u - self.hold) / self.open
        return self.peak * (1.0 - v) ** 2  # fast start, long tail, as lids open


@dataclass(slots=True)
class BlinkState:
    """Per stream: per-frame and per-event generators, blinks playing or scheduled."""

    frames: np.random.Generator
    events: np.random.Generator
    blinks: list[Blink] = field(default_factory=list)
    triggers: list[float] = field(default_factory=list)  # scheduled onset times
    last_onset: float = -1e9
    triggered_rate: float = 0.0  # recent rate of triggered blinks, per second
    seen: int = 0  # frames so far
    onsets: list[float] = field(default_factory=list)  # recent history, for tests and benches


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
        self._r_speak = options.speaking_per_min / 60.0
        self._r_quiet = options.quiet_per_min / 60.0
        self._a_balance = 1.0 - math.exp(-1.0 / (env.fps * options.balance_s))

    def new_state(self, rng: np.random.Generator) -> BlinkState:
        frames, events = (np.random.default_rng(s) for s in rng.integers(0, 2**63, 2))
        return BlinkState(frames=frames, events=events)

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, len(self.output_names), step=self.type_name)
        out = x.copy()
        n = out.shape[0]
        if n == 0:
            return out
        o, st, p = self.options, ctx.state, ctx.prosody
        dt = 1.0 / self.fps
        first = ctx.frame_index
        saccades: dict[int, float] = {}
        for frame, amp in ctx.shared.get(SACCADES, ()):
            if first <= frame < first + n:
                saccades[frame] = max(amp, saccades.get(frame, 0.0))
        u = st.frames.random(n).tolist()  # one draw per frame, whatever the chunking
        lid = np.empty(n, np.float32)
        for k in range(n):
            frame = first + k
            t = frame * dt
            speaking = p is not None and bool(p.speaking[k])
            chance = 0.0
            if p is not None:
                chance = (
                    o.boundary_p if p.phrase_end[k] else o.start_p if p.phrase_start[k] else 0.0
                )
            if chance > 0.0 and st.events.random() < chance:
                st.triggers.append(t + float(st.events.uniform(*o.boundary_delay_s)))
            amp = saccades.get(frame)
            if amp is not None and amp > o.saccade_min_deg:
                chance = min(o.saccade_max_p, o.saccade_p_per_deg * (amp - o.saccade_min_deg))
                if st.events.random() < chance:
                    st.triggers.append(t)
            ready = t - st.last_onset >= o.refractory_s
            due = [s for s in st.triggers if s <= t]
            if due:
                st.triggers = [s for s in st.triggers if s > t]
            rate = (self._r_speak if speaking else self._r_quiet) - st.triggered_rate
            fired = ready and (bool(due) or u[k] < max(rate, 0.0) * dt)
            if fired:
                self._start(st, t)
            # The moving average of an impulse train (fps per blink) is its rate.
            # A plain mean until the average has its full length.
            impulse = self.fps if fired and due else 0.0
            st.seen += 1
            a = max(self._a_balance, 1.0 / st.seen)
            st.triggered_rate += a * (impulse - st.triggered_rate)
            value = 0.0
            live = []
            for b in st.blinks:
                value = max(value, b.at(t))
                if b.end > t:
                    live.append(b)
            st.blinks = live
            lid[k] = value
        col = lid[:, None]
        if o.combine == "replace":
            out[:, self._cols] = col
        else:
            out[:, self._cols] = np.maximum(out[:, self._cols], col)
        return out

    def _start(self, st: BlinkState, t: float) -> None:
        o, r = self.options, st.events
        st.blinks.append(
            Blink(
                t0=t,
                close=float(r.uniform(*o.close_s)),
                hold=float(r.uniform(*o.hold_s)),
                open=float(r.uniform(*o.open_s)),
                peak=float(r.uniform(o.min_peak, 1.0)),
            )
        )
        st.last_onset = t
        st.onsets.append(t)
        del st.onsets[:-256]


def blink_rate_per_min(onsets: Sequence[float], seconds: float) -> float:
    """Blinks per minute over ``seconds`` (a helper for tests and benchmarks)."""
    return 0.0 if seconds <= 0 else 60.0 * len(onsets) / seconds
