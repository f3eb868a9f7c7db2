"""training/targets.py: full-face targets from audio + phones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from audio2face.rigs import ARKIT_52
from audio2face.types import frames_for_samples

# training/ is a top-level folder of the repo, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from training import targets  # noqa: E402  (needs the path above)

C = {n: i for i, n in enumerate(ARKIT_52)}
SR = 16000


def _voice(f0: np.ndarray, amp: np.ndarray) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(f0) / SR
    return (amp * (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase))).astype(np.float32)


def test_pitch_tracker() -> None:
    n = SR
    f0 = np.where(np.arange(n) < n // 2, 110.0, 220.0)
    est = targets.pitch_track(_voice(f0, np.full(n, 0.3)), SR, [0.2, 0.3, 0.7, 0.8])
    np.testing.assert_allclose(est, [110, 110, 220, 220], rtol=0.03)
    assert targets.pitch_track(np.zeros(n, np.float32), SR, [0.5])[0] == 0.0


def test_targets_shape_none_and_brows_follow_accent() -> None:
    n = 2 * SR
    t = np.arange(n) / SR
    f0 = np.where((t > 1.0) & (t < 1.3), 200.0, 120.0)  # a pitch accent at 1.0-1.3 s
    amp = np.where((t > 1.0) & (t < 1.3), 0.5, 0.25) * ((t > 0.2) & (t < 1.8))
    audio = _voice(f0, amp)
    phones = [(0.0, 0.2, "SIL")] + [(0.2 + 0.1 * k, 0.3 + 0.1 * k, "AA" if k % 2 else "M") for k in range(16)]
    phones.append((1.8, 2.0, "SIL"))
    assert targets.make_targets(audio, None) is None
    y = targets.make_targets(audio, phones, fps=100)
    assert y.shape == (frames_for_samples(n, SR, 100), 52) and y.dtype == np.float32
    assert np.array_equal(y, targets.make_targets(audio, phones, fps=100))  # deterministic
    assert not y[:, C["eyeBlinkLeft"]].any() and not y[:, C["eyeBlinkRight"]].any()
    brow = y[:, C["browInnerUp"]]
    assert brow[110:125].mean() > 2 * brow[40:80].mean() + 0.05
    assert brow[:10].max() < 0.02  # nothing in the leading silence
    assert np.abs(np.diff(brow, 2)).max() < 0.02  # smooth
    assert y[:, C["jawOpen"]].max() > 0.3
