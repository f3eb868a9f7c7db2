"""A per-stream queue bounded by seconds of audio, not by item count.

Bodies range from 20 ms to 10 s, so an item count bounds nothing useful. A producer
that would push the queue over its bound waits (backpressure through TCP), except
when the queue is empty: one oversized body is always let in, so no client deadlocks.
The consumer takes runs of items (:meth:`AudioInbox.get_run`), so a stream that fell
behind catches up with fewer, larger pieces of work.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any


class AudioInbox:
    """``put`` waits while the queue holds ``max_seconds`` of audio. ``depth``, if
    given, is told every change in the number of items waiting (``+n`` / ``-n``): a
    gauge shared by all streams, in the server."""

    def __init__(self, max_seconds: float, *, depth: Callable[[int], None] | None = None) -> None:
        self.max_seconds = max_seconds
        self._items: collections.deque[tuple[Any, float]] = collections.deque()
        self._seconds = 0.0
        self._changed = asyncio.Condition()
        self._depth = depth

    @property
    def seconds(self) -> float:
        """Audio waiting, in seconds."""
        return self._seconds

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, item: Any, seconds: float) -> None:
        async with self._changed:
            await self._changed.wait_for(
                lambda: not self._items or self._seconds + seconds <= self.max_seconds
            )
            self._items.append((item, seconds))
            self._seconds += seconds
            if self._depth is not None:
                self._depth(1)
            self._changed.notify_all()

    async def get(self) -> Any:
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            item, seconds = self._items.popleft()
            self._seconds -= seconds
            if self._depth is not None:
                self._depth(-1)
            self._changed.notify_all()
            return item

    async def get_run(self, joins: Callable[[Any, Any], bool], max_seconds: float) -> list[Any]:
        """The next item (waiting for one), then the items queued behind it that
        ``joins(first, item)`` accepts, while the run holds less than ``max_seconds``.
        Stops at the first item not joined, which stays queued; never waits for more."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            first = self._items[0][0]
            run: list[Any] = []
            total = 0.0
            while self._items:
                item, seconds = self._items[0]
                if run and (total >= max_seconds or not joins(first, item)):
                    break
                self._items.popleft()
                run.append(item)
                total += seconds
                self._seconds -= seconds
            if self._depth is not None:
                self._depth(-len(run))
            self._changed.notify_all()
            return run

    async def put_front(self, item: Any) -> None:
        """Queue ``item`` ahead of everything (a control message that must jump the
        queue); never waits."""
        async with self._changed:
            self._items.appendleft((item, 0.0))
            if self._depth is not None:
                self._depth(1)
            self._changed.notify_all()

    async def drop(self, where: Callable[[Any], bool]) -> int:
        """Remove the queued items ``where`` accepts; return how many."""
        async with self._changed:
            kept = collections.deque(x for x in self._items if not where(x[0]))
            dropped = len(self._items) - len(kept)
            self._items = kept
            self._seconds = sum(seconds for _, seconds in kept)
            if self._depth is not None and dropped:
                self._depth(-dropped)
            self._changed.notify_all()
            return dropped

    def clear(self) -> None:
        """Drop what is left (the stream ended); keeps the shared gauge exact."""
        if self._depth is not None and self._items:
            self._depth(-len(self._items))
        self._items.clear()
        self._seconds = 0.0
