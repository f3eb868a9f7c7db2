"""Gaze: ``eyeLook*`` from a fixation and saccade model, both eyes conjugate.

The eyes hold a fixation, then make a saccade to the next target, then fix again.

* **Fixation durations** are gamma distributed (shape 3) with mean ``fixation_s``
  (0.33 s): Rayner 1998 ("Eye movements in reading and information processing: 20
  years of research", Psychol. Bull. 124:372-422) gives mean fixations of about
  330 ms in scene perception, ranging roughly from 100 ms to over a second.
* **Where**: the model is in one of two states, *at* the viewer (the camera) or
  *away*. Looking at a face, the eyes scan it with small saccades (``scan_deg``,
  eyes to mouth; Vatikiotis-Bateson, Eigsti, Yano & Munhall 1998, "Eye movement of
  perceivers during audiovisual speech perception", Percept. Psychophys.
  60:926-940). After each fixation the state may switch, with probabilities set so
  that a speaker looks at the listener about 40 % of the time and a listener at
  the speaker about 75 % (Argyle & Cook 1976, "Gaze and Mutual Gaze"). Speakers
  look away at the start of an utterance (Kendon 1967, "Some functions of
  gaze-direction in social interaction", Acta Psychol. 26:22-63): at a phrase start
  an averted glance follows within ``phrase_aversion_delay_s`` with probability
  ``phrase_aversion``.
* **Amplitude** of a glance away: exponential with mean ``aversion_mean_deg``
  (6.9 deg), the fit of Lee, Badler & Badler 2002 ("Eyes Alive", SIGGRAPH) to
  conversational gaze, which also matches Bahill, Adler & Stark 1975 ("Most
  naturally occurring human saccades have magnitudes of 15 degrees or less", Invest.
  Ophthalmol. 14:468-469): 1 - exp(-15 / 6.9) = 89 % below 15 deg. Capped at
  ``max_deg``; larger gaze shifts would turn the head. Direction is uniform, with the
  vertical part scaled by ``vertical_share`` (horizontal shifts dominate).
* **Main sequence**: a saccade of ``A`` degrees lasts ``21 + 2.2 A`` ms (Carpenter
  1988, "Movements of the Eyes", 2nd ed.), follows a minimum-jerk profile, and so
  peaks at 1.875 A / D deg/s (about 400 deg/s at 20 deg, below the ~500 deg/s
  saturation of Baloh et al. 1975, "Quantitative measurement of saccade amplitude,
  duration, and velocity", Neurology 25:1065).

Modes (``mode``, overridable per stream): ``camera`` as above; ``idle`` looks about
the room, at the viewer only ``idle_at_share`` of the time; ``off`` leaves the
input's eye channels as they are. Without prosody the eyes behave as a listener's.
Saccades are published for the blink step, which blinks more after large ones: the
batch's ``"saccade_deg"`` array holds, per frame, the largest saccade starting there
(0: none). Random choices come from the stream's counter-based generator, keyed by the
saccade's number (and by the frame for the glance at a phrase start).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from audio2face.jit import kernel
from audio2face.postprocess.base import (
    BindEnv,
    FeatureStep,
    StepOptions,
    StreamOptions,
    channel_indices,
)
from audio2face.postprocess.batch import (
    KEY_SLOTS,
    Array,
    Batch,
    key_of,
    key_state,
    normal,
    uniform,
)
from audio2face.types import FloatArray

ARKIT_EYES = (
    "eyeLookOutLeft", "eyeLookInLeft", "eyeLookUpLeft", "eyeLookDownLeft",
    "eyeLookOutRight", "eyeLookInRight", "eyeLookUpRight", "eyeLookDownRight",
)  # fmt: skip
VRM_EYES = ("lookLeft", "lookRight", "lookUp", "lookDown")
SACCADES = "saccade_deg"  # name of the per-frame saccade amplitudes in the batch

# State columns after the key: where the eyes are, at the viewer or not, the next
# saccade's time, the current saccade (start, duration, from, to; start < 0: none),
# a pending glance away (phrase start), saccades so far (the generator's counter).
(_YAW, _PITCH, _AT, _NEXT, _T0, _DUR, _FROM_Y, _FROM_P, _TO_Y, _TO_P, _PENDING, _COUNT) = range(
    KEY_SLOTS, KEY_SLOTS + 12
)
_SIZE = KEY_SLOTS + 12
_PHRASE = np.uint64(0x5EED_0F_A7E)  # key offset of the per-frame phrase-start draws


class GazeOptions(StepOptions):
    """Options of :class:`Gaze` (angles in degrees, times in seconds)."""

    mode: Literal["idle", "camera", "off"] = "camera"
    layout: Literal["arkit", "vrm"] = "arkit"
    fixation_s: float = Field(0.33, gt=0.05, le=10.0)
    scan_deg: float = Field(1.2, ge=0.0, le=10.0)
    aversion_mean_deg: float = Field(6.9, gt=0.0, le=30.0)
    min_aversion_deg: float = Field(2.0, ge=0.0, le=30.0)
    max_deg: float = Field(25.0, gt=0.0, le=45.0)
    vertical_share: float = Field(0.6, ge=0.0, le=1.0)
    speaking_at_share: float = Field(0.40, ge=0.0, le=1.0)
    listening_at_share: float = Field(0.75, ge=0.0, le=1.0)
    idle_at_share: float = Field(0.30, ge=0.0, le=1.0)
    away_fixations: float = Field(2.0, ge=1.0, le=20.0)  # mean fixations per glance away
    phrase_aversion: float = Field(0.7, ge=0.0, le=1.0)
    phrase_aversion_delay_s: float = Field(0.15, ge=0.0, le=2.0)
    range_deg: tuple[float, float, float] = (30.0, 20.0, 25.0)  # sideways, up, down at 1.0


class Gaze(FeatureStep):
    """Overwrite the eye-direction channels with a fixation/saccade model."""

    type_name = "gaze"
    feature = "gaze"
    Options = GazeOptions

    def __init__(self, options: GazeOptions, input_names: Sequence[str], env: BindEnv):
        self.output_names = tuple(input_names)
        names = ARKIT_EYES if options.layout == "arkit" else VRM_EYES
        self._cols = np.array(channel_indices(names, input_names, step=self.type_name), np.intp)
        self.options = options
        self.fps = env.fps
        beta = 1.0 / options.away_fixations  # P(away -> at) per fixation

        def leave(share: float) -> float:
            # Two-state chain: at-share = beta / (alpha + beta)  =>  alpha.
            return 1.0 if share <= 0 else min(1.0, beta * (1.0 - share) / share)

        self._beta = beta
        self._range = np.array(options.range_deg, np.float64)
        # Which of (left, right, up, down) each eye channel shows. ARKit: looking to the
        # avatar's left, the left eye turns out and the right eye in.
        self._pick = np.array(
            [0, 1, 2, 3, 1, 0, 2, 3] if options.layout == "arkit" else [0, 1, 2, 3], np.intp
        )
        # P(at -> away) per fixation: listening, speaking, idle (indexed so).
        self._alpha = np.array([
            leave(options.listening_at_share),
            leave(options.speaking_at_share),
            leave(options.idle_at_share),
        ])  # fmt: skip

    def active(self, options: StreamOptions) -> bool:
        return self.feature not in options.off and (options.gaze or self.options.mode) != "off"

    @property
    def state_size(self) -> int:
        return _SIZE

    def state_from_key(self, key: int) -> Array:
        state = key_state(key, _SIZE)
        state[_AT] = 1.0
        state[_T0] = -1.0
        state[_COUNT] = 1.0  # saccade 0's draws are the first fixation's
        k = key_of(state)
        state[_NEXT] = _fixation(
            uniform(k, 0, 1), uniform(k, 0, 2), uniform(k, 0, 3), self.options.fixation_s
        )
        return state

    def fixations(self, u: Array) -> Array:
        """Fixation durations (s) from uniforms ``[n, 3]`` (for tests)."""
        fs = self.options.fixation_s
        return np.array([_fixation(a, b, c, fs) for a, b, c in u])

    def aversions(self, u: Array) -> Array:
        """Glances away ``[n, 2]`` (yaw, pitch in degrees) from uniforms ``[n, 2]`` (for
        tests)."""
        o = self.options
        return np.array([
            _aversion(a, b, o.aversion_mean_deg, o.min_aversion_deg, o.max_deg, o.vertical_share)
            for a, b in u
        ]).reshape(-1, 2)  # fmt: skip

    @staticmethod
    def at_viewer(state: FloatArray) -> bool:
        """Whether a stream's eyes are on the viewer (for tests and benchmarks)."""
        return bool(state[_AT] > 0.5)

    def run_batch(self, frames: FloatArray, batch: Batch, states: Array) -> FloatArray:
        out = frames.copy()
        n = out.shape[0]
        if n == 0:
            return out
        o, p = self.options, batch.prosody
        idle = np.array([(opt.gaze or o.mode) == "idle" for opt in batch.options])
        none = np.zeros(0, bool)
        amps = np.zeros(n)
        _gaze_kernel(
            states, batch.counts, batch.first, 1.0 / self.fps, idle, p is not None,
            none if p is None else p.speaking, none if p is None else p.phrase_start,
            self._alpha, self._beta, o.fixation_s, o.scan_deg, o.aversion_mean_deg,
            o.min_aversion_deg, o.max_deg, o.vertical_share, o.phrase_aversion,
            o.phrase_aversion_delay_s, self._range, self._pick, self._cols, out, amps,
        )  # fmt: skip
        batch.publish(SACCADES, amps)
        return out

@kernel
def _fixation(u1, u2, u3, fixation_s):
    """A fixation duration (s): gamma, shape 3, mean ``fixation_s`` (a sum of three
    exponentials) from three uniforms."""
    return -(fixation_s / 3.0) * math.log((1.0 - u1) * (1.0 - u2) * (1.0 - u3))


@kernel
def _aversion(u1, u2, mean_deg, min_deg, max_deg, vertical_share):
    """A glance away (yaw, pitch in degrees) from two uniforms: exponential amplitude
    from the viewer, uniform direction."""
    amp = min(max_deg, min_deg - mean_deg * math.log(1.0 - u1))
    ang = 2.0 * math.pi * u2
    return amp * math.cos(ang), amp * vertical_share * math.sin(ang)


@kernel
def _eye_shapes(yaw, pitch, ranges, pick, cols, frame):
    """Angles (yaw > 0: avatar's left, pitch > 0: up; ``ranges``: sideways, up, down
    at full scale) to eye shapes in [0, 1] in ``frame``'s columns ``cols``: the
    ``pick[c]``-th of (left, right, up, down)."""
    values = (
        min(max(yaw / ranges[0], 0.0), 1.0), min(max(-yaw / ranges[0], 0.0), 1.0),
        min(max(pitch / ranges[1], 0.0), 1.0), min(max(-pitch / ranges[2], 0.0), 1.0),
    )  # fmt: skip
    for c in range(cols.shape[0]):
        frame[cols[c]] = values[pick[c]]


@kernel
def _gaze_kernel(  # noqa: PLR0913 - a compiled kernel takes plain arrays and numbers
    states, counts, first, dt, idle, has_prosody, speaking, phrase_start, alpha, beta,
    fixation_s, scan_deg, aversion_mean_deg, min_aversion_deg, max_deg, vertical_share,
    phrase_aversion, phrase_aversion_delay_s, ranges, pick, cols, out, amps,
):  # fmt: skip
    """Each stream's frames in order (stream ``i``'s ``counts[i]`` rows from frame
    ``first[i]``, after stream ``i - 1``'s): saccades that fall due, then where the eyes
    are, written to the eye channels ``cols`` of ``out`` (see :func:`_eye_shapes`), and
    ``amps`` (the largest saccade starting at the frame) per row, each stream's state
    row advanced in place.

    Random numbers: per saccade (counter: its number), lane 1 the at/away choice,
    2-5 the scan target's normals, 6-7 a glance away's amplitude and direction, 8-10
    the next fixation; per frame at a phrase start, lane 1 of the key xor ``_PHRASE``."""
    row = 0
    for i in range(states.shape[0]):
        st = states[i]
        key = key_of(st)
        for k in range(counts[i]):
            frame = first[i] + k
            t = frame * dt
            talking = has_prosody and speaking[row]
            start = has_prosody and phrase_start[row]
            if start and uniform(key ^ _PHRASE, frame, 1) < phrase_aversion:
                st[_PENDING] = 1.0
                st[_NEXT] = min(st[_NEXT], t + phrase_aversion_delay_s)
            largest = 0.0
            while st[_NEXT] <= t:
                # The next saccade: choose the target, schedule the one after.
                c = st[_COUNT]
                leave = alpha[2] if idle[i] else (alpha[1] if talking else alpha[0])
                u = uniform(key, c, 1)
                # At the viewer: stay unless leaving (alpha); away: come back with
                # beta. A glance away pending from a phrase start wins.
                if st[_PENDING] > 0.5:
                    at_next = False
                elif st[_AT] > 0.5:
                    at_next = u >= leave
                else:
                    at_next = u < beta
                if at_next:
                    to_y = normal(uniform(key, c, 2), uniform(key, c, 4)) * scan_deg
                    to_p = normal(uniform(key, c, 3), uniform(key, c, 5)) * scan_deg
                else:
                    to_y, to_p = _aversion(
                        uniform(key, c, 6), uniform(key, c, 7), aversion_mean_deg,
                        min_aversion_deg, max_deg, vertical_share,
                    )  # fmt: skip
                size = math.hypot(to_y - st[_YAW], to_p - st[_PITCH])
                dur = (21.0 + 2.2 * size) / 1000.0  # the main sequence (Carpenter 1988)
                t0 = st[_NEXT]
                st[_FROM_Y], st[_FROM_P] = st[_YAW], st[_PITCH]
                st[_TO_Y], st[_TO_P] = to_y, to_p
                st[_T0], st[_DUR] = t0, dur
                st[_AT] = 1.0 if at_next else 0.0
                st[_PENDING] = 0.0
                fix = _fixation(uniform(key, c, 8), uniform(key, c, 9), uniform(key, c, 10), fixation_s)
                st[_NEXT] = t0 + dur + fix
                st[_COUNT] = c + 1.0
                largest = max(largest, size)
            amps[row] = largest
            # Where the eyes are: along the current saccade (minimum jerk), or at rest.
            if st[_T0] >= 0:
                u = min(max((t - st[_T0]) / st[_DUR], 0.0), 1.0)
                if u >= 1.0:
                    st[_YAW], st[_PITCH], st[_T0] = st[_TO_Y], st[_TO_P], -1.0
                else:
                    s = u * u * u * (10.0 - 15.0 * u + 6.0 * u * u)
                    st[_YAW] = st[_FROM_Y] + (st[_TO_Y] - st[_FROM_Y]) * s
                    st[_PITCH] = st[_FROM_P] + (st[_TO_P] - st[_FROM_P]) * s
            _eye_shapes(st[_YAW], st[_PITCH], ranges, pick, cols, out[row])
            row += 1
