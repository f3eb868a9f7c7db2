"""Sentence sources available offline, each tagged with where it came from.

No internet here, so text comes from files every Debian machine carries:

* ``licenses``: prose of /usr/share/common-licenses (GPL, Apache, MPL, ...).
* ``copyright``: prose from /usr/share/doc/*/copyright files.
* ``asterisk``: the transcripts of asterisk-core-sounds (en and es).
* ``gettext``: translated UI messages in /usr/share/locale/<lang>/LC_MESSAGES/*.mo,
  the only sizeable local source of natural text in French, German, Polish, ...
* ``cmudict``: random word sequences drawn from the CMU dictionary shipped in the
  pocketsphinx wheel, weighted towards words with bilabials, rounded and open
  vowels so those mouth shapes are well covered.
"""

from __future__ import annotations

import gettext
import glob
import gzip
import random
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Sentence", "asterisk_transcripts", "cmudict_sentences", "english_prose", "gettext_sentences"]

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_SPLIT = re.compile(r"(?<=[.!?;:])\s+")
_MARKUP = re.compile(r"%\S+|<[^>]*>|\{[^}]*\}|&\w+;|\\[nt]|https?://\S+|\S+@\S+|\S*[/\\=_$\[\]]\S*|\S+-\S+-\S+")


@dataclass(frozen=True)
class Sentence:
    """One utterance to synthesise, with its language and provenance."""

    text: str
    lang: str
    source: str


def clean(text: str, *, min_words: int = 4, max_words: int = 28) -> str | None:
    """Strip markup / paths / format strings; keep only speakable prose sentences."""
    if re.search(r"\d|[:@#<>()]\s*$", text):  # years, version numbers, "License:" headers
        return None
    text = _MARKUP.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip(" -*#|\t")
    words = _WORD.findall(text)
    if not (min_words <= len(words) <= max_words):
        return None
    letters = sum(len(w) for w in words)
    if letters < 0.6 * len(text.replace(" ", "")):  # mostly symbols: not prose
        return None
    if sum(w[0].isupper() for w in words) > len(words) // 3:  # name lists, titles, acronyms
        return None
    return text


def _sentences_of(paragraph: str) -> list[str]:
    out = []
    for piece in _SPLIT.split(re.sub(r"\s+", " ", paragraph)):
        cleaned = clean(piece)
        if cleaned:
            out.append(cleaned)
    return out


def english_prose(limit_files: int = 400) -> list[Sentence]:
    """English sentences from licence texts and package copyright files."""
    out: list[Sentence] = []
    seen: set[str] = set()
    lic = sorted(p for p in glob.glob("/usr/share/common-licenses/*") if Path(p).is_file())
    docs = sorted(glob.glob("/usr/share/doc/*/copyright"))[:limit_files]
    for source, paths in (("licenses", lic), ("copyright", docs)):
        for path in paths:
            try:
                text = Path(path).read_text("utf-8", errors="ignore")
            except OSError:
                continue
            for para in re.split(r"\n\s*\n", text):
                for s in _sentences_of(para):
                    if s.lower() not in seen:
                        seen.add(s.lower())
                        out.append(Sentence(s, "en", source))
    return out


def asterisk_transcripts(lang: str) -> dict[str, str]:
    """Prompt name -> transcript from asterisk-core-sounds-<lang> (``[tones]`` dropped)."""
    path = Path(f"/usr/share/doc/asterisk-core-sounds-{lang}/core-sounds-{lang}.txt.gz")
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="ignore") as fh:
        lines = fh.readlines()
    for line in lines:
        if ":" not in line or line.startswith(";"):
            continue
        name, text = line.split(":", 1)
        text = re.sub(r"\[[^\]]*\]", " ", text).strip()
        if text and _WORD.search(text):
            out[name.strip()] = text
    return out


def gettext_sentences(lang: str, limit: int = 4000) -> list[Sentence]:
    """Natural-language sentences from translated message catalogues for ``lang``."""
    seen: set[str] = set()
    out: list[Sentence] = []
    for mo in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
        try:
            with open(mo, "rb") as fh:
                catalog = gettext.GNUTranslations(fh)
        except (OSError, gettext.error, UnicodeDecodeError, ValueError):
            continue
        for msg in catalog._catalog.values():  # noqa: SLF001 - no public accessor for all messages
            if not isinstance(msg, str):
                continue
            for s in _sentences_of(msg):
                if s.lower() not in seen:
                    seen.add(s.lower())
                    out.append(Sentence(s, lang, "gettext"))
        if len(out) >= limit:
            break
    return out[:limit]


def _cmudict_path() -> Path | None:
    try:
        import pocketsphinx
    except ImportError:
        return None
    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    return path if path.exists() else None


# Phones whose mouth shapes must be frequent in training: bilabials, rounded and open vowels.
_FOCUS = {"P", "B", "M", "UW", "UH", "OW", "W", "AA", "AE", "AO", "F", "V"}


def cmudict_sentences(n: int, seed: int) -> list[Sentence]:
    """``n`` random 5–12 word sequences from CMUdict, biased towards focus phones."""
    path = _cmudict_path()
    if path is None:
        return []
    words: list[str] = []
    weights: list[float] = []
    for line in path.read_text("utf-8", errors="ignore").splitlines():
        parts = line.split()
        if len(parts) < 2 or "(" in parts[0] or not parts[0].isalpha() or not 2 <= len(parts[0]) <= 10:
            continue
        phones = [p.rstrip("012") for p in parts[1:]]
        words.append(parts[0])
        weights.append(1.0 + 2.0 * sum(p in _FOCUS for p in phones) / len(phones))
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(5, 12)
        text = " ".join(rng.choices(words, weights, k=k))
        out.append(Sentence(text[0].upper() + text[1:] + rng.choice([".", ".", "?", "!"]), "en", "cmudict"))
    return out
