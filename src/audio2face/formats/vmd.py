"""MikuMikuDance motion files (``.vmd``): morph keyframes, written and read back.

Layout (little-endian), as the format is commonly described:

* header: 30 bytes ``"Vocaloid Motion Data 0002"`` zero-padded, then the model name in
  20 bytes of Shift-JIS (MMD applies a motion to any model; the name is informative);
* bone keyframes: ``uint32`` count, 111 bytes each (none written here);
* morph keyframes: ``uint32`` count, then per keyframe the morph name in 15 bytes of
  Shift-JIS, the frame number ``uint32`` (30 per second) and the weight ``float32``;
* camera, light, self-shadow and IK/visibility sections: a ``uint32`` count each (0).

Names longer than their field are cut at a character boundary, as MMD itself does when
it saves; MMD matches a model's morphs on the cut name. MMD interpolates morph weights
linearly between keyframes, so a keyframe whose neighbours hold the same weight adds
nothing: :func:`thin_keyframes` drops those (the first and last frame always stay).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio2face.frames import resample_frames
from audio2face.types import FloatArray, FrameBatch

__all__ = [
    "DEFAULT_VMD",
    "VMD_FPS",
    "VmdMotion",
    "VmdOptions",
    "encode_name",
    "read_vmd",
    "thin_keyframes",
    "vmd_name_problems",
    "write_vmd",
]

VMD_FPS = 30.0
"""MMD's timeline runs at 30 frames per second."""
ENCODING = "cp932"
"""Shift-JIS as Windows (and so MMD) writes it: a superset of plain ``shift_jis``."""
MAGIC = b"Vocaloid Motion Data 0002"
HEADER_BYTES = 30
MODEL_NAME_BYTES = 20
MORPH_NAME_BYTES = 15
BONE_KEY_BYTES = 111
CAMERA_KEY_BYTES = 61
LIGHT_KEY_BYTES = 28
SHADOW_KEY_BYTES = 9
_MORPH = struct.Struct("<15sIf")


def encode_name(name: str, size: int, *, what: str = "morph name") -> bytes:
    """``name`` in Shift-JIS, cut at a character boundary to fit ``size`` bytes."""
    try:
        raw = name.encode(ENCODING)
    except UnicodeEncodeError as exc:
        bad = name[exc.start : exc.end]
        raise ValueError(
            f"{what} {name!r} has {bad!r}, which Shift-JIS cannot hold; VMD files store "
            "names in Shift-JIS (rename it in the profile)"
        ) from None
    while len(raw) > size:
        name = name[:-1]
        raw = name.encode(ENCODING)
    return raw


@dataclass(frozen=True, slots=True)
class VmdOptions:
    """How a ``.vmd`` is written."""

    model_name: str = "audio2face"
    """The model-name field (20 bytes of Shift-JIS); MMD shows it, and applies the motion
    to whichever model it is loaded on."""
    tolerance: float = 1e-4
    """Weights closer than this count as equal when keyframes are thinned."""

    def __post_init__(self) -> None:
        if not self.tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")
        encode_name(self.model_name, MODEL_NAME_BYTES, what="model name")


DEFAULT_VMD = VmdOptions()


@dataclass(frozen=True, slots=True)
class VmdMotion:
    """What :func:`read_vmd` found: the model name and the morph keyframes, each as
    ``(frame, weight)`` pairs in frame order, per morph name."""

    model_name: str
    morphs: dict[str, list[tuple[int, float]]]
    bone_keyframes: int = 0

    def to_batch(self, names: Sequence[str] | None = None) -> FrameBatch:
        """Dense frames at 30 fps, linearly interpolated between keyframes as MMD plays
        them (held after a morph's last keyframe). ``names``: column order (default:
        in order of first appearance)."""
        names = tuple(names) if names is not None else tuple(self.morphs)
        last = max((keys[-1][0] for keys in self.morphs.values() if keys), default=-1)
        frames = np.arange(last + 1)
        values = np.zeros((last + 1, len(names)), np.float32)
        for j, name in enumerate(names):
            keys = self.morphs.get(name)
            if keys:
                at = np.array([k for k, _ in keys], np.float64)
                weight = np.array([w for _, w in keys], np.float64)
                values[:, j] = np.interp(frames, at, weight)
        return FrameBatch(0, names, values, VMD_FPS)


def _decode_name(field: bytes) -> str:
    raw = field.split(b"\x00", 1)[0]
    # Cut fields may end in half a double-byte character; MMD ignores it, so do we.
    return raw.decode(ENCODING, errors="ignore")


def vmd_name_problems(names: Sequence[str]) -> list[str]:
    """Why ``names`` cannot be written to a VMD file (empty: they can)."""
    problems: list[str] = []
    seen: dict[bytes, str] = {}
    for name in names:
        try:
            key = encode_name(name, MORPH_NAME_BYTES)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if key in seen:
            problems.append(
                f"morph names {seen[key]!r} and {name!r} are the same in the 15 bytes a VMD "
                "file keeps"
            )
        seen[key] = name
    return problems


def thin_keyframes(column: FloatArray, tolerance: float = DEFAULT_VMD.tolerance) -> list[int]:
    """Indices of the keyframes worth keeping in one morph's weights: the first and last
    frame, and every frame where the weight changes on either side (so a constant run
    keeps only its two ends, which linear interpolation reproduces exactly)."""
    n = column.shape[0]
    if n <= 2:
        return list(range(n))
    same = np.abs(np.diff(column.astype(np.float64))) <= tolerance  # same[i]: i == i+1
    interior = ~(same[:-1] & same[1:])  # frame i+1 differs from a neighbour
    return [0, *(np.flatnonzero(interior) + 1).tolist(), n - 1]


def write_vmd(path: Path, batch: FrameBatch, options: VmdOptions = DEFAULT_VMD) -> None:
    """Write ``batch``'s channels as morph keyframes (resampled to 30 fps if needed)."""
    problems = vmd_name_problems(batch.names)
    if problems:
        raise ValueError(f"cannot write {path.name!r}: {problems[0]}")
    if batch.fps != VMD_FPS:
        batch = resample_frames(batch, VMD_FPS, seconds=len(batch) / batch.fps)
    values = np.asarray(batch.values, np.float32)
    records: list[bytes] = []
    for j, name in enumerate(batch.names):
        raw = encode_name(name, MORPH_NAME_BYTES)
        for i in thin_keyframes(values[:, j], options.tolerance):
            records.append(_MORPH.pack(raw, batch.first_frame + i, float(values[i, j])))
    model = encode_name(options.model_name, MODEL_NAME_BYTES, what="model name")
    with open(path, "wb") as f:
        f.write(MAGIC.ljust(HEADER_BYTES, b"\x00"))
        f.write(model.ljust(MODEL_NAME_BYTES, b"\x00"))
        f.write(struct.pack("<I", 0))  # bone keyframes
        f.write(struct.pack("<I", len(records)))
        f.write(b"".join(records))
        f.write(struct.pack("<4I", 0, 0, 0, 0))  # camera, light, self-shadow, IK/visibility


class _Reader:
    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.pos, self.name = data, 0, name

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(
                f"{self.name!r} is not a complete VMD file: it ends inside the {what} "
                f"(byte {self.pos} of {len(self.data)})"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def count(self, what: str) -> int:
        return int(struct.unpack("<I", self.take(4, f"{what} count"))[0])

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.data)


def read_vmd(path: str | Path) -> VmdMotion:
    """Read a VMD file's model name and morph keyframes (bone keyframes are skipped;
    the sections after the morphs are optional in older files and not needed here)."""
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(b"Vocaloid Motion Data"):
        raise ValueError(f"{path.name!r} is not a VMD file (no 'Vocaloid Motion Data' header)")
    reader = _Reader(data, path.name)
    header = reader.take(HEADER_BYTES, "header")
    # Version 0001 files have a 10-byte model name; 0002 (every MMD since 2008) 20 bytes.
    name_bytes = MODEL_NAME_BYTES if header.startswith(MAGIC) else 10
    model_name = _decode_name(reader.take(name_bytes, "model name"))
    bones = reader.count("bone keyframe")
    reader.take(bones * BONE_KEY_BYTES, "bone keyframes")
    morphs: dict[str, list[tuple[int, float]]] = {}
    if not reader.at_end:
        for _ in range(reader.count("morph keyframe")):
            raw, frame, weight = _MORPH.unpack(reader.take(_MORPH.size, "morph keyframes"))
            morphs.setdefault(_decode_name(raw), []).append((int(frame), float(weight)))
    for keys in morphs.values():
        keys.sort(key=lambda k: k[0])
    return VmdMotion(model_name=model_name, morphs=morphs, bone_keyframes=bones)


def load_vmd(path: Path) -> FrameBatch:
    """A VMD file's morphs as dense 30 fps frames (for ``load_frames``)."""
    return read_vmd(path).to_batch()
