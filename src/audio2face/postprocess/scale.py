"""Blendshape scale: multiply named channels by constant gains."""

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


class ScaleOptions(StepOptions):
    """``scales``: ``{channel: gain}``; unnamed channels keep gain 1."""

    scales: dict[str, float]


class Scale(StatelessStep):
    """``out[c] = x[c] * scales[c]``."""

    type_name = "scale"
    Options = ScaleOptions

    def __init__(self, options: ScaleOptions, input_names: Sequence[str], env: BindEnv):
        self.output_names = tuple(input_names)
        self._idx = np.array(channel_indices(options.scales, input_names, step=self.type_name))
        self._gain = np.array(list(options.scales.values()), dtype=np.float32)

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        out = as_float32(frames, len(self.output_names), step=self.type_name).copy()
        if self._idx.size:
            out[:, self._idx] = out[:, self._idx] * self._gain
        return out
