"""Viseme tables: phone -> viseme -> ARKit-52 pose, plus coarticulation dominance.

The tables are package data (``visemes.json``), validated with pydantic on load, and
compiled once into dense numpy arrays for :mod:`.synth`:

* every unified phone maps to a viseme; diphthongs may instead be split into two
  viseme targets (``AY`` = ``AA`` then ``IY``), because one static pose per diphthong
  hides the glide that viewers read;
* a viseme's ``pose`` lists its nonzero ARKit weights (Apple spelling);
* ARKit channels are partitioned into articulator *groups* (jaw, lips, round, spread,
  tongue). Each viseme has a Cohen-Massaro dominance magnitude per group, and each
  group its own anticipation/carry-over time constants. Low dominance on a group
  means "this phone does not care": e.g. ``T`` barely constrains lip rounding, so
  the rounding of a following ``UW`` spreads through it (anticipatory rounding);
* ``closure`` names the visemes whose lips must seal (bilabials): the synthesiser
  enforces zero aperture there instead of hoping blending gets there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from audio2face.engines.phonemes.phoneset import PHONES
from audio2face.errors import ConfigError
from audio2face.rigs import ARKIT_52

__all__ = ["VisemeTables", "VisemeTablesModel", "load_viseme_tables"]

_ARKIT_SET = frozenset(ARKIT_52)


class GroupModel(BaseModel):
    """An articulator group: the channels it owns and its dominance time constants."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    channels: list[str] = Field(min_length=1)
    anticipation_s: float = Field(gt=0, le=0.5)
    carryover_s: float = Field(gt=0, le=0.5)


class VisemeModel(BaseModel):
    """One viseme: nonzero ARKit weights and per-group dominance magnitudes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pose: dict[str, float]
    dominance: dict[str, float]


class DiphthongModel(BaseModel):
    """A phone rendered as two viseme targets; ``split`` is the first target's share."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    targets: tuple[str, str]
    split: float = Field(gt=0.1, lt=0.9)


class ClosureModel(BaseModel):
    """Visemes whose lips must seal, held at least ``min_hold_s`` around their centre."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    visemes: list[str]
    min_hold_s: float = Field(ge=0, le=0.2)
    release_s: float = Field(gt=0, le=0.2)


class VisemeTablesModel(BaseModel):
    """The whole ``visemes.json`` document, cross-checked on load."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str = ""
    shape_exponent: float = Field(ge=1.0, le=4.0)
    core_fraction: float = Field(ge=0.0, le=1.0)
    groups: dict[str, GroupModel]
    closure: ClosureModel
    diphthongs: dict[str, DiphthongModel] = {}
    phone_to_viseme: dict[str, str]
    visemes: dict[str, VisemeModel]

    @model_validator(mode="after")
    def _cross_check(self) -> VisemeTablesModel:
        owned: dict[str, str] = {}
        for gname, group in self.groups.items():
            for ch in group.channels:
                if ch not in _ARKIT_SET:
                    raise ValueError(f"group {gname!r}: {ch!r} is not an ARKit-52 name")
                if ch in owned:
                    raise ValueError(f"channel {ch!r} is in groups {owned[ch]!r} and {gname!r}")
                owned[ch] = gname
        missing = set(PHONES) - set(self.phone_to_viseme)
        if missing:
            raise ValueError(f"phones without a viseme: {sorted(missing)}")
        extra = set(self.phone_to_viseme) - set(PHONES)
        if extra:
            raise ValueError(f"unknown phones {sorted(extra)}; allowed: {PHONES}")
        for phone, vis in self.phone_to_viseme.items():
            if vis not in self.visemes:
                raise ValueError(f"phone {phone!r} maps to unknown viseme {vis!r}")
        for vname, model in self.visemes.items():
            for ch, w in model.pose.items():
                if ch not in owned:
                    raise ValueError(f"viseme {vname!r}: {ch!r} is not in any group")
                if not 0.0 <= w <= 1.0:
                    raise ValueError(f"viseme {vname!r}: weight {ch}={w} outside [0, 1]")
            for g, a in model.dominance.items():
                if g not in self.groups:
                    raise ValueError(f"viseme {vname!r}: unknown group {g!r}")
                if not 0.0 < a <= 1.0:
                    raise ValueError(f"viseme {vname!r}: dominance {g}={a} outside (0, 1]")
        for phone, d in self.diphthongs.items():
            if phone not in PHONES:
                raise ValueError(f"diphthong {phone!r} is not a unified phone")
            for vis in d.targets:
                if vis not in self.visemes:
                    raise ValueError(f"diphthong {phone!r}: unknown viseme {vis!r}")
        for vis in self.closure.visemes:
            if vis not in self.visemes:
                raise ValueError(f"closure: unknown viseme {vis!r}")
        return self


DEFAULT_DOMINANCE = 0.3
"""Dominance of a viseme on a group it does not list: it mildly prefers its pose."""


@dataclass(frozen=True, eq=False)
class VisemeTables:
    """Compiled tables. Arrays are read-only; index ``v`` runs over ``viseme_names``."""

    viseme_names: tuple[str, ...]
    poses: npt.NDArray[np.float32]  # [V, 52] ARKit weights
    dominance: npt.NDArray[np.float32]  # [V, G] magnitudes
    channel_group: npt.NDArray[np.int64]  # [52] group index, -1 for channels no viseme drives
    anticipation_s: npt.NDArray[np.float64]  # [G]
    carryover_s: npt.NDArray[np.float64]  # [G]
    group_names: tuple[str, ...]
    shape_exponent: float
    core_fraction: float
    closure: npt.NDArray[np.bool_]  # [V] lips must seal
    closure_hold_s: float
    closure_release_s: float
    phone_targets: dict[str, tuple[tuple[int, float], ...]]
    """phone -> ((viseme index, share of the phone's duration), ...)."""

    @classmethod
    def from_model(cls, m: VisemeTablesModel) -> VisemeTables:
        """Compile a validated document into arrays."""
        vnames = tuple(m.visemes)
        gnames = tuple(m.groups)
        vid = {v: i for i, v in enumerate(vnames)}
        col = {n: i for i, n in enumerate(ARKIT_52)}
        poses = np.zeros((len(vnames), len(ARKIT_52)), np.float32)
        dom = np.full((len(vnames), len(gnames)), DEFAULT_DOMINANCE, np.float32)
        for i, v in enumerate(vnames):
            for ch, w in m.visemes[v].pose.items():
                poses[i, col[ch]] = w
            for g, a in m.visemes[v].dominance.items():
                dom[i, gnames.index(g)] = a
        chg = np.full(len(ARKIT_52), -1, np.int64)
        for gi, g in enumerate(gnames):
            for ch in m.groups[g].channels:
                chg[col[ch]] = gi
        targets: dict[str, tuple[tuple[int, float], ...]] = {}
        for p in PHONES:
            if p in m.diphthongs:
                d = m.diphthongs[p]
                targets[p] = ((vid[d.targets[0]], d.split), (vid[d.targets[1]], 1.0 - d.split))
            else:
                targets[p] = ((vid[m.phone_to_viseme[p]], 1.0),)
        for frozen in (poses, dom, chg):
            frozen.setflags(write=False)
        return cls(
            viseme_names=vnames,
            poses=poses,
            dominance=dom,
            channel_group=chg,
            anticipation_s=np.array([m.groups[g].anticipation_s for g in gnames]),
            carryover_s=np.array([m.groups[g].carryover_s for g in gnames]),
            group_names=gnames,
            shape_exponent=m.shape_exponent,
            core_fraction=m.core_fraction,
            closure=np.array([v in m.closure.visemes for v in vnames]),
            closure_hold_s=m.closure.min_hold_s,
            closure_release_s=m.closure.release_s,
            phone_targets=targets,
        )


@cache
def load_viseme_tables(path: str | None = None) -> VisemeTables:
    """Load and validate the viseme tables (the packaged ``visemes.json`` by default).

    Raises :class:`~audio2face.errors.ConfigError` naming the first problem.
    """
    if path is None:
        text = resources.files(__package__).joinpath("visemes.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    try:
        model = VisemeTablesModel.model_validate(json.loads(text))
    except (ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"invalid viseme tables {path or 'visemes.json'}: {exc}") from exc
    return VisemeTables.from_model(model)
