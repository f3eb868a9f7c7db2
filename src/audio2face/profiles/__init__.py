"""Profiles: which engine, which postprocess chain, which output names, fps and dtype.

Built-in profiles (TOML in ``builtin/``): ``arkit`` (default), ``mmd`` (aliases
``KQ-default``, ``Ani-default``, ``HT-default``, ``FNN-default``, ``KL-default``,
``NXD-default``), ``unitalker`` and ``vrm``. Operators add or replace profiles with
TOML files in ``settings.profile_dir``.

Typical use by a session::

    registry = ProfileRegistry(settings)
    profile = registry.resolve(request.profile_name).profile
    chain = profile.build_chain(engine.output_names)   # cached, shared
    stream = chain.new_stream()
    out = stream(raw_frames, emotion=request.offset_name or None)

Internal: part of the implementation, not of the public API (``audio2face/__init__.py``);
names here may change between releases.
"""

from __future__ import annotations

from audio2face.profiles.model import (
    ENGINE_INPUT_RIGS,
    Profile,
    ProfileSpec,
    load_profile_file,
    validate_profile_name,
)
from audio2face.profiles.registry import BUILTIN_DIR, ProfileRegistry, Resolution

__all__ = [
    "BUILTIN_DIR",
    "ENGINE_INPUT_RIGS",
    "Profile",
    "ProfileRegistry",
    "ProfileSpec",
    "Resolution",
    "load_profile_file",
    "validate_profile_name",
]
