"""Rename / retarget: build a new channel set from the input channels.

The map is ``{output_name: source}`` and its key order is the output order. A source is
an input name (copied), ``null`` (always 0, like the original's unmapped channels), or
a table ``{input_name: weight}`` (a weighted sum, for retargets one name cannot
express). The map may be inline or the path of a JSON file, e.g. the original's
``mmd_arkit_mapping.json``. Keys are kept byte for byte (one original key has a
leading space).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from audio2face.errors import ConfigError
from audio2face.postprocess.base import (
    BindEnv,
    StatelessStep,
    StepContext,
    StepOptions,
    as_float32,
    channel_indices,
    load_json_path,
)
from audio2face.types import FloatArray

Source = str | dict[str, float] | None


class RenameOptions(StepOptions):
    """``map``: inline ``{output: source}`` or a JSON file path (relative to the profile)."""

    map: dict[str, Source] | str


def load_map(options: RenameOptions, env: BindEnv) -> dict[str, Source]:
    """The name map, read from its file when the options give a path."""
    if isinstance(options.map, str):
        path, data = load_json_path(options.map, env)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a rename map must be a JSON object")
        return RenameOptions(map=data).map  # type: ignore[return-value]  # validated: a dict now
    return dict(options.map)


class Rename(StatelessStep):
    """Gather (and optionally mix) input channels into the map's output channels."""

    type_name = "rename"
    Options = RenameOptions

    def __init__(self, options: RenameOptions, input_names: Sequence[str], env: BindEnv):
        mapping = load_map(options, env)
        if not mapping:
            raise ConfigError("step 'rename': the map is empty")
        self.output_names = tuple(mapping)
        self._n_in = len(input_names)
        copy_out: list[int] = []
        copy_in: list[str] = []
        self._mixes: list[tuple[int, np.ndarray, np.ndarray]] = []
        for j, source in enumerate(mapping.values()):
            if isinstance(source, str):
                copy_out.append(j)
                copy_in.append(source)
            elif isinstance(source, Mapping) and source:
                idx = channel_indices(source, input_names, step=self.type_name)
                weights = np.array(list(source.values()), dtype=np.float32)
                self._mixes.append((j, np.array(idx), weights))
        self._copy_out = np.array(copy_out, dtype=np.intp)
        self._copy_in = np.array(
            channel_indices(copy_in, input_names, step=self.type_name), dtype=np.intp
        )

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        x = as_float32(frames, self._n_in, step=self.type_name)
        out = np.zeros((x.shape[0], len(self.output_names)), dtype=np.float32)
        out[:, self._copy_out] = x[:, self._copy_in]
        for j, idx, w in self._mixes:
            out[:, j] = x[:, idx] @ w
        return out
