"""The project's unified phone set: ARPAbet (39 phones, no stress), schwa ``AX`` and ``SIL``.

Every phone source (espeak-ng in many languages, festival, pocketsphinx alignments,
TTS timings from users) is mapped onto this set, so visemes, training targets and
quality metrics all speak one language. Phones of other languages map to the
nearest ARPAbet phone *by mouth shape* (that is what matters for animation), e.g.
French /y/ maps to ``UW`` (rounded) rather than ``IY``.

``AX`` is schwa (TIMIT's, festival's and flite's ``ax``; CMUdict writes it ``AH0``). It is kept
apart from ``AH`` (the open-mid /ʌ/ of "cup") because the mouth treats them differently:
schwa is a mid-central, unstressed vowel with a half-open jaw that takes on its
neighbours' shape, while /ʌ/ opens nearly as far as /ɑ/. Folding schwa into ``AH``
taught the model to open wide on every reduced vowel, and it counted Vietnamese ơ/â or
English "about" as open vowels in the quality metrics (session 13, issue 12).
"""

from __future__ import annotations

from audio2face.errors import UnknownNameError

PHONES: tuple[str, ...] = (
    "SIL",
    "AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW",
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH",
    "T", "TH", "V", "W", "Y", "Z", "ZH",
    "AX",
)  # fmt: skip
"""Index in this tuple is the phone id used in training data (``AX`` came last, so
the ids of the others did not move)."""

PHONE_ID: dict[str, int] = {p: i for i, p in enumerate(PHONES)}

SILENCE = "SIL"

# Classes used by the quality metrics (benchmarks/quality) and by target design.
BILABIALS: frozenset[str] = frozenset({"P", "B", "M"})
LABIODENTALS: frozenset[str] = frozenset({"F", "V"})
OPEN_VOWELS: frozenset[str] = frozenset({"AA", "AE", "AH", "AW", "AY"})
SPREAD_VOWELS: frozenset[str] = frozenset({"IY", "IH", "EH", "EY"})
ROUNDED_VOWELS: frozenset[str] = frozenset({"UW", "UH", "OW", "OY", "AO"})
# Schwa is in none of the three: it is neither open nor spread nor rounded, so the
# open / round AUCs leave it out rather than count it on either side.
REDUCED_VOWELS: frozenset[str] = frozenset({"AX"})
VOWELS: frozenset[str] = frozenset(PHONES[1:16]) | REDUCED_VOWELS


def normalize_phone(label: str) -> str:
    """Upper-case, strip ARPAbet stress digits; unknown labels raise
    :class:`~audio2face.errors.UnknownNameError` naming the known phones.

    ``AH0`` (CMUdict's unstressed ``AH``) is schwa, so it becomes ``AX``; ``AH1`` and
    ``AH2`` stay ``AH``."""
    raw = label.strip().upper()
    if raw == "AH0":
        return "AX"
    p = raw.rstrip("012")
    if p in {"", "SP", "SIL", "PAU", "H#", "<SIL>", "+NSN+", "+SPN+", "_"}:
        return SILENCE
    if p not in PHONE_ID:
        raise UnknownNameError("phone", label, list(PHONES))
    return p
