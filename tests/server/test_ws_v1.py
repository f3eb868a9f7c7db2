"""Protocol v1 end to end: a real uvicorn server on loopback and the Python client
(``audio2face.client``), which every other test and the benchmark use too. Bad input
is in tests/hardening/test_bad_input.py."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pytest
from v1_client import body, converse, end, pcm16, speechlike, split, start

from audio2face.client import (
    ConnectError,
    Hooks,
    StreamError,
    Utterance,
    UtteranceOptions,
    V1Client,
    stream_pcm,
)
from audio2face.protocol.v1 import ResponseKind
from audio2face.types import frames_for_samples

RESP_START = ResponseKind.START.value
RESP_BODY = ResponseKind.BODY.value
RESP_END = ResponseKind.END.value


def expected_frames(n_bytes: int) -> int:
    return frames_for_samples(n_bytes // 2, 16000, 30.0)


def wait_until(done, timeout_s: float = 10.0) -> bool:
    """Poll a condition on the server (its loop runs in another thread)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


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


def test_unknown_avatar_names_fall_back_other_unknown_names_are_refused(
    unitalker_server, caplog
) -> None:
    """v1's one exception to "unknown names are refused": avatar-like names (the
    original's clients send names like KQ-default) get the default profile, logged."""
    pcm = pcm16(speechlike(1.0))
    with caplog.at_level("WARNING", logger="audio2face.profiles"):
        result = asyncio.run(stream_pcm(pcm, url=unitalker_server.ws_url, profile="no-such-avatar"))
    assert result.frames == 30
    assert len(result.names) == 52  # the default profile's names say which one answered
    assert "'no-such-avatar' not usable" in caplog.text and "falling back" in caplog.text
    with pytest.raises(StreamError) as refused:
        asyncio.run(stream_pcm(pcm, url=unitalker_server.ws_url, profile="bogus"))
    assert refused.value.code == 1008
    assert refused.value.reason.startswith("unknown profile 'bogus'; known: [")


def test_close_without_end_cleans_up(unitalker_server) -> None:
    state = unitalker_server.app.state.a2f

    async def barge_in() -> None:
        async with V1Client(unitalker_server.ws_url).connect() as conn:
            await conn.send(start())
            for c in split(pcm16(speechlike(2.0)), 3200):
                await conn.send(body(c))
        # closed without End

    asyncio.run(barge_in())
    assert wait_until(lambda: not state.streams), "the stream was not cleaned up"
    # and the server still serves
    result = asyncio.run(stream_pcm(pcm16(speechlike(1.0)), url=unitalker_server.ws_url))
    assert result.frames == 30


def test_two_concurrent_streams_do_not_affect_each_other(unitalker_server) -> None:
    a = pcm16(speechlike(3.0, seed=1))
    b = pcm16(speechlike(2.0, seed=2))
    client = V1Client(unitalker_server.ws_url)
    fine, coarse = UtteranceOptions(chunk_ms=20), UtteranceOptions(chunk_ms=400)

    async def both():
        return await asyncio.gather(client.stream(a, fine), client.stream(b, coarse))

    ra, rb = asyncio.run(both())
    alone_a = client.stream_sync(a, fine)
    alone_b = client.stream_sync(b, coarse)
    # blinks are random per stream, so compare the channels no blink step touches
    keep = [i for i, n in enumerate(ra.names) if "Blink" not in n and "blink" not in n]
    np.testing.assert_allclose(ra.values[:, keep], alone_a.values[:, keep], atol=1e-6)
    np.testing.assert_allclose(rb.values[:, keep], alone_b.values[:, keep], atol=1e-6)
    assert ra.frames == 90 and rb.frames == 60


# --- the client itself ------------------------------------------------------------------


def test_client_paces_and_reports_timing_through_hooks(unitalker_server) -> None:
    pcm = pcm16(speechlike(1.0, seed=4))
    sends: list[tuple[float, int]] = []
    frames: list[tuple[float, int]] = []
    ends: list[float] = []
    hooks = Hooks(on_send=lambda t, n: sends.append((t, n)),
                  on_frames=lambda t, n: frames.append((t, n)), on_end_sent=ends.append)  # fmt: skip
    options = UtteranceOptions(chunk_ms=100, pace=True)
    result = V1Client(unitalker_server.ws_url).stream_sync(pcm, options, hooks)
    assert result.frames == 30 and result.values.shape == (30, 52)
    # one call per body, samples so far, in order; the same record in the result
    assert [n for _, n in sends] == [1600 * (i + 1) for i in range(10)]
    assert sends == result.sends and frames == result.arrivals
    assert frames[-1][1] == 30 and all(
        a[1] < b[1] for a, b in zip(frames, frames[1:], strict=False)
    )
    assert ends == [result.end_sent] and result.end_received >= ends[0]
    # paced: ten 100 ms bodies take about 0.9 s from first to last (generous bounds)
    assert 0.8 < sends[-1][0] - sends[0][0] < 3.0
    assert 0 <= result.connect_s < 5


def test_client_utterance_is_encoded_once_and_reusable(unitalker_server) -> None:
    pcm = pcm16(speechlike(0.5, seed=6))
    utt = Utterance.from_pcm(pcm, UtteranceOptions(chunk_ms=40))
    assert len(utt.bodies) == 13 and utt.samples_after[-1] == utt.samples == 8000
    client = V1Client(unitalker_server.ws_url)

    async def twice():
        return await asyncio.gather(client.run(utt), client.run(utt))

    first, second = asyncio.run(twice())
    assert first.frames == second.frames == 15


def test_client_refuses_odd_pcm_before_connecting() -> None:
    with pytest.raises(ValueError, match="whole int16 samples"):
        Utterance.from_pcm(b"\0\0\0")


def test_client_raises_stream_error_with_code_reason_and_partial_frames(unitalker_server) -> None:
    """A body of 3 bytes after 1 s of good audio: the server closes with 1008 and a
    reason; the error carries both and the frames of the audio accepted before."""
    good = Utterance.from_pcm(pcm16(speechlike(1.0)), UtteranceOptions(chunk_ms=1000))
    utt = Utterance(start=good.start, bodies=(*good.bodies, body(b"\0\0\0")),
                    samples_after=(16000, 16001), end=good.end, samples=16001,
                    options=good.options)  # fmt: skip
    with pytest.raises(StreamError) as info:
        asyncio.run(V1Client(unitalker_server.ws_url).run(utt))
    err = info.value
    assert err.code == 1008 and "holds 3 bytes" in err.reason
    assert str(err).startswith("server closed the stream (1008): pcm_bytes holds 3 bytes")
    assert err.partial is not None and err.partial.frames == 30
    assert len(err.partial.names) == 52


def test_client_connect_errors_are_one_line_and_say_what_to_do(unitalker_server) -> None:
    with pytest.raises(ConnectError, match="ws:// or wss://"):
        V1Client("http://127.0.0.1:1/api/v1/streaming_audio2face/ws")
    wrong_path = unitalker_server.ws_url.replace("streaming_audio2face", "nope")
    with pytest.raises(ConnectError, match="HTTP 403") as info:
        asyncio.run(stream_pcm(b"\0\0", url=wrong_path))
    assert info.value.status == 403 and "/api/v1/streaming_audio2face/ws" in str(info.value)
    closed = unitalker_server.ws_url.replace(str(unitalker_server.port), "1")
    with pytest.raises(ConnectError, match="is the server running"):
        asyncio.run(stream_pcm(b"\0\0", url=closed))
    assert "\n" not in str(info.value)
