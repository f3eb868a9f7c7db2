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
  largest head movements at stressed syllables and phrase junctures. The shape is the
  impulse response of two equal one-pole filters in series (``k r^k`` in frames), so
  overlapping nods add up in two state variables per axis.
* **pitch follows the voice**: the head rises a little with F0 above the speaker's
  running mean (``pitch_follow_deg_per_st`` per semitone, smoothed), the
  eyebrow-and-head raise on pitch accents (Yehia, Kuratate & Vatikiotis-Bateson 2002,
  "Linking facial animation, head motion and speech acoustics", J. Phonetics 30:555).

Sign convention: ``headYaw`` > 0 turns to the avatar's left, ``headPitch`` > 0 lifts
the chin, ``headRoll`` > 0 tilts towards the avatar's left shoulder.

Without prosody (no audio: the phonemes path) only the pause-level drift remains, so
the head is alive but calm. The random parts come from the stream's counter-based
generator at each frame (:mod:`~audio2face.postprocess.batch`), so they do not depend
on chunking or batching. The channels are appended to the frames, or overwritten
where the input already has them (an engine that predicts head pose).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import Field

from audio2face.errors import ConfigError
from audio2face.jit import kernel
from audio2face.postprocess.base import BindEnv, FeatureStep, StepOptions
from audio2face.postprocess.batch import KEY_SLOTS, Array, Batch, key_of, key_state, normal, uniform
from audio2face.types import FloatArray

HEAD_NAMES: tuple[str, str, str] = ("headYaw", "headPitch", "headRoll")

# State columns after the key: drift per axis, running mean log2 F0 (0: none yet), the
# F0 follower, then the nod filters' two stages per axis (yaw, pitch, roll).
_DRIFT0 = KEY_SLOTS
_F0_MEAN = KEY_SLOTS + 3
_FOLLOW = KEY_SLOTS + 4
_NOD_IN0 = KEY_SLOTS + 5
_NOD_OUT0 = KEY_SLOTS + 8
_SIZE = KEY_SLOTS + 11


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
        self.fps = env.fps
        dt = 1.0 / env.fps
        a_speak = math.exp(-dt / options.drift_tau_s)
        a_pause = math.exp(-dt / options.pause_tau_s)
        drift = np.array(options.drift_deg)
        # Per axis: decay and innovation SD of the drift, speaking (row 1) or not (row 0).
        self._decay = np.array([a_pause, a_speak])
        self._spread = np.stack([
            drift * options.pause_drift_scale * math.sqrt(1.0 - a_pause**2),
            drift * math.sqrt(1.0 - a_speak**2),
        ])  # fmt: skip
        self._a_follow = 1.0 - math.exp(-dt / options.pitch_follow_tau_s)
        # (t/T) e^(1 - t/T) at t = k dt is gain * k r^k.
        self._r = math.exp(-dt / options.nod_time_s)
        self._nod_gain = math.e * dt / options.nod_time_s

    @property
    def n_inputs(self) -> int:
        return len(self.output_names) - (3 if self._append else 0)

    @property
    def state_size(self) -> int:
        return _SIZE

    def state_from_key(self, key: int) -> Array:
        return key_state(key, _SIZE)

    def bypass_rows(self, frames: FloatArray) -> FloatArray:
        """Head off for this stream: the neutral pose (0 degrees)."""
        if not self._append:
            return frames.copy()
        return np.concatenate([frames, np.zeros((frames.shape[0], 3), np.float32)], axis=1)

    def run_batch(self, frames: FloatArray, batch: Batch, states: Array) -> FloatArray:
        out = self.bypass_rows(frames)
        n = out.shape[0]
        if n == 0:
            return out
        o, p = self.options, batch.prosody
        none = np.zeros(0, np.float32)  # the prosody arrays' types, for one compiled kernel
        _head_kernel(
            states, batch.counts, batch.first, p is not None,
            none.astype(bool) if p is None else p.speaking,
            none if p is None else p.f0_hz, none if p is None else p.nucleus,
            self._decay, self._spread, self._r, self._nod_gain, self._a_follow, o.nod_deg,
            o.stress_threshold, o.nod_side_share, o.pitch_follow_deg_per_st, o.amplitude,
            self._cols, out,
        )  # fmt: skip
        return out


@kernel
def _head_kernel(  # noqa: PLR0913 - a compiled kernel takes plain arrays and numbers
    states, counts, first, has_prosody, speaking, f0_hz, nucleus, decay, spread, r,
    nod_gain, a_follow, nod_deg, stress_threshold, side_share, follow_deg_per_st, amplitude,
    cols, out,
):  # fmt: skip
    """Each stream's frames in order (stream ``i``'s ``counts[i]`` rows from frame
    ``first[i]``, after stream ``i - 1``'s): drift, nods and the F0 follower, times
    ``amplitude``, into ``out``'s columns ``cols`` (yaw, pitch, roll), each stream's
    state row advanced in place.

    Random numbers per frame (lanes of :func:`uniform`): 1-3 and 4-6 the drift's
    normals per axis, 7 and 8 a nod's yaw and roll shares."""
    pose = np.empty(3)
    row = 0
    for i in range(states.shape[0]):
        st = states[i]
        key = key_of(st)
        for k in range(counts[i]):
            frame = first[i] + k
            s = 1 if has_prosody and speaking[row] else 0
            for ax in range(3):
                z = normal(uniform(key, frame, 1 + ax), uniform(key, frame, 4 + ax))
                drift = decay[s] * st[_DRIFT0 + ax] + spread[s, ax] * z
                st[_DRIFT0 + ax] = drift
                pose[ax] = drift
            if has_prosody:
                if nod_deg > 0:
                    # Nod impulses: pitch down by nod_deg x prominence on a stressed
                    # syllable, with a random yaw/roll share.
                    amp = nod_deg * nucleus[row] if nucleus[row] > stress_threshold else 0.0
                    for ax in range(3):
                        if ax == 1:
                            nod = -amp
                        else:
                            nod = (2.0 * uniform(key, frame, 7 + ax // 2) - 1.0) * side_share * amp
                        nod_out = r * st[_NOD_OUT0 + ax] + r * st[_NOD_IN0 + ax]
                        st[_NOD_IN0 + ax] = r * st[_NOD_IN0 + ax] + nod
                        st[_NOD_OUT0 + ax] = nod_out
                        pose[ax] += nod_gain * nod_out
                f0 = f0_hz[row]
                mean = st[_F0_MEAN]
                target = 0.0
                if f0 > 0:
                    lf = math.log2(f0 if f0 > 1.0 else 1.0)
                    mean = lf if mean == 0.0 else mean + 0.01 * (lf - mean)
                    semis = min(max(12.0 * (lf - mean), -6.0), 6.0)
                    target = follow_deg_per_st * semis
                follow = st[_FOLLOW] + a_follow * (target - st[_FOLLOW])
                st[_F0_MEAN] = mean
                st[_FOLLOW] = follow
                pose[1] += follow
            for ax in range(3):
                out[row, cols[ax]] = pose[ax] * amplitude
            row += 1
