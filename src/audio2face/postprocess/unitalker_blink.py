"""UniTalker random blink: the UniTalker model barely blinks, so put a short blink on
EyeBlinkLeft/Right every 3 to 4 seconds (drawn per blink).

Each blink overwrites the blink channels around its peak frame ``p`` with the ramp
``0.4, 0.6, 1.0, 0.6`` on frames ``p-2 .. p+1`` (the original's shape). Never at frame 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field, model_validator

from audio2face.postprocess.base import (
    BindEnv,
    StepBase,
    StepContext,
    StepOptions,
    as_float32,
    channel_indices,
)
from audio2face.postprocess.schedule import BlinkSchedule, PlacedClip, ScheduleState
from audio2face.types import FloatArray

DEFAULT_RAMP: tuple[float, ...] = (0.4, 0.6, 1.0, 0.6)


class UnitalkerBlinkOptions(StepOptions):
    """Options of :class:`UnitalkerRandomBlink`."""

    names: tuple[str, ...] = ("EyeBlinkLeft", "EyeBlinkRight")
    min_interval_s: float = Field(3.0, gt=0.0)
    max_interval_s: float = Field(4.0, gt=0.0)
    ramp: tuple[float, ...] = Field(DEFAULT_RAMP, min_length=1)
    peak_index: int = Field(2, ge=0)  # which ramp entry sits on the scheduled frame

    @model_validator(mode="after")
    def _check(self) -> UnitalkerBlinkOptions:
        if self.min_interval_s > self.max_interval_s:
            raise ValueError("min_interval_s must not exceed max_interval_s")
        if self.peak_index >= len(self.ramp):
            raise ValueError("peak_index must index into ramp")
        return self


class UnitalkerRandomBlink(StepBase):
    """Overwrite the blink channels with a short ramp every 3..4 s."""

    type_name = "unitalker_random_blink"
    Options = UnitalkerBlinkOptions

    def __init__(self, options: UnitalkerBlinkOptions, input_names: Sequence[str], env: BindEnv):
        self.output_names = tuple(input_names)
        cols = np.array(channel_indices(options.names, input_names, step=self.type_name))
        ramp = np.asarray(options.ramp, dtype=np.float32)
        self._clip = PlacedClip(cols=cols, values=np.repeat(ramp[:, None], cols.size, axis=1))
        # The schedule places clip starts; the peak lands peak_index frames later. The
        # first gap is at least min_interval_s, so no blink starts before frame 0.
        self._schedule = BlinkSchedule(
            min_gap=max(1, round(options.min_interval_s * env.fps)),
            max_gap=max(1, round(options.max_interval_s * env.fps)),
            first_offset=-options.peak_index,
        )
        self.peak_index = options.peak_index

    @property
    def emotions(self) -> frozenset[str]:
        return frozenset()

    def new_state(self, rng: np.random.Generator) -> ScheduleState:
        return self._schedule.new_state(rng)

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, len(self.output_names), step=self.type_name)
        return self._schedule.apply(x, ctx.frame_index, ctx.state, lambda: self._clip)
