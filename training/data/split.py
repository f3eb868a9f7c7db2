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

A **validation** split (issue 12, session 6) is kept out of training as well, so that a
candidate can be *chosen* without looking at the held-out split (which only reports on the
model chosen). It is made of training-family data, so it measures the same things the
held-out split does without spending it:

* whole voices: festival ``czech_krb`` (a second Czech speaker, a child; ``czech_ph``
  still trains and ``czech_machac`` stays held out) and the espeak-ng language
  Indonesian (``id``: a language no other voice speaks, like the held-out ``ko``/``vi``);
  they play the part of the held-out unseen voices;
* by sentence: a further ``validation_fraction`` of sentences (a hash bucket disjoint
  from the held-out one) read by every training voice, and the same fraction of the
  Asterisk prompts, so the one real speaker is in it.

Precedence: held out beats validation beats train.
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
    validation_fraction: float = 0.04
    validation_voices: frozenset[str] = field(default_factory=lambda: frozenset({"czech_krb"}))
    """Whole festival / flite voices kept for validation."""
    validation_base_voices: frozenset[str] = field(default_factory=lambda: frozenset({"id"}))
    """Whole espeak-ng base voices (languages) kept for validation."""

    def __post_init__(self) -> None:
        if not 0.0 < self.sentence_fraction < 0.5:
            raise ValueError(f"sentence_fraction must be in (0, 0.5), got {self.sentence_fraction}")
        if not 0.0 <= self.validation_fraction < 0.3:
            raise ValueError(f"validation_fraction must be in [0, 0.3), got {self.validation_fraction}")
        both = (self.validation_voices & self.heldout_voices) | (self.validation_base_voices & self.heldout_base_voices)
        if both:
            raise ValueError(f"voices both held out and validation: {sorted(both)}")

    def _bucket(self, key: str) -> float:
        digest = hashlib.sha1(f"{self.seed}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _sentence_bucket(self, text: str) -> float:
        """A sentence's bucket, case- and punctuation-insensitive."""
        return self._bucket("s:" + " ".join(re.findall(r"\w+", text.lower())))

    def sentence_heldout(self, text: str) -> bool:
        """True for the fixed held-out subset of sentences (case/punctuation-insensitive)."""
        return self._sentence_bucket(text) < self.sentence_fraction

    def sentence_validation(self, text: str) -> bool:
        """True for the validation sentences: the bucket right after the held-out one (disjoint)."""
        b = self._sentence_bucket(text)
        return self.sentence_fraction <= b < self.sentence_fraction + self.validation_fraction

    def sentence_split(self, text: str) -> str:
        """``"heldout"``, ``"validation"`` or ``"train"`` for a sentence."""
        if self.sentence_heldout(text):
            return "heldout"
        return "validation" if self.sentence_validation(text) else "train"

    def file_heldout(self, name: str) -> bool:
        """True for held-out files of single-speaker recordings."""
        return self._bucket("f:" + name) < self.sentence_fraction * 1.6

    def file_validation(self, name: str) -> bool:
        """True for validation files of single-speaker recordings (disjoint from the held-out ones)."""
        lo = self.sentence_fraction * 1.6
        return lo <= self._bucket("f:" + name) < lo + self.validation_fraction * 1.6

    def voice_validation(self, voice: str) -> bool:
        """``voice`` (as in :meth:`voice_heldout`) is kept whole for validation (and not held out)."""
        if self.voice_heldout(voice):
            return False
        return voice in self.validation_voices or voice.partition("+")[0] in self.validation_base_voices

    def voice_split(self, voice: str) -> str:
        """``"heldout"``, ``"validation"`` or ``"train"`` for a whole voice."""
        if self.voice_heldout(voice):
            return "heldout"
        return "validation" if self.voice_validation(voice) else "train"

    def voice_heldout(self, voice: str) -> bool:
        """``voice`` is an espeak-ng ``base`` or ``base+variant``, or a festival/flite voice name."""
        if voice in self.heldout_voices:
            return True
        base, _, variant = voice.partition("+")
        return base in self.heldout_base_voices or variant in self.heldout_variants


DEFAULT_SPLIT = SplitPolicy()
