"""Finding profiles by name: built-ins shipped in the package, then the operator's
``settings.profile_dir`` (a user profile replaces a built-in of the same name).

:meth:`ProfileRegistry.resolve` never fails: an empty name means the default profile;
an unknown or invalid name, or a profile whose engine is not available, falls back to
the default with a warning. Names are matched against the loaded table only, never
used to build a path, so a request cannot reach files.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from audio2face.errors import ConfigError
from audio2face.profiles.model import Profile, load_profile_file, validate_profile_name
from audio2face.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["BUILTIN_DIR", "ProfileRegistry", "Resolution"]

BUILTIN_DIR = Path(str(resources.files(__package__).joinpath("builtin")))
"""Folder of the built-in profile files and their data."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """Outcome of :meth:`ProfileRegistry.resolve`: the profile to use, and whether
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
        self, settings: Settings | None = None, *, available_engines: Collection[str] | None = None
    ) -> None:
        """Load built-ins and ``settings.profile_dir``.

        ``available_engines`` names the engines this service can run; by default
        "default" and "phonemes", plus "unitalker" when ``settings.unitalker_model`` is
        set. Raises :class:`ConfigError` for a bad profile file or default.
        """
        settings = settings or Settings()
        if available_engines is None:
            available_engines = {"default", "phonemes"}
            if settings.unitalker_model is not None:
                available_engines |= {"unitalker"}
        self.available_engines = frozenset(available_engines)
        self._profiles = _load_dir(BUILTIN_DIR)
        if settings.profile_dir is not None:
            if not settings.profile_dir.is_dir():
                raise ConfigError(f"profile_dir {settings.profile_dir} is not a directory")
            for name, profile in _load_dir(settings.profile_dir).items():
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
            self.default = self.get(settings.default_profile)
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

    def resolve(self, name: str | None) -> Resolution:
        """The profile to use for a request naming ``name``; never raises.

        Empty or ``None``: the default, silently. Unknown, invalid or unavailable:
        the default, with a warning on this module's logger.
        """
        requested = name or ""
        if not requested:
            return Resolution(self.default, requested)
        try:
            profile = self.get(requested)
        except ConfigError as exc:
            return self._fallback(requested, exc.reason)
        if not self.is_available(profile):
            return self._fallback(
                requested, f"profile {profile.name!r} needs engine {profile.engine!r}, not available"
            )
        return Resolution(profile, requested)

    def _fallback(self, requested: str, reason: str) -> Resolution:
        logger.warning(
            "profile %r not usable (%s); falling back to %r", requested[:80], reason, self.default.name
        )
        return Resolution(self.default, requested, fell_back=True, reason=reason)
