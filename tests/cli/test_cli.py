"""The CLI: convert (in-process), stream (to a live server), models; output formats."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audio2face.cli import main
from audio2face.formats import load_frames
from audio2face.rigs import ARKIT_52


def write_tone_speech(path, rate: int, seconds: float, subtype: str = "PCM_16") -> int:
    t = np.arange(int(rate * seconds)) / rate
    env = (np.sin(2 * np.pi * 2.5 * t) > 0).astype(np.float32)
    audio = 0.3 * np.sin(2 * np.pi * 180 * t) * env
    sf.write(path, audio, rate, subtype=subtype)
    return audio.size


@pytest.mark.parametrize(
    ("rate", "subtype"), [(16000, "PCM_16"), (44100, "PCM_24"), (8000, "FLOAT")]
)
def test_convert_any_rate_and_width_to_npz(tmp_path, rate: int, subtype: str, capsys) -> None:
    wav = tmp_path / "in.wav"
    n = write_tone_speech(wav, rate, 1.7, subtype)
    out = tmp_path / "out.npz"
    assert main(["convert", str(wav), "-o", str(out), "-q"]) == 0
    with np.load(out) as data:
        assert sorted(data.files) == ["fps", "names", "values"]
        assert tuple(data["names"]) == ARKIT_52
        assert data["values"].shape == (int(np.floor(n / rate * 30 + 0.5)), 52)
        assert data["values"].dtype == np.float32
    assert "frames" in capsys.readouterr().out


def test_convert_to_csv_and_json(tmp_path) -> None:
    wav = tmp_path / "in.wav"
    write_tone_speech(wav, 16000, 1.0)
    assert main(["convert", str(wav), "-o", str(tmp_path / "o.csv"), "-q"]) == 0
    header = (tmp_path / "o.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft"]
    assert (
        main(["convert", str(wav), "-o", str(tmp_path / "o.json"), "--profile", "mmd", "-q"]) == 0
    )
    doc = json.loads((tmp_path / "o.json").read_text())
    assert "あ" in doc["names"] and len(doc["values"]) == 30


def test_convert_refuses_unknown_extension_and_missing_file(tmp_path, capsys) -> None:
    wav = tmp_path / "in.wav"
    write_tone_speech(wav, 16000, 0.5)
    assert main(["convert", str(wav), "-o", str(tmp_path / "o.txt"), "-q"]) == 2
    assert main(["convert", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "unknown extension" in err and "missing.wav" in err


def test_stream_to_live_server(tmp_path, unitalker_server) -> None:
    wav = tmp_path / "in.wav"
    n = write_tone_speech(wav, 22050, 2.2)
    out = tmp_path / "streamed.npz"
    assert main(["stream", str(wav), "--url", unitalker_server.ws_url, "-o", str(out)]) == 0
    frames = load_frames(out)
    # the client resamples to 16 kHz; the count may move by one frame, as the protocol allows
    assert abs(len(frames) - int(np.floor(n / 22050 * 30 + 0.5))) <= 1
    assert len(frames.names) == 52


def test_models_lists_profiles(capsys) -> None:
    assert main(["models"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["default_profile"] == "arkit"
    assert info["aliases"]["KQ-default"] == "mmd"
    assert info["profiles"]["unitalker"]["available"] is False


def test_phonemes_from_timings_through_a_profile(tmp_path) -> None:
    timings = tmp_path / "t.json"
    timings.write_text(json.dumps({
        "phones": [[0.0, 0.2, "SIL"], [0.2, 0.32, "M"], [0.32, 0.6, "AA"], [0.6, 0.9, "SIL"]],
        "duration_s": 0.9,
    }))  # fmt: skip
    out = tmp_path / "p.npz"
    assert main(["phonemes", "--timings", str(timings), "-o", str(out)]) == 0
    frames = load_frames(out)
    assert frames.values.shape == (27, 52)
    jaw = frames.values[:, frames.names.index("jawOpen")]
    assert jaw[13] > 0.3 > jaw[7]  # open on AA (0.43 s), closed on M (0.26 s)
    assert main(["phonemes", "--timings", str(timings), "--profile", "mmd", "-o", str(out)]) == 0
    assert "あ" in load_frames(out).names


def test_phonemes_from_text(tmp_path) -> None:
    pytest.importorskip("audio2face.engines.phonemes.espeak")
    from audio2face.engines.phonemes import espeak

    if not espeak.available():
        pytest.skip("libespeak-ng is not installed")
    out, wav = tmp_path / "t.json", tmp_path / "t.wav"
    assert main(["phonemes", "--text", "Hello world", "--wav", str(wav), "-o", str(out)]) == 0
    info = sf.info(wav)
    assert abs(len(json.loads(out.read_text())["values"]) - round(info.duration * 30)) <= 1
