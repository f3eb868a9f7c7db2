"""Profile data: the validated TOML model (:class:`ProfileSpec`) and the loaded
:class:`Profile` that builds chains.

A profile file::

    name = "my-avatar"            # defaults to the file name; [A-Za-z0-9_.-], no ".."
    engine = "default"            # "default" | "unitalker" | "phonemes"
    fps = 30
    dtype = "float16"             # wire dtype: "float16" | "float32"
    rig = "mmd"                   # or output_names = [...]; the chain's output is put
                                  # in this order (names it lacks are 0)
    aliases = ["KQ-default"]
    [[steps]]
    type = "rename"
    map = "mmd_arkit_mapping.json"   # data paths are relative to this file

Data paths may point at the original service's files (``mmd_arkit_mapping.json``,
``blendshapes_offset/``, ``blink_anim/``) to reproduce its output.
"""

from __future__ import annotations

import re
import threading
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audio2face.errors import ConfigError
from audio2face.postprocess import BindEnv, Chain, build_chain, parse_step
from audio2face.postprocess.custom_blink import CustomBlink, CustomBlinkOptions, load_clips
from audio2face.postprocess.offset import Offset, OffsetOptions, load_presets
from audio2face.postprocess.rename import Rename, RenameOptions
from audio2face.rigs import available_rigs, load_rig

__all__ = ["ENGINE_INPUT_RIGS", "Profile", "ProfileSpec", "load_profile_file", "validate_profile_name"]

EngineName = Literal["default", "unitalker", "phonemes"]
ENGINE_INPUT_RIGS: dict[str, str] = {"default": "arkit52", "unitalker": "unitalker51", "phonemes": "arkit52"}
"""The rig an engine's raw frames are in, unless a profile says ``input_rig``."""

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def validate_profile_name(name: str) -> str:
    """Return ``name`` if it is a safe profile name, else raise :class:`ValueError`.

    Allowed: 1 to 64 of ``[A-Za-z0-9_.-]``, not starting with ``.`` and without
    ``..``, so that no name can reach outside a profile directory.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.startswith(".") or ".." in name:
        raise ValueError(
            f"invalid profile name {name!r}: use 1-64 of A-Z a-z 0-9 _ . -, "
            "not starting with '.' and without '..'"
        )
    return name


class ProfileSpec(BaseModel):
    """A profile file, validated. See the module docstring for the format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    engine: EngineName = "default"
    fps: float = Field(30.0, gt=0.0, le=240.0)
    dtype: Literal["float16", "float32"] = "float32"
    input_rig: str | None = None
    rig: str | None = None
    output_names: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()
    steps: tuple[dict[str, Any], ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return validate_profile_name(v)

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(validate_profile_name(a) for a in v)

    @field_validator("rig", "input_rig")
    @classmethod
    def _rig(cls, v: str | None) -> str | None:
        if v is not None and v not in available_rigs():
            raise ValueError(f"unknown rig {v!r}; rigs are {sorted(available_rigs())}")
        return v


@dataclass(frozen=True, eq=False)
class Profile:
    """A loaded profile: its spec plus the folder its data paths are relative to.

    Shared by every stream; chains are built once per input name set and cached.
    """

    spec: ProfileSpec
    base_dir: Path
    source: str
    _chains: dict[tuple[str, ...], Chain] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        """Profile name."""
        return self.spec.name

    @property
    def engine(self) -> str:
        """Engine the profile runs on: "default", "unitalker" or "phonemes"."""
        return self.spec.engine

    @property
    def fps(self) -> float:
        """Output frame rate."""
        return self.spec.fps

    @property
    def dtype(self) -> str:
        """Wire dtype, "float16" or "float32"."""
        return self.spec.dtype

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other names that resolve to this profile."""
        return self.spec.aliases

    @property
    def input_names(self) -> tuple[str, ...]:
        """Channel names the profile expects from its engine (by default, the engine's rig)."""
        return load_rig(self.spec.input_rig or ENGINE_INPUT_RIGS[self.spec.engine])

    @property
    def declared_output_names(self) -> tuple[str, ...] | None:
        """Output order the profile promises (``output_names`` or ``rig``), if any."""
        if self.spec.output_names is not None:
            return self.spec.output_names
        return load_rig(self.spec.rig) if self.spec.rig else None

    def build_chain(self, input_names: Sequence[str] | None = None) -> Chain:
        """The profile's chain bound to ``input_names`` (default :attr:`input_names`).

        If the profile declares output names that differ from what its steps give, a
        final reorder step puts them in that order (names the steps lack are 0).
        """
        key = tuple(input_names) if input_names is not None else self.input_names
        with self._lock:
            chain = self._chains.get(key)
            if chain is None:
                chain = self._build(key)
                self._chains[key] = chain
        return chain

    def _build(self, input_names: tuple[str, ...]) -> Chain:
        env = BindEnv(fps=self.spec.fps, base_dir=self.base_dir)
        try:
            chain = build_chain(self.spec.steps, input_names, env)
            declared = self.declared_output_names
            if declared is not None and chain.output_names != declared:
                have = {n.casefold() for n in chain.output_names}
                reorder = Rename(
                    RenameOptions(map={n: (n if n.casefold() in have else None) for n in declared}),
                    chain.output_names,
                    env,
                )
                chain = Chain([*chain.steps, reorder], input_names, env.fps)
        except ConfigError as exc:
            raise ConfigError(f"profile {self.name!r} ({self.source}): {exc.reason}") from exc
        return chain

    @property
    def emotions(self) -> tuple[str, ...]:
        """Emotion names (``offset_name`` values) the profile reacts to, sorted.

        Other names are treated as neutral, with a warning logged once per chain.
        """
        env = BindEnv(fps=self.spec.fps, base_dir=self.base_dir)
        names: set[str] = set()
        for spec in self.spec.steps:
            cls, options = parse_step(spec)
            if cls is Offset and isinstance(options, OffsetOptions):
                names |= set(load_presets(options, env))
            elif cls is CustomBlink and isinstance(options, CustomBlinkOptions):
                names |= set(load_clips(options, env)) - {options.default_clip}
        return tuple(sorted(names))


def parse_profile(data: dict[str, Any], *, base_dir: Path, source: str) -> Profile:
    """Validate a profile table (from TOML) and its step options."""
    try:
        spec = ProfileSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"profile {source}: {exc}") from exc
    if spec.rig is not None and spec.output_names is not None:
        raise ConfigError(f"profile {source}: give either rig or output_names, not both")
    for step in spec.steps:
        try:
            parse_step(step)
        except ConfigError as exc:
            raise ConfigError(f"profile {source}: {exc.reason}") from exc
    return Profile(spec=spec, base_dir=base_dir, source=source)


def load_profile_file(path: Path) -> Profile:
    """Load and validate one profile TOML file; ``name`` defaults to the file's stem."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read profile {path}: {exc}") from exc
    data.setdefault("name", path.stem)
    return parse_profile(data, base_dir=path.resolve().parent, source=str(path))
