"""Postprocess steps and the chain that runs them (see ``docs/`` and each step module).

Build a chain from profile data with :func:`build_chain`, or through
:meth:`audio2face.profiles.Profile.build_chain`.

Internal: part of the implementation, not of the public API (``audio2face/__init__.py``);
names here may change between releases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from audio2face.postprocess.base import (
    FEATURES,
    BindEnv,
    Step,
    StepContext,
    StepOptions,
    StreamOptions,
)
from audio2face.postprocess.chain import Chain, ChainStream
from audio2face.postprocess.steps import STEP_TYPES, bind_steps, parse_step

__all__ = [
    "FEATURES",
    "STEP_TYPES",
    "BindEnv",
    "Chain",
    "ChainStream",
    "Step",
    "StepContext",
    "StepOptions",
    "StreamOptions",
    "build_chain",
    "parse_step",
]


def build_chain(
    specs: Sequence[Mapping[str, Any]], input_names: Sequence[str], env: BindEnv | None = None
) -> Chain:
    """Bind ``specs`` (``[[steps]]`` tables) to ``input_names`` and return the chain."""
    env = env or BindEnv()
    return Chain(bind_steps(specs, input_names, env), input_names, env.fps)
