"""Custom blink: play a blink clip every ``min_gap``..``max_gap`` frames (30..90 by
default, drawn at random per stream), overwriting the channels the clip names.

The clip is the one named by the chunk's emotion (``anger_2``), else the one for its
base emotion (``anger``), else ``default_clip`` (``neutral``). Clips come inline, from
one JSON file holding ``{name: clip}``, or from a directory of ``<name>.json`` files in
the original's ``{"blendshape_names": [...], "blendshape_values": [[...]]}`` form.
Clip channels the rig lacks are ignored; values may overshoot below 0 on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from audio2face.errors import ConfigError
from audio2face.postprocess.base import (
    BindEnv,
    StepBase,
    StepContext,
    StepOptions,
    as_float32,
    base_emotion,
    load_named_json,
)
from audio2face.postprocess.schedule import BlinkSchedule, PlacedClip, ScheduleState
from audio2face.types import FloatArray


class BlinkClip(BaseModel):
    """A clip: ``values[frame][k]`` is channel ``names[k]``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    names: tuple[str, ...] = Field(alias="blendshape_names", min_length=1)
    values: tuple[tuple[float, ...], ...] = Field(alias="blendshape_values", min_length=1)

    @model_validator(mode="after")
    def _rectangular(self) -> BlinkClip:
        if any(len(row) != len(self.names) for row in self.values):
            raise ValueError("every row of blendshape_values needs one value per name")
        return self


class CustomBlinkOptions(StepOptions):
    """Options of :class:`CustomBlink`."""

    clips: dict[str, BlinkClip] | str
    default_clip: str = "neutral"
    min_gap: int = Field(30, ge=1)
    max_gap: int = Field(90, ge=1)

    @model_validator(mode="after")
    def _gaps(self) -> CustomBlinkOptions:
        if self.min_gap > self.max_gap:
            raise ValueError("min_gap must not exceed max_gap")
        return self


def load_clips(options: CustomBlinkOptions, env: BindEnv) -> dict[str, BlinkClip]:
    """The clip table, read from disk when the options give a path."""
    if isinstance(options.clips, str):
        raw = load_named_json(options.clips, env)
        try:
            return {k: BlinkClip.model_validate(v) for k, v in raw.items()}
        except ValueError as exc:
            raise ConfigError(f"blink clips in {options.clips!r}: {exc}") from exc
    return dict(options.clips)


def place(clip: BlinkClip, output_names: Sequence[str], label: str) -> PlacedClip:
    """Bind a clip to output columns, dropping channels the rig lacks."""
    index = {n: i for i, n in enumerate(output_names)}
    keep = [k for k, n in enumerate(clip.names) if n in index]
    if not keep:
        raise ConfigError(f"blink clip {label!r} names none of the output channels")
    values = np.asarray(clip.values, dtype=np.float32)[:, keep]
    cols = np.array([index[clip.names[k]] for k in keep], dtype=np.intp)
    return PlacedClip(cols=cols, values=values)


class CustomBlink(StepBase):
    """Overwrite named channels with emotion-dependent blink clips at random gaps."""

    type_name = "custom_blink"
    Options = CustomBlinkOptions

    def __init__(self, options: CustomBlinkOptions, input_names: Sequence[str], env: BindEnv):
        self.output_names = tuple(input_names)
        clips = load_clips(options, env)
        if options.default_clip not in clips:
            raise ConfigError(
                f"step 'custom_blink': default clip {options.default_clip!r} missing; "
                f"clips are {sorted(clips)}"
            )
        self._clips = {k: place(c, input_names, k) for k, c in clips.items()}
        self._default = options.default_clip
        self._schedule = BlinkSchedule(options.min_gap, options.max_gap)

    @property
    def emotions(self) -> frozenset[str]:
        return frozenset(self._clips) - {self._default}

    def new_state(self, rng: np.random.Generator) -> ScheduleState:
        return self._schedule.new_state(rng)

    def clip_for(self, emotion: str | None) -> PlacedClip:
        """The clip a blink starting under ``emotion`` plays."""
        if emotion is not None:
            for key in (emotion, base_emotion(emotion)):
                if key in self._clips:
                    return self._clips[key]
        return self._clips[self._default]

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, len(self.output_names), step=self.type_name)
        clip = self.clip_for(ctx.emotion)
        return self._schedule.apply(x, ctx.frame_index, ctx.state, lambda: clip)
