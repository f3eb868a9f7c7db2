"""numpy's batch FFT in single against double precision, at the prosody analysis's sizes
(issue 14: would float32 make the analysis cheaper?).

    python benchmarks/results/session15/fft_precision.py

77 rows (64 streams' frames of one 40 ms push), rfft of 960 points and irfft of 240, as
``audio2face.audio.prosody._analyse`` calls them (``axis=1``, ``out=``); median of 300
calls, the variants alternating. Prints microseconds per call. Where scipy is installed
(it is not a dependency), ``scipy.fft`` in float32 is timed beside them.
"""

from __future__ import annotations

import time

import numpy as np


def main() -> None:
    rng = np.random.default_rng(0)
    rows = 77
    print(f"numpy {np.__version__}, {rows} rows, median us per call")
    cases = {
        "rfft 960": lambda dt, ct: (rng.standard_normal((rows, 960)).astype(dt),
                                     np.empty((rows, 481), ct), lambda x, o: np.fft.rfft(x, axis=1, out=o)),
        "rfft 768": lambda dt, ct: (rng.standard_normal((rows, 768)).astype(dt),
                                     np.empty((rows, 385), ct), lambda x, o: np.fft.rfft(x, axis=1, out=o)),
        "irfft 240": lambda dt, ct: (rng.standard_normal((rows, 121)).astype(dt),
                                      np.empty((rows, 240), dt), lambda x, o: np.fft.irfft(x, 240, axis=1, out=o)),
    }  # fmt: skip
    try:
        import scipy.fft as sfft
    except ImportError:
        sfft = None
    for name, make in cases.items():
        made = {dt.__name__: make(dt, ct) for dt, ct in ((np.float64, np.complex128), (np.float32, np.complex64))}
        if sfft is not None:
            x32 = made["float32"][0]
            call = (lambda x, o: sfft.rfft(x, axis=1)) if name.startswith("rfft") else (
                lambda x, o: sfft.irfft(x, 240, axis=1))  # fmt: skip
            made["scipy-float32"] = (x32, None, call)
        times: dict[str, list[float]] = {k: [] for k in made}
        for _ in range(300):
            for k, (x, o, f) in made.items():
                t = time.perf_counter()
                f(x, o)
                times[k].append(time.perf_counter() - t)
        print(f"{name:10s} " + "  ".join(f"{k} {1e6 * float(np.median(v)):7.1f}" for k, v in times.items()))


if __name__ == "__main__":
    main()
