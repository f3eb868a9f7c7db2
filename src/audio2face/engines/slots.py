"""The one concurrency cap below the batching layer: at most N model runs at a time.

Batching across streams happens one level up, in the stream pusher
(:mod:`audio2face.streaming.pusher`): it gathers every queued push of an engine and
hands the engine one batch. This wrapper only bounds how many ``session.run`` calls
of one model are in flight (``workers``), so ``intra_op_threads * workers`` caps the
cores inference can take whoever calls it (the pusher, ``Runtime.convert`` in a
thread of the caller's, a benchmark), and it times each run for the metrics::

    caller threads ──> run(feeds) ──> [ slot 1 .. workers ] ──> session.run ──> observer(rows, s)

It has the ``InferenceSession`` duck type (``run``, ``get_inputs``, ``get_outputs``),
so a model wrapper uses it without knowing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from audio2face.types import BatchObserver

__all__ = ["CappedSession", "OrtLikeSession"]

logger = logging.getLogger("audio2face.engines.slots")


class OrtLikeSession(Protocol):
    """What :class:`CappedSession` needs from an ``onnxruntime.InferenceSession``."""

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> list[Any]: ...

    def get_inputs(self) -> list[Any]: ...

    def get_outputs(self) -> list[Any]: ...


class CappedSession:
    """An ``InferenceSession`` look-alike that runs at most ``workers`` calls at once.

    ``observer``, if set (:meth:`set_observer`), is told ``(rows, seconds)`` after every
    run; ``rows`` is axis 0 of the first input (the batch size of a batched graph).
    """

    def __init__(self, session: OrtLikeSession, *, workers: int, name: str = "model") -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.session = session
        self.name = name
        self.workers = workers
        self._slots = threading.BoundedSemaphore(workers)
        self._observer: BatchObserver | None = None
        self._first_input = session.get_inputs()[0].name

    def get_inputs(self) -> list[Any]:
        return self.session.get_inputs()

    def get_outputs(self) -> list[Any]:
        return self.session.get_outputs()

    def set_observer(self, observer: BatchObserver | None) -> None:
        """Report every run to ``observer`` (``None`` stops reporting)."""
        self._observer = observer

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> list[Any]:
        """``session.run`` once a slot is free; blocks the calling thread."""
        with self._slots:
            began = time.perf_counter()
            outputs = self.session.run(output_names, input_feed)
            seconds = time.perf_counter() - began
        observer = self._observer
        if observer is not None:
            first = np.asarray(input_feed[self._first_input])
            rows = int(first.shape[0]) if first.ndim else 1
            try:
                observer(rows, seconds)
            except Exception:  # metrics must never fail inference
                logger.exception("%s: batch observer failed", self.name)
        return outputs
