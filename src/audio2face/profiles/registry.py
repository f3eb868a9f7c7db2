"""Finding profiles by name: built-ins shipped in the package, then the operator's
``profile_dir`` (a user profile replaces a built-in of the same name).

The registry is told which engines are loaded (by the runtime), so it never calls a
profile available whose engine is not. Two rules for names (``docs/profiles.md``):

* :meth:`ProfileRegistry.require` (CLI, HTTP, protocol v2, the Python API): an empty
  name is the default; an unknown name, or a profile whose engine is not loaded, is
  refused with :class:`UnknownNameError` listing the usable profiles.
* :meth:`ProfileRegistry.resolve_v1` (the v1 WebSocket only): as ``require``, except
  that an unknown name that looks like the original service's avatar names
  (``KQ-default``: letters and digits joined by hyphens) falls back to the default
  profile, as the original did, with a warning.

Names are matched against the loaded table only, never used to build a path, so a
request cannot reach files.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from audio2face.errors import ConfigError, UnknownNameError
from audio2face.profiles.model import Profile, load_profile_file, validate_profile_name

logger = logging.getLogger(__name__)

__all__ = ["BUILTIN_DIR", "ProfileRegistry", "Resolution"]

BUILTIN_DIR = Path(str(resources.files(__package__).joinpath("builtin")))
"""Folder of the built-in profile files and their data."""

AVATAR_NAME = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+")
"""What the original service's avatar names look like (``KQ-default``, ``HT-default``)."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """Outcome of :meth:`ProfileRegistry.resolve_v1`: the profile to use, and whether
    (and why) it is not the one requested."""

    profile: Profile
    requested: str
    fell_back: bool = False
    reason: str | None = None


def _load_dir(directory: Path) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for path in sorted(directory.glob("*.toml")):
        profile = load_profile_file(path)
        if profile.name in profiles:
            raise ConfigError(f"profile {profile.name!r} defined twice in {directory}")
        profiles[profile.name] = profile
    return profiles


class ProfileRegistry:
    """All profiles of a service, by name and alias."""

    def __init__(
        self,
        *,
        engines: Collection[str],
        profile_dir: Path | None = None,
        default_profile: str = "arkit",
    ) -> None:
        """Load built-ins and ``profile_dir``; ``engines`` names the loaded engines.

        Raises :class:`ConfigError` for a bad profile file or default.
        """
        self.available_engines = frozenset(engines)
        self._profiles = _load_dir(BUILTIN_DIR)
        if profile_dir is not None:
            if not profile_dir.is_dir():
                raise ConfigError(f"profile_dir {profile_dir} is not a directory")
            for name, profile in _load_dir(profile_dir).items():
                if name in self._profiles:
                    logger.info("user profile %r replaces the built-in one", name)
                self._profiles[name] = profile
        self._aliases: dict[str, str] = {}
        for profile in self._profiles.values():
            for alias in profile.aliases:
                if alias in self._profiles:
                    raise ConfigError(f"alias {alias!r} of {profile.name!r} is a profile name")
                # User profiles load last, so their aliases win over built-in ones.
                self._aliases[alias] = profile.name
        try:
            self.default = self.get(default_profile)
        except ConfigError as exc:
            raise ConfigError(f"default_profile: {exc.reason}") from exc
        if not self.is_available(self.default):
            raise ConfigError(
                f"default profile {self.default.name!r} needs engine {self.default.engine!r}, "
                "which is not available"
            )

    def names(self) -> list[str]:
        """Profile names, sorted (aliases not included)."""
        return sorted(self._profiles)

    def aliases(self) -> dict[str, str]:
        """``{alias: profile name}``."""
        return dict(self._aliases)

    def is_available(self, profile: Profile) -> bool:
        """Whether this service can run the profile's engine."""
        return profile.engine in self.available_engines

    def get(self, name: str) -> Profile:
        """The profile called ``name`` (or aliased so). Raises :class:`ConfigError`."""
        try:
            validate_profile_name(name)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        key = self._aliases.get(name, name)
        if key not in self._profiles:
            raise ConfigError(f"unknown profile {name!r}; profiles are {self.names()}")
        return self._profiles[key]

    def usable(self) -> list[str]:
        """Names of the profiles whose engine is loaded, sorted."""
        return [n for n in self.names() if self.is_available(self._profiles[n])]

    def require(self, name: str | None) -> Profile:
        """The profile called ``name`` (empty: the default); raises
        :class:`UnknownNameError` naming the usable profiles otherwise."""
        if not name:
            return self.default
        try:
            profile = self.get(name)
        except ConfigError:
            raise UnknownNameError("profile", name, self.usable()) from None
        if not self.is_available(profile):
            raise UnknownNameError(
                "profile", name, self.usable(),
                hint=f"{profile.name!r} needs the {profile.engine!r} engine, which is not loaded",
            )  # fmt: skip
        return profile

    def resolve_v1(self, name: str | None) -> Resolution:
        """Protocol v1's rule: :meth:`require`, but an unknown avatar-like name falls back
        to the default profile (logged), as the original service did."""
        requested = name or ""
        try:
            return Resolution(self.require(requested), requested)
        except UnknownNameError as exc:
            if requested in self._profiles or requested in self._aliases:
                raise  # a real profile whose engine is missing: never silently replaced
            if not AVATAR_NAME.fullmatch(requested):
                raise
            return self._fallback(requested, exc.reason)

    def _fallback(self, requested: str, reason: str) -> Resolution:
        logger.warning(
            "profile %r not usable (%s); falling back to %r", requested[:80], reason, self.default.name
        )
        return Resolution(self.default, requested, fell_back=True, reason=reason)
