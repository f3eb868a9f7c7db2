"""Blendshape clip: per-channel lower and upper bounds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audio2face.errors import ConfigError
from audio2face.postprocess.base import (
    BindEnv,
    StatelessStep,
    StepContext,
    StepOptions,
    as_float32,
    channel_indices,
)
from audio2face.types import FloatArray


class ClipOptions(StepOptions):
    """``default``: ``[lo, hi]`` for every channel (omit to leave channels alone);
    ``bounds``: ``{channel: [lo, hi]}`` overriding the default for those channels."""

    default: tuple[float, float] | None = None
    bounds: dict[str, tuple[float, float]] = {}


class BlendshapeClip(StatelessStep):
    """``out[c] = clip(x[c], lo[c], hi[c])``."""

    type_name = "blendshape_clip"
    Options = ClipOptions

    def __init__(self, options: ClipOptions, input_names: Sequence[str], env: BindEnv):
        self.output_names = tuple(input_names)
        lo, hi = options.default or (-np.inf, np.inf)
        self._lo = np.full(len(input_names), lo, dtype=np.float32)
        self._hi = np.full(len(input_names), hi, dtype=np.float32)
        idx = channel_indices(options.bounds, input_names, step=self.type_name)
        for i, (name, (b_lo, b_hi)) in zip(idx, options.bounds.items(), strict=True):
            if b_lo > b_hi:
                raise ConfigError(f"step 'blendshape_clip': bounds of {name!r} are reversed")
            self._lo[i], self._hi[i] = b_lo, b_hi

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, len(self.output_names), step=self.type_name)
        return np.clip(x, self._lo, self._hi)
