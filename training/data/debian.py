"""Which installed Debian package each text file belongs to, from dpkg's own database.

The corpus's sentences come from files that Debian packages install (copyright files,
gettext catalogues; :mod:`training.data.texts`), so the set of installed packages used to
change the training text from machine to machine: installing podman between two builds
changed 1083 of 2485 clips. :class:`TextFiles` reads only the files of a lock
(:class:`TextLock`, ``--text-lock`` of :mod:`training.data.build`), so two machines
that have its packages, at its versions, plan the same corpus whatever else they carry.

dpkg lists every file a package installed in ``/var/lib/dpkg/info/<package>[:<arch>].list``
and each package's state and version in ``/var/lib/dpkg/status``; both are plain text, so
this reads them directly (``dpkg-query -S`` per file would take minutes for a build's
thousands of files).
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["TextFiles", "TextLock", "installed_versions", "owners"]


def installed_versions(root: Path = Path("/")) -> dict[str, str]:
    """``{package: version}`` of every package dpkg has installed under ``root``."""
    status = root / "var/lib/dpkg/status"
    out: dict[str, str] = {}
    try:
        text = status.read_text("utf-8", errors="replace")
    except OSError:
        return out
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep and not line[:1].isspace():
                fields[key] = value.strip()
        if "Package" in fields and fields.get("Status", "").endswith(" installed"):
            out[fields["Package"]] = fields.get("Version", "")
    return out


@lru_cache(maxsize=4)
def owners(root: Path = Path("/")) -> dict[str, frozenset[str]]:
    """Path (absolute, as installed) -> the packages that list it. Directories are listed
    by every package that puts files in them; a regular file by the one that ships it."""
    out: dict[str, set[str]] = {}
    for lst in sorted(glob.glob(str(root / "var/lib/dpkg/info/*.list"))):
        package = Path(lst).stem.split(":", 1)[0]  # libfoo1:amd64.list -> libfoo1
        try:
            lines = Path(lst).read_text("utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("/usr/share/"):  # the only tree the text sources read
                out.setdefault(line, set()).add(package)
    return {path: frozenset(pkgs) for path, pkgs in out.items()}


@dataclass(frozen=True)
class TextFiles:
    """The files the text sources may read: every match (``only`` None), or only those
    in ``only`` (absolute paths, as installed). ``root`` is the system's root (tests use
    a fake one)."""

    only: frozenset[str] | None = None
    root: Path = field(default=Path("/"))

    @property
    def _prefix(self) -> str:
        """``root`` as a prefix of installed paths ("" for the real system)."""
        return str(self.root).rstrip("/")

    def glob(self, pattern: str) -> list[str]:
        """Sorted paths matching the absolute ``pattern`` (as on the installed system,
        ``root`` prefixed), kept when in ``only``."""
        prefix = self._prefix
        found = sorted(p[len(prefix) :] for p in glob.glob(prefix + pattern))
        if self.only is not None:
            found = [p for p in found if p in self.only]
        return [prefix + p for p in found]

    def relative(self, path: str) -> str:
        """``path`` (as :meth:`glob` gives it) as installed, without ``root``."""
        prefix = self._prefix
        return path[len(prefix) :] if prefix and path.startswith(prefix) else path

    def package_of(self, path: str) -> str | None:
        """The package that installed ``path`` (as :meth:`glob` gives it), or None; the
        first by name when several list it."""
        rel = self.relative(path)
        table = owners(self.root)
        found = table.get(rel)
        if found is None:
            # A file reached through a symlinked directory (/usr/share/doc/libfoo-data ->
            # libfoo) is not listed itself: it belongs to the package that ships the link.
            # Files nobody lists (made by hand, or by a maintainer script) belong to no one.
            parent = str(Path(rel).parent)
            linked = Path(self._prefix + parent).is_symlink()
            found = table.get(parent) if linked else None
        return min(found) if found else None


class TextLock(BaseModel):
    """The files a corpus's text came from, and their packages: what ``--text-lock``
    of :mod:`training.data.build` reads, and ``--write-text-lock`` writes.

    ``files`` maps each path to its package; ``packages`` each package to the version
    that was installed. Reading exactly these files (not every file of the packages: the
    English prose reads only the first 400 copyright files of a machine) plans the same
    corpus wherever they are installed at those versions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: str = ""
    packages: dict[str, str]
    files: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> TextLock:
        """Read and check ``path``; ``ValueError`` with one line that says what is wrong."""
        try:
            lock = cls.model_validate(json.loads(path.read_text("utf-8")))
        except OSError as exc:
            raise ValueError(f"cannot read the text lock {path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the file"
            raise ValueError(f"{path}: {where}: {first['msg']}") from exc
        unknown = sorted(set(lock.files.values()) - set(lock.packages))
        if unknown:
            raise ValueError(f"{path}: files of packages that 'packages' does not list: {', '.join(unknown)}")
        return lock

    def dump(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(), indent=1, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")

    def check(self, installed: dict[str, str], root: Path = Path("/")) -> tuple[list[str], list[str], list[str]]:
        """(packages not installed, packages installed at another version, files of
        installed packages that are not there), each sorted."""
        missing = sorted(p for p in self.packages if p not in installed)
        moved = sorted(p for p, v in self.packages.items() if p in installed and installed[p] != v)
        prefix = str(root).rstrip("/")
        gone = sorted(
            f for f, p in self.files.items() if p in installed and not Path(prefix + f).exists()
        )
        return missing, moved, gone
