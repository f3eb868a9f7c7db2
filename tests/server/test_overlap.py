"""Nothing blocks the event loop: a whole utterance sent at once streams back while
the server is still inferring the rest.

The engine is real but deliberately slow: the tiny UniTalker-signature model in window
mode with a one-frame hop, so 20 s of audio is 600 model runs. If the server inferred
a body to the end before sending (or blocked the loop while inferring), the first
frame would arrive together with the End; here it must arrive in the first half of
the time the server takes to answer.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from v1_client import pcm16, speechlike

from audio2face.client import Utterance, UtteranceOptions, V1Client
from audio2face.types import frames_for_samples

SECONDS = 20.0


@pytest.fixture(scope="module")
def slow_server(tiny_unitalker_path):
    from audio2face.loading import load_unitalker_engine
    from audio2face.server import create_app
    from audio2face.settings import Settings
    from conftest import LiveServer

    settings = Settings(
        unitalker_model=tiny_unitalker_path, default_profile="unitalker",
        unitalker_mode="window", window_left_context_s=0.3, window_hop_s=1 / 30,
        window_lookahead_s=0.1, inference_workers=1,
    )  # fmt: skip
    engines = {"unitalker": load_unitalker_engine(settings)}
    with LiveServer(create_app(settings, engines=engines)) as server:
        yield server


async def _send_all_then_read(url: str, pcm: bytes, body_ms: int) -> tuple[float, list[float], int]:
    """Send everything without pacing; return (time End was sent, arrival time of each
    frame-carrying message and of the End response, frames received)."""
    r = await V1Client(url).run(Utterance.from_pcm(pcm, UtteranceOptions(chunk_ms=body_ms)))
    if r.end_sent is None or r.end_received is None:
        raise AssertionError("the utterance did not complete")
    return r.end_sent, [t for t, _ in r.arrivals] + [r.end_received], r.frames


@pytest.mark.parametrize("body_ms", [int(SECONDS * 1000), 40], ids=["one-body", "40ms-bodies"])
def test_first_frames_leave_before_the_rest_is_inferred(slow_server, body_ms: int) -> None:
    pcm = pcm16(speechlike(SECONDS))
    sent, arrivals, frames = asyncio.run(_send_all_then_read(slow_server.ws_url, pcm, body_ms))
    assert frames == frames_for_samples(len(pcm) // 2, 16000, 30.0)
    first, done = arrivals[0] - sent, arrivals[-1] - sent
    # the first frames come while most of the utterance is still being inferred
    assert first < 0.5 * done, (first, done)
    # and the output streams: bodies keep arriving over the whole inference time
    middle = np.array(arrivals[:-1]) - sent
    assert ((middle > 0.25 * done) & (middle < 0.75 * done)).any()
