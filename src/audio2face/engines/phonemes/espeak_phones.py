"""Map espeak-ng IPA phone labels onto the unified phone set, and tile timings.

The table lives in ``espeak_phones.json`` (data, not code) and maps *normalised*
IPA labels (stress, length and most diacritics stripped) to ARPAbet. Foreign
phones map to the nearest ARPAbet phone by mouth shape, because the consumer is
a face: French /y/ (rounded, front) maps to ``UW``, the Spanish tap /ɾ/ to
``D`` (tongue tip, no lip rounding). The reasoning is kept in the JSON's
``"_notes"``.

Diphthongs that ARPAbet lacks are split into two phones sharing the span, so the
mouth moves through both targets.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Any

from audio2face.engines.phonemes.phoneset import PHONE_ID, SILENCE

__all__ = [
    "Phone", "UnmappedPhoneError", "ipa_to_unified", "language_table", "map_label", "normalize_ipa",
    "phone_table", "tile_phones", "voice_language",
]  # fmt: skip

Phone = tuple[float, float, str]
"""(start_s, end_s, unified label)."""

# Marks that carry prosody, not mouth shape.
_STRIP = set("ˈˌːˑ:'\",.%_|‿ʲʰʷ̃ˠˤ̪̩̯̥̬̠̟̝̞̘̙̈̆ʼ-=ʔ?^")
# Language-switch markers such as "(en)" that espeak emits inside mixed text.
_LANG_SWITCH = re.compile(r"\([a-z-]*\)")


class UnmappedPhoneError(KeyError):
    """An espeak-ng label has no entry in the table (extend espeak_phones.json)."""


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    """espeak_phones.json, parsed once for both tables."""
    return json.loads(resources.files(__package__).joinpath("espeak_phones.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def phone_table() -> dict[str, tuple[str, ...]]:
    """Normalised IPA label -> one or more unified phones."""
    raw: dict[str, object] = _document()
    table: dict[str, tuple[str, ...]] = {}
    for key, value in raw.items():
        if key.startswith("_"):
            continue
        phones = tuple(str(value).split())
        for p in phones:
            if p not in PHONE_ID:
                raise ValueError(f"espeak_phones.json maps {key!r} to {p!r}, not a unified phone")
        table[key] = phones
    return table


@lru_cache(maxsize=1)
def language_table() -> dict[str, dict[str, tuple[str, ...]]]:
    """``_by_language``: per language, the labels it uses for a different sound than
    the other languages do (raw or normalised label -> unified phones)."""
    raw: dict[str, dict[str, str]] = _document().get("_by_language", {})
    table = {lang: {label: tuple(v.split()) for label, v in entries.items()} for lang, entries in raw.items()}
    for lang, entries in table.items():
        for label, phones in entries.items():
            if not phones or any(p not in PHONE_ID for p in phones):
                raise ValueError(f"espeak_phones.json _by_language[{lang!r}][{label!r}] is not unified phones")
    return table


def voice_language(voice: str) -> str:
    """An espeak-ng voice's language subtag (``en-us+f3`` -> ``en``, ``cmn-latn-pinyin`` -> ``cmn``)."""
    return voice.split("+")[0].split("-")[0]


def map_label(label: str, lang: str, *, strict: bool = False) -> tuple[str, ...]:
    """Unified phones for one raw espeak-ng label spoken in ``lang``: the language's own
    entry (raw label first, then normalised) wins over :func:`ipa_to_unified`'s."""
    own = language_table().get(lang, {})
    if label in own:
        return own[label]
    norm = normalize_ipa(label)
    if norm in own:
        return own[norm]
    return ipa_to_unified(label, strict=strict)


def normalize_ipa(label: str) -> str:
    """Drop stress, length and secondary-articulation marks; NFC-compose the rest."""
    decomposed = unicodedata.normalize("NFD", _LANG_SWITCH.sub("", label))
    kept = "".join(ch for ch in decomposed if ch not in _STRIP and not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", kept).strip()


def ipa_to_unified(label: str, *, strict: bool = False) -> tuple[str, ...]:
    """Unified phones for one espeak IPA label; ``()`` for empty / pause labels.

    Unknown labels fall back to the longest known prefix (then ``SIL``) unless
    ``strict``, in which case :class:`UnmappedPhoneError` is raised.
    """
    norm = normalize_ipa(label)
    if not norm:
        return (SILENCE,)
    table = phone_table()
    if norm in table:
        return table[norm]
    if strict:
        raise UnmappedPhoneError(f"espeak phone {label!r} (normalised {norm!r}) is not in espeak_phones.json")
    for end in range(len(norm) - 1, 0, -1):
        if norm[:end] in table:
            return table[norm[:end]]
    return (SILENCE,)


def tile_phones(starts: list[tuple[float, tuple[str, ...]]], duration: float) -> list[Phone]:
    """Turn (start, phones) events into contiguous spans covering ``[0, duration]``.

    Each event lasts until the next; a multi-phone event (diphthong) is split
    evenly. Leading time before the first event is ``SIL``; adjacent equal labels
    are merged. Out-of-order or out-of-range times are clamped.
    """
    spans: list[Phone] = []
    events = sorted((min(max(t, 0.0), duration), ph) for t, ph in starts)
    cursor = 0.0
    for i, (start, phones) in enumerate(events):
        end = events[i + 1][0] if i + 1 < len(events) else duration
        if start > cursor:
            _append(spans, cursor, start, SILENCE)
        start = max(start, cursor)
        if end <= start:
            continue
        step = (end - start) / len(phones)
        for k, p in enumerate(phones):
            _append(spans, start + k * step, start + (k + 1) * step if k + 1 < len(phones) else end, p)
        cursor = end
    if cursor < duration:
        _append(spans, cursor, duration, SILENCE)
    return spans


def _append(spans: list[Phone], start: float, end: float, label: str) -> None:
    if spans and spans[-1][2] == label:
        spans[-1] = (spans[-1][0], end, label)
    else:
        spans.append((start, end, label))
