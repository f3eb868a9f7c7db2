"""Protocol v1 end to end: a real uvicorn server on loopback, a real websockets client."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
import websockets
from v1_client import Req, body, converse, end, pcm16, speechlike, split, start

RESP_START = "Audio2FaceV1ResponseChunkStart"
RESP_BODY = "Audio2FaceV1ResponseChunkBody"
RESP_END = "Audio2FaceV1ResponseChunkEnd"


def expected_frames(n_bytes: int) -> int:
    return int(np.floor(n_bytes / 2 / 16000 * 30 + 0.5))


def test_health_and_ready(unitalker_server) -> None:
    r = httpx.get(unitalker_server.http_url + "/health")
    assert r.status_code == 200 and r.json() == "OK"
    r = httpx.get(unitalker_server.http_url + "/ready")
    assert r.status_code == 200 and r.json()["ready"] is True


@pytest.mark.parametrize("chunk_ms", [20, 100, 1000, 10_000])
def test_whole_sequence_and_frame_count(unitalker_server, chunk_ms: int) -> None:
    pcm = pcm16(speechlike(3.3))
    msgs = [start(), *[body(c) for c in split(pcm, 32 * chunk_ms)], end()]
    reply = asyncio.run(converse(unitalker_server.ws_url, msgs))
    kinds = reply.kinds
    assert kinds[0] == RESP_START and kinds[-1] == RESP_END
    assert set(kinds[1:-1]) <= {RESP_BODY}
    assert reply.messages[0].dtype in ("float16", "float32")
    frames = reply.frames()
    assert frames.shape == (expected_frames(len(pcm)), 52)
    assert np.isfinite(frames).all()
    for m in reply.messages[1:-1]:
        assert len(m.data) // (4 if reply.messages[0].dtype == "float32" else 2) // 52 <= 10


def test_a_10_s_body_and_chunk_size_zero_means_ten(unitalker_server) -> None:
    pcm = pcm16(speechlike(10.0, seed=3))
    reply = asyncio.run(converse(unitalker_server.ws_url, [start(chunk=0), body(pcm), end()]))
    bodies = [m for m in reply.messages if m.class_name == RESP_BODY]
    assert reply.frames().shape[0] == 300
    assert max(len(m.data) for m in bodies) == 10 * 52 * 4


def test_empty_request_id_everywhere(unitalker_server) -> None:
    pcm = pcm16(speechlike(1.0))
    msgs = [start(request_id=""), *[body(c, request_id="") for c in split(pcm, 3200)], end()]
    reply = asyncio.run(converse(unitalker_server.ws_url, msgs))
    assert reply.frames().shape[0] == 30


def test_utterance_too_short_for_a_frame_still_gets_start_then_end(unitalker_server) -> None:
    reply = asyncio.run(converse(unitalker_server.ws_url, [start(), body(b"\0\0" * 100), end()]))
    assert reply.kinds == [RESP_START, RESP_END]
    reply = asyncio.run(converse(unitalker_server.ws_url, [start(), end()]))
    assert reply.kinds == [RESP_START, RESP_END]


def test_emotion_switching_mid_stream_is_accepted(unitalker_server) -> None:
    pcm = pcm16(speechlike(2.0))
    parts = split(pcm, 6400)
    emotions = ["", "happiness_1", "anger_2", "", "sadness_4", "no_such_emotion"]
    msgs = [start(), *[body(p, emotions[i % len(emotions)]) for i, p in enumerate(parts)], end()]
    reply = asyncio.run(converse(unitalker_server.ws_url, msgs))
    assert reply.frames().shape[0] == 60


def test_unknown_profile_falls_back_to_default(unitalker_server, caplog) -> None:
    pcm = pcm16(speechlike(1.0))
    reply = asyncio.run(
        converse(unitalker_server.ws_url, [start(profile="no-such-avatar"), body(pcm), end()])
    )
    assert reply.frames().shape[0] == 30
    assert len(reply.names) == 52


@pytest.mark.parametrize(
    ("first", "reason_part"),
    [
        (b"\xff\xff\xff\xff", "undecodable"),
        (body(b"\0\0" * 160), "first message must be"),
        (Req(class_name="Hello").SerializeToString(), "unknown class_name"),
        (start(rate=0), "sample_rate 0"),
        (start(width=3), "sample_width 3"),
        (start(chunk=-1), "response_chunk_n_frames"),
    ],
)
def test_bad_openings_close_with_1008_and_a_reason(unitalker_server, first, reason_part) -> None:
    reply = asyncio.run(converse(unitalker_server.ws_url, [first], wait_end=False))
    assert reply.close_code == 1008
    assert reason_part in reply.close_reason


def test_text_frame_is_refused(unitalker_server) -> None:
    reply = asyncio.run(converse(unitalker_server.ws_url, [start(), "hello"], wait_end=False))
    assert reply.close_code == 1008
    assert "text frames" in reply.close_reason


def test_odd_byte_count_keeps_earlier_output_then_closes(unitalker_server) -> None:
    good = pcm16(speechlike(2.0))
    msgs = [start(), body(good), body(b"\0\0\0")]
    reply = asyncio.run(converse(unitalker_server.ws_url, msgs, wait_end=False))
    assert reply.close_code == 1008
    assert "3 bytes" in reply.close_reason
    assert reply.kinds[0] == RESP_START
    # none of the accepted audio's frames is lost
    assert reply.frames().shape[0] == expected_frames(len(good))


def test_unknown_class_name_mid_stream(unitalker_server) -> None:
    msgs = [start(), body(pcm16(speechlike(0.5))), Req(class_name="Bogus").SerializeToString()]
    reply = asyncio.run(converse(unitalker_server.ws_url, msgs, wait_end=False))
    assert reply.close_code == 1008 and "Bogus" in reply.close_reason
    assert reply.frames().shape[0] == 15


def test_close_without_end_cleans_up(unitalker_server) -> None:
    state = unitalker_server.app.state.a2f

    async def barge_in() -> None:
        async with websockets.connect(unitalker_server.ws_url) as ws:
            await ws.send(start())
            for c in split(pcm16(speechlike(2.0)), 3200):
                await ws.send(body(c))
        # closed without End

    asyncio.run(barge_in())
    for _ in range(100):
        if not state.streams:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert not state.streams
    # and the server still serves
    reply = asyncio.run(converse(unitalker_server.ws_url, [start(), body(pcm16(speechlike(1.0))), end()]))
    assert reply.frames().shape[0] == 30


def test_two_concurrent_streams_do_not_affect_each_other(unitalker_server) -> None:
    a = pcm16(speechlike(3.0, seed=1))
    b = pcm16(speechlike(2.0, seed=2))

    def msgs(pcm: bytes, chunk: int) -> list[bytes]:
        return [start(), *[body(c) for c in split(pcm, chunk)], end()]

    async def both():
        return await asyncio.gather(
            converse(unitalker_server.ws_url, msgs(a, 640)),
            converse(unitalker_server.ws_url, msgs(b, 12800)),
        )

    ra, rb = asyncio.run(both())
    alone_a = asyncio.run(converse(unitalker_server.ws_url, msgs(a, 640)))
    alone_b = asyncio.run(converse(unitalker_server.ws_url, msgs(b, 12800)))
    # blinks are random per stream, so compare the channels no blink step touches
    keep = [i for i, n in enumerate(ra.names) if "Blink" not in n and "blink" not in n]
    np.testing.assert_allclose(ra.frames()[:, keep], alone_a.frames()[:, keep], atol=1e-6)
    np.testing.assert_allclose(rb.frames()[:, keep], alone_b.frames()[:, keep], atol=1e-6)
    assert ra.frames().shape[0] == 90 and rb.frames().shape[0] == 60
