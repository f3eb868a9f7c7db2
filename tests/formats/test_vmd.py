"""MMD motion export: Shift-JIS names, model name, 30 fps frame numbers, thinning."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from audio2face.formats import VmdOptions, check_output, load_frames, read_vmd, save_frames
from audio2face.formats.io import SaveOptions
from audio2face.formats.vmd import thin_keyframes
from audio2face.rigs import load_rig
from audio2face.types import FrameBatch

MMD = load_rig("mmd")


def speechy(n: int, names: tuple[str, ...], fps: float = 30.0) -> FrameBatch:
    """Mouth morphs move; everything else stays at rest (as in real mmd output)."""
    values = np.zeros((n, len(names)), np.float32)
    t = np.arange(n) / fps
    values[:, 0] = np.clip(np.sin(2 * np.pi * 3 * t), 0, 1)  # あ
    values[:, 2] = np.clip(np.sin(2 * np.pi * 2 * t + 1), 0, 1)  # う
    values[30:34, names.index("まばたき")] = [0.5, 1.0, 1.0, 0.4]
    return FrameBatch(0, names, values, fps)


def test_round_trip_names_model_frames_and_values(tmp_path) -> None:
    batch = speechy(90, MMD)
    path = tmp_path / "speech.vmd"
    save_frames(path, batch, SaveOptions(vmd=VmdOptions(model_name="初音ミク")))
    raw = path.read_bytes()
    assert raw[:30] == b"Vocaloid Motion Data 0002".ljust(30, b"\0")
    assert raw[30:50].rstrip(b"\0") == "初音ミク".encode("cp932")
    assert "まばたき".encode("cp932") in raw and "あ".encode("cp932") in raw

    motion = read_vmd(path)
    assert motion.model_name == "初音ミク" and motion.bone_keyframes == 0
    assert set(motion.morphs) == set(MMD)
    back = motion.to_batch(MMD)
    assert back.fps == 30.0 and len(back) == 90
    np.testing.assert_allclose(back.values, batch.values, atol=1e-6)
    blink = motion.morphs["まばたき"]
    assert [f for f, _ in blink] == [0, 29, 30, 31, 32, 33, 34, 89]
    np.testing.assert_allclose(load_frames(path).values, back.values)


def test_constant_morphs_are_thinned_so_files_stay_small(tmp_path) -> None:
    batch = speechy(300, MMD)
    path = tmp_path / "ten_seconds.vmd"
    save_frames(path, batch)
    motion = read_vmd(path)
    keys = sum(len(k) for k in motion.morphs.values())
    dense = 300 * len(MMD)
    assert keys < dense / 8
    # A morph at rest throughout keeps two keyframes: the first and the last frame.
    assert motion.morphs["ω"] == [(0, 0.0), (299, 0.0)]
    assert path.stat().st_size == 50 + 4 + 4 + keys * 23 + 16
    assert thin_keyframes(np.array([0, 0, 0, 1, 1, 1, 0], np.float32)) == [0, 2, 3, 5, 6]
    assert thin_keyframes(np.array([0.2], np.float32)) == [0]


def test_other_rates_are_written_on_the_30_fps_timeline(tmp_path) -> None:
    at60 = speechy(120, MMD, fps=60.0)  # 2 s
    path = tmp_path / "sixty.vmd"
    save_frames(path, at60)
    back = read_vmd(path).to_batch(MMD)
    assert len(back) == 60
    np.testing.assert_allclose(back.values[:, 0], at60.values[::2, 0], atol=1e-6)


def test_long_names_are_cut_at_character_boundaries_and_collisions_refused(tmp_path) -> None:
    names = ("mouthLowerDownLeft", "まばたきまばたき")  # 18 bytes; 16 bytes in Shift-JIS
    batch = FrameBatch(0, names, np.ones((3, 2), np.float32), 30.0)
    save_frames(tmp_path / "long.vmd", batch)
    assert set(read_vmd(tmp_path / "long.vmd").morphs) == {"mouthLowerDownL", "まばたきまばた"}
    with pytest.raises(ValueError, match="same in the 15 bytes"):
        check_output(tmp_path / "x.vmd", ("mouthStretchLeft1", "mouthStretchLeft2"))
    with pytest.raises(ValueError, match="Shift-JIS"):
        check_output(tmp_path / "x.vmd", ("😀",))
    with pytest.raises(ValueError, match="model name"):
        VmdOptions(model_name="🙂")


def test_reader_rejects_what_is_not_vmd(tmp_path) -> None:
    bad = tmp_path / "bad.vmd"
    bad.write_bytes(b"RIFF....")
    with pytest.raises(ValueError, match="not a VMD file"):
        read_vmd(bad)
    save_frames(tmp_path / "ok.vmd", speechy(40, MMD))
    cut = tmp_path / "cut.vmd"
    cut.write_bytes((tmp_path / "ok.vmd").read_bytes()[:70])
    with pytest.raises(ValueError, match="ends inside the morph keyframes"):
        read_vmd(cut)


def test_reader_skips_bone_keyframes(tmp_path) -> None:
    """A file MMD wrote with a bone keyframe before the morphs reads the same."""
    bone = "センター".encode("cp932").ljust(15, b"\0") + struct.pack("<I", 0) + bytes(111 - 19)
    morph = "あ".encode("cp932").ljust(15, b"\0") + struct.pack("<If", 5, 0.75)
    data = (b"Vocaloid Motion Data 0002".ljust(30, b"\0") + b"model".ljust(20, b"\0")
            + struct.pack("<I", 1) + bone + struct.pack("<I", 1) + morph)  # fmt: skip
    path = tmp_path / "mmd.vmd"
    path.write_bytes(data)
    motion = read_vmd(path)
    assert motion.bone_keyframes == 1 and motion.morphs == {"あ": [(5, 0.75)]}
