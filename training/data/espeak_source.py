"""espeak-ng speech in many languages and voices, with phone events as labels."""

from __future__ import annotations

from pathlib import Path

from audio2face.engines.phonemes.espeak import SynthOptions, synthesize
from training.data.corpus import (
    SAMPLE_RATE,
    Clip,
    normalize_level,
    pad,
    resample,
    validate_phones,
    write_clip,
)
from training.data.jobs import Item

__all__ = ["LICENCE", "VARIANTS", "VOICES", "render"]

LICENCE = "espeak-ng output (program GPL-3.0-or-later; generated audio is not restricted by it)"

# espeak-ng voice -> gettext locale used for its text ("en" means the English sources).
# espeak's SetVoiceByName wants "en" for British English and "fr" for France.
VOICES: dict[str, str] = {
    "en-us": "en", "en": "en", "en-gb-x-rp": "en", "en-029": "en", "en-us-nyc": "en",
    "en-gb-scotland": "en", "es": "es", "es-419": "es", "fr": "fr", "de": "de", "it": "it",
    "pt": "pt", "pt-br": "pt_BR", "nl": "nl", "pl": "pl", "sv": "sv", "cs": "cs", "ru": "ru",
    "tr": "tr", "id": "id", "ro": "ro", "hu": "hu", "da": "da", "fi": "fi",
}  # fmt: skip

VARIANTS: tuple[str, ...] = ("", "f1", "f2", "f3", "f4", "f5", "m1", "m2", "m3", "m4", "m5", "m6", "m7")

# Seconds of speech per character at 175 wpm, measured on English; for planning only.
SECONDS_PER_CHAR = 0.064


def estimate_seconds(text: str, rate: int) -> float:
    return len(text) * SECONDS_PER_CHAR * 175.0 / rate


def render(item: Item, root: Path) -> dict[str, object]:
    params = dict(item.params)
    options = SynthOptions(
        voice=item.voice, rate=int(params["rate"]), pitch=int(params["pitch"]), pitch_range=int(params["range"])
    )
    syn = synthesize(item.text, options)
    audio = resample(syn.audio, syn.sample_rate)
    # Phones were timed at espeak's rate; rescale the last end to the resampled length.
    duration = len(audio) / SAMPLE_RATE
    scale = duration / syn.duration if syn.duration > 0 else 1.0
    phones = [(s * scale, e * scale, p) for s, e, p in syn.phones]
    audio, padded = pad(normalize_level(audio, item.peak), phones, item.lead_s, item.trail_s)
    duration = len(audio) / SAMPLE_RATE
    if padded is None:  # pad() keeps labels when given labels; this satisfies the type checker
        raise RuntimeError("phones lost while padding")
    validate_phones(padded, duration)
    clip = Clip(
        id=item.id, split=item.split, source="espeak-ng", voice=item.voice, lang=item.voice.split("-")[0].split("+")[0],
        text=item.text, text_source=item.text_source, licence=LICENCE, duration=duration, phones=padded,
    )  # fmt: skip
    return write_clip(root, clip, audio)
