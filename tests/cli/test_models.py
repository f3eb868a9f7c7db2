"""``models`` tells the truth (issue 9, part 2, item 7): it loads the engines the
settings ask for and runs a moment of audio through every profile, so a profile listed
as available converts, and one that cannot run says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run_cli, write_speech

from audio2face.profiles.registry import BUILTIN_DIR


def models(capsys, *argv: str) -> dict:
    run = run_cli(capsys, "models", *argv)
    assert run.rc == 0, run.err
    return json.loads(run.out)


def test_a_missing_unitalker_file_is_reported_not_listed(capsys, tmp_path: Path) -> None:
    info = models(capsys, "--unitalker-model", str(tmp_path / "nope.onnx"))
    unitalker = info["profiles"]["unitalker"]
    assert unitalker["available"] is False
    assert "nope.onnx" in unitalker["reason"] and "does not exist" in unitalker["reason"]
    assert info["engines"]["unitalker"]["loaded"] is False
    assert info["profiles"]["arkit"]["available"] is True  # one failure hides nothing else


def test_a_file_that_is_not_a_model_is_reported(capsys, tmp_path: Path) -> None:
    fake = tmp_path / "unitalker.onnx"
    fake.write_bytes(b"this is not onnx")
    info = models(capsys, "--unitalker-model", str(fake))
    assert info["profiles"]["unitalker"]["available"] is False
    assert "cannot be loaded" in info["engines"]["unitalker"]["error"]


def test_no_unitalker_says_how_to_get_it(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no weights/ folder here
    info = models(capsys)
    assert info["profiles"]["unitalker"]["available"] is False
    assert "unitalker_v0.4.0_base.onnx" in info["profiles"]["unitalker"]["reason"]


def user_profiles(root: Path) -> Path:
    """``fast60`` (default engine, 60 fps), ``ut60`` (UniTalker at 60 fps, resampled),
    and ``broken``: a blink step whose clip file is missing, which only shows when its
    chain is built."""
    root.mkdir()
    arkit = (BUILTIN_DIR / "arkit.toml").read_text(encoding="utf-8")
    data = (BUILTIN_DIR / "data").as_posix()
    fast = arkit.replace('name = "arkit"', 'name = "fast60"').replace("fps = 30", "fps = 60")
    (root / "fast60.toml").write_text(fast.replace('"data/', f'"{data}/'), encoding="utf-8")
    unitalker = (BUILTIN_DIR / "unitalker.toml").read_text(encoding="utf-8")
    ut60 = unitalker.replace('name = "unitalker"', 'name = "ut60"')
    ut60 = "\n".join(line for line in ut60.splitlines() if not line.startswith("aliases"))
    (root / "ut60.toml").write_text(
        ut60.replace("fps = 30", "fps = 60").replace('"data/', f'"{data}/'), encoding="utf-8"
    )
    (root / "broken.toml").write_text(
        'name = "broken"\nengine = "default"\nrig = "arkit52"\n\n'
        '[[steps]]\ntype = "custom_blink"\nclips = "missing.json"\n',
        encoding="utf-8",
    )
    return root


def test_every_profile_listed_as_available_converts(
    capsys, tmp_path: Path, tiny_unitalker_path: Path
) -> None:
    profiles = user_profiles(tmp_path / "profiles")
    flags = ["--profile-dir", str(profiles), "--unitalker-model", str(tiny_unitalker_path)]
    info = models(capsys, *flags)
    available = {name: p["available"] for name, p in info["profiles"].items()}
    assert available["fast60"] and available["ut60"] and available["unitalker"]
    assert available["broken"] is False
    assert "missing.json" in info["profiles"]["broken"]["reason"]
    wav = write_speech(tmp_path / "speech.wav", 1.0)
    for name, ok in available.items():
        out = tmp_path / f"{name}.npz"
        run = run_cli(capsys, "convert", str(wav), "--profile", name, *flags, "-q", "-o", str(out))
        assert (run.rc == 0) is ok, f"{name}: models says available={ok}, convert: {run.err}"


def test_an_unusable_default_profile_fails(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    run = run_cli(capsys, "models", "--profile", "unitalker")
    assert run.rc == 1
    assert json.loads(run.out)["profiles"]["unitalker"]["available"] is False
    assert "default profile 'unitalker' cannot run" in run.err


@pytest.mark.parametrize("flag", ["--profile", "--profile-dir"])
def test_bad_profile_settings_are_one_line(capsys, tmp_path: Path, flag: str) -> None:
    value = "bogus" if flag == "--profile" else str(tmp_path / "nowhere")
    line = run_cli(capsys, "models", flag, value).error_line()
    assert "bogus" in line or "nowhere" in line
