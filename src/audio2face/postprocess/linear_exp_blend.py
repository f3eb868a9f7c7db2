"""Linear-exp blend: reshape the response curve of a few channels (the original's
jaw treatment on ``ワ``)::

    y   = clip(x + offset, 0, 1) / normalize_reference
    out = clip((1 - w) * y + w * (1 - exp(-s * y)), 0, 1)

The exponential part lifts small openings so that quiet syllables still move the
mouth, while ``offset`` removes the model's resting bias.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from audio2face.postprocess.base import (
    BindEnv,
    StatelessStep,
    StepContext,
    StepOptions,
    as_float32,
    channel_indices,
)
from audio2face.types import FloatArray


class LinearExpBlendOptions(StepOptions):
    """Options of :class:`LinearExpBlend`."""

    names: tuple[str, ...]
    offset: float = 0.0
    normalize_reference: float = Field(1.0, gt=0.0)
    exponential_strength: float = 1.0
    blend_weight: float = Field(0.5, ge=0.0, le=1.0)


class LinearExpBlend(StatelessStep):
    """Apply the linear-exp curve to ``names``; other channels pass through."""

    type_name = "linear_exp_blend"
    Options = LinearExpBlendOptions

    def __init__(self, options: LinearExpBlendOptions, input_names: Sequence[str], env: BindEnv):
        self.options = options
        self.output_names = tuple(input_names)
        self._idx = np.array(channel_indices(options.names, input_names, step=self.type_name))

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        out = as_float32(frames, len(self.output_names), step=self.type_name).copy()
        if self._idx.size:
            o = self.options
            # Python-float constants keep the arithmetic in float32 (NumPy 2 promotion),
            # the documented formula evaluated term by term.
            w, s = o.blend_weight, o.exponential_strength
            y = np.clip(out[:, self._idx] + o.offset, 0.0, 1.0) / o.normalize_reference
            blended = (1.0 - w) * y + w * (1.0 - np.exp(-s * y))
            out[:, self._idx] = np.clip(blended, 0.0, 1.0)
        return out
