"""CSV in the column layout of Epic's Live Link Face app.

Columns: ``Timecode, BlendShapeCount``, the 52 ARKit shapes in Live Link Face's order
and PascalCase spelling, then 9 head and eye rotation columns. The head columns carry
the profile's ``headYaw``/``headPitch``/``headRoll`` (profile ``arkit-head``) as
:func:`livelink_head` converts them; otherwise, and for the eyes, they are 0.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from audio2face.types import FrameBatch

LIVELINK_SHAPES: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight",
    "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight", "JawForward",
    "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthRight",
    "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
    "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft",
    "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
    "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft",
    "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft",
    "NoseSneerRight", "TongueOut",
)  # fmt: skip
LIVELINK_EXTRA: tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip
HEAD_CHANNELS: tuple[str, str, str] = ("headYaw", "headPitch", "headRoll")
"""The head pose channels of a profile (degrees; see ``postprocess/head.py``)."""
_HEAD_SIGNS = np.array([1.0, -1.0, -1.0], np.float32)


def head_columns(names: tuple[str, ...]) -> np.ndarray | None:
    """Columns of ``headYaw``, ``headPitch``, ``headRoll`` among ``names`` (``None``
    when the profile has no head pose)."""
    index = {name: i for i, name in enumerate(names)}
    if not all(name in index for name in HEAD_CHANNELS):
        return None
    return np.array([index[name] for name in HEAD_CHANNELS], np.intp)


def livelink_head(pose_deg: np.ndarray) -> np.ndarray:
    """Our head pose ``[..., 3]`` (yaw, pitch, roll in degrees: yaw > 0 turns to the
    avatar's left, pitch > 0 lifts the chin, roll > 0 tilts to the left shoulder) as
    Live Link Face's ``HeadYaw``, ``HeadPitch``, ``HeadRoll``: radians, in the
    axes of ARKit's face anchor (x to the face's left, y up, z out of the face), so a
    positive pitch looks down and a positive roll tilts to the right shoulder."""
    return np.radians(np.asarray(pose_deg, np.float32)) * _HEAD_SIGNS


def _timecode(frame: int, fps: float) -> str:
    seconds, sub = divmod(frame, fps)
    whole = int(seconds)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    ff = int(sub)
    return f"{h:02d}:{m:02d}:{s:02d}:{ff:02d}.{int(round((sub - ff) * 1000)):03d}"


def csv_name_problem(names: tuple[str, ...]) -> str | None:
    """Why frames with ``names`` cannot go in a Live Link Face CSV (``None``: they can)."""
    known = {shape.lower() for shape in LIVELINK_SHAPES}
    if sum(name.lower() in known for name in names) < len(LIVELINK_SHAPES) // 2:
        return (
            "CSV output uses the Live Link Face layout and needs ARKit names (profile "
            f"'arkit'); this profile's names are {list(names[:5])}...; "
            "write .npz or .json instead"
        )
    return None


def write_livelink_csv(path: Path, batch: FrameBatch) -> None:
    """Write ARKit frames at the batch's frame rate (the timecodes' frame field counts
    to fps - 1); raise ``ValueError`` for a profile without ARKit names."""
    problem = csv_name_problem(batch.names)
    if problem is not None:
        raise ValueError(problem)
    by_key = {name.lower(): i for i, name in enumerate(batch.names)}
    columns = [by_key.get(shape.lower()) for shape in LIVELINK_SHAPES]
    n = len(batch)
    out = np.zeros((n, len(LIVELINK_SHAPES) + len(LIVELINK_EXTRA)), dtype=np.float32)
    for j, col in enumerate(columns):
        if col is not None:
            out[:, j] = batch.values[:, col]
    head = head_columns(batch.names)
    if head is not None:
        out[:, len(LIVELINK_SHAPES) : len(LIVELINK_SHAPES) + 3] = livelink_head(
            batch.values[:, head]
        )
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Timecode", "BlendShapeCount", *LIVELINK_SHAPES, *LIVELINK_EXTRA])
        count = len(LIVELINK_SHAPES) + len(LIVELINK_EXTRA)
        for i in range(n):
            row = [f"{v:.6f}" for v in out[i, : len(LIVELINK_SHAPES)]]
            extra = [f"{v:.6f}" if v else "0" for v in out[i, len(LIVELINK_SHAPES) :]]
            writer.writerow([_timecode(batch.first_frame + i, batch.fps), count, *row, *extra])


def _timecode_fps(timecodes: list[str]) -> float | None:
    """The frame rate the timecodes ``HH:MM:SS:FF.mmm`` were written at: the frame
    field just before a seconds roll-over, plus one (``None`` if no roll-over)."""
    previous: tuple[str, int] | None = None
    for code in timecodes:
        head, _, frame = code.rpartition(":")
        try:
            ff = int(frame.split(".", 1)[0])
        except ValueError:
            raise ValueError(
                f"bad Live Link Face timecode {code!r}; expected HH:MM:SS:FF.mmm"
            ) from None
        if previous is not None and head != previous[0]:
            return float(previous[1] + 1)
        previous = (head, ff)
    return None


def read_livelink_csv(path: Path, fps: float = 30.0) -> FrameBatch:
    """Read the 52 shape columns of a Live Link Face CSV. The frame rate comes from the
    timecodes (their frame field counts to fps - 1); ``fps`` is used for files shorter
    than a second, whose timecodes cannot tell."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path.name!r} is empty; expected a Live Link Face CSV")
    header, body = rows[0], [r for r in rows[1:] if r]
    missing = [shape for shape in LIVELINK_SHAPES if shape not in header]
    if missing:
        raise ValueError(
            f"{path.name!r} is not a Live Link Face CSV: no column {missing[0]!r} "
            f"({len(missing)} of the 52 shape columns missing)"
        )
    idx = [header.index(shape) for shape in LIVELINK_SHAPES]
    values = np.array([[float(r[i]) for i in idx] for r in body], dtype=np.float32)
    found = _timecode_fps([r[0] for r in body]) if header[0] == "Timecode" else None
    return FrameBatch(
        first_frame=0,
        names=LIVELINK_SHAPES,
        values=values.reshape(-1, len(LIVELINK_SHAPES)),
        fps=found if found is not None else fps,
    )
