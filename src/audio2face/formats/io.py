"""Save and load :class:`~audio2face.types.FrameBatch` by file extension.

* ``.npz``: exactly the keys ``names`` (str array), ``fps`` (float) and ``values``
  (float32 ``[frames, channels]``).
* ``.json``: ``{"names": [...], "fps": 30.0, "values": [[...], ...]}``.
* ``.csv``: the Live Link Face column layout (ARKit names only), at the batch's rate.
* ``.vmd``: an MMD motion file of morph keyframes (30 fps; names fit Shift-JIS).

:func:`check_output` says whether a path can take a profile's frames *before* any audio
is animated, so a wrong extension costs the user nothing.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio2face.formats.livelink import csv_name_problem, read_livelink_csv, write_livelink_csv
from audio2face.formats.vmd import DEFAULT_VMD, VmdOptions, load_vmd, vmd_name_problems, write_vmd
from audio2face.types import FrameBatch

__all__ = [
    "DEFAULT_SAVE",
    "SaveOptions",
    "check_output",
    "load_frames",
    "save_frames",
    "supported_extensions",
]


@dataclass(frozen=True, slots=True)
class SaveOptions:
    """Per-format settings of :func:`save_frames`."""

    vmd: VmdOptions = DEFAULT_VMD


DEFAULT_SAVE = SaveOptions()


def _save_npz(path: Path, batch: FrameBatch, options: SaveOptions) -> None:
    with open(path, "wb") as f:
        np.savez(
            f,
            names=np.array(batch.names, dtype=str),
            fps=np.float64(batch.fps),
            values=np.asarray(batch.values, dtype=np.float32),
        )


def _load_npz(path: Path) -> FrameBatch:
    with np.load(path, allow_pickle=False) as data:
        return FrameBatch(
            first_frame=0,
            names=tuple(str(n) for n in data["names"]),
            values=data["values"].astype(np.float32),
            fps=float(data["fps"]),
        )


def _save_json(path: Path, batch: FrameBatch, options: SaveOptions) -> None:
    doc = {
        "names": list(batch.names),
        "fps": batch.fps,
        "values": np.round(batch.values.astype(np.float64), 6).tolist(),
    }
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def _load_json(path: Path) -> FrameBatch:
    doc = json.loads(path.read_text(encoding="utf-8"))
    names = tuple(doc["names"])
    values = np.asarray(doc["values"], dtype=np.float32).reshape(-1, len(names))
    return FrameBatch(first_frame=0, names=names, values=values, fps=float(doc["fps"]))


def _save_csv(path: Path, batch: FrameBatch, options: SaveOptions) -> None:
    write_livelink_csv(path, batch)


def _save_vmd(path: Path, batch: FrameBatch, options: SaveOptions) -> None:
    write_vmd(path, batch, options.vmd)


def _any_names(names: Sequence[str]) -> str | None:
    return None


def _csv_names(names: Sequence[str]) -> str | None:
    return csv_name_problem(tuple(names))


def _vmd_names(names: Sequence[str]) -> str | None:
    problems = vmd_name_problems(names)
    return problems[0] if problems else None


@dataclass(frozen=True, slots=True)
class _Format:
    save: Callable[[Path, FrameBatch, SaveOptions], None]
    load: Callable[[Path], FrameBatch]
    names_problem: Callable[[Sequence[str]], str | None]
    """Why a profile's channel names cannot be written in this format (``None``: fine)."""


_FORMATS: dict[str, _Format] = {
    ".npz": _Format(_save_npz, _load_npz, _any_names),
    ".json": _Format(_save_json, _load_json, _any_names),
    ".csv": _Format(_save_csv, read_livelink_csv, _csv_names),
    ".vmd": _Format(_save_vmd, load_vmd, _vmd_names),
}


def supported_extensions() -> list[str]:
    return sorted(_FORMATS)


def _format_of(path: Path, action: str) -> _Format:
    found = _FORMATS.get(path.suffix.lower())
    if found is None:
        raise ValueError(
            f"cannot {action} {path.name!r}: unknown extension {path.suffix or '(none)'!r}; "
            f"use one of {supported_extensions()}"
        )
    return found


def check_output(path: str | Path, names: Sequence[str] | None, fps: float | None = None) -> None:
    """Raise ``ValueError`` (one line: what is wrong, what to do) unless frames with
    ``names`` at ``fps`` can be written to ``path``. Call it before animating anything:
    it checks the extension, the format's demands on the names (CSV: ARKit; VMD: names
    that fit Shift-JIS), the frame rate, and that the folder exists and is writable.
    ``names=None``: not known yet (a server will say), so only the rest is checked."""
    path = Path(path)
    fmt = _format_of(path, "write")
    problem = fmt.names_problem(names) if names is not None else None
    if problem is not None:
        raise ValueError(f"cannot write {path.name!r}: {problem}")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"cannot write {path.name!r}: fps must be > 0, got {fps}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"cannot write {str(path)!r}: folder {str(folder)!r} is not writable")
    if path.is_dir():
        raise ValueError(f"cannot write {str(path)!r}: it is a folder; give a file name")


def save_frames(path: str | Path, batch: FrameBatch, options: SaveOptions = DEFAULT_SAVE) -> None:
    """Write ``batch`` in the format named by ``path``'s extension."""
    path = Path(path)
    _format_of(path, "write").save(path, batch, options)


def load_frames(path: str | Path) -> FrameBatch:
    """Read frames written by :func:`save_frames` (a ``.vmd`` as dense 30 fps frames)."""
    path = Path(path)
    return _format_of(path, "read").load(path)
