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
Saccades are published in the stream's shared events (``"saccades"``: (frame,
amplitude)) for the blink step, which blinks more after large ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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

ARKIT_EYES = (
    "eyeLookOutLeft", "eyeLookInLeft", "eyeLookUpLeft", "eyeLookDownLeft",
    "eyeLookOutRight", "eyeLookInRight", "eyeLookUpRight", "eyeLookDownRight",
)  # fmt: skip
VRM_EYES = ("lookLeft", "lookRight", "lookUp", "lookDown")
SACCADES = "saccades"  # key of the shared event list


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


@dataclass(slots=True)
class GazeState:
    """Per stream: the generator, where the eyes are and where they go next."""

    rng: np.random.Generator
    yaw: float = 0.0
    pitch: float = 0.0
    at_viewer: bool = True
    next_t: float = 0.0  # time of the next saccade (s)
    sac_t0: float = -1.0  # start of the current saccade (-1: none)
    sac_dur: float = 0.0
    sac_from: tuple[float, float] = (0.0, 0.0)
    sac_to: tuple[float, float] = (0.0, 0.0)
    pending_aversion: bool = False


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
        self._alpha = {
            "speaking": leave(options.speaking_at_share),
            "listening": leave(options.listening_at_share),
            "idle": leave(options.idle_at_share),
        }

    def new_state(self, rng: np.random.Generator) -> GazeState:
        state = GazeState(rng=rng)
        state.next_t = self._fixation(state)
        return state

    def _fixation(self, st: GazeState) -> float:
        return float(st.rng.gamma(3.0, self.options.fixation_s / 3.0))

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, len(self.output_names), step=self.type_name)
        mode = ctx.options.gaze or self.options.mode
        if mode == "off":
            return x.copy()
        out = x.copy()
        n = out.shape[0]
        st, p = ctx.state, ctx.prosody
        events = ctx.shared.setdefault(SACCADES, [])
        rows: list[tuple[float, ...]] = []
        dt = 1.0 / self.fps
        for k in range(n):
            frame = ctx.frame_index + k
            t = frame * dt
            speaking = p is not None and bool(p.speaking[k])
            if (
                p is not None
                and p.phrase_start[k]
                and st.rng.random() < self.options.phrase_aversion
            ):
                st.pending_aversion = True
                st.next_t = min(st.next_t, t + self.options.phrase_aversion_delay_s)
            while st.next_t <= t:
                self._saccade(st, st.next_t, mode, speaking, frame, events)
            if st.sac_t0 >= 0:
                u = (t - st.sac_t0) / st.sac_dur
                if u >= 1.0:
                    st.yaw, st.pitch = st.sac_to
                    st.sac_t0 = -1.0
                else:
                    s = u * u * u * (10.0 - 15.0 * u + 6.0 * u * u)  # minimum jerk
                    st.yaw = st.sac_from[0] + (st.sac_to[0] - st.sac_from[0]) * s
                    st.pitch = st.sac_from[1] + (st.sac_to[1] - st.sac_from[1]) * s
            rows.append(self._channels(st.yaw, st.pitch))
        if rows:
            out[:, self._cols] = rows
        # Only the events a later step can still use: the blink step reads them in the
        # same call, so one second of history is plenty.
        del events[: max(0, len(events) - 64)]
        return out

    def _saccade(
        self, st: GazeState, t0: float, mode: str, speaking: bool, frame: int, events: list
    ) -> None:
        """Choose the next target, start the saccade at ``t0``, schedule the next one."""
        rng = st.rng
        alpha = self._alpha["idle" if mode == "idle" else "speaking" if speaking else "listening"]
        if st.pending_aversion:
            st.at_viewer, st.pending_aversion = False, False
            target = self._away(st)
        elif st.at_viewer:
            if rng.random() < alpha:
                st.at_viewer = False
                target = self._away(st)
            else:
                target = self._scan(st)
        elif rng.random() < self._beta:
            st.at_viewer = True
            target = self._scan(st)
        else:
            target = self._away(st)
        amp = math.hypot(target[0] - st.yaw, target[1] - st.pitch)
        dur = (21.0 + 2.2 * amp) / 1000.0
        st.sac_t0, st.sac_dur = t0, dur
        st.sac_from, st.sac_to = (st.yaw, st.pitch), target
        events.append((frame, amp))
        st.next_t = t0 + dur + self._fixation(st)

    def _scan(self, st: GazeState) -> tuple[float, float]:
        """A point on the viewer's face (around straight ahead)."""
        y, p = st.rng.normal(0.0, self.options.scan_deg, 2)
        return float(y), float(p)

    def _away(self, st: GazeState) -> tuple[float, float]:
        """A glance away: exponential amplitude from the viewer, random direction."""
        o, rng = self.options, st.rng
        amp = min(o.max_deg, o.min_aversion_deg + float(rng.exponential(o.aversion_mean_deg)))
        ang = float(rng.uniform(0.0, 2.0 * math.pi))
        return amp * math.cos(ang), amp * o.vertical_share * math.sin(ang)

    def _channels(self, yaw: float, pitch: float) -> tuple[float, ...]:
        """Angles (yaw > 0: avatar's left, pitch > 0: up) to eye shapes in [0, 1].

        Scalar code: a stream's call covers a frame or two, where numpy's per-call
        overhead would cost more than the arithmetic."""
        side, up, down = self.options.range_deg
        left = min(1.0, max(0.0, yaw / side))
        right = min(1.0, max(0.0, -yaw / side))
        upv = min(1.0, max(0.0, pitch / up))
        downv = min(1.0, max(0.0, -pitch / down))
        if self.options.layout == "vrm":
            return (left, right, upv, downv)
        # Looking to the avatar's left: the left eye turns out, the right eye in.
        return (left, right, upv, downv, right, left, upv, downv)
