"""The step types a profile may name: a plain table from the TOML ``type`` string to
the step class. Each class has an ``Options`` pydantic model and is constructed as
``cls(options, input_names, env)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from audio2face.errors import ConfigError
from audio2face.postprocess.arousal import Arousal
from audio2face.postprocess.base import BindEnv, Step, StepOptions
from audio2face.postprocess.blinks import NaturalBlink
from audio2face.postprocess.clip import BlendshapeClip
from audio2face.postprocess.custom_blink import CustomBlink
from audio2face.postprocess.gaze import Gaze
from audio2face.postprocess.head import HeadMotion
from audio2face.postprocess.linear_exp_blend import LinearExpBlend
from audio2face.postprocess.offset import Offset
from audio2face.postprocess.rename import Rename
from audio2face.postprocess.scale import Scale
from audio2face.postprocess.smoothing import Smoothing
from audio2face.postprocess.threshold import BlendshapeThreshold
from audio2face.postprocess.tongue import Tongue
from audio2face.postprocess.unitalker_blink import UnitalkerRandomBlink
from audio2face.postprocess.unitalker_clip import UnitalkerClip

STEP_TYPES: dict[str, type[Any]] = {
    "unitalker_clip": UnitalkerClip,
    "rename": Rename,
    "linear_exp_blend": LinearExpBlend,
    "scale": Scale,
    "blendshape_clip": BlendshapeClip,
    "blendshape_threshold": BlendshapeThreshold,
    "offset": Offset,
    "custom_blink": CustomBlink,
    "unitalker_random_blink": UnitalkerRandomBlink,
    "smoothing": Smoothing,
    "head": HeadMotion,
    "gaze": Gaze,
    "natural_blink": NaturalBlink,
    "tongue": Tongue,
    "arousal": Arousal,
}
"""TOML ``type`` -> step class."""


def parse_step(spec: Mapping[str, Any]) -> tuple[type[Any], StepOptions]:
    """Validate one ``[[steps]]`` table: its ``type`` and the options of that type."""
    options = dict(spec)
    type_name = options.pop("type", None)
    if type_name not in STEP_TYPES:
        raise ConfigError(f"unknown step type {type_name!r}; step types are {sorted(STEP_TYPES)}")
    cls = STEP_TYPES[type_name]
    try:
        return cls, cls.Options.model_validate(options)
    except ValidationError as exc:
        raise ConfigError(f"step {type_name!r}: {exc}") from exc


def bind_steps(
    specs: Sequence[Mapping[str, Any]], input_names: Sequence[str], env: BindEnv
) -> list[Step]:
    """Build each step in order, feeding each the previous step's output names."""
    steps: list[Step] = []
    names: tuple[str, ...] = tuple(input_names)
    for spec in specs:
        cls, options = parse_step(spec)
        step = cls(options, names, env)
        steps.append(step)
        names = step.output_names
    return steps
