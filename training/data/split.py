"""Deterministic held-out split: by voice/speaker and by sentence.

A clip is held out when its *voice* is held out or its *sentence* (or, for
single-speaker recordings, its file) hashes into the held-out bucket. Train
clips therefore never share a voice or a sentence with held-out ones. Hashes
are SHA-1 of the normalised key plus the seed, so the split does not depend on
ordering, worker count or corpus size.
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
        default_factory=lambda: frozenset({"en-gb-scotland", "es-419", "pt-br"})
    )
    heldout_variants: frozenset[str] = field(default_factory=lambda: frozenset({"f4", "m6"}))

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
        """``voice`` is ``base`` or ``base+variant`` (espeak-ng naming)."""
        base, _, variant = voice.partition("+")
        return base in self.heldout_base_voices or variant in self.heldout_variants


DEFAULT_SPLIT = SplitPolicy()
