"""Audio for the live tests."""

from __future__ import annotations

import numpy as np


def speech_like(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Voiced syllables (a 120 Hz harmonic buzz under a 4 Hz envelope) with pauses:
    enough to open and close the default model's mouth."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    buzz = sum(np.sin(2 * np.pi * 120 * h * t) / h for h in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    audio = 0.25 * buzz * envelope + 0.01 * rng.standard_normal(t.shape[0])
    return audio.astype(np.float32)
