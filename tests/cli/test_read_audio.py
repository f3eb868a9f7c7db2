"""Audio read errors say which file or body, what is wrong and what is accepted
(issue 9, part 2, item 9: the file-reading half)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from cli_support import run_cli, write_speech

from audio2face.audio.wav import read_audio
from audio2face.errors import AudioFormatError


def test_a_missing_file_says_not_found(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError) as info:
        read_audio(tmp_path / "nope.wav")
    assert "nope.wav" in info.value.reason and "not found" in info.value.reason
    assert "System error" not in info.value.reason


def test_a_file_that_is_not_audio_lists_the_formats(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(AudioFormatError) as info:
        read_audio(text)
    reason = info.value.reason
    assert "notes.wav" in reason and "not audio" in reason
    for fmt in ("WAV", "FLAC", "OGG", "MP3"):
        assert fmt in reason


def test_a_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError, match="is a directory"):
        read_audio(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file; permissions cannot be tested")
def test_an_unreadable_file(tmp_path: Path) -> None:
    path = write_speech(tmp_path / "locked.wav")
    path.chmod(0)
    with pytest.raises(AudioFormatError, match="permissions"):
        read_audio(path)


def test_in_memory_bodies_are_named_by_the_caller() -> None:
    with pytest.raises(AudioFormatError) as info:
        read_audio(io.BytesIO(b"garbage" * 20), name="the request body")
    assert info.value.reason.startswith("the request body is not audio")
    with pytest.raises(AudioFormatError) as unnamed:
        read_audio(io.BytesIO(b"garbage" * 20))
    assert "BytesIO" not in unnamed.value.reason and "the audio data" in unnamed.value.reason


@pytest.mark.parametrize(
    ("fmt", "subtype", "ext"),
    [("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg"), ("MP3", "MPEG_LAYER_III", "mp3")],
)
def test_the_formats_named_are_read(tmp_path: Path, fmt: str, subtype: str, ext: str) -> None:
    import numpy as np
    import soundfile as sf

    path = tmp_path / f"a.{ext}"
    sf.write(path, np.zeros(16000, np.float32), 16000, format=fmt, subtype=subtype)
    audio, rate = read_audio(path)
    assert rate == 16000 and audio.shape[0] >= 15000


def test_convert_prints_the_read_error_in_one_line(capsys, tmp_path: Path) -> None:
    line = run_cli(
        capsys, "convert", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "o.npz")
    ).error_line()
    assert "nope.wav" in line and "not found" in line
