"""Emotion offset: add a per-emotion preset to the channels, chosen per chunk by the
request's emotion (``offset_name``). No clipping, like the original; skipped when the
chunk has no emotion or one without a preset.

Presets come inline (``{preset: {channel: offset}}``), from one JSON file holding that
table, or from a directory of ``<preset>.json`` files (the original's
``blendshapes_offset/`` layout). Channels a preset names but the rig lacks are ignored
(an avatar may not have every morph); a preset that matches nothing is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from audio2face.errors import ConfigError
from audio2face.postprocess.base import (
    BindEnv,
    StatelessStep,
    StepContext,
    StepOptions,
    as_float32,
    load_named_json,
)
from audio2face.types import FloatArray

logger = logging.getLogger(__name__)


class OffsetOptions(StepOptions):
    """``presets``: inline ``{name: {channel: value}}`` or a file/directory path."""

    presets: dict[str, dict[str, float]] | str


def load_presets(options: OffsetOptions, env: BindEnv) -> dict[str, dict[str, float]]:
    """The preset table, read from disk when the options give a path."""
    if isinstance(options.presets, str):
        raw = load_named_json(options.presets, env)
        return OffsetOptions(presets=raw).presets  # type: ignore[return-value]
    return dict(options.presets)


class Offset(StatelessStep):
    """``out = x + preset[emotion]`` (a dense float32 row per preset)."""

    type_name = "offset"
    Options = OffsetOptions

    def __init__(self, options: OffsetOptions, input_names: Sequence[str], env: BindEnv):
        self.output_names = tuple(input_names)
        index = {n: i for i, n in enumerate(input_names)}
        self._rows: dict[str, np.ndarray] = {}
        for name, table in load_presets(options, env).items():
            row = np.zeros(len(input_names), dtype=np.float32)
            hits = [(index[ch], v) for ch, v in table.items() if ch in index]
            if table and not hits:
                raise ConfigError(f"offset preset {name!r} names none of the output channels")
            missing = len(table) - len(hits)
            if missing:
                logger.debug("offset preset %r: %d channels not in the rig", name, missing)
            for i, v in hits:
                row[i] = v
            self._rows[name] = row

    @property
    def emotions(self) -> frozenset[str]:
        return frozenset(self._rows)

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, len(self.output_names), step=self.type_name)
        row = self._rows.get(ctx.emotion) if ctx.emotion is not None else None
        return x.copy() if row is None else x + row
