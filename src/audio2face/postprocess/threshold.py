"""Blendshape threshold: values at or below a channel's threshold become 0 (kills the
model's idle jitter on channels that should rest)."""

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


class ThresholdOptions(StepOptions):
    """``default``: threshold of every channel (omit: none); ``thresholds``: per channel."""

    default: float | None = None
    thresholds: dict[str, float] = {}


class BlendshapeThreshold(StatelessStep):
    """``out[c] = 0 if x[c] <= thr[c] else x[c]``."""

    type_name = "blendshape_threshold"
    Options = ThresholdOptions

    def __init__(self, options: ThresholdOptions, input_names: Sequence[str], env: BindEnv):
        self.output_names = tuple(input_names)
        base = -np.inf if options.default is None else options.default
        self._thr = np.full(len(input_names), base, dtype=np.float32)
        idx = channel_indices(options.thresholds, input_names, step=self.type_name)
        self._thr[idx] = np.array(list(options.thresholds.values()), dtype=np.float32)

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, len(self.output_names), step=self.type_name)
        return np.where(x <= self._thr, np.float32(0.0), x).astype(np.float32, copy=False)
