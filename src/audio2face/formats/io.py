"""Save and load :class:`~audio2face.types.FrameBatch` as .npz, .json or .csv.

* ``.npz``: exactly the keys ``names`` (str array), ``fps`` (float) and ``values``
  (float32 ``[frames, channels]``).
* ``.json``: ``{"names": [...], "fps": 30.0, "values": [[...], ...]}``.
* ``.csv``: the Live Link Face column layout (ARKit profiles only).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audio2face.formats.livelink import read_livelink_csv, write_livelink_csv
from audio2face.types import FrameBatch


def _save_npz(path: Path, batch: FrameBatch) -> None:
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


def _save_json(path: Path, batch: FrameBatch) -> None:
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


_SAVERS: dict[str, Callable[[Path, FrameBatch], None]] = {
    ".npz": _save_npz,
    ".json": _save_json,
    ".csv": write_livelink_csv,
}
_LOADERS: dict[str, Callable[[Path], FrameBatch]] = {
    ".npz": _load_npz,
    ".json": _load_json,
    ".csv": read_livelink_csv,
}


def supported_extensions() -> list[str]:
    return sorted(_SAVERS)


def save_frames(path: str | Path, batch: FrameBatch) -> None:
    """Write ``batch`` in the format named by ``path``'s extension."""
    path = Path(path)
    saver = _SAVERS.get(path.suffix.lower())
    if saver is None:
        raise ValueError(
            f"cannot write {path.name!r}: unknown extension; use one of {supported_extensions()}"
        )
    saver(path, batch)


def load_frames(path: str | Path) -> FrameBatch:
    """Read frames written by :func:`save_frames`."""
    path = Path(path)
    loader = _LOADERS.get(path.suffix.lower())
    if loader is None:
        raise ValueError(
            f"cannot read {path.name!r}: unknown extension; use one of {supported_extensions()}"
        )
    return loader(path)
