"""Median F1, F2, F3 of five vowel labels per voice of data/corpus9: how far festival
``czech_krb``'s formants sit above the adult voices' (session 16's rule calls it a child's
voice; this checks how far a vocal-tract warp has to reach for it).

    python benchmarks/results/session16/issue12/formants.py czech_krb,czech_ph,... > formants.txt

Per vowel label longer than 60 ms: 25 ms at its middle, pre-emphasised, Hann-tapered, an
order-14 LPC fit (autocorrelation method); the formants are the angles of its roots above
200 Hz. A rough estimate, read as medians over many vowels.
"""

from __future__ import annotations

import collections
import json
import sys

import numpy as np
import soundfile as sf

VOWELS = ("AA", "EH", "IY", "OW", "UW")
RATE = 16000


def lpc(x: np.ndarray, order: int) -> np.ndarray:
    """Levinson-Durbin on the autocorrelation of ``x``."""
    r = np.correlate(x, x, "full")[len(x) - 1 : len(x) + order]
    a = np.zeros(order + 1)
    a[0] = 1.0
    e = r[0]
    for i in range(1, order + 1):
        k = -(r[i] + a[1:i] @ r[i - 1 : 0 : -1]) / e
        a[1 : i + 1] = a[1 : i + 1] + k * np.r_[a[i - 1 : 0 : -1], 1.0]
        e *= 1.0 - k * k
    return a


def formants(seg: np.ndarray) -> list[float] | None:
    seg = np.r_[seg[0], seg[1:] - 0.97 * seg[:-1]] * np.hanning(len(seg))
    roots = [z for z in np.roots(lpc(seg, 14)) if np.imag(z) > 0]
    f = sorted(float(np.angle(z)) * RATE / (2 * np.pi) for z in roots)
    f = [x for x in f if x > 200]
    return f[:3] if len(f) >= 3 else None


def main() -> None:
    voices = sys.argv[1].split(",")
    found: dict[str, dict[str, list[list[float]]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    with open("data/corpus9/manifest.jsonl", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    for r in records:
        if r["voice"] not in voices or not r["phones"]:
            continue
        x, _ = sf.read("data/corpus9/" + r["wav"], dtype="float64")
        for a, b, ph in r["phones"]:
            if ph in VOWELS and b - a > 0.06:
                m = int((a + b) / 2 * RATE)
                seg = x[m - 200 : m + 200]
                if len(seg) == 400 and np.std(seg) > 1e-3 and (f := formants(seg)):
                    found[r["voice"]][ph].append(f)
    print("voice: label [F1, F2, F3 Hz, vowels]")
    for v in voices:
        cells = {
            ph: [round(float(np.median([f[i] for f in fs]))) for i in range(3)] + [len(fs)]
            for ph, fs in sorted(found[v].items())
        }
        print(v, cells)


if __name__ == "__main__":
    main()
