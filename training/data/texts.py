"""Sentence sources available offline, each tagged with where it came from.

No internet here, so text comes from files every Debian machine carries (which files:
a :class:`~training.data.debian.TextFiles`, every installed one or a locked list of
packages' only; each sentence keeps the file it came from as ``origin``):

* ``licenses``: prose of /usr/share/common-licenses (GPL, Apache, MPL, ...).
* ``copyright``: prose from /usr/share/doc/*/copyright files.
* ``asterisk``: the transcripts of asterisk-core-sounds (en and es).
* ``gettext``: translated UI messages in /usr/share/locale/<lang>/LC_MESSAGES/*.mo,
  the only sizeable local source of natural text in French, German, Polish, ...
  :func:`language_sentences` reads them more strictly for every corpus language
  (whole messages only, untranslated ones dropped, every letter in the language's
  script), including Chinese, Japanese (kana only), Korean, Hindi, Arabic,
  Vietnamese, Marathi and Telugu.
* ``cmudict``: random word sequences drawn from the CMU dictionary shipped in the
  pocketsphinx wheel, weighted towards words with bilabials, rounded and open
  vowels so those mouth shapes are well covered.
"""

from __future__ import annotations

import gettext
import gzip
import random
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from training.data.debian import TextFiles

__all__ = [
    "LANGUAGES",
    "Sentence",
    "TextLanguage",
    "asterisk_transcripts",
    "cmudict_sentences",
    "corpus_origins",
    "corpus_sentences",
    "english_prose",
    "gettext_sentences",
    "expand_long_vowels",
    "language_sentences",
    "natural_sentence",
]

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_SPLIT = re.compile(r"(?<=[.!?;:])\s+")
_MARKUP = re.compile(r"%\S+|<[^>]*>|\{[^}]*\}|&\w+;|\\[nt]|https?://\S+|\S+@\S+|\S*[/\\=_$\[\]]\S*|\S+-\S+-\S+")


@dataclass(frozen=True)
class Sentence:
    """One utterance to synthesise, with its language and provenance."""

    text: str
    lang: str
    source: str
    origin: str = field(default="", compare=False, repr=False)
    """The file it was read from ("" for generated text)."""


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


ALL_FILES = TextFiles()


def english_prose(limit_files: int = 400, files: TextFiles = ALL_FILES) -> list[Sentence]:
    """English sentences from licence texts and package copyright files."""
    out: list[Sentence] = []
    seen: set[str] = set()
    lic = [p for p in files.glob("/usr/share/common-licenses/*") if Path(p).is_file()]
    docs = files.glob("/usr/share/doc/*/copyright")[:limit_files]
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
                        out.append(Sentence(s, "en", source, path))
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


def gettext_sentences(lang: str, limit: int = 4000, files: TextFiles = ALL_FILES) -> list[Sentence]:
    """Natural-language sentences from translated message catalogues for ``lang``."""
    seen: set[str] = set()
    out: list[Sentence] = []
    for mo in files.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo"):
        try:
            with open(mo, "rb") as fh:
                catalog = gettext.GNUTranslations(fh)
        except (OSError, UnicodeDecodeError, ValueError):  # unreadable or non-UTF-8 catalogue
            continue
        for msg in catalog._catalog.values():  # type: ignore[attr-defined]  # noqa: SLF001 - no public accessor
            if not isinstance(msg, str):
                continue
            for s in _sentences_of(msg):
                if s.lower() not in seen:
                    seen.add(s.lower())
                    out.append(Sentence(s, lang, "gettext", mo))
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


# Letters (Unicode categories L* and M*) a language's sentences may contain, per script.
_SCRIPTS: dict[str, re.Pattern[str]] = {
    "latin": re.compile(r"[A-Za-z\u00c0-\u024f\u0300-\u036f\u1e00-\u1eff]"),
    "cyrillic": re.compile(r"[\u0400-\u052f\u0300-\u036f]"),
    "han": re.compile(r"[\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"),
    "kana": re.compile(r"[\u3041-\u309f\u30a0-\u30ff\uff66-\uff9f]"),
    "hangul": re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]"),
    "devanagari": re.compile(r"[\u0900-\u097f\ua8e0-\ua8ff]"),
    "arabic": re.compile(r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]"),
    "telugu": re.compile(r"[\u0c00-\u0c7f]"),
}

# Characters that mark code, markup, accelerators or placeholders: a message holding one is dropped whole,
# because cutting the placeholder out leaves a broken sentence ("file  not found").
_CODE = re.compile(
    r"[#$%&*+/<=>@\[\\\]^_`{|}~()（）［］【】＜＞＝＿＊＋／＼｛｝＃＄％＆＠]|\\[nt]|\.\S|\S-\S+-\S"
    r"|--|(?:^|\s)-\w|^\w,|^[^\w¿¡]"  # option help ("-v, --verbose ...") and sentences starting with a symbol
)
_QUOTES = re.compile(r"[\"«»“”„‹›「」『』《》〈〉]|(?<!\w)['‘’]|['‘’](?!\w)")
_ELLIPSIS = re.compile(r"\s*(…|\.\.\.)\s*$")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?;:])\s+|(?<=[。！？；：।॥؟])\s*|\n+")
_CLAUSE_SPLIT = re.compile(r"(?<=[、，,])\s*")


# One Vietnamese syllable (onset, 1-3 vowels, coda), tone marks removed: English words ("perl", "file") fail it.
_VI_SYLLABLE = re.compile(
    r"(ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdđghklmnpqrstvx])?[aăâeêioôơuưy]{1,3}(ng|nh|ch|[cmnpt])?"
)
_TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"


def _toneless(word: str) -> str:
    kept = "".join(ch for ch in unicodedata.normalize("NFD", word.lower()) if ch not in _TONE_MARKS)
    return "".join(ch for ch in unicodedata.normalize("NFC", kept) if ch.isalpha())


def _kana_vowel(ch: str) -> str | None:
    """The vowel kana (katakana) that ends ``ch``'s syllable, from its Unicode name ("KATAKANA LETTER KA")."""
    try:
        syllable = unicodedata.name(ch).rsplit(" ", 1)[-1]
    except ValueError:
        return None
    vowel = syllable[-1] if syllable[-1] in "AIUEO" else None
    return unicodedata.lookup(f"KATAKANA LETTER {vowel}") if vowel else None


def expand_long_vowels(text: str) -> str:
    """``オープン`` -> ``オオプン``: each ``ー`` becomes the vowel of the kana before it (kept after ``ン`` etc.)."""
    out: list[str] = []
    for ch in text:
        vowel = _kana_vowel(out[-1]) if ch == "ー" and out else None
        out.append(vowel or ch)
    return "".join(out)


@dataclass(frozen=True)
class TextLanguage:
    """Where a corpus text language finds sentences, and what a sentence of it looks like."""

    locales: tuple[str, ...]
    """gettext locale folders under /usr/share/locale, read in this order."""
    script: str = "latin"
    spaced: bool = True
    """Words are separated by spaces (length counts words) or not (length counts letters)."""
    min_len: int = 4
    max_len: int = 28
    capitals: float = 1 / 3
    """Largest share of capitalised words (more is a title or a name list); German nouns need more."""
    clauses: bool = False
    """Also keep a comma-delimited clause that passes when its sentence does not (Japanese kana)."""
    word: re.Pattern[str] | None = None
    """Shape every word must have (lower-case, tone marks removed); keeps English words out of Vietnamese."""
    drop: str = ""
    """Characters removed before checking (Japanese ``・`` makes espeak-ng spell out the next kana in English)."""
    long_vowels: bool = False
    """Write the kana long-vowel mark ``ー`` as the vowel it lengthens (espeak-ng misreads some ``ー``)."""


LANGUAGES: dict[str, TextLanguage] = {
    **{lang: TextLanguage((lang,)) for lang in
       ("es", "fr", "it", "pt", "pt_BR", "nl", "pl", "sv", "cs", "tr", "id", "ro", "hu", "da", "fi")},
    "de": TextLanguage(("de",), capitals=0.6),
    "ru": TextLanguage(("ru",), script="cyrillic"),
    # Mandarin reads simplified Hanzi; Cantonese the traditional catalogues (Hong Kong first).
    "zh": TextLanguage(("zh_CN", "zh_Hans"), script="han", spaced=False, min_len=6, max_len=60),
    "yue": TextLanguage(("zh_HK", "zh_TW", "zh_Hant"), script="han", spaced=False, min_len=6, max_len=60),
    # espeak-ng's Japanese reads kana only (kanji come out as "Chinese letter"): kana-only clauses.
    "ja": TextLanguage(("ja",), script="kana", spaced=False, min_len=8, max_len=60, clauses=True, drop="・",
                       long_vowels=True),
    "ko": TextLanguage(("ko",), script="hangul"),
    "hi": TextLanguage(("hi",), script="devanagari"),
    "mr": TextLanguage(("mr",), script="devanagari"),
    "te": TextLanguage(("te",), script="telugu"),
    "ar": TextLanguage(("ar",), script="arabic"),
    # Vietnamese writes one syllable per word, so sentences count more words.
    "vi": TextLanguage(("vi",), min_len=5, max_len=40, word=_VI_SYLLABLE),
}  # fmt: skip


def natural_sentence(text: str, spec: TextLanguage) -> str | None:
    """``text`` tidied if it is one speakable sentence of ``spec``'s language, else ``None``.

    Rejects digits, code / markup / placeholders / paths, letters outside the
    script, too few or too many words (or letters), and title-like capitalisation.
    """
    text = _QUOTES.sub("", _ELLIPSIS.sub("", text))
    if spec.drop:
        text = text.translate({ord(ch): None for ch in spec.drop})
    if spec.long_vowels:
        text = expand_long_vowels(text)
    text = re.sub(r"\s+", " ", text).strip(" -–—*·•|:;,、，；：")
    if not text or re.search(r"\d", text) or _CODE.search(text):
        return None
    script = _SCRIPTS[spec.script]
    letters = [ch for ch in text if unicodedata.category(ch)[0] in "LM"]
    if not letters or any(not script.match(ch) for ch in letters):
        return None
    if spec.spaced:
        # Whitespace tokens, not _WORD: Python's \w misses the vowel signs of Indic scripts.
        words = [w for w in text.split() if any(unicodedata.category(ch)[0] == "L" for ch in w)]
        size = len(words)
        if sum(w[0].isupper() for w in words) > spec.capitals * size:
            return None
        if any(w.isupper() and sum(ch.isalpha() for ch in w) > 1 for w in words):
            return None  # placeholders (FILE, TERM) and acronyms, which espeak spells out
        if spec.word is not None and not all(spec.word.fullmatch(_toneless(w)) for w in words):
            return None
    else:
        size = sum(unicodedata.category(ch)[0] == "L" for ch in letters)
    if not spec.min_len <= size <= spec.max_len:
        return None
    if spec.script == "kana" and not re.search(r"[\u3041-\u3096]", text):
        return None  # katakana only: a lone loanword or a place name, not a sentence
    return text


def _messages(locale: str, files: TextFiles) -> list[tuple[str, str, str]]:
    """(msgid, translation, catalogue path) of every catalogue of ``locale``, in file order."""
    out: list[tuple[str, str, str]] = []
    for mo in files.glob(f"/usr/share/locale/{locale}/LC_MESSAGES/*.mo"):
        try:
            with open(mo, "rb") as fh:
                catalog = gettext.GNUTranslations(fh)
        except (OSError, UnicodeDecodeError, ValueError):  # unreadable or non-UTF-8 catalogue
            continue
        for key, msg in catalog._catalog.items():  # type: ignore[attr-defined]  # noqa: SLF001 - no public accessor
            msgid = key[0] if isinstance(key, tuple) else key
            if isinstance(msg, str) and isinstance(msgid, str) and msgid:  # "" is the catalogue header
                out.append((msgid, msg, mo))
    return out


@lru_cache(maxsize=64)
def _language_candidates(lang: str, files: TextFiles) -> tuple[Sentence, ...]:
    """Every natural sentence of ``lang`` the files hold, deduplicated, in file order."""
    if lang == "en":
        return tuple(english_prose(files=files))
    spec = LANGUAGES.get(lang)
    if spec is None:
        return ()
    seen: set[str] = set()
    out: list[Sentence] = []
    for locale in spec.locales:
        for msgid, msg, mo in _messages(locale, files):
            if msg.strip() == msgid.strip():  # untranslated: English in the wrong voice
                continue
            for piece in _SENTENCE_SPLIT.split(msg):
                found = natural_sentence(piece, spec)
                pieces = [found] if found else []
                if not found and spec.clauses:
                    pieces = [c for c in map(lambda c: natural_sentence(c, spec), _CLAUSE_SPLIT.split(piece)) if c]
                for text in pieces:
                    if text.lower() not in seen:
                        seen.add(text.lower())
                        out.append(Sentence(text, lang, "gettext", mo))
    return tuple(out)


@lru_cache(maxsize=64)
def _language_sentences(lang: str, limit: int, files: TextFiles) -> tuple[Sentence, ...]:
    out = list(_language_candidates(lang, files))
    if len(out) > limit:
        # A seeded sample, not the first files: every package's vocabulary has a chance.
        out = random.Random(f"sentences-{lang}").sample(out, limit)
    return tuple(out)


def language_sentences(lang: str, limit: int = 4000, files: TextFiles = ALL_FILES) -> list[Sentence]:
    """Natural sentences in ``lang`` (a key of :data:`LANGUAGES`, or ``en``); ``[]`` for an unknown language.

    Deterministic for a given machine. English is :func:`english_prose`; every
    other language reads its gettext catalogues through :func:`natural_sentence`.
    """
    return list(_language_sentences(lang, limit, files))


def corpus_sentences(lang: str, files: TextFiles = ALL_FILES) -> list[Sentence]:
    """A corpus language's sentences: :func:`language_sentences`, or the looser
    :func:`gettext_sentences` for a language that finds none that way."""
    return language_sentences(lang, files=files) or gettext_sentences(lang, files=files)


def corpus_origins(lang: str, files: TextFiles = ALL_FILES) -> set[str]:
    """The files :func:`corpus_sentences` (or, for ``en``, :func:`english_prose`) depends
    on: those that gave a candidate sentence, sampled or not (each one moves the seeded
    sample). Reading only these files gives the same sentences."""
    found = _language_candidates(lang, files) or tuple(gettext_sentences(lang, files=files))
    return {s.origin for s in found if s.origin}
