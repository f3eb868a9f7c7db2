"""Made-up clips for testing the benchmark before data/corpus exists.

Random phone strings (words of CV syllables, pauses of 0.1-0.6 s) with crude audio:
a 120 Hz buzz for voiced phones, louder for open vowels, noise for fricatives and
near-silence for stop closures, so that an energy baseline has something to follow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from audio2face.engines.phonemes.phoneset import (
    BILABIALS,
    OPEN_VOWELS,
    ROUNDED_VOWELS,
    SPREAD_VOWELS,
)

SR = 16000
_VOWELS = sorted(OPEN_VOWELS | ROUNDED_VOWELS | SPREAD_VOWELS)
_CONS = sorted(BILABIALS) * 2 + ["T", "D", "K", "S", "F", "L", "N", "W", "R", "SH"]
_FRIC = {"S", "F", "SH"}
_STOPS = {"P", "B", "T", "D", "K"}

Phone = tuple[float, float, str]


def make_clip(rng: np.random.Generator, n_words: int = 6) -> tuple[npt.NDArray[np.float32], list[Phone]]:
    """One clip: (audio at 16 kHz, phones tiling it)."""
    phones: list[Phone] = []
    t = 0.0

    def add(label: str, dur: float) -> None:
        nonlocal t
        phones.append((round(t, 4), round(t + dur, 4), label))
        t += dur

    add("SIL", float(rng.uniform(0.3, 0.6)))
    for w in range(n_words):
        for _ in range(int(rng.integers(1, 4))):
            add(str(rng.choice(_CONS)), float(rng.uniform(0.03, 0.1)))
            add(str(rng.choice(_VOWELS)), float(rng.uniform(0.07, 0.2)))
        if w < n_words - 1:
            add("SIL", float(rng.uniform(0.1, 0.6)) if rng.random() < 0.4 else 0.02)
    add("SIL", float(rng.uniform(0.3, 0.6)))
    n = int(round(t * SR))
    ts = np.arange(n) / SR
    amp = np.zeros(n)
    kind = np.zeros(n, np.int8)  # 0 silent, 1 voiced, 2 noise
    for s, e, p in phones:
        sl = slice(int(round(s * SR)), int(round(e * SR)))
        if p in OPEN_VOWELS:
            amp[sl], kind[sl] = 0.5, 1
        elif p in _VOWELS:
            amp[sl], kind[sl] = 0.3, 1
        elif p in _FRIC:
            amp[sl], kind[sl] = 0.08, 2
        elif p in _STOPS:
            amp[sl], kind[sl] = 0.01, 2
        elif p != "SIL":
            amp[sl], kind[sl] = 0.12, 1
    env = np.convolve(amp, np.ones(160) / 160, mode="same")  # 10 ms ramps
    buzz = 2.0 * ((ts * 120.0) % 1.0) - 1.0
    noise = rng.standard_normal(n)
    audio = env * np.where(kind == 2, noise * 0.5, buzz) + 0.002 * noise
    return audio.astype(np.float32), phones


def write_corpus(directory: str | Path, n_clips: int = 8, seed: int = 0, with_unaligned: int = 2) -> Path:
    """Write ``<id>.wav`` + ``<id>.json`` clips; the last ``with_unaligned`` have phones null."""
    import soundfile as sf

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n_clips):
        audio, phones = make_clip(rng)
        cid = f"synth{i:03d}"
        sf.write(out / f"{cid}.wav", audio, SR, subtype="PCM_16")
        meta = {"phones": None if i >= n_clips - with_unaligned else [list(p) for p in phones]}
        (out / f"{cid}.json").write_text(json.dumps(meta), encoding="utf-8")
    return out
