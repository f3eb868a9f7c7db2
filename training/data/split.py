"""Deterministic held-out split: by voice family, by whole voice and by sentence.

A clip is held out when its *voice* is held out or its *sentence* (or, for
single-speaker recordings, its file) hashes into the held-out bucket. Train
clips therefore never share a voice or a sentence with held-out ones. Hashes
are SHA-1 of the normalised key plus the seed, so the split does not depend on
ordering, worker count or corpus size.

Held out as whole voices (issue 12: one voice of each new family, one flite voice,
two espeak-ng languages), so that the per-voice numbers say how the model does on
a voice it has never heard:

* festival: ``lp_diphone`` (Italian; ``pc_diphone`` trains), ``czech_machac``
  (Czech; ``czech_krb`` and ``czech_ph`` train), ``hy_fi_mv_diphone`` (the only
  Finnish voice: Finnic is a family of its own) and ``telugu_NSK_diphone``
  (Dravidian; the Hindi and Marathi NSK voices train);
* flite: ``flite-rms`` (a clustergen voice; ``awb`` and ``kal`` train);
* espeak-ng: the languages Korean (``ko``) and Vietnamese (``vi``) whole, plus, as
  before, the base voices ``en-gb-scotland``, ``es-419``, ``pt-br`` and the
  variants ``+f4``, ``+m6``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

__all__ = ["DEFAULT_SPLIT", "SplitPolicy"]


@dataclass(frozen=True)
class SplitPolicy:
    """Which voices are held out entirely and what fraction of sentences is."""

    seed: int = 1234
    sentence_fraction: float = 0.05
    heldout_base_voices: frozenset[str] = field(
        default_factory=lambda: frozenset({"en-gb-scotland", "es-419", "pt-br", "ko", "vi"})
    )
    heldout_variants: frozenset[str] = field(default_factory=lambda: frozenset({"f4", "m6"}))
    heldout_voices: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {"lp_diphone", "czech_machac", "hy_fi_mv_diphone", "telugu_NSK_diphone", "flite-rms"}
        )
    )
    """Whole voices of festival and flite (their corpus ``voice`` names)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.sentence_fraction < 0.5:
            raise ValueError(f"sentence_fraction must be in (0, 0.5), got {self.sentence_fraction}")

    def _bucket(self, key: str) -> float:
        digest = hashlib.sha1(f"{self.seed}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def sentence_heldout(self, text: str) -> bool:
        """True for the fixed held-out subset of sentences (case/punctuation-insensitive)."""
        key = " ".join(re.findall(r"\w+", text.lower()))
        return self._bucket("s:" + key) < self.sentence_fraction

    def file_heldout(self, name: str) -> bool:
        """True for held-out files of single-speaker recordings."""
        return self._bucket("f:" + name) < self.sentence_fraction * 1.6

    def voice_heldout(self, voice: str) -> bool:
        """``voice`` is an espeak-ng ``base`` or ``base+variant``, or a festival/flite voice name."""
        if voice in self.heldout_voices:
            return True
        base, _, variant = voice.partition("+")
        return base in self.heldout_base_voices or variant in self.heldout_variants


DEFAULT_SPLIT = SplitPolicy()
