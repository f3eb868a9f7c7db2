"""Helpers for the hardening suite (imported by its test modules; not a conftest, so
module names stay unique under pytest's prepend import mode). Its fixtures
(``hard_server``) and the steady-profile server live in tests/conftest.py.

The server there serves the tiny UniTalker-signature model through a ``steady``
profile: the unitalker clean-up without the random blink, so a stream's output is a
pure function of its audio and can be compared bit for bit with a run alone.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from v1_client import Reply, body, converse, end, pcm16, speechlike, split, start  # noqa: E402

from audio2face.protocol.v1 import ResponseKind  # noqa: E402
from audio2face.types import frames_for_samples  # noqa: E402
from conftest import hardening_settings, start_server, steady_profile_dir  # noqa: E402

RESP_START = ResponseKind.START.value
RESP_BODY = ResponseKind.BODY.value
RESP_END = ResponseKind.END.value

END_BYTES = end()

HEALTHY_PCM = pcm16(speechlike(1.0, seed=7))
"""The concurrent 'healthy' stream: 1 s of speech-like audio in 100 ms bodies."""


def expected_frames(n_samples: int, rate: int = 16000) -> int:
    return frames_for_samples(n_samples, rate, 30.0)


async def exchange(url: str, outgoing: list[bytes | str], *, wait_s: float = 20.0,
                   **connect: object) -> Reply:  # fmt: skip
    """Send ``outgoing`` while reading until End or close; then close politely. Without
    an End the server rightly waits for more, so the client leaves after a short wait
    (``client_closed``)."""
    if not outgoing:
        wait_s = min(wait_s, 0.2)
    elif outgoing[-1] != END_BYTES:
        wait_s = min(wait_s, 0.5)
    return await converse(url, outgoing, wait_s=wait_s, **connect)


def healthy_messages() -> list[bytes]:
    return [start(), *[body(c) for c in split(HEALTHY_PCM, 3200)], end()]


def healthy_alone(url: str) -> np.ndarray:
    out = asyncio.run(exchange(url, healthy_messages()))
    if not out.got_end:
        raise RuntimeError("the healthy stream did not complete alone")
    return out.frames()


def with_healthy(url: str, outgoing: list[bytes | str]) -> tuple[Reply, Reply]:
    """Run ``outgoing`` and the healthy stream at the same time."""

    async def both() -> tuple[Reply, Reply]:
        return await asyncio.gather(exchange(url, outgoing), exchange(url, healthy_messages()))

    return asyncio.run(both())


def wait_clean(server, timeout: float = 10.0) -> None:
    """Wait until every stream has been cleaned up, then check the counters."""
    state = server.app.state.a2f
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not state.streams and not state.tasks and state.streams_opened == state.streams_closed:
            break
        time.sleep(0.01)
    assert not state.streams, f"{len(state.streams)} stream(s) left behind"
    assert not state.tasks, f"{len(state.tasks)} task(s) left behind"
    assert state.streams_opened == state.streams_closed
    assert state.buffered_seconds() == 0.0
    assert state.internal_errors == 0, "a stream hit an unexpected exception (see log)"
    assert state.metrics.queue_depth._value.get() == 0
    assert state.metrics.active_streams._value.get() == 0


__all__ = [
    "HEALTHY_PCM", "RESP_BODY", "RESP_END", "RESP_START", "Reply", "body", "end",
    "exchange", "expected_frames", "hardening_settings", "healthy_alone",
    "healthy_messages", "pcm16", "speechlike", "split", "start", "start_server",
    "steady_profile_dir", "wait_clean", "with_healthy",
]  # fmt: skip


def start_guarded_server(settings, engines: dict | None = None):
    """:func:`start_server` behind the TCP-edge guards the real ``serve`` installs."""
    return start_server(settings, engines, guarded=True)


__all__ += ["start_guarded_server"]
