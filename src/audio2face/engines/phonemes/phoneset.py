"""The project's unified phone set: ARPAbet (39 phones, no stress) plus ``SIL``.

Every phone source (espeak-ng in many languages, festival, pocketsphinx alignments,
TTS timings from users) is mapped onto this set, so visemes, training targets and
quality metrics all speak one language. Phones of other languages map to the
nearest ARPAbet phone *by mouth shape* (that is what matters for animation), e.g.
French /y/ maps to ``UW`` (rounded) rather than ``IY``.
"""

from __future__ import annotations

from audio2face.errors import UnknownNameError

PHONES: tuple[str, ...] = (
    "SIL",
    "AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW",
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH",
    "T", "TH", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip
"""Index in this tuple is the phone id used in training data."""

PHONE_ID: dict[str, int] = {p: i for i, p in enumerate(PHONES)}

SILENCE = "SIL"

# Classes used by the quality metrics (benchmarks/quality) and by target design.
BILABIALS: frozenset[str] = frozenset({"P", "B", "M"})
LABIODENTALS: frozenset[str] = frozenset({"F", "V"})
OPEN_VOWELS: frozenset[str] = frozenset({"AA", "AE", "AH", "AW", "AY"})
SPREAD_VOWELS: frozenset[str] = frozenset({"IY", "IH", "EH", "EY"})
ROUNDED_VOWELS: frozenset[str] = frozenset({"UW", "UH", "OW", "OY", "AO"})
VOWELS: frozenset[str] = frozenset(PHONES[1:16])


def normalize_phone(label: str) -> str:
    """Upper-case, strip ARPAbet stress digits; unknown labels raise
    :class:`~audio2face.errors.UnknownNameError` naming the known phones."""
    p = label.strip().upper().rstrip("012")
    if p in {"", "SP", "SIL", "PAU", "H#", "<SIL>", "+NSN+", "+SPN+", "_"}:
        return SILENCE
    if p not in PHONE_ID:
        raise UnknownNameError("phone", label, list(PHONES))
    return p
