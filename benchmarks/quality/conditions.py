"""Listening conditions for the quality benchmark: the held-out clips as a user's
channel would deliver them (issue 12 reports noisy and codec conditions apart).

Each condition is a deterministic function of the clip (seeded by its id), built on
the training augmentations (``training/augment.py``) so that the benchmark and the
recipe mean the same thing by "GSM" or "10 dB". Noise is scaled against the
*speech* level (the RMS over labelled non-silent phones), not the whole clip, so
the padding around a clip does not make the SNR look better than it is; the noise
runs through the pauses too, which is what ``silence_rest`` at 10 dB measures.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for training.augment

Audio = npt.NDArray[np.float32]
Condition = Callable[[str, Audio, int, Sequence[tuple[float, float, str]] | None], Audio]


def _rng(clip_id: str, condition: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{condition}:{clip_id}".encode()))


def speech_rms(audio: Audio, sr: int, phones: Sequence[tuple[float, float, str]] | None) -> float:
    if phones:
        parts = [audio[int(s * sr) : int(e * sr)] for s, e, p in phones if p != "SIL"]
        voiced = np.concatenate(parts) if parts else audio
    else:
        voiced = audio[np.abs(audio) > 0.01 * (np.abs(audio).max(initial=0.0) + 1e-12)]
    return float(np.sqrt(np.mean(np.square(voiced, dtype=np.float64)))) if voiced.size else 0.0


def noise_at(snr_db: float) -> Condition:
    def apply(clip_id: str, audio: Audio, sr: int, phones: Sequence[tuple[float, float, str]] | None) -> Audio:
        from training import augment as A

        rng = _rng(clip_id, f"noise{snr_db}")
        noise = A.pink_noise(audio.size, rng) if rng.random() < 0.5 else A.white_noise(audio.size, rng)
        scale = speech_rms(audio, sr, phones) / (float(np.std(noise)) + 1e-12) / 10 ** (snr_db / 20)
        return np.asarray(audio + scale * noise, np.float32)

    return apply


def gsm(clip_id: str, audio: Audio, sr: int, phones: Sequence[tuple[float, float, str]] | None) -> Audio:
    """GSM 06.10 at 8 kHz (a phone call), via sox."""
    from training import augment as A

    del clip_id, sr, phones
    return A.gsm_roundtrip(audio)


CONDITIONS: dict[str, Condition] = {"noise10": noise_at(10.0), "noise20": noise_at(20.0), "gsm": gsm}
