"""On-the-fly audio augmentations for training (pure numpy, seeded, 16 kHz mono).

Every function takes float32 audio and a ``numpy.random.Generator`` where it
draws randomness, returns new arrays and never mutates its inputs. Functions
that change timing (speed, padding) also return the transformed phone spans so
labels stay aligned with the audio.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import numpy.typing as npt
import soxr

__all__ = [
    "babble_noise",
    "band_limit",
    "gain",
    "gsm_roundtrip",
    "music_background",
    "mu_law_roundtrip",
    "add_noise",
    "pad_silence",
    "pink_noise",
    "pitch_shift",
    "reverb",
    "speed",
    "white_noise",
]

Audio = npt.NDArray[np.float32]
Span = tuple[float, float, str]
SAMPLE_RATE = 16000


def _f32(x: npt.ArrayLike) -> Audio:
    return np.asarray(x, dtype=np.float32)


def _rms(x: Audio) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def white_noise(n: int, rng: np.random.Generator) -> Audio:
    return _f32(rng.standard_normal(n))


def pink_noise(n: int, rng: np.random.Generator) -> Audio:
    """1/f noise by shaping white noise's spectrum (amplitude ∝ f^-1/2)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    pink = np.fft.irfft(spectrum / np.sqrt(f), n)
    return _f32(pink / (np.std(pink) + 1e-12))


def babble_noise(others: list[Audio], n: int, rng: np.random.Generator, talkers: int = 4) -> Audio:
    """Sum of random excerpts of other clips (crowd-like speech noise)."""
    if not others:
        raise ValueError("babble_noise needs at least one other clip")
    out = np.zeros(n, np.float64)
    for _ in range(talkers):
        clip = others[int(rng.integers(len(others)))]
        if clip.size == 0:
            continue
        start = int(rng.integers(max(len(clip) - n, 0) + 1))
        piece = np.resize(clip[start : start + n], n)  # loops short clips
        out += piece / (_rms(piece) + 1e-9)
    return _f32(out / (np.std(out) + 1e-12))


def add_noise(audio: Audio, noise: Audio, snr_db: float) -> Audio:
    """Mix ``noise`` (looped/cropped to length) at the given speech-to-noise ratio."""
    if audio.size == 0:
        return _f32(audio.copy())
    noise = np.resize(noise, audio.shape)
    scale = _rms(audio) / (_rms(noise) + 1e-12) / (10 ** (snr_db / 20))
    return _f32(audio + scale * noise)


def reverb(audio: Audio, rng: np.random.Generator, rt60_s: tuple[float, float] = (0.15, 0.8), wet: float = 0.5) -> Audio:
    """Convolve with a synthetic room response: direct path + exponentially decaying noise."""
    rt60 = float(rng.uniform(*rt60_s))
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    ir[: int(0.002 * SAMPLE_RATE)] = 0.0  # a short gap before the first reflections
    ir = ir / (np.sqrt(np.sum(ir**2)) + 1e-12) * wet
    ir[0] = 1.0
    size = len(audio) + n - 1
    nfft = 1 << (size - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(audio, nfft) * np.fft.rfft(ir, nfft), nfft)[: len(audio)]
    return _f32(out * (_rms(audio) / (_rms(_f32(out)) + 1e-12)))


def band_limit(audio: Audio, low_hz: float = 300.0, high_hz: float = 3400.0, via_rate: int = 8000) -> Audio:
    """Telephone band: resample down to ``via_rate`` and back (soxr), then cut below ``low_hz``."""
    down = soxr.resample(audio, SAMPLE_RATE, via_rate, quality="HQ")
    up = _f32(soxr.resample(down, via_rate, SAMPLE_RATE, quality="HQ"))
    up = np.resize(up, audio.shape) if len(up) != len(audio) else up
    spectrum = np.fft.rfft(up)
    freqs = np.fft.rfftfreq(len(up), 1 / SAMPLE_RATE)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0.0
    return _f32(np.fft.irfft(spectrum, len(up)))


def mu_law_roundtrip(audio: Audio, bits: int = 8) -> Audio:
    """G.711-like companding to ``bits`` and back (quantisation noise shaped like a codec)."""
    mu = float(2**bits - 1)
    x = np.clip(audio, -1.0, 1.0)
    encoded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((encoded + 1) / 2 * mu) / mu * 2 - 1
    return _f32(np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu)


def gsm_roundtrip(audio: Audio) -> Audio:
    """GSM 06.10 at 8 kHz and back through sox; falls back to mu-law if sox is missing."""
    if shutil.which("sox") is None:
        return mu_law_roundtrip(band_limit(audio))
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    raw = ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1"]
    gsm = subprocess.run(
        ["sox", *raw, "-r", str(SAMPLE_RATE), "-", "-t", "gsm", "-r", "8000", "-"], input=pcm, capture_output=True, check=True
    ).stdout
    back = subprocess.run(
        ["sox", "-t", "gsm", "-r", "8000", "-c", "1", "-", *raw, "-r", str(SAMPLE_RATE), "-"],
        input=gsm, capture_output=True, check=True,
    ).stdout  # fmt: skip
    out = np.frombuffer(back, dtype="<i2").astype(np.float32) / 32768.0
    return _f32(np.resize(out, audio.shape))


def speed(audio: Audio, factor: float, phones: list[Span] | None = None) -> tuple[Audio, list[Span] | None]:
    """Play ``factor`` times faster (pitch rises too); phone times are divided by ``factor``."""
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor must be in 0.5..2.0, got {factor}")
    out = _f32(soxr.resample(audio, SAMPLE_RATE * factor, SAMPLE_RATE, quality="HQ"))
    if phones is None:
        return out, None
    duration = len(out) / SAMPLE_RATE
    scaled = [(s / factor, e / factor, p) for s, e, p in phones]
    if scaled:  # absorb resampler rounding so phones still tile the clip exactly
        scaled[-1] = (scaled[-1][0], duration, scaled[-1][2])
    return out, scaled


def pitch_shift(audio: Audio, semitones: float) -> Audio:
    """Shift pitch while keeping duration: resample, then time-stretch back by overlap-add."""
    if not -12.0 <= semitones <= 12.0:
        raise ValueError(f"semitones must be in -12..12, got {semitones}")
    ratio = 2 ** (semitones / 12)
    shifted = _f32(soxr.resample(audio, SAMPLE_RATE * ratio, SAMPLE_RATE, quality="HQ"))
    return _ola_stretch(shifted, len(audio))


def _ola_stretch(x: Audio, n_out: int, frame: int = 512) -> Audio:
    """Plain overlap-add time-stretch to ``n_out`` samples (Hann, 50 % output overlap)."""
    hop_out = frame // 2
    if len(x) < frame or n_out < frame:
        return _f32(np.resize(x, n_out))
    window = np.hanning(frame)
    frames = max(1, (n_out - frame) // hop_out + 1)
    hop_in = (len(x) - frame) / max(frames - 1, 1)
    out = np.zeros(n_out + frame, np.float64)
    norm = np.zeros(n_out + frame, np.float64)
    for i in range(frames):
        a = int(round(i * hop_in))
        out[i * hop_out : i * hop_out + frame] += x[a : a + frame] * window
        norm[i * hop_out : i * hop_out + frame] += window
    return _f32(out[:n_out] / np.maximum(norm[:n_out], 1e-3))


def gain(audio: Audio, db: float) -> Audio:
    """Scale by ``db`` decibels (may clip on purpose: real inputs clip too)."""
    return _f32(np.clip(audio * 10 ** (db / 20), -1.0, 1.0))


def pad_silence(audio: Audio, lead_s: float, trail_s: float, phones: list[Span] | None = None,
                noise_floor_db: float | None = None, rng: np.random.Generator | None = None
                ) -> tuple[Audio, list[Span] | None]:  # fmt: skip
    """Add (optionally faintly noisy) silence at both ends; shift phones, extending edge SIL."""
    if lead_s < 0 or trail_s < 0:
        raise ValueError("padding must be non-negative")
    lead, trail = round(lead_s * SAMPLE_RATE), round(trail_s * SAMPLE_RATE)
    out = np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(trail, np.float32)])
    if noise_floor_db is not None:
        gen = rng if rng is not None else np.random.default_rng(0)
        out = out + _f32(gen.standard_normal(len(out)) * 10 ** (noise_floor_db / 20))
    if phones is None:
        return _f32(out), None
    shift, duration = lead / SAMPLE_RATE, len(out) / SAMPLE_RATE
    spans = [(s + shift, e + shift, p) for s, e, p in phones]
    if spans and shift > 0:
        spans = ([(0.0, spans[0][1], "SIL")] + spans[1:]) if spans[0][2] == "SIL" else [(0.0, shift, "SIL"), *spans]
    if spans and duration > spans[-1][1]:
        last = spans[-1]
        spans[-1:] = [(last[0], duration, "SIL")] if last[2] == "SIL" else [last, (last[1], duration, "SIL")]
    return _f32(out), spans


def music_background(n: int, rng: np.random.Generator, notes: int = 8) -> Audio:
    """Music-like noise: harmonic tones (random pitches, 3-6 partials) under ADSR-ish envelopes."""
    out = np.zeros(n, np.float64)
    t = np.arange(n) / SAMPLE_RATE
    for _ in range(notes):
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)  # A2..A5 on the equal-tempered scale
        start = int(rng.integers(0, max(n - 1, 1)))
        length = int(rng.uniform(0.2, 1.5) * SAMPLE_RATE)
        seg = slice(start, min(n, start + length))
        tt = t[seg] - t[start]
        env = (1 - np.exp(-tt / 0.01)) * np.exp(-tt / rng.uniform(0.2, 0.8))
        tone = sum(np.sin(2 * np.pi * f0 * k * tt) / k**1.5 for k in range(1, int(rng.integers(3, 7))))
        out[seg] += env * tone
    return _f32(out / (np.std(out) + 1e-12))
