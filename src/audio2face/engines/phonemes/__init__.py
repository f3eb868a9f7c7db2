"""Phoneme-driven animation: phone set, visemes and the coarticulation synthesiser.

The espeak-ng front end (:mod:`.espeak`) is optional and is not imported here.
"""

from __future__ import annotations

from audio2face.engines.phonemes.engine import PhonemeEngine, PhonemeStream
from audio2face.engines.phonemes.synth import (
    Phone,
    Segments,
    Synthesizer,
    default_synthesizer,
    synthesize,
)
from audio2face.engines.phonemes.visemes import VisemeTables, load_viseme_tables

__all__ = [
    "Phone",
    "PhonemeEngine",
    "PhonemeStream",
    "Segments",
    "Synthesizer",
    "VisemeTables",
    "default_synthesizer",
    "load_viseme_tables",
    "synthesize",
]
