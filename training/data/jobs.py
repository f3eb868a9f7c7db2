"""The unit of work the builder hands to worker processes."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Job", "Item"]


@dataclass(frozen=True)
class Item:
    """One clip to make: its id, split, text and per-clip randomness."""

    id: str
    split: str
    text: str
    lang: str
    text_source: str
    voice: str
    lead_s: float
    trail_s: float
    peak: float
    params: tuple[tuple[str, float], ...] = ()
    path: str = ""
    """Source recording, for recorded speech."""


@dataclass(frozen=True)
class Job:
    """A batch of items rendered by one source in one worker call."""

    source: str
    items: tuple[Item, ...] = field(default_factory=tuple)
