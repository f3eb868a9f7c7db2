"""Output paths are checked against the profile before any audio is animated."""

from __future__ import annotations

import numpy as np
import pytest

from audio2face.formats import check_output, load_frames, save_frames, supported_extensions
from audio2face.frames import resample_frames
from audio2face.rigs import ARKIT_52, load_rig
from audio2face.types import FrameBatch


def test_known_extensions() -> None:
    assert supported_extensions() == [".csv", ".json", ".npz", ".vmd"]


@pytest.mark.parametrize(
    ("name", "rig", "message"),
    [
        ("x.txt", "arkit52", "unknown extension '.txt'; use one of"),
        ("x", "arkit52", "unknown extension '(none)'"),
        ("x.csv", "mmd", "needs ARKit names"),
        ("x.csv", "vrm", "needs ARKit names"),
    ],
)
def test_refused_before_work(tmp_path, name: str, rig: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_output(tmp_path / name, load_rig(rig))


@pytest.mark.parametrize(
    ("name", "rig"),
    [("x.csv", "arkit52"), ("x.npz", "mmd"), ("x.json", "vrm"), ("x.vmd", "mmd"), ("X.VMD", "mmd")],
)
def test_accepted(tmp_path, name: str, rig: str) -> None:
    check_output(tmp_path / name, load_rig(rig), 60.0)


def test_names_not_known_yet_checks_the_rest(tmp_path) -> None:
    check_output(tmp_path / "x.csv", None)  # a server will name the channels
    with pytest.raises(ValueError, match="unknown extension"):
        check_output(tmp_path / "x.txt", None)


def test_folders_and_rates(tmp_path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        check_output(tmp_path / "nope" / "x.npz", ARKIT_52)
    with pytest.raises(ValueError, match="fps must be > 0"):
        check_output(tmp_path / "x.npz", ARKIT_52, 0.0)
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        check_output(tmp_path / "d.npz", ARKIT_52)


def test_livelink_csv_at_60_fps_carries_the_rate(tmp_path) -> None:
    values = np.random.default_rng(0).random((45, 52)).astype(np.float32)  # 1.5 s at 30 fps
    at60 = resample_frames(FrameBatch(0, ARKIT_52, values, 30.0), 60.0)
    assert len(at60) == 90
    path = tmp_path / "face.csv"
    save_frames(path, at60)
    rows = path.read_text().splitlines()
    assert rows[1].split(",")[0] == "00:00:00:00.000"
    assert rows[60].split(",")[0] == "00:00:00:59.000"
    assert rows[61].split(",")[0] == "00:00:01:00.000"
    back = load_frames(path)
    assert back.fps == 60.0 and len(back) == 90
    by_name = [ARKIT_52.index(n[0].lower() + n[1:]) for n in back.names]
    np.testing.assert_allclose(back.values, at60.values[:, by_name], atol=1e-6)
