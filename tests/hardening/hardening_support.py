"""Shared helpers and fixtures for the hardening suite (imported by its test modules;
not a conftest, so module names stay unique under pytest's prepend import mode).

The server here serves the tiny UniTalker-signature model through a ``steady``
profile: the unitalker clean-up without the random blink, so a stream's output is a
pure function of its audio and can be compared bit for bit with a run alone.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from v1_client import Reply, body, converse, end, pcm16, speechlike, split, start  # noqa: E402

from audio2face.profiles.registry import BUILTIN_DIR  # noqa: E402
from audio2face.settings import Settings  # noqa: E402

RESP_START = "Audio2FaceV1ResponseChunkStart"
RESP_BODY = "Audio2FaceV1ResponseChunkBody"
RESP_END = "Audio2FaceV1ResponseChunkEnd"

END_BYTES = end()

HEALTHY_PCM = pcm16(speechlike(1.0, seed=7))
"""The concurrent 'healthy' stream: 1 s of speech-like audio in 100 ms bodies."""


def expected_frames(n_samples: int, rate: int = 16000) -> int:
    return int(np.floor(n_samples * 30 / rate + 0.5))


def steady_profile_dir(root: Path) -> Path:
    """A profile folder with ``steady``: UniTalker channels to ARKit, no random steps."""
    root.mkdir(parents=True, exist_ok=True)
    mapping = (BUILTIN_DIR / "data" / "unitalker_to_arkit.json").as_posix()
    (root / "steady.toml").write_text(
        'name = "steady"\nengine = "unitalker"\ninput_rig = "unitalker51"\nrig = "arkit52"\n'
        'dtype = "float32"\n\n[[steps]]\ntype = "unitalker_clip"\n\n'
        f'[[steps]]\ntype = "rename"\nmap = "{mapping}"\n',
        encoding="utf-8",
    )
    return root


def hardening_settings(model: Path, profiles: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "unitalker_model": model,
        "default_profile": "steady",
        "profile_dir": profiles,
        "window_left_context_s": 0.3,
        "window_hop_s": 0.2,
        "window_lookahead_s": 0.1,
        "inference_workers": 2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def start_server(settings: Settings, engines: dict | None = None):
    """A running ``LiveServer`` (from tests/conftest.py) for ``settings``."""
    from audio2face.engines.loading import load_unitalker_engine
    from audio2face.server import create_app
    from conftest import LiveServer

    if engines is None:
        engines = {"unitalker": load_unitalker_engine(settings)}
    return LiveServer(create_app(settings, engines=engines))


@pytest.fixture(scope="module")
def hard_server(tiny_unitalker_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """A live server on the steady profile with default limits."""
    profiles = steady_profile_dir(tmp_path_factory.mktemp("profiles"))
    with start_server(hardening_settings(tiny_unitalker_path, profiles)) as server:
        yield server


# --- talking to it -------------------------------------------------------------------


@dataclass
class Outcome:
    reply: Reply = field(default_factory=Reply)
    got_end: bool = False
    client_closed: bool = False
    """Nothing came back in time and the client closed (a barge-in)."""


async def exchange(url: str, outgoing: list[bytes | str], *, wait_s: float = 20.0,
                   **connect: object) -> Outcome:  # fmt: skip
    """Send ``outgoing`` while reading until End or close; then close politely. Without
    an End the server rightly waits for more, so the client leaves after a short wait."""
    if not outgoing:
        wait_s = min(wait_s, 0.2)
    elif outgoing[-1] != END_BYTES:
        wait_s = min(wait_s, 0.5)
    reply = await converse(url, outgoing, wait_s=wait_s, **connect)
    return Outcome(reply, reply.got_end, reply.client_closed)


def healthy_messages() -> list[bytes]:
    return [start(), *[body(c) for c in split(HEALTHY_PCM, 3200)], end()]


def healthy_alone(url: str) -> np.ndarray:
    out = asyncio.run(exchange(url, healthy_messages()))
    if not out.got_end:
        raise RuntimeError("the healthy stream did not complete alone")
    return out.reply.frames()


def with_healthy(url: str, outgoing: list[bytes | str]) -> tuple[Outcome, Outcome]:
    """Run ``outgoing`` and the healthy stream at the same time."""

    async def both() -> tuple[Outcome, Outcome]:
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
    "HEALTHY_PCM", "RESP_BODY", "RESP_END", "RESP_START", "Outcome", "body", "end",
    "exchange", "expected_frames", "hard_server", "hardening_settings", "healthy_alone",
    "healthy_messages", "pcm16", "speechlike", "split", "start", "start_server",
    "steady_profile_dir", "wait_clean", "with_healthy",
]  # fmt: skip
