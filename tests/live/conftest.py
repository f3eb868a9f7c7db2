"""Fixtures of the live tests: the loopback receivers of tests/sinks and a speech clip."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sinks"))

from live_audio import speech_like  # noqa: E402  (after the path it lives on)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    """A 3 s 16 kHz WAV of :func:`speech_like` audio."""
    path = tmp_path_factory.mktemp("live") / "speech.wav"
    sf.write(path, speech_like(3.0), 16000, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def runtime():
    """The default runtime (embedded model), shared by the in-process live tests."""
    from audio2face.runtime import Runtime
    from audio2face.settings import Settings

    rt = Runtime.start(Settings())
    yield rt
    rt.close()
