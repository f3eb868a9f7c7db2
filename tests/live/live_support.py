"""Shared by the live tests: the loopback receivers of tests/sinks, a speech-like clip
and fixtures (imported by name into each test module; a second ``conftest.py`` would
shadow the top-level one for tests that ``from conftest import ...``).

Import this module before ``udp_receivers``: it puts tests/sinks on the path.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

SINKS = str(Path(__file__).resolve().parents[1] / "sinks")
if SINKS not in sys.path:
    sys.path.insert(0, SINKS)


def speech_like(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Voiced syllables (a 120 Hz harmonic buzz under a 4 Hz envelope) with pauses:
    enough to open and close the default model's mouth."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    buzz = sum(np.sin(2 * np.pi * 120 * h * t) / h for h in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    audio = 0.25 * buzz * envelope + 0.01 * rng.standard_normal(t.shape[0])
    return audio.astype(np.float32)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s 16 kHz WAV of :func:`speech_like` audio."""
    path = tmp_path_factory.mktemp("live") / "speech.wav"
    sf.write(path, speech_like(3.0), 16000, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def runtime() -> Iterator[Any]:
    """The default runtime (embedded model), shared by the in-process live tests."""
    from audio2face.runtime import Runtime
    from audio2face.settings import Settings

    rt = Runtime.start(Settings())
    yield rt
    rt.close()
