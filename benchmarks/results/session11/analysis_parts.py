"""Issue 14, session 11: the prosody analysis taken apart, microseconds per frame.

77 frames of noise at 16 kHz (one 64-stream batch's worth), each piece of
``prosody._analyse`` timed alone in a loop. Run from the repository root:
``PYTHONPATH=src python benchmarks/results/session11/analysis_parts.py``."""

import time

import numpy as np

from audio2face.audio import prosody as P

an = P._analysis(16000, P.DEFAULT_PROSODY)
o = P.DEFAULT_PROSODY
rng = np.random.default_rng(0)
n = 77
audio = (rng.standard_normal(n * 533 + 2000) * 0.1).astype(np.float32)
at = (np.arange(n) * 533).astype(np.intp)
P._analyse(an, o, audio, at)
work = P._WORK
padded = work.get(f"padded-{an.win}", n, an.nfft)
power = np.empty(n)


def tm(f, reps=3000):
    f()
    t = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t) / reps / n * 1e6


print("analyse", tm(lambda: P._analyse(an, o, audio, at)))
print("windows", tm(lambda: P._windows_kernel(audio, at, an.window, padded, power)))
bins = an.nfft // 2 + 1
spec = np.fft.rfft(padded, axis=1)
psd = np.empty((n, bins))
print("rfft", tm(lambda: np.fft.rfft(padded, axis=1, out=spec)))
print("power", tm(lambda: P._power_kernel(spec, psd)))
acf = np.fft.irfft(psd[:, : an.n_small // 2 + 1], an.n_small, axis=1)
print("irfft", tm(lambda: np.fft.irfft(psd[:, : an.n_small // 2 + 1], an.n_small, axis=1, out=acf)))
level, pitch = np.empty(n), np.empty(n)
voiced = np.empty(n, bool)
bands = np.empty((n, o.n_bands), np.float32)
print(
    "features",
    tm(
        lambda: P._features_kernel(
            power,
            psd,
            acf,
            an.inv_window_acf,
            an.bands,
            an.band_lo,
            an.band_hi,
            an.win,
            an.lag_min,
            an.acf_rate,
            o.voicing_threshold,
            o.speech_floor_db,
            level,
            pitch,
            voiced,
            bands,
        )
    ),
)
print(an.nfft, an.n_small, an.lag_min, an.lag_max, (an.band_hi - an.band_lo).sum())
