"""Many streams' pushes run together on a few threads: the one batching layer.

A server holds one :class:`~audio2face.streaming.session.Session` per connection and
gets a 40 ms body from each of them 25 times a second. Handing each body to a thread
pool on its own costs a thread wake-up, a GIL hand-over and a loop wake-up per body,
and many stream threads doing small pieces of Python fight over the one GIL. So
:class:`BatchPusher` keeps a queue and ``threads`` threads (``inference_workers``)::

    event loop (all connections)            pusher thread
      await pusher.push(session, audio) ──┐
      await pusher.push(session, audio) ──┼─> queue ──> push_sessions(all queued)
      await pusher.push(session, audio) ──┘               one FFT, one model run
                   <──────── one call_soon_threadsafe per batch ───┘

A thread takes everything queued (up to ``max_batch``), so batches grow with the
load and cost no extra wait when the thread is busy; when it was idle, the first
push waits ``wait_s`` for company. Results go back to the event loop in one call per
batch. Sessions whose engine cannot batch a push (see :attr:`Session.batch_key`) run
here one by one; every stream's ``finish`` runs here too (batched like the pushes: the
streams that end together share their last model runs), and so do ``flush`` and
``interrupt``, so a stream's calls all happen on pusher threads, in order. The runtime keeps one pusher
per engine, so a slow model never holds up another's streams. Below it, the model
wrappers only cap concurrent runs (:mod:`audio2face.engines.slots`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from audio2face.errors import EngineError
from audio2face.streaming.session import PushResult, Session, finish_sessions, push_sessions
from audio2face.types import FloatArray, FrameBatch

__all__ = ["BatchOptions", "BatchPusher"]

logger = logging.getLogger("audio2face.streaming.pusher")


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """How pushes are batched (the ``inference_workers``, ``max_batch_size`` and
    ``batch_wait_ms`` settings)."""

    threads: int = 1
    """Pusher threads, each running one batch at a time."""
    max_batch: int = 64
    """Most pushes in one batch (1: no batching)."""
    wait_s: float = 0.0
    """How long an idle thread waits for company before it runs a batch."""

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.wait_s < 0:
            raise ValueError(f"wait_s must be >= 0, got {self.wait_s}")


@dataclass(slots=True)
class _Item:
    session: Session
    audio: FloatArray | None
    """Audio to push (batched with others), or ``None`` for a ``call``."""
    emotion: str | None
    call: Callable[[], FrameBatch] | None
    """A one-off call of the session's (flush, interrupt), or ``None``."""
    finishing: bool
    """``session.finish()``, batched with the other streams' that end together."""
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[FrameBatch]


class BatchPusher:
    """Runs :meth:`Session.push` calls from an event loop in batches on its own threads.

    A session must not have two calls in flight at once (a stream awaits each call
    before the next, which also keeps its audio in order).
    """

    def __init__(self, options: BatchOptions = BatchOptions(), *, name: str = "a2f-push") -> None:
        self.options = options
        self.max_batch = options.max_batch
        self.wait_s = options.wait_s
        threads = options.threads
        self._queue: collections.deque[_Item] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    async def push(self, session: Session, audio: FloatArray, emotion: str | None = None) -> FrameBatch:
        """``session.push(audio, emotion)``, run on a pusher thread with other streams'."""
        return await self.submit(session, audio, emotion)

    async def finish(self, session: Session) -> FrameBatch:
        """``session.finish()`` on a pusher thread, with other streams' that end now."""
        return await self.submit(session, finishing=True)

    async def call(self, session: Session, call: Callable[[], FrameBatch]) -> FrameBatch:
        """``call()`` (one of ``session``'s own methods: finish, flush, interrupt) on a
        pusher thread, in order with the stream's pushes."""
        return await self.submit(session, call=call)

    def submit(
        self,
        session: Session,
        audio: FloatArray | None = None,
        emotion: str | None = None,
        *,
        call: Callable[[], FrameBatch] | None = None,
        finishing: bool = False,
    ) -> asyncio.Future[FrameBatch]:
        """Queue a push (``audio``), a ``call`` or a finish; the future of its frames.

        The caller may end the future early (cancel it, or set an exception: a stream
        closed for lag while its push waits behind a long batch). A batch then skips it
        if it has not started, or drops its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[FrameBatch] = loop.create_future()
        with self._cond:
            if self._closed:
                raise EngineError("the inference loop is shut down")
            self._queue.append(_Item(session, audio, emotion, call, finishing, loop, future))
            self._cond.notify()
        return future

    def close(self) -> None:
        """Stop the threads once the queue is empty; later pushes are refused."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)

    # --- the threads --------------------------------------------------------------
    def _take(self) -> list[_Item] | None:
        """Wait for work; return up to ``max_batch`` items (``None``: closed and empty)."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            if self.wait_s > 0 and len(self._queue) < self.max_batch:
                # Only an idle thread waits for company: under load the queue has
                # filled while the previous batch ran.
                deadline = time.monotonic() + self.wait_s
                while len(self._queue) < self.max_batch and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            n = min(len(self._queue), self.max_batch)
            return [self._queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        while (items := self._take()) is not None:
            # Drop pushes whose stream has gone (cancelled or failed while queued).
            live = [item for item in items if not item.future.done()]
            pushes = [i for i in live if i.audio is not None]
            calls = [i for i in live if i.call is not None]
            finishes = [i for i in live if i.finishing]
            try:
                pushed = push_sessions(
                    [(i.session, i.audio, i.emotion) for i in pushes if i.audio is not None]
                )
            except Exception as exc:  # a bug in the batch path: fail these pushes only
                logger.exception("a batch of %d pushes failed", len(pushes))
                pushed = [exc] * len(pushes)
            # The batch's frames leave before the one-off calls (finish, flush) run, so
            # streams that end do not hold up the ones that go on.
            _hand_back(list(zip(pushes, pushed, strict=True)))
            if finishes:
                try:
                    ended = finish_sessions([i.session for i in finishes])
                except Exception as exc:  # a bug in the batch path: fail these only
                    logger.exception("a batch of %d finishes failed", len(finishes))
                    ended = [exc] * len(finishes)
                _hand_back(list(zip(finishes, ended, strict=True)))
            if calls:
                _hand_back([(i, _call(i.call)) for i in calls if i.call is not None])


def _hand_back(done: list[tuple[_Item, PushResult]]) -> None:
    """Deliver results to their event loops, one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, PushResult]]] = {}
    for item, result in done:
        by_loop.setdefault(item.loop, []).append((item.future, result))
    for loop, ready in by_loop.items():
        # A closed loop raises RuntimeError: nobody is waiting there any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_deliver, ready)


def _call(call: Callable[[], FrameBatch]) -> PushResult:
    try:
        return call()
    except Exception as exc:
        return exc


def _deliver(done: list[tuple[asyncio.Future, PushResult]]) -> None:
    for future, result in done:
        if future.done():  # cancelled, or ended early by its stream (closed for lag)
            continue
        if isinstance(result, Exception):
            future.set_exception(result)
        else:
            future.set_result(result)
