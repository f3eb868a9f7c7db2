"""Cross-stream micro-batching of onnxruntime calls.

:class:`BatchingSession` wraps an ``InferenceSession`` and has the same
``run(output_names, feeds)`` duck type, so an engine uses it without knowing. Every
stream's worker thread calls ``run`` with its own batch-of-one feeds; the wrapper
gathers the requests that arrive within ``wait_s`` (or until ``max_batch_size`` rows)
and have the same non-batch shapes, concatenates them along the batch axis, runs them
once with at most ``workers`` runs at a time, and hands each caller its own rows::

    stream threads (many, mostly waiting)         inference slots (inference_workers)
      run(feeds) ──┐
      run(feeds) ──┼─> open group (key = shapes) ──> session.run(concatenated) ──> split
      run(feeds) ──┘     sealed when full or when it gets a slot

The first caller of a group (its leader) runs the batch in its own thread once it
holds one of ``workers`` slots, so a batch costs no extra thread hand-off (each one is
a GIL round trip at thousands of calls per second) and inference still never takes
more than ``workers`` threads. A group stays open until its leader gets a slot, so
under load (all slots busy) batches grow by themselves without any extra wait; at low
load the leader waits at most ``wait_s`` for company. Waiting is on a
``Condition``/``Event``/``Semaphore``, never a poll. An error in a batch run reaches
every caller of that batch and no other.

Inputs are either *batched* (their axis 0 is the batch; concatenated) or *shared*
(e.g. UniTalker's ``time_steps``; requests join a group only when these are equal by
value). By default an input is batched when the graph declares a symbolic axis 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from audio2face.errors import EngineError
from audio2face.settings import Settings

__all__ = ["BatchObserver", "BatchingSession", "OrtLikeSession", "batching_session"]

logger = logging.getLogger("audio2face.engines.batching")

BatchObserver = Callable[[int, float], None]
"""Called after each batch run with ``(rows in the batch, seconds of session.run)``."""


class OrtLikeSession(Protocol):
    """What :class:`BatchingSession` needs from an ``onnxruntime.InferenceSession``."""

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> list[Any]: ...

    def get_inputs(self) -> list[Any]: ...

    def get_outputs(self) -> list[Any]: ...


@dataclass(eq=False, slots=True)
class _Request:
    feeds: Mapping[str, np.ndarray]
    rows: int
    done: threading.Event = field(default_factory=threading.Event)
    outputs: list[np.ndarray] | None = None
    error: BaseException | None = None


@dataclass(eq=False, slots=True)
class _Group:
    key: tuple[Any, ...]
    output_names: tuple[str, ...] | None
    requests: list[_Request] = field(default_factory=list)
    rows: int = 0
    sealed: bool = False


class BatchingSession:
    """An ``InferenceSession`` look-alike that micro-batches concurrent ``run`` calls.

    ``max_batch_size`` counts rows (a batch-of-one request is one row); 1 turns
    batching off but still holds every call to the ``workers`` slots, so
    ``intra_op_threads * workers`` caps the cores inference can take. ``observer`` is
    told about every batch (metrics); set it later with :meth:`set_observer`.
    """

    def __init__(
        self,
        session: OrtLikeSession,
        *,
        workers: int,
        max_batch_size: int,
        wait_s: float,
        batch_inputs: Iterable[str] | None = None,
        name: str = "model",
        observer: BatchObserver | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if wait_s < 0:
            raise ValueError(f"wait_s must be >= 0, got {wait_s}")
        self.session = session
        self.name = name
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self._input_names = tuple(i.name for i in session.get_inputs())
        if batch_inputs is None:
            batch_inputs = [
                i.name for i in session.get_inputs()
                if i.shape and not isinstance(i.shape[0], int)
            ]  # fmt: skip
        self.batch_inputs = frozenset(batch_inputs)
        unknown = self.batch_inputs - set(self._input_names)
        if unknown:
            raise ValueError(f"batch_inputs {sorted(unknown)} are not inputs of the model")
        if not self.batch_inputs:
            self.max_batch_size = 1  # nothing to concatenate along
        self._observer = observer
        self._slots = threading.BoundedSemaphore(workers)
        self._cond = threading.Condition()
        self._open: dict[tuple[Any, ...], _Group] = {}
        self._closed = False

    # --- InferenceSession duck type ------------------------------------------------
    def get_inputs(self) -> list[Any]:
        return self.session.get_inputs()

    def get_outputs(self) -> list[Any]:
        return self.session.get_outputs()

    def get_providers(self) -> list[str]:
        get = getattr(self.session, "get_providers", None)
        return list(get()) if callable(get) else []

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: object = None,
    ) -> list[np.ndarray]:
        """Run ``input_feed`` (possibly batched with other callers' feeds); blocks the
        calling thread until this request's outputs are ready. ``run_options`` is not
        supported (a batch shares one run)."""
        if run_options is not None:
            raise ValueError("BatchingSession.run does not take run_options")
        feeds = {k: np.asarray(v) for k, v in input_feed.items()}
        names = tuple(output_names) if output_names is not None else None
        key, rows = self._key(feeds, names)
        request = _Request(feeds, rows)
        leader: _Group | None = None
        with self._cond:
            if self._closed:
                raise EngineError(f"{self.name}: the inference pool is closed")
            group = self._open.get(key)
            if group is None or group.rows + rows > self.max_batch_size:
                group = _Group(key, names)
                self._open[key] = group
                leader = group
            group.requests.append(request)
            group.rows += rows
            if group.rows >= self.max_batch_size:
                self._seal(group)
                self._cond.notify_all()  # the leader stops waiting for company
            if leader is not None and self.wait_s > 0 and not leader.sealed:
                deadline = time.monotonic() + self.wait_s
                while not leader.sealed and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
        if leader is not None:
            # Still open: latecomers join until a slot is free.
            with self._slots:
                self._execute(leader)
        request.done.wait()
        if request.error is not None:
            raise request.error
        if request.outputs is None:  # pragma: no cover - _execute always sets one
            raise EngineError(f"{self.name}: batch finished without outputs")
        return request.outputs

    def set_observer(self, observer: BatchObserver | None) -> None:
        """Report every batch to ``observer`` (``None`` stops reporting)."""
        self._observer = observer

    def close(self) -> None:
        """Stop taking requests; batches already formed still run."""
        with self._cond:
            self._closed = True

    # --- internals -----------------------------------------------------------------
    def _key(
        self, feeds: Mapping[str, np.ndarray], names: tuple[str, ...] | None
    ) -> tuple[tuple[Any, ...], int]:
        """Group key (batched inputs by dtype and trailing shape, shared ones by value)
        and the request's row count."""
        if set(feeds) != set(self._input_names):
            raise ValueError(
                f"{self.name}: feeds {sorted(feeds)} do not match inputs {sorted(self._input_names)}"
            )
        rows: int | None = None
        parts: list[Any] = [names]
        for name in self._input_names:
            x = feeds[name]
            if name in self.batch_inputs:
                if x.ndim == 0:
                    raise ValueError(f"{self.name}: batched input {name!r} is a scalar")
                if rows is None:
                    rows = int(x.shape[0])
                elif int(x.shape[0]) != rows:
                    raise ValueError(
                        f"{self.name}: batched inputs disagree on batch size ({rows} vs "
                        f"{x.shape[0]} for {name!r})"
                    )
                parts.append((name, x.dtype.str, x.shape[1:]))
            else:
                parts.append((name, x.dtype.str, x.shape, x.tobytes()))
        return tuple(parts), (rows if rows is not None else 1)

    def _seal(self, group: _Group) -> None:
        """No more joins (caller holds the lock)."""
        if not group.sealed:
            group.sealed = True
            if self._open.get(group.key) is group:
                del self._open[group.key]

    def _execute(self, group: _Group) -> None:
        with self._cond:
            self._seal(group)
            self._cond.notify_all()
        requests = group.requests
        try:
            if len(requests) == 1:
                feeds = requests[0].feeds
            else:
                feeds = {
                    name: (
                        np.concatenate([r.feeds[name] for r in requests], axis=0)
                        if name in self.batch_inputs
                        else requests[0].feeds[name]
                    )
                    for name in self._input_names
                }
            t0 = time.perf_counter()
            outputs = self.session.run(
                list(group.output_names) if group.output_names is not None else None, feeds
            )
            seconds = time.perf_counter() - t0
            self._split(group, [np.asarray(o) for o in outputs])
        except BaseException as exc:  # every caller of this batch must hear of it
            for r in requests:
                r.error = exc
                r.done.set()
            return
        observer = self._observer
        if observer is not None:
            try:
                observer(group.rows, seconds)
            except Exception:  # metrics must never fail inference
                logger.exception("batch observer failed")

    def _split(self, group: _Group, outputs: list[np.ndarray]) -> None:
        requests = group.requests
        if len(requests) == 1:
            requests[0].outputs = outputs
            requests[0].done.set()
            return
        for out in outputs:
            if out.ndim == 0 or out.shape[0] != group.rows:
                raise EngineError(
                    f"{self.name}: an output of shape {out.shape} has no batch axis of "
                    f"{group.rows} rows; the model cannot be batched (max_batch_size=1)"
                )
        start = 0
        for r in requests:
            stop = start + r.rows
            r.outputs = [out[start:stop] for out in outputs]
            start = stop
        for r in requests:
            r.done.set()


def batching_session(
    session: OrtLikeSession,
    settings: Settings,
    *,
    name: str,
    batch_inputs: Iterable[str] | None = None,
    wait: bool = True,
) -> BatchingSession:
    """``session`` behind a :class:`BatchingSession` configured from ``settings``
    (``inference_workers``, ``max_batch_size``, ``batch_wait_ms``). ``wait=False``
    drops the wait for company, for callers that gather their batch themselves."""
    return BatchingSession(
        session,
        workers=settings.inference_workers,
        max_batch_size=settings.max_batch_size,
        wait_s=settings.batch_wait_ms / 1000.0 if wait else 0.0,
        batch_inputs=batch_inputs,
        name=name,
    )
