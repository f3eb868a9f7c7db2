"""Synthetic speech-like audio for the alive-step tests: voiced syllables (a harmonic
tone with a moving pitch, loudness bumps at a syllable rate) in phrases separated by
pauses, so the tests need no TTS and know where the phrases are."""

from __future__ import annotations

import numpy as np

RATE = 16000
FPS = 30.0


def syllables(
    seconds: float, *, f0: float = 140.0, rate_hz: float = 4.5, level: float = 0.2, seed: int = 0
) -> np.ndarray:
    """Voiced syllables: a 6-harmonic tone with a gliding F0, amplitude-modulated at
    ``rate_hz`` with random stress, plus a little noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    pitch = f0 * (1.0 + 0.08 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 7))
    n_syl = int(np.ceil(seconds * rate_hz)) + 1
    stress = rng.uniform(0.4, 1.0, n_syl)
    env = np.sin(np.pi * ((t * rate_hz) % 1.0)) ** 2 * stress[(t * rate_hz).astype(int)]
    x = level * env * tone / 2.0 + rng.normal(0, 1e-4, n)
    return x.astype(np.float32)


def phrases(pattern: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """``[(speech_s, pause_s), ...]`` concatenated, starting with 0.5 s of silence."""
    rng = np.random.default_rng(seed)
    parts = [rng.normal(0, 1e-4, int(0.5 * RATE)).astype(np.float32)]
    for i, (speech, pause) in enumerate(pattern):
        parts.append(syllables(speech, seed=seed + i))
        parts.append(rng.normal(0, 1e-4, int(pause * RATE)).astype(np.float32))
    return np.concatenate(parts)


def n_frames(n_samples: int) -> int:
    return int(np.floor(n_samples * FPS / RATE + 0.5))
