"""Emotion offset: add a per-emotion preset to the channels, chosen per chunk by the
request's emotion (``offset_name``). No clipping, like the original; skipped when the
chunk has no emotion or one without a preset.

Presets come inline (``{preset: {channel: offset}}``), from one JSON file holding that
table, or from a directory of ``<preset>.json`` files (the original's
``blendshapes_offset/`` layout). Channels a preset names but the rig lacks are ignored
(an avatar may not have every morph); a preset that matches nothing is an error.

Timed emotion keys (:mod:`audio2face.postprocess.emotion_keys`): once a stream has
keys, they drive this step instead of the chunk's emotion. A key's name is a base
emotion whose presets carry intensity levels (``happiness`` for ``happiness_1`` ..
``happiness_4``: intensity ``j / L`` gives level ``j`` of ``L``, in between is
interpolated linearly, 0 is no offset) or a preset name (scaled by the intensity).
Keys cross-fade, so during a ramp two emotions' offsets are summed.
"""

from __future__ import annotations

import logging
import re
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
from audio2face.postprocess.emotion_keys import EmotionMix
from audio2face.types import FloatArray

logger = logging.getLogger(__name__)

_LEVEL = re.compile(r"^(.*)_(\d+)$")


class OffsetOptions(StepOptions):
    """``presets``: inline ``{name: {channel: value}}`` or a file/directory path."""

    presets: dict[str, dict[str, float]] | str


def load_presets(options: OffsetOptions, env: BindEnv) -> dict[str, dict[str, float]]:
    """The preset table, read from disk when the options give a path."""
    if isinstance(options.presets, str):
        raw = load_named_json(options.presets, env)
        return OffsetOptions(presets=raw).presets  # type: ignore[return-value]  # validated: a dict now
    return dict(options.presets)


class Offset(StatelessStep):
    """``out = x + preset[emotion]`` (a dense float32 row per preset)."""

    type_name = "offset"
    feature = "emotion"
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
        # Intensity ladders for timed keys: base -> [0-row, level rows in level order].
        by_base: dict[str, list[tuple[int, str]]] = {}
        for name in self._rows:
            m = _LEVEL.match(name)
            if m:
                by_base.setdefault(m.group(1), []).append((int(m.group(2)), name))
        self._ladders: dict[str, np.ndarray] = {
            base: np.stack([np.zeros(len(input_names), np.float32)]
                           + [self._rows[n] for _, n in sorted(levels)])
            for base, levels in by_base.items()
        }  # fmt: skip

    @property
    def emotions(self) -> frozenset[str]:
        return frozenset(self._rows)

    @property
    def keyed_emotions(self) -> frozenset[str]:
        """Names a timed key may use: base emotions with levels, and preset names."""
        return frozenset(self._rows) | frozenset(self._ladders)

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, len(self.output_names), step=self.type_name)
        if ctx.emotion_track is not None:
            return x + self.keyed(ctx.emotion_track.mix(ctx.frame_index, x.shape[0]))
        row = self._rows.get(ctx.emotion) if ctx.emotion is not None else None
        return x.copy() if row is None else x + row

    def keyed(self, mix: EmotionMix) -> FloatArray:
        """The summed offset rows ``[n, C]`` of a per-frame emotion mix."""
        n = mix.weights.shape[0]
        total = np.zeros((n, len(self.output_names)), np.float32)
        for j, name in enumerate(mix.names):
            w = mix.weights[:, j]
            ladder = self._ladders.get(name)
            if ladder is not None:
                top = ladder.shape[0] - 1
                pos = np.clip(w, 0.0, 1.0) * top
                lo = np.minimum(np.floor(pos).astype(np.intp), top - 1)
                frac = (pos - lo)[:, None].astype(np.float32)
                total += ladder[lo] * (1.0 - frac) + ladder[lo + 1] * frac
            elif name in self._rows:
                total += w[:, None] * self._rows[name]
        return total
