"""Full-face ARKit-52 training targets from audio plus phone timings.

Design
------
``make_targets(audio_16k, phones, fps)`` returns ``[T, 52]`` float32 frames with
``T = frames_for_samples(len(audio), 16000, fps)``; frame i is the face at ``i/fps``.

* **Mouth, jaw, tongue**: the coarticulation synthesiser of
  :mod:`audio2face.engines.phonemes.synth` (Cohen-Massaro dominance per articulator,
  exact bilabial closure, anticipatory rounding, rest in silence).
* **Brows follow prosody**. A YIN-style pitch tracker (numpy only) gives F0, and
  the RMS envelope gives energy, both at the frame times. During speech, an
  *accent* score rises with pitch above the speaker's median (4 semitones = full)
  and with energy above the speech median (6 dB = full). The score is spread over
  the accented syllable (a 120 ms max filter) and smoothed (Gaussian, sigma 70 ms),
  so brows rise before and fall after the peak rather than twitching per frame.
  ``browInnerUp`` and ``browOuterUp{Left,Right}`` follow it. A small ``browDown``
  follows *low-pitched* loud emphasis (a stern stress), which the raise misses.
* **Cheeks**: ``cheekSquint{Left,Right}`` follow smiles and, less, lip spreading
  of the mouth targets, because the real cheek rises with the lip corners.
* **Eyes**: nothing. Blinks are added by a postprocess step, so eyeBlink stays 0 and
  a model never learns to blink from speech.

Everything is a deterministic function of the inputs (no random draws), so the
same clip always gives the same targets. Clips without phones return ``None``:
they can still train the model through other losses, but have no targets here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from audio2face.engines.phonemes.phoneset import SILENCE, normalize_phone
from audio2face.engines.phonemes.synth import Phone, default_synthesizer
from audio2face.rigs import ARKIT_52
from audio2face.types import FloatArray, frames_for_samples

__all__ = ["SAMPLE_RATE", "energy_db", "make_targets", "pitch_track"]

SAMPLE_RATE = 16000
F0_MIN, F0_MAX = 60.0, 400.0
_YIN_THRESHOLD = 0.15
_COL = {n: i for i, n in enumerate(ARKIT_52)}

Array64 = npt.NDArray[np.float64]


def _frames_at(audio: npt.NDArray[np.floating], centres: npt.NDArray[np.int64], width: int) -> Array64:
    """``[len(centres), width]`` windows of ``audio`` centred on sample indices (zero-padded)."""
    half = width // 2
    padded = np.pad(np.asarray(audio, np.float64), (half, width))
    idx = centres[:, None] + np.arange(width)[None, :]
    return padded[np.clip(idx, 0, padded.shape[0] - 1)]


def energy_db(audio: npt.NDArray[np.floating], sr: int, times: npt.ArrayLike,
              window_s: float = 0.04) -> Array64:
    """RMS level in dB (floor -100) of ``window_s`` windows centred at ``times``."""
    centres = np.round(np.asarray(times, np.float64) * sr).astype(np.int64)
    x = _frames_at(audio, centres, max(1, int(window_s * sr)))
    return 10.0 * np.log10(np.mean(x * x, axis=1) + 1e-10)


def pitch_track(audio: npt.NDArray[np.floating], sr: int, times: npt.ArrayLike) -> Array64:
    """F0 in Hz at ``times`` (0 where unvoiced): YIN's cumulative-mean-normalised
    difference on 50 ms windows, first dip under 0.15 followed to its minimum."""
    t = np.asarray(times, np.float64)
    width = int(0.05 * sr)
    tau_lo, tau_hi = int(sr / F0_MAX), min(int(sr / F0_MIN), width - 2)
    x = _frames_at(audio, np.round(t * sr).astype(np.int64), width)
    x = x - x.mean(axis=1, keepdims=True)
    n = width - tau_hi  # compare equal-length stretches so every lag is treated alike
    nfft = 1 << int(np.ceil(np.log2(width + n)))
    spec = np.fft.rfft(x, nfft) * np.conj(np.fft.rfft(x[:, :n], nfft))
    r = np.fft.irfft(spec, nfft)[:, : tau_hi + 1]  # r[tau] = sum_{j<n} x_j x_{j+tau}
    sq = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x * x, axis=1)], axis=1)
    lags = np.arange(tau_hi + 1)
    e_tau = sq[:, lags + n] - sq[:, lags]  # energy of x[tau : tau+n]
    d = r[:, :1] + e_tau - 2.0 * r  # d[tau] = sum (x_j - x_{j+tau})^2
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * lags[1:] / np.maximum(cum, 1e-12)
    band = cmnd[:, tau_lo:]
    below = band < _YIN_THRESHOLD
    first = np.where(below.any(axis=1), below.argmax(axis=1), band.argmin(axis=1))
    for _ in range(tau_hi - tau_lo):  # walk down to the dip's minimum
        nxt = np.minimum(first + 1, band.shape[1] - 1)
        step = band[np.arange(len(first)), nxt] < band[np.arange(len(first)), first]
        if not step.any():
            break
        first = np.where(step, nxt, first)
    best = band[np.arange(len(first)), first]
    level = 10.0 * np.log10(np.mean(x * x, axis=1) + 1e-10)
    voiced = (best < 0.35) & (level > level.max() - 40.0) & (level > -60.0)
    return np.where(voiced, sr / (first + tau_lo), 0.0)


def _gauss_smooth(x: Array64, sigma_frames: float) -> Array64:
    if sigma_frames < 0.5:
        return x
    r = int(np.ceil(3 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2)
    return np.convolve(np.pad(x, r, mode="edge"), k / k.sum(), mode="valid")


def _max_filter(x: Array64, radius: int) -> Array64:
    if radius < 1:
        return x
    padded = np.pad(x, radius, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    return win.max(axis=1)


def _speech_mask(phones: Sequence[Phone], times: Array64) -> npt.NDArray[np.bool_]:
    mask = np.zeros(times.shape[0], bool)
    for s, e, p in phones:
        if normalize_phone(p) != SILENCE:
            mask |= (times >= s) & (times < e)
    return mask


def _prosody(audio: npt.NDArray[np.floating], times: Array64, speech: npt.NDArray[np.bool_],
             fps: float) -> tuple[Array64, Array64]:
    """Accent (raise) and low-emphasis (frown) curves in [0, 1], smoothed."""
    f0 = pitch_track(audio, SAMPLE_RATE, times)
    db = energy_db(audio, SAMPLE_RATE, times)
    voiced = speech & (f0 > 0)
    if not speech.any():
        zero = np.zeros_like(times)
        return zero, zero
    loud = np.clip((db - np.median(db[speech])) / 6.0, 0.0, 1.0) * speech
    if voiced.sum() >= 5:
        st = 12.0 * np.log2(np.where(voiced, f0, 1.0) / np.median(f0[voiced]))
        high = np.clip(st / 4.0, 0.0, 1.0) * voiced
        low = np.clip((-st - 2.0) / 4.0, 0.0, 1.0) * voiced
    else:
        high = low = np.zeros_like(times)
    accent = 0.6 * high + 0.4 * loud
    frown = low * loud
    spread = int(round(0.06 * fps))
    sigma = 0.07 * fps
    accent = _gauss_smooth(_max_filter(accent, spread), sigma)
    frown = _gauss_smooth(_max_filter(frown, spread), sigma)
    return np.clip(accent, 0, 1), np.clip(frown, 0, 1)


def make_targets(audio_16k: npt.NDArray[np.floating], phones: Sequence[Phone] | None,
                 fps: float = 100.0) -> FloatArray | None:
    """Full-face ARKit-52 targets ``[T, 52]`` float32 for one clip (see module docstring).

    ``audio_16k`` is mono audio at 16 kHz; ``phones`` are ``(start_s, end_s, label)``
    in the unified phone set (stress digits and aliases are accepted), or ``None``,
    in which case the clip has no targets and ``None`` is returned.
    """
    if phones is None:
        return None
    audio = np.asarray(audio_16k)
    if audio.ndim != 1:
        raise ValueError(f"audio_16k must be mono [n_samples], got shape {audio.shape}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n = frames_for_samples(audio.shape[0], SAMPLE_RATE, fps)
    times = np.arange(n) / fps
    out = default_synthesizer().frames(list(phones), n, fps).astype(np.float64)
    if n == 0:
        return out.astype(np.float32)
    accent, frown = _prosody(audio, times, _speech_mask(phones, times), fps)
    out[:, _COL["browInnerUp"]] = 0.35 * accent
    out[:, _COL["browOuterUpLeft"]] = 0.25 * accent
    out[:, _COL["browOuterUpRight"]] = 0.25 * accent
    out[:, _COL["browDownLeft"]] = 0.15 * frown
    out[:, _COL["browDownRight"]] = 0.15 * frown
    smile = 0.5 * (out[:, _COL["mouthSmileLeft"]] + out[:, _COL["mouthSmileRight"]])
    stretch = 0.5 * (out[:, _COL["mouthStretchLeft"]] + out[:, _COL["mouthStretchRight"]])
    cheek = np.clip(0.6 * smile + 0.2 * stretch, 0.0, 1.0)
    out[:, _COL["cheekSquintLeft"]] = cheek
    out[:, _COL["cheekSquintRight"]] = cheek
    return np.clip(out, 0.0, 1.0).astype(np.float32)
