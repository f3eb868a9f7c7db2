"""UniTalker clip: tame the eye channels of the UniTalker model (the original's first step).

Eye squint/look/wide are clipped to [0, 1] then damped by ``eye_scale``; the blink
channels and MouthShrugUpper, which the model drives poorly, are held near 0.
Channels are found by name (case-insensitively), so the step also works after a
rename to Apple's spelling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audio2face.postprocess.base import (
    BindEnv,
    StatelessStep,
    StepContext,
    StepOptions,
    as_float32,
    channel_indices,
)
from audio2face.types import FloatArray

DEFAULT_EYE_NAMES: tuple[str, ...] = (
    "EyeSquintLeft", "EyeSquintRight", "EyeLookDownLeft", "EyeLookDownRight",
    "EyeLookInLeft", "EyeLookInRight", "EyeWideLeft", "EyeWideRight",
    "EyeLookOutLeft", "EyeLookOutRight", "EyeLookUpLeft", "EyeLookUpRight",
)  # columns 2..13 of the UniTalker layout
DEFAULT_SUPPRESS_NAMES: tuple[str, ...] = ("EyeBlinkLeft", "EyeBlinkRight", "MouthShrugUpper")


class UnitalkerClipOptions(StepOptions):
    """Options of :class:`UnitalkerClip`; defaults are the original's constants."""

    eye_names: tuple[str, ...] = DEFAULT_EYE_NAMES
    eye_scale: float = 0.8
    suppress_names: tuple[str, ...] = DEFAULT_SUPPRESS_NAMES
    suppress_max: float = 0.01


class UnitalkerClip(StatelessStep):
    """``eye = clip(x, 0, 1) * eye_scale``; ``suppressed = clip(x, 0, suppress_max)``."""

    type_name = "unitalker_clip"
    Options = UnitalkerClipOptions

    def __init__(self, options: UnitalkerClipOptions, input_names: Sequence[str], env: BindEnv):
        self.options = options
        self.output_names = tuple(input_names)
        self._eye = np.array(channel_indices(options.eye_names, input_names, step=self.type_name))
        self._sup = np.array(
            channel_indices(options.suppress_names, input_names, step=self.type_name)
        )

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        out = as_float32(frames, len(self.output_names), step=self.type_name).copy()
        o = self.options
        if self._eye.size:
            out[:, self._eye] = np.clip(out[:, self._eye], 0.0, 1.0) * o.eye_scale
        if self._sup.size:
            out[:, self._sup] = np.clip(out[:, self._sup], 0.0, o.suppress_max)
        return out
