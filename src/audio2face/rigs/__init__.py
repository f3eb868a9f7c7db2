"""Name sets of face rigs (ARKit 52, UniTalker 51, MMD, ...) shipped as package data.

A rig file is JSON: ``{"name": ..., "description": ..., "names": [...]}``.

Internal: part of the implementation, not of the public API (``audio2face/__init__.py``);
names here may change between releases.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

__all__ = ["ARKIT_52", "available_rigs", "load_rig"]


@cache
def load_rig(name: str) -> tuple[str, ...]:
    """Channel names of the built-in rig ``name`` (e.g. ``"arkit52"``)."""
    if name not in available_rigs():
        raise KeyError(f"unknown rig {name!r}; built-in rigs are {sorted(available_rigs())}")
    text = resources.files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["names"])


@cache
def available_rigs() -> frozenset[str]:
    return frozenset(
        p.name.removesuffix(".json")
        for p in resources.files(__package__).iterdir()
        if p.name.endswith(".json")
    )


ARKIT_52: tuple[str, ...] = load_rig("arkit52")
