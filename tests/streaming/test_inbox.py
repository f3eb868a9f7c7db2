"""AudioInbox: bounded by seconds of audio, taken in runs of joinable items."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Gauge

from audio2face.streaming.inbox import AudioInbox


def same_kind(first: object, item: object) -> bool:
    return isinstance(first, str) and isinstance(item, str) and item[0] == first[0]


def test_runs_join_queued_items_up_to_the_limit_and_stop_at_the_first_other() -> None:
    depth = Gauge("depth", "items waiting", registry=CollectorRegistry())

    async def main() -> list[list[object]]:
        inbox = AudioInbox(10.0, depth=depth.inc)
        for item in ["a1", "a2", "a3", "a4", "b1", "a5", 7]:
            await inbox.put(item, 0.0 if item == 7 else 0.1)
        runs = [await inbox.get_run(same_kind, 0.25) for _ in range(5)]
        assert len(inbox) == 0 and abs(inbox.seconds) < 1e-9
        return runs

    runs = asyncio.run(main())
    # 0.1 + 0.1 + 0.1 s: the third joins because the run held 0.2 s < 0.25 s before it.
    assert runs == [["a1", "a2", "a3"], ["a4"], ["b1"], ["a5"], [7]]
    assert depth._value.get() == 0  # the shared gauge stays exact


def test_a_full_inbox_makes_the_producer_wait_until_a_run_is_taken() -> None:
    async def main() -> tuple[bool, bool]:
        inbox = AudioInbox(0.35)
        await inbox.put("a1", 0.2)
        await inbox.put("a2", 0.1)
        blocked = asyncio.ensure_future(inbox.put("a3", 0.2))
        await asyncio.sleep(0.01)
        waited = not blocked.done()
        await inbox.get_run(same_kind, 1.0)
        await asyncio.wait_for(blocked, 1.0)
        return waited, len(inbox) == 1

    assert asyncio.run(main()) == (True, True)


def test_one_oversized_item_is_let_into_an_empty_inbox() -> None:
    async def main() -> list[object]:
        inbox = AudioInbox(0.5)
        await asyncio.wait_for(inbox.put("a-long-body", 10.0), 1.0)
        return await inbox.get_run(same_kind, 0.2)

    assert asyncio.run(main()) == ["a-long-body"]
