"""Smoothing: a per-channel one-pole low-pass, stateful across chunks.

``y[t] = y[t-1] + a * (x[t] - y[t-1])`` with ``a = 1 - exp(-2 pi cutoff_hz / fps)``.
The first frame of a stream passes through unchanged, so a stream does not start
with a fade-in. It takes the edge off the frame-to-frame jitter of the models without
the latency of a centred filter. Run it before blink steps, or it blurs the blinks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from audio2face.postprocess.base import (
    BindEnv,
    StepBase,
    StepContext,
    StepOptions,
    as_float32,
    channel_indices,
)
from audio2face.types import FloatArray


class SmoothingOptions(StepOptions):
    """``cutoff_hz``: -3 dB frequency; ``names``: channels to smooth (omit: all)."""

    cutoff_hz: float = Field(8.0, gt=0.0)
    names: tuple[str, ...] | None = None


@dataclass(slots=True)
class SmoothingState:
    """The filter memory: last output of the smoothed channels, ``None`` before frame 0."""

    last: FloatArray | None = None


class Smoothing(StepBase):
    """One-pole low-pass on the chosen channels."""

    type_name = "smoothing"
    Options = SmoothingOptions

    def __init__(self, options: SmoothingOptions, input_names: Sequence[str], env: BindEnv):
        self.output_names = tuple(input_names)
        names = input_names if options.names is None else options.names
        self._idx = np.array(
            channel_indices(names, input_names, step=self.type_name), dtype=np.intp
        )
        self.alpha = np.float32(1.0 - math.exp(-2.0 * math.pi * options.cutoff_hz / env.fps))

    @property
    def emotions(self) -> frozenset[str]:
        return frozenset()

    def new_state(self, rng: np.random.Generator) -> SmoothingState:
        return SmoothingState()

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, len(self.output_names), step=self.type_name)
        out = x.copy()
        if x.shape[0] == 0 or self._idx.size == 0:
            return out
        state: SmoothingState = ctx.state
        sel = x[:, self._idx]
        y = np.empty_like(sel)
        prev = sel[0] if state.last is None else state.last
        # A frame loop, not a closed form, so the arithmetic (and the result) is
        # identical whatever the chunk boundaries are.
        for t in range(sel.shape[0]):
            prev = prev + self.alpha * (sel[t] - prev)
            y[t] = prev
        state.last = y[-1].copy()
        out[:, self._idx] = y
        return out
