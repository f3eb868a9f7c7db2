"""The default engine on a live server: concurrent streams' bodies share model runs
(the pusher) and every stream still gets exactly its own frames."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from v1_client import body, converse, end, pcm16, speechlike, split, start

from audio2face.rigs import ARKIT_52
from audio2face.runtime import Runtime
from audio2face.settings import Settings

MOUTH = [i for i, name in enumerate(ARKIT_52) if name.startswith(("jaw", "mouth"))]


@pytest.fixture(scope="module")
def default_server():
    from audio2face.server import create_app
    from conftest import LiveServer

    # A long batch wait so that bodies sent together surely meet in one run.
    settings = Settings(providers="cpu", intra_op_threads=1, batch_wait_ms=30.0)
    with LiveServer(create_app(settings)) as server:
        yield server


def batch_rows(server) -> tuple[float, float]:
    """(sum, count) of the ``a2f_batch_size`` histogram: model rows and runs."""
    values = {}
    for line in httpx.get(server.http_url + "/metrics").text.splitlines():
        if line.startswith(("a2f_batch_size_sum ", "a2f_batch_size_count ")):
            name, value = line.rsplit(" ", 1)
            values[name.split("{")[0]] = float(value)
    return values.get("a2f_batch_size_sum", 0.0), values.get("a2f_batch_size_count", 0.0)


def test_concurrent_streams_share_runs_and_get_their_own_frames(default_server) -> None:
    clips = [pcm16(speechlike(2.0, seed=k)) for k in range(6)]
    before = batch_rows(default_server)

    async def main():
        return await asyncio.gather(*(
            converse(default_server.ws_url, [start(), *[body(c) for c in split(pcm, 1280)], end()])
            for pcm in clips
        ))  # fmt: skip

    replies = asyncio.run(main())
    rows, runs = (a - b for a, b in zip(batch_rows(default_server), before, strict=True))
    assert runs > 0 and rows / runs > 1.5  # bodies of several streams per model run

    runtime = Runtime.start(Settings(providers="cpu", intra_op_threads=1))
    try:
        for pcm, reply in zip(clips, replies, strict=True):
            audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
            session, _ = runtime.open_session("arkit", 16000)
            alone = [session.push(audio[i : i + 640]).values for i in range(0, audio.shape[0], 640)]
            want = np.concatenate([*alone, session.finish().values])
            got = reply.frames()
            assert got.shape == want.shape == (60, 52)
            # Blinks are random per stream; the mouth is the model's alone.
            np.testing.assert_allclose(got[:, MOUTH], want[:, MOUTH], atol=1e-4)
    finally:
        runtime.close()
