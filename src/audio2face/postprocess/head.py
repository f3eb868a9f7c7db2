"""Head pose from the voice: ``headYaw``, ``headPitch``, ``headRoll`` in degrees.

Three parts, summed and scaled by ``amplitude``:

* **drift**: an Ornstein-Uhlenbeck process per axis (slow random wander around the
  neutral pose). While speaking it wanders ``drift_deg`` (standard deviation) with
  time constant ``drift_tau_s``; in pauses its spread shrinks to
  ``pause_drift_scale`` of that and it returns towards neutral with the shorter
  ``pause_tau_s``. Speakers move their heads much more while talking than while
  listening (Hadar et al. 1983, "Head movement correlates of juncture and stress at
  sentence level", Language and Speech 26:117-129).
* **nods** on stressed syllables (prosody ``nucleus`` above ``stress_threshold``):
  a pitch-down pulse ``nod_deg * prominence`` shaped ``(t/T) e^(1 - t/T)`` (peak at
  ``T = nod_time_s``), with a small random yaw/roll share; Hadar et al. found the
  largest head movements at stressed syllables and phrase junctures.
* **pitch follows the voice**: the head rises a little with F0 above the speaker's
  running mean (``pitch_follow_deg_per_st`` per semitone, smoothed), the
  eyebrow-and-head raise on pitch accents (Yehia, Kuratate & Vatikiotis-Bateson 2002,
  "Linking facial animation, head motion and speech acoustics", J. Phonetics 30:555).

Sign convention: ``headYaw`` > 0 turns to the avatar's left, ``headPitch`` > 0 lifts
the chin, ``headRoll`` > 0 tilts towards the avatar's left shoulder.

Without prosody (no audio: the phonemes path) only the pause-level drift remains, so
the head is alive but calm. The channels are appended to the frames, or overwritten
where the input already has them (an engine that predicts head pose).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
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
)
from audio2face.types import FloatArray

if TYPE_CHECKING:
    from audio2face.audio.prosody import Prosody

HEAD_NAMES: tuple[str, str, str] = ("headYaw", "headPitch", "headRoll")
NOD_SPAN = 6.0  # a nod is evaluated for this many nod_time_s (its tail is then < 2 %)


class HeadOptions(StepOptions):
    """Options of :class:`HeadMotion` (angles in degrees)."""

    amplitude: float = Field(1.0, ge=0.0, le=5.0)
    drift_deg: tuple[float, float, float] = (3.0, 2.0, 1.2)  # yaw, pitch, roll SD
    drift_tau_s: float = Field(1.5, gt=0.0, le=60.0)
    pause_tau_s: float = Field(0.6, gt=0.0, le=60.0)
    pause_drift_scale: float = Field(0.35, ge=0.0, le=1.0)
    nod_deg: float = Field(2.5, ge=0.0, le=20.0)
    nod_time_s: float = Field(0.15, gt=0.0, le=2.0)
    nod_side_share: float = Field(0.3, ge=0.0, le=1.0)  # yaw/roll part of a nod
    stress_threshold: float = Field(0.5, ge=0.0, le=1.0)
    pitch_follow_deg_per_st: float = Field(0.15, ge=0.0, le=2.0)
    pitch_follow_tau_s: float = Field(0.25, gt=0.0, le=10.0)
    names: tuple[str, str, str] = HEAD_NAMES


@dataclass(slots=True)
class HeadState:
    """Per stream: the generator, drift per axis, live nods and the F0 follower."""

    rng: np.random.Generator  # per-frame noise: a fixed number of draws per frame
    events: np.random.Generator  # draws at nods only (a separate stream, so chunking
    # cannot interleave the two differently)
    drift: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    nods: list[tuple[int, float, float, float]] = field(default_factory=list)  # frame, p, y, r
    f0_mean: float = 0.0  # running mean log2 F0 (0: none yet)
    follow: float = 0.0


class HeadMotion(FeatureStep):
    """Write head yaw/pitch/roll (degrees) driven by prosody."""

    type_name = "head"
    feature = "head"
    Options = HeadOptions

    def __init__(self, options: HeadOptions, input_names: Sequence[str], env: BindEnv):
        present = [n in input_names for n in options.names]
        if any(present) and not all(present):
            raise ConfigError(
                f"step 'head': the input has only some of {list(options.names)}; give all or none"
            )
        self._append = not any(present)
        self.output_names = tuple(input_names) + (tuple(options.names) if self._append else ())
        names = list(self.output_names)
        self._cols = np.array([names.index(n) for n in options.names], dtype=np.intp)
        self.options = options
        dt = 1.0 / env.fps
        self._dt = dt
        self._a_speak = math.exp(-dt / options.drift_tau_s)
        self._a_pause = math.exp(-dt / options.pause_tau_s)
        self._a_follow = 1.0 - math.exp(-dt / options.pitch_follow_tau_s)
        self._nod_frames = max(1, math.ceil(NOD_SPAN * options.nod_time_s / dt))

    def new_state(self, rng: np.random.Generator) -> HeadState:
        frames, events = (np.random.default_rng(s) for s in rng.integers(0, 2**63, 2))
        return HeadState(rng=frames, events=events)

    def _widen(self, x: FloatArray) -> FloatArray:
        if not self._append:
            return x.copy()
        return np.concatenate([x, np.zeros((x.shape[0], 3), np.float32)], axis=1)

    def bypass(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        """Head off for this stream: the neutral pose (0 degrees)."""
        n_in = len(self.output_names) - (3 if self._append else 0)
        return self._widen(as_float32(frames, n_in, step=self.type_name))

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        n_in = len(self.output_names) - (3 if self._append else 0)
        out = self._widen(as_float32(frames, n_in, step=self.type_name))
        n = out.shape[0]
        if n == 0:
            return out
        o, st, p = self.options, ctx.state, ctx.prosody
        # One fixed-size draw per frame, so the generator advances the same whatever
        # the chunking.
        z = st.rng.standard_normal((n, 3)).tolist()
        sd = [d * math.sqrt(1.0 - self._a_speak**2) for d in o.drift_deg]
        sd_pause = [
            d * o.pause_drift_scale * math.sqrt(1.0 - self._a_pause**2) for d in o.drift_deg
        ]
        pose = np.empty((n, 3), np.float32)
        for k in range(n):
            frame = ctx.frame_index + k
            speaking = bool(p.speaking[k]) if p is not None else False
            a, s = (self._a_speak, sd) if speaking else (self._a_pause, sd_pause)
            d = st.drift
            for axis in range(3):
                d[axis] = a * d[axis] + s[axis] * z[k][axis]
            if p is not None:
                self._voice(st, p, k, frame)
            yaw, pitch, roll = d[0], d[1] + st.follow, d[2]
            live = []
            for start, amp_p, amp_y, amp_r in st.nods:
                age = frame - start
                if age < self._nod_frames:
                    live.append((start, amp_p, amp_y, amp_r))
                    u = age * self._dt / o.nod_time_s
                    h = u * math.exp(1.0 - u)
                    pitch -= amp_p * h
                    yaw += amp_y * h
                    roll += amp_r * h
            st.nods = live
            pose[k] = (yaw, pitch, roll)
        out[:, self._cols] = pose * np.float32(o.amplitude)
        return out

    def _voice(self, st: HeadState, p: Prosody, k: int, frame: int) -> None:
        """Update the nods and the F0 follower from frame ``k`` of the prosody."""
        o = self.options
        nucleus = float(p.nucleus[k])
        if nucleus > o.stress_threshold and o.nod_deg > 0:
            amp = o.nod_deg * nucleus
            side = st.events.uniform(-1.0, 1.0, 2) * (o.nod_side_share * amp)
            st.nods.append((frame, amp, float(side[0]), float(side[1])))
        f0 = float(p.f0_hz[k])
        target = 0.0
        if f0 > 0:
            lf = math.log2(f0)
            st.f0_mean = lf if st.f0_mean == 0.0 else st.f0_mean + 0.01 * (lf - st.f0_mean)
            semitones = max(-6.0, min(6.0, 12.0 * (lf - st.f0_mean)))
            target = o.pitch_follow_deg_per_st * semitones
        st.follow += self._a_follow * (target - st.follow)
