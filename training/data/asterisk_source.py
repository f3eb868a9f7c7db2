"""Real recorded speech: asterisk-core-sounds (Allison Smith), 8 kHz GSM.

English prompts are force-aligned to their transcripts with pocketsphinx (the
en-US model, dictionary and aligner ship in the pocketsphinx wheel). Before
alignment, single digits are spelled out ("press 1" is read "press one"), the
transcripts' misspellings are corrected (:data:`SPELLING`), and the words the
dictionary lacks get pronunciations (:data:`PRONUNCIATIONS`): together a fifth of
the prompts, which earlier builds skipped. Prompts with numbers of several digits
(read as "five hundred" or "one two three four": the transcript does not say
which) or failed alignments are still skipped, and so are notes in brackets
("(1 second of silence)", "<beep ascending>"), which are not spoken.
Spanish prompts have no Spanish acoustic model here, so they are included as
*unlabelled* audio (``phones: null``) for loudness / silence evaluation only.

The dictionary has no stress marks, so its ``AH`` is both /ʌ/ ("cup") and schwa
("about"). Each aligned word's ``AH`` is made ``AX`` where espeak-ng's en-us reading of
the same word has a schwa in that vowel slot (:func:`mark_schwas`); the mouth opens much
less on schwa, and the quality metrics count ``AH`` as an open vowel but not ``AX``.

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
from audio2face.engines.phonemes.phoneset import SILENCE, VOWELS, normalize_phone
from training.data.corpus import (
    SAMPLE_RATE,
    finish_clip,
)
from training.data.jobs import Item

__all__ = ["LICENCE", "SOUNDS", "available", "mark_schwas", "prompts", "render"]

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
    """GSM 8 kHz -> float32 16 kHz via sox (its resampler is fine for 2x up).

    ``-D -R``: no dither, repeatable (as ``training.augment``'s codecs run sox). sox dithers
    its 16-bit output by default, with noise seeded from the clock, and that noise alone
    moved pocketsphinx's alignment of 328 of 539 prompts between two builds (session 12)."""
    raw = subprocess.run(
        ["sox", "-D", "-R", "-t", "gsm", "-r", "8000", "-c", "1", str(path), "-r", str(SAMPLE_RATE), "-e", "signed",
         "-b", "16", "-t", "raw", "-"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Misspellings in the transcripts (core-sounds-en.txt); the recordings say the word.
SPELLING = {
    "represenatives": "representatives", "exclaimation": "exclamation", "decending": "descending",
    "witheld": "withheld", "indentified": "identified", "fourtieth": "fortieth", "umute": "unmute",
}  # fmt: skip

# Words of the transcripts that cmudict-en-us lacks, in its phone set (ARPAbet, no
# stress): product names and acronyms as Allison reads them, and compounds.
PRONUNCIATIONS = {
    "unmute": "AH N M Y UW T", "unmuted": "AH N M Y UW T IH D", "undeleted": "AH N D IH L IY T IH D",
    "lowercase": "L OW ER K EY S", "uppercase": "AH P ER K EY S", "semicolon": "S EH M IY K OW L AH N",
    "caret": "K EH R AH T", "backtick": "B AE K T IH K", "xray": "EH K S R EY",
    "waldo's": "W AO L D OW Z", "digium": "D IH JH IY AH M", "dahdi": "D AA D IY",
    "unistim": "Y UW N IH S T IH M", "pbx": "P IY B IY EH K S", "ivr": "AY V IY AA R",
    "iax": "AY EY EH K S", "mgcp": "EH M JH IY S IY P IY",
    "www": "D AH B AH L Y UW D AH B AH L Y UW D AH B AH L Y UW",
}  # fmt: skip


@lru_cache(maxsize=1)
def _dictionary() -> frozenset[str]:
    import pocketsphinx

    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    words = {line.split(" ", 1)[0] for line in path.read_text("utf-8", errors="ignore").splitlines()}
    return frozenset(words | PRONUNCIATIONS.keys())


def align_words(text: str) -> str | None:
    """Lower-cased words for the aligner, or ``None`` if the transcript has a number of
    several digits or a word neither the dictionary nor :data:`PRONUNCIATIONS` holds."""
    # "(1 second of silence)", "<beep ascending>", "(note: does not say "2")": notes
    # about the recording, not words in it.
    text = re.sub(r"\([^)]*\)|<[^>]*>", " ", text.lower().replace("’", "'"))
    # A digit standing alone (before punctuation at most) is read as its name.
    text = re.sub(r"(?<![\w.,])(\d)(?![\w.,]\w|\w)", lambda m: f" {DIGITS[int(m.group(1))]} ", text)
    if re.search(r"\d", text):
        return None
    words = [SPELLING.get(w, w) for w in re.findall(r"[a-z']+", text)]
    if not words:
        return None
    vocab = _dictionary()
    return " ".join(words) if all(w in vocab for w in words) else None


@lru_cache(maxsize=1)
def _decoder() -> Any:
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=SAMPLE_RATE, bestpath=False, loglevel="FATAL")
    last = len(PRONUNCIATIONS) - 1
    for i, (word, phones) in enumerate(PRONUNCIATIONS.items()):
        decoder.add_word(word, phones, i == last)  # the last one rebuilds the search
    return decoder


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
        spans = [(phone.start, phone.duration, normalize_phone(phone.name)) for phone in word]
        labels = mark_schwas(word.name, [label for _, _, label in spans])
        for (start, duration, _), label in zip(spans, labels, strict=True):
            starts.append((start * _FRAME_S, (label,)))
            last_end = (start + duration) * _FRAME_S
    if not starts:
        return None
    starts.append((last_end, (SILENCE,)))
    return tile_phones(starts, len(audio) / SAMPLE_RATE)


def mark_schwas(word: str, phones: list[str]) -> list[str]:
    """``phones`` (one aligned word, unified labels) with each ``AH`` that espeak-ng's
    en-us reading of ``word`` has as a schwa made ``AX``.

    The two readings are matched vowel slot by vowel slot, so only a word whose readings
    have the same number of vowels is changed (otherwise its ``AH`` stay: a guess would
    be worse than the old label). ``word`` may carry pocketsphinx's ``(2)`` suffix of an
    alternative pronunciation; fillers (``<sil>``, ``<s>``) are returned as they are."""
    if "AH" not in phones:
        return phones
    reading = _espeak_vowels(re.sub(r"\(\d+\)$", "", word))
    slots = [i for i, p in enumerate(phones) if p in VOWELS]
    if reading is None or len(reading) != len(slots):
        return phones
    out = list(phones)
    for i, theirs in zip(slots, reading, strict=True):
        if out[i] == "AH" and theirs == "AX":
            out[i] = "AX"
    return out


@lru_cache(maxsize=4096)
def _espeak_vowels(word: str) -> tuple[str, ...] | None:
    """The vowels (unified labels, as the corpus maps English espeak-ng phones) of
    espeak-ng's en-us reading of ``word``, or ``None`` for a filler or when espeak-ng
    is missing."""
    if not re.fullmatch(r"[a-z']+", word):
        return None
    from audio2face.engines.phonemes import espeak
    from audio2face.engines.phonemes.espeak_phones import map_label

    if not espeak.available():
        return None
    vowels: list[str] = []
    for _, label in espeak.synthesize(word, espeak.SynthOptions(voice="en-us")).raw_phones:
        # One espeak-ng phone is one dictionary vowel, even a diphthong that maps to
        # two unified vowels (eə -> EH AX): keep its first.
        mapped = map_label(label, "en")
        if mapped and mapped[0] in VOWELS:
            vowels.append(mapped[0])
    return tuple(vowels)


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
