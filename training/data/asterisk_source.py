"""Real recorded speech: asterisk-core-sounds (Allison Smith), 8 kHz GSM.

English prompts are force-aligned to their transcripts with pocketsphinx (the
en-US model, dictionary and aligner ship in the pocketsphinx wheel). Prompts
with out-of-dictionary words (digits, names) or failed alignments are skipped.
Spanish prompts have no Spanish acoustic model here, so they are included as
*unlabelled* audio (``phones: null``) for loudness / silence evaluation only.

Note: calling ``Decoder.hyp()`` after a phone-alignment pass crashes
pocketsphinx 5.1.1, so only ``get_alignment()`` is used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from audio2face.engines.phonemes.espeak_phones import tile_phones
from audio2face.engines.phonemes.phoneset import SILENCE, normalize_phone
from training.data.corpus import (
    SAMPLE_RATE,
    finish_clip,
)
from training.data.jobs import Item

__all__ = ["LICENCE", "SOUNDS", "available", "prompts", "render"]

LICENCE = "CC-BY-SA-3.0, (c) 2003-2010 Allison Smith / Digium (asterisk-core-sounds)"
SOUNDS = {"en": Path("/usr/share/asterisk/sounds/en"), "es": Path("/usr/share/asterisk/sounds/es")}
_FRAME_S = 0.01  # pocketsphinx: 100 frames per second


def available(lang: str) -> bool:
    return SOUNDS[lang].exists() and shutil.which("sox") is not None


def prompts(lang: str, transcripts: dict[str, str]) -> list[tuple[str, str, Path, str]]:
    """(transcript key, relative name, path, transcript) for every GSM prompt with a transcript."""
    root = SOUNDS[lang]
    out = []
    for path in sorted(root.rglob("*.gsm")):
        name = str(path.relative_to(root).with_suffix(""))
        key = name if name in transcripts else path.stem
        if key in transcripts:
            out.append((key, name, path, transcripts[key]))
    return out


def decode_gsm(path: Path) -> npt.NDArray[np.float32]:
    """GSM 8 kHz -> float32 16 kHz via sox (its resampler is fine for 2x up)."""
    raw = subprocess.run(
        ["sox", "-t", "gsm", "-r", "8000", "-c", "1", str(path), "-r", str(SAMPLE_RATE), "-e", "signed",
         "-b", "16", "-t", "raw", "-"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


@lru_cache(maxsize=1)
def _dictionary() -> frozenset[str]:
    import pocketsphinx

    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    return frozenset(line.split(" ", 1)[0] for line in path.read_text("utf-8", errors="ignore").splitlines())


def align_words(text: str) -> str | None:
    """Lower-cased words for the aligner, or ``None`` if any is not in the dictionary."""
    words = re.findall(r"[a-z']+", text.lower().replace("’", "'"))
    if not words or re.search(r"\d", text):
        return None
    vocab = _dictionary()
    return " ".join(words) if all(w in vocab for w in words) else None


@lru_cache(maxsize=1)
def _decoder() -> Any:
    from pocketsphinx import Decoder

    return Decoder(samprate=SAMPLE_RATE, bestpath=False, loglevel="FATAL")


def force_align(audio: npt.NDArray[np.float32], words: str) -> list[tuple[float, float, str]] | None:
    """Phone spans (unified labels) tiling the clip, or ``None`` if alignment failed."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    decoder = _decoder()
    decoder.set_align_text(words)
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    decoder.set_alignment()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    alignment = decoder.get_alignment()
    if alignment is None:
        return None
    starts: list[tuple[float, tuple[str, ...]]] = []
    last_end = 0.0
    for word in alignment:
        for phone in word:
            starts.append((phone.start * _FRAME_S, (normalize_phone(phone.name),)))
            last_end = (phone.start + phone.duration) * _FRAME_S
    if not starts:
        return None
    starts.append((last_end, (SILENCE,)))
    return tile_phones(starts, len(audio) / SAMPLE_RATE)


def render(item: Item, root: Path, lang: str) -> dict[str, object] | None:
    audio = decode_gsm(Path(item.path))
    phones = None
    if lang == "en":
        words = align_words(item.text)
        if words is None:
            return None
        try:
            phones = force_align(audio, words)
        except (RuntimeError, ValueError, KeyError):
            _decoder.cache_clear()  # a failed search can leave the decoder in a bad state
            return None
        if phones is None or sum(e - s for s, e, p in phones if p != SILENCE) < 0.2:
            return None
    return finish_clip(root, item, audio, phones, source=f"asterisk-{lang}", voice="allison", lang=lang,
                       licence=LICENCE, text_source=f"asterisk-core-sounds-{lang} transcript")  # fmt: skip
