"""Clip records and their on-disk form: ``<split>/<id>.wav`` + ``<id>.json``.

Every clip is 16 kHz mono; its phones (unified set) tile ``[0, duration]`` with
``SIL`` for leading, trailing and interior silence, or are ``None`` for
unlabelled audio.
"""

from __future__ import annotations

import ctypes
import json
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from audio2face.engines.phonemes.phoneset import SILENCE, normalize_phone

if TYPE_CHECKING:
    from training.data.jobs import Item

__all__ = [
    "SAMPLE_RATE", "Clip", "finish_clip", "normalize_level", "pad", "resample", "validate_phones", "write_clip",
]  # fmt: skip

SAMPLE_RATE = 16000

Span = tuple[float, float, str]


@dataclass(frozen=True)
class Clip:
    """Metadata of one corpus clip (the JSON sidecar, minus the audio)."""

    id: str
    split: str
    source: str
    voice: str
    lang: str
    text: str
    text_source: str
    licence: str
    duration: float
    phones: list[Span] | None
    sample_rate: int = SAMPLE_RATE


def seed_libc_rand(key: str) -> None:
    """Seed libc's ``rand()`` from ``key`` (a clip or job id).

    flite's clustergen voices (``awb``, ``rms``) draw their excitation noise from it and
    libespeak-ng 1.51 calls it too: unseeded, a clip's audio depends on every synthesis
    the process ran before it, so two builds of the same plan differ."""
    ctypes.CDLL(None).srand(zlib.crc32(key.encode("utf-8")))


def resample(audio: npt.NDArray[np.float32], sr: int) -> npt.NDArray[np.float32]:
    """To 16 kHz with soxr's high-quality filter (no-op when already 16 kHz)."""
    if sr == SAMPLE_RATE:
        return audio.astype(np.float32, copy=False)
    return np.asarray(soxr.resample(audio, sr, SAMPLE_RATE, quality="HQ"), dtype=np.float32)


def pad(
    audio: npt.NDArray[np.float32], phones: list[Span] | None, lead_s: float, trail_s: float
) -> tuple[npt.NDArray[np.float32], list[Span] | None]:
    """Add digital silence around a clip and shift its phones (merging edge ``SIL``)."""
    lead, trail = round(lead_s * SAMPLE_RATE), round(trail_s * SAMPLE_RATE)
    out = np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(trail, np.float32)])
    if phones is None:
        return out, None
    shift, duration = lead / SAMPLE_RATE, len(out) / SAMPLE_RATE
    spans: list[Span] = [(0.0, shift, SILENCE)] if shift > 0 else []
    for start, end, label in phones:
        _push(spans, start + shift, end + shift, label)
    _push(spans, spans[-1][1] if spans else 0.0, duration, SILENCE)
    return out, [s for s in spans if s[1] > s[0]]


def _push(spans: list[Span], start: float, end: float, label: str) -> None:
    if spans and spans[-1][2] == label:
        spans[-1] = (spans[-1][0], end, label)
    elif end > start:
        spans.append((start, end, label))


def normalize_level(audio: npt.NDArray[np.float32], peak: float) -> npt.NDArray[np.float32]:
    """Scale to the given peak; silent input is returned unchanged."""
    top = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio if top < 1e-6 else (audio * (peak / top)).astype(np.float32)


def validate_phones(phones: list[Span], duration: float, tol: float = 1e-3) -> None:
    """Raise ``ValueError`` unless phones are unified labels tiling ``[0, duration]``."""
    if not phones:
        raise ValueError("empty phone list")
    if abs(phones[0][0]) > tol or abs(phones[-1][1] - duration) > tol:
        raise ValueError(f"phones span {phones[0][0]}..{phones[-1][1]}, clip is 0..{duration}")
    for (_, end, _), (start, _, _) in zip(phones, phones[1:], strict=False):
        if abs(end - start) > tol:
            raise ValueError(f"gap or overlap at {end} / {start}")
    for start, end, label in phones:
        if end < start or normalize_phone(label) != label:
            raise ValueError(f"bad phone span {(start, end, label)}")


def write_clip(root: Path, clip: Clip, audio: npt.NDArray[np.float32]) -> dict[str, object]:
    """Write ``<root>/<split>/<id>.wav`` (float32) and its JSON; return the JSON record."""
    folder = root / clip.split
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / f"{clip.id}.wav", np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="FLOAT")
    record = asdict(clip)
    if clip.phones is not None:
        record["phones"] = [[round(s, 4), round(e, 4), p] for s, e, p in clip.phones]
    (folder / f"{clip.id}.json").write_text(json.dumps(record, ensure_ascii=False), "utf-8")
    return record


def finish_clip(
    root: Path,
    item: Item,
    audio: npt.NDArray[np.float32],
    phones: list[Span] | None,
    *,
    source: str,
    voice: str,
    lang: str,
    licence: str,
    text_source: str | None = None,
) -> dict[str, object]:
    """The last steps every source shares: level ``audio`` (16 kHz) to ``item.peak``, pad
    it with the item's silence, check the phones (``None``: an unlabelled clip) and write
    the clip; return its record."""
    audio, padded = pad(normalize_level(audio, item.peak), phones, item.lead_s, item.trail_s)
    duration = len(audio) / SAMPLE_RATE
    if padded is not None:
        validate_phones(padded, duration)
    clip = Clip(
        id=item.id, split=item.split, source=source, voice=voice, lang=lang, text=item.text,
        text_source=text_source or item.text_source, licence=licence, duration=duration, phones=padded,
    )  # fmt: skip
    return write_clip(root, clip, audio)
