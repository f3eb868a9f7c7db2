"""`plot`: one image with waveform, mouth channels and blinks on one time axis."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest

from audio2face import plot
from audio2face.formats import save_frames
from audio2face.rigs import ARKIT_52, load_rig
from audio2face.types import FrameBatch

pytest.importorskip("matplotlib", reason="plot is an optional extra: audio2face[plot]")


def frames(names: tuple[str, ...], n: int = 60) -> FrameBatch:
    values = np.zeros((n, len(names)), np.float32)
    values[:, 0] = np.linspace(0, 1, n)
    return FrameBatch(0, names, values, 30.0)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    plot.add_arguments(parser)
    return parser.parse_args(argv)


def test_saved_frames_with_their_audio(tmp_path) -> None:
    import soundfile as sf

    batch = frames(ARKIT_52)
    save_frames(tmp_path / "face.npz", batch)
    sf.write(tmp_path / "speech.wav", np.zeros(32000, np.float32), 16000)
    out = tmp_path / "face.png"
    assert (
        plot.run(
            parse(
                str(tmp_path / "face.npz"), "-o", str(out), "--audio", str(tmp_path / "speech.wav")
            )
        )
        == 0
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_three_panels_on_one_time_axis(tmp_path, monkeypatch) -> None:
    import matplotlib.figure

    seen: list[matplotlib.figure.Figure] = []
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda self, *a, **k: seen.append(self)
    )
    plot.plot_frames(
        frames(ARKIT_52), tmp_path / "x.png", audio=(np.zeros(32000, np.float32), 16000)
    )
    (fig,) = seen
    axes = fig.get_axes()
    assert [a.get_ylabel() for a in axes] == ["audio", "mouth", "blinks"]
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == [
        "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmile"
    ]  # fmt: skip
    assert axes[0].get_shared_x_axes().joined(axes[0], axes[2])


def test_non_arkit_frames_need_channels(tmp_path) -> None:
    vrm = frames(load_rig("vrm"))
    with pytest.raises(ValueError, match="--channels"):
        plot.plot_frames(vrm, tmp_path / "x.png")
    plot.plot_frames(vrm, tmp_path / "x.svg", channels=["aa", "ih", "blink"])
    assert (tmp_path / "x.svg").read_text().startswith("<?xml")
    with pytest.raises(ValueError, match="no channel 'aah'"):
        plot.plot_frames(vrm, tmp_path / "x.png", channels=["aah"])


def test_bad_image_name_and_missing_matplotlib(tmp_path, monkeypatch) -> None:
    with pytest.raises(ValueError, match=r"use one of \['.png'"):
        plot.run(parse("a.wav", "-o", str(tmp_path / "x.txt")))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'audio2face\[plot\]'"):
        plot.run(parse("a.wav", "-o", str(tmp_path / "x.png")))
