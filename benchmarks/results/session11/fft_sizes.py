"""Issue 14, session 11: numpy's rfft / irfft cost per row at the sizes the prosody
analysis could use (77 rows, one 64-stream batch). ``python fft_sizes.py``."""

import time

import numpy as np

rng = np.random.default_rng(0)
for n in (960, 768, 640, 512, 480, 320, 256, 240, 160):
    x = rng.standard_normal((77, n))
    out = np.empty((77, n // 2 + 1), np.complex128)
    for _ in range(50):
        np.fft.rfft(x, axis=1, out=out)
    t = time.perf_counter()
    for _ in range(2000):
        np.fft.rfft(x, axis=1, out=out)
    dt = (time.perf_counter() - t) / 2000 / 77 * 1e6
    y = np.empty((77, n))
    t = time.perf_counter()
    for _ in range(2000):
        np.fft.irfft(out, n, axis=1, out=y)
    di = (time.perf_counter() - t) / 2000 / 77 * 1e6
    print(n, f"rfft {dt:.2f} us/row  irfft {di:.2f}")
