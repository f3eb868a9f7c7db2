"""A chain of bound steps, and its per-stream runner.

``Chain`` is immutable and shared by all streams of a profile; ``Chain.new_stream()``
gives a :class:`ChainStream` that owns the stream's frame counter, random generators
and step states. Feeding a stream 100 frames at once or in ten chunks of ten gives the
same output for the same seed.

Emotions: a chunk's emotion (``offset_name``) is kept when some step knows it (or its
base emotion, ``anger`` for ``anger_3``). An unknown one is logged once per chain and
treated as neutral (``None``); an empty string is neutral.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np

from audio2face.postprocess.base import Step, StepContext, base_emotion
from audio2face.types import FloatArray

logger = logging.getLogger(__name__)

__all__ = ["Chain", "ChainStream"]

MAX_WARNED_EMOTIONS = 256
"""Distinct unknown emotion names warned about per chain; later ones go unlogged."""


class Chain:
    """Bound steps in order, from ``input_names`` to ``output_names``."""

    def __init__(self, steps: Sequence[Step], input_names: Sequence[str]) -> None:
        self.steps: tuple[Step, ...] = tuple(steps)
        self.input_names: tuple[str, ...] = tuple(input_names)
        self.output_names: tuple[str, ...] = (
            self.steps[-1].output_names if self.steps else self.input_names
        )
        known: set[str] = set()
        for step in self.steps:
            known |= step.emotions
        self.emotions: frozenset[str] = frozenset(known)
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def new_stream(self, seed: int | None = None) -> ChainStream:
        """Per-stream runner; ``seed`` fixes its random choices (``None``: fresh entropy)."""
        return ChainStream(self, seed)

    def resolve_emotion(self, emotion: str | None) -> str | None:
        """The emotion the steps will see: itself if known, else ``None`` (warned once)."""
        if not emotion:
            return None
        if emotion in self.emotions or base_emotion(emotion) in self.emotions:
            return emotion
        with self._lock:
            # Names come from clients: remember a bounded number, so a client sending
            # endless distinct names cannot grow the server's memory.
            first = emotion not in self._warned and len(self._warned) < MAX_WARNED_EMOTIONS
            if first:
                self._warned.add(emotion)
        if first:
            logger.warning(
                "unknown emotion %r treated as neutral; known: %s",
                emotion[:80],
                ", ".join(sorted(self.emotions)) or "(none)",
            )
        return None

    def __repr__(self) -> str:
        kinds = ", ".join(type(s).__name__ for s in self.steps)
        return f"Chain([{kinds}], {len(self.input_names)} -> {len(self.output_names)} channels)"


class ChainStream:
    """Runs a :class:`Chain` over the successive chunks of one stream."""

    def __init__(self, chain: Chain, seed: int | None = None) -> None:
        self.chain = chain
        self.seed = seed
        self.reset()

    @property
    def frame_index(self) -> int:
        """Stream frame number of the next frame to be processed."""
        return self._frame

    def reset(self) -> None:
        """Back to frame 0 with the same seed (a fresh stream)."""
        children = np.random.SeedSequence(self.seed).spawn(len(self.chain.steps))
        self._states = [
            step.new_state(np.random.default_rng(child))
            for step, child in zip(self.chain.steps, children, strict=True)
        ]
        self._frame = 0

    def __call__(self, values: FloatArray, emotion: str | None = None) -> FloatArray:
        """Process the next ``[n, len(input_names)]`` frames; return ``[n, len(output_names)]``.

        ``values`` is not modified. ``emotion`` applies to all frames of this chunk.
        """
        x = np.asarray(values, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.chain.input_names):
            raise ValueError(
                f"expected frames of shape [n, {len(self.chain.input_names)}], got {x.shape}"
            )
        emo = self.chain.resolve_emotion(emotion)
        for step, state in zip(self.chain.steps, self._states, strict=True):
            x = step(x, StepContext(frame_index=self._frame, emotion=emo, state=state))
        self._frame += int(values.shape[0])
        return x
