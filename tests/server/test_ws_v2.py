"""Protocol v2 end to end: a real uvicorn server on loopback (the embedded default model,
which loads in under a second) and the v2 Python client (``audio2face.client_v2``)."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from v1_client import pcm16, speechlike

from audio2face.client import stream_pcm
from audio2face.client_v2 import V2Client, V2Options, V2Result, V2StreamError
from audio2face.protocol.v2 import (
    EndReply,
    ErrorReply,
    FlushedReply,
    FramesReply,
    InterruptedReply,
    ServerMessage,
)
from audio2face.server import create_app
from audio2face.settings import Settings
from audio2face.types import frames_for_samples

FPS = 30.0
HAPPINESS_2 = 0.44  # the vrm profile's happiness_2 preset for "happy" (vrm/offsets.json)


@pytest.fixture(scope="module")
def server():
    from conftest import LiveServer

    with LiveServer(create_app(Settings(max_streams=16))) as live:
        yield live


@pytest.fixture(scope="module")
def auth_server():
    from conftest import LiveServer

    with LiveServer(create_app(Settings(auth_token="s3cret", web_ui=False))) as live:
        yield live


def v2_url(live) -> str:
    return f"ws://127.0.0.1:{live.port}/api/v2/stream"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def exchange(url: str, outgoing: list[bytes | str], wait_s: float = 20.0, **client):
    """Send ``outgoing`` while reading; every message until the server closes."""
    got: list[ServerMessage] = []
    async with V2Client(url, **client).connect() as conn:

        async def read() -> None:
            async for m in conn.messages():
                got.append(m)

        reader = asyncio.create_task(read())
        for m in outgoing:
            if not await conn.send_raw(m):
                break
        await asyncio.wait_for(reader, wait_s)
        return got, conn.close_code, conn.close_reason


START = json.dumps({"type": "start"})


def test_ready_frames_end_and_close_1000(server) -> None:
    pcm = pcm16(speechlike(1.3))
    got, code, _ = run(exchange(v2_url(server), [START, pcm, '{"type":"end"}']))
    ready = got[0]
    assert ready.type == "ready" and ready.fps == FPS and len(ready.names) == 52
    assert ready.profile == "arkit" and ready.engine == "default" and ready.lookahead_ms > 0
    assert isinstance(got[-1], EndReply) and got[-1].frames == 39
    assert sum(len(m.values) for m in got if isinstance(m, FramesReply)) == 39
    assert code == 1000


def test_frame_clock_over_several_flushes_at_44k_f32(server) -> None:
    rate = 44100
    lengths = [1.03, 0.51, 2.2, 0.017]
    utterances = [speechlike(s, rate=rate, seed=i) for i, s in enumerate(lengths)]
    options = V2Options(sample_rate=rate, encoding="pcm_f32le")
    result = run(V2Client(v2_url(server)).run(utterances, options, chunk_ms=37))
    cumulative = np.cumsum([u.shape[0] for u in utterances])
    assert result.flushed == [frames_for_samples(int(m), rate, FPS) for m in cumulative]
    assert result.end_frames == result.flushed[-1] == result.values.shape[0]
    # every frame before a flushed(N) message has arrived, none after it
    seen = 0
    for m in result.messages:
        if isinstance(m, FramesReply):
            assert m.first == seen
            seen += len(m.values)
        elif isinstance(m, FlushedReply):
            assert m.frames == seen


@pytest.mark.parametrize("fps", [24.0, 60.0])
def test_a_stream_at_its_own_frame_rate_keeps_the_clock_at_that_rate(server, fps: float) -> None:
    rate = 16000
    lengths = [0.77, 1.3]
    utterances = [speechlike(s, rate=rate, seed=i) for i, s in enumerate(lengths)]
    result = run(V2Client(v2_url(server)).run(utterances, V2Options(fps=fps, output="binary")))
    assert result.ready is not None and result.ready.fps == fps
    cumulative = np.cumsum([u.shape[0] for u in utterances])
    assert result.flushed == [frames_for_samples(int(m), rate, fps) for m in cumulative]
    assert result.end_frames == result.values.shape[0]


def test_binary_and_json_output_are_equal(server) -> None:
    pcm = pcm16(speechlike(2.0, seed=5))
    client = V2Client(v2_url(server))
    as_json = run(client.run([pcm], V2Options(output="json")))
    as_binary = run(client.run([pcm], V2Options(output="binary")))
    exact = as_binary.values
    assert exact.dtype == np.float32 and exact.shape == (60, 52)
    # JSON carries the same values rounded to 5 decimals (docs/protocol-v2.md)
    rounded = np.round(exact.astype(np.float64), 5).astype(np.float32)
    assert np.array_equal(as_json.values, rounded)
    assert np.abs(as_json.values - exact).max() <= 5e-6


def test_interrupt_mid_utterance_stops_frames_and_rests(server) -> None:
    async def scenario() -> tuple[list[ServerMessage], int, tuple[str, ...]]:
        async with V2Client(v2_url(server)).connect() as conn:
            ready = await conn.start()
            # a minute of speech queued at once, then barge-in: most of it is dropped
            await conn.send_audio(pcm16(speechlike(60.0, seed=2)))
            await conn.interrupt()
            await conn.send_audio(pcm16(np.zeros(16000, np.float32)))  # 1 s of silence
            await conn.flush()
            await conn.end()
            got = [m async for m in conn.messages()]
            return got, conn.close_code or 0, ready.names

    got, code, names = run(scenario())
    assert code == 1000
    (at,) = [m.frame for m in got if isinstance(m, InterruptedReply)]
    assert at < 1800, "the queued audio was animated, not dropped"
    frames = np.concatenate([m.values for m in got if isinstance(m, FramesReply)])
    (flushed,) = [m.frames for m in got if isinstance(m, FlushedReply)]
    release = 3  # 100 ms at 30 fps
    assert flushed == at + release + 30 == frames.shape[0]
    mouth = [names.index(n) for n in ("jawOpen", "mouthFunnel", "mouthPucker", "mouthSmileLeft")]
    assert np.abs(frames[at + release - 1 :, mouth]).max() < 0.05, "the face did not reach rest"


def test_emotion_with_ramp_eases_in(server) -> None:
    async def scenario() -> V2Result:
        result = V2Result()
        async with V2Client(v2_url(server)).connect() as conn:
            result.ready = await conn.start(V2Options(profile="vrm", output="binary"))
            silence = np.zeros(16000, np.float32)
            await conn.send_audio(silence)
            await conn.emotion("happiness", 1.0, ramp_s=0.4)
            await conn.send_audio(silence)
            await conn.end()
            result.messages = [m async for m in conn.messages()]
        return result

    result = run(scenario())
    happy = result.values[:, result.names.index("happy")]
    assert result.ready is not None and "happiness" in result.ready.emotions
    assert np.allclose(happy[:29], 0.0, atol=1e-6)  # neutral before the emotion
    ramp = happy[30:42]
    assert np.all(np.diff(ramp) >= -1e-6) and len(np.unique(np.round(ramp, 3))) >= 3
    assert np.allclose(happy[45:], 0.8, atol=1e-5)  # happiness_4 once the ramp is over


def test_v1_and_v2_streams_at_once_do_not_affect_each_other(server) -> None:
    pcm = pcm16(speechlike(2.5, seed=9))
    v1_url = server.ws_url

    async def both():
        return await asyncio.gather(
            stream_pcm(pcm, url=v1_url),
            V2Client(v2_url(server)).run([pcm], V2Options(output="binary")),
        )

    alone_v1 = run(stream_pcm(pcm, url=v1_url))
    alone_v2 = run(V2Client(v2_url(server)).run([pcm], V2Options(output="binary")))
    together_v1, together_v2 = run(both())
    # Streams that overlap are batched into one model run, whose float sums may round
    # differently from a run alone (tests/server/test_default_batching.py): hence atol.
    np.testing.assert_allclose(together_v1.values, alone_v1.values, atol=1e-4)
    np.testing.assert_allclose(together_v2.values, alone_v2.values, atol=1e-4)
    np.testing.assert_allclose(alone_v1.values, alone_v2.values, atol=1e-4)  # one engine


@pytest.mark.parametrize(
    ("outgoing", "code", "words"),
    [
        (['{"type":"dance"}'], 1008, ["unknown message type", "start", "interrupt"]),
        (["{not json"], 1008, ["not valid JSON"]),
        (["[1, 2]"], 1008, ["JSON object"]),
        ([b"\0\0"], 1008, ["binary message before start"]),
        (['{"type":"flush"}'], 1008, ['first message must be "start"']),
        ([json.dumps({"type": "start", "profile": "nobody"})], 1008, ["nobody", "arkit", "vrm"]),
        ([START, START], 1008, ["second start"]),
        ([START, b"\0\0\0"], 1008, ["3 bytes", "pcm_s16le"]),
        ([json.dumps({"type": "start", "sample_rate": 12345})], 1008, ["12345", "16000"]),
        ([json.dumps({"type": "start", "encoding": "mp3"})], 1008, ["encoding", "pcm_f32le"]),
        ([json.dumps({"type": "start", "sampel_rate": 1})], 1008, ["sampel_rate", "sample_rate"]),
        (
            [json.dumps({"type": "start", "profile": "vrm", "emotion": "glee"})],
            1008,
            ["glee", "happiness"],
        ),
        ([START, '{"type":"emotion","name":"glee"}'], 1008, ["glee", "no emotion presets"]),
        ([START, '{"type":"emotion","name":"x","intensity":2}'], 1008, ["intensity", "0 to 1"]),
    ],
)
def test_errors_send_a_message_then_close_with_its_code(server, outgoing, code, words) -> None:
    got, close_code, _ = run(exchange(v2_url(server), outgoing))
    errors = [m for m in got if isinstance(m, ErrorReply)]
    assert len(errors) == 1 and got[-1] is errors[0], got
    assert errors[0].code == close_code == code
    for word in words:
        assert word in errors[0].message, errors[0].message


def test_audio_before_an_error_still_gets_its_frames(server) -> None:
    pcm = pcm16(speechlike(1.0))
    got, code, _ = run(exchange(v2_url(server), [START, pcm, "oops"]))
    assert code == 1008 and isinstance(got[-1], ErrorReply)
    assert sum(len(m.values) for m in got if isinstance(m, FramesReply)) == 30


def test_oversized_message_closes_1009(server) -> None:
    big = b"\0\0" * (Settings().max_message_bytes // 2 + 1)
    _, code, _ = run(exchange(v2_url(server), [START, big]))
    assert code == 1009


def test_token_in_start_message(auth_server) -> None:
    url = v2_url(auth_server)
    got, code, _ = run(exchange(url, [START]))
    assert code == 1008 and isinstance(got[-1], ErrorReply) and "token" in got[-1].message
    start = json.dumps({"type": "start", "token": "s3cret"})
    got, code, _ = run(exchange(url, [start, '{"type":"end"}']))
    assert code == 1000 and got[0].type == "ready"
    with pytest.raises(V2StreamError):  # a wrong token in the header is not rescued
        run(V2Client(url, token="wrong").run([b"\0\0" * 160]))
    assert run(V2Client(url, token="s3cret").run([b"\0\0" * 1600])).end_frames == 3


def test_info_page_and_js_client_are_served(server) -> None:
    base = server.http_url
    info = httpx.get(base + "/api/v2/info").json()
    by_name = {p["name"]: p for p in info["profiles"]}
    assert {"arkit", "mmd", "vrm"} <= set(by_name) and info["default_profile"] == "arkit"
    assert "happiness" in by_name["vrm"]["emotions"] and by_name["arkit"]["emotions"] == []
    assert len(by_name["arkit"]["names"]) == 52 and info["auth"] is False
    page = httpx.get(base + "/")
    assert page.status_code == 200 and "audio2face.js" in page.text
    js = httpx.get(base + "/web/audio2face.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "export class Audio2FaceClient" in js.text
    assert httpx.get(base + "/web/__init__.py").status_code == 404
    assert httpx.get(base + "/web/vendor/three/LICENSE").status_code == 200


def test_web_ui_off(auth_server) -> None:
    r = httpx.get(auth_server.http_url + "/web/audio2face.js", headers={"X-API-Key": "s3cret"})
    assert r.status_code == 404


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.text(max_size=40),
            st.fixed_dictionaries(
                {"type": st.sampled_from(["start", "emotion", "flush", "interrupt", "end", "x"])},
                optional={
                    "sample_rate": st.one_of(st.integers(-5, 50000), st.text(max_size=3)),
                    "name": st.one_of(st.none(), st.text(max_size=8), st.integers()),
                    "intensity": st.one_of(st.floats(allow_nan=True), st.booleans()),
                    "encoding": st.sampled_from(["pcm_s16le", "pcm_f32le", "x"]),
                },
            ).map(json.dumps),
        ),
        max_size=6,
    )
)
def test_bad_input_never_breaks_the_server(server, messages) -> None:
    """Any sequence of messages ends in a clean close: 1000 or an error code with an
    error message first, never 1011 (a bug), and the server keeps serving."""
    got, code, _ = run(exchange(v2_url(server), [*messages, '{"type":"end"}'], wait_s=10))
    assert code in (1000, 1008, 1009, None), (messages, got, code)
    if code != 1000 and code is not None:
        assert isinstance(got[-1], ErrorReply) and got[-1].code == code
    assert server.app.state.a2f.internal_errors == 0


def test_a_foreign_browser_origin_is_refused(server) -> None:
    foreign = (("Origin", "http://elsewhere.example"),)
    got, code, _ = run(exchange(v2_url(server), [START], headers=foreign))
    assert code == 1008 and isinstance(got[-1], ErrorReply)
    assert "allowed_origins" in got[-1].message
    own = (("Origin", server.http_url),)  # the demo page's own origin
    got, code, _ = run(exchange(v2_url(server), [START, '{"type":"end"}'], headers=own))
    assert code == 1000 and got[0].type == "ready"


def test_keyword_client_with_an_emotion_step_and_progress(server) -> None:
    from audio2face.client_v2 import stream_pcm_v2

    calls: list[int] = []
    result = run(
        stream_pcm_v2(
            pcm16(np.zeros(16000, np.float32)), url=v2_url(server), profile="vrm",
            emotion="happiness_2", on_frames=lambda _t, n: calls.append(n),
        )
    )  # fmt: skip
    happy = result.values[:, result.names.index("happy")]
    assert result.end_frames == 30 and calls and calls[-1] == 30
    assert np.allclose(happy, HAPPINESS_2, atol=1e-5)


# --- the message layer alone (audio2face.protocol.v2) ------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.dictionaries(
            st.text(max_size=12), st.integers() | st.text(max_size=5) | st.none(), max_size=5
        ).map(json.dumps),
    )
)
def test_parsing_any_text_gives_a_message_or_a_protocol_error(text: str) -> None:
    from audio2face.errors import ProtocolError
    from audio2face.protocol.v2 import parse_client_message

    try:
        parse_client_message(text)
    except ProtocolError as exc:
        assert exc.code == 1008 and exc.reason and len(exc.reason) < 400


@settings(max_examples=50, deadline=None)
@given(
    first=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(0, 40), st.integers(1, 60)),
    seed=st.integers(0, 1000),
)
def test_binary_frame_blocks_round_trip(first: int, shape: tuple[int, int], seed: int) -> None:
    from audio2face.protocol.v2 import FRAME_HEADER, decode_frames_binary, encode_frames_binary

    values = np.random.default_rng(seed).random(shape, dtype=np.float32)
    data = encode_frames_binary(first, values)
    assert data[:4] == b"A2F2" and len(data) == FRAME_HEADER.size + 4 * values.size
    assert int.from_bytes(data[4:8], "little") == first
    back = decode_frames_binary(data)
    assert back.first == first and np.array_equal(back.values, values)


def test_pcm_decoding_per_encoding() -> None:
    from audio2face.errors import ProtocolError
    from audio2face.protocol.v2 import decode_pcm_v2

    s16 = np.array([0, 16384, -32768, 32767], "<i2").tobytes()
    assert np.array_equal(decode_pcm_v2(s16, "pcm_s16le"), [0, 0.5, -1, 32767 / 32768])
    f32 = np.array([0.25, -0.5, 0.75, 1.0], "<f4").tobytes()
    assert np.array_equal(decode_pcm_v2(f32, "pcm_f32le", channels=2), [-0.125, 0.875])
    for bad, encoding in ((b"\0" * 3, "pcm_s16le"), (b"\0" * 6, "pcm_f32le")):
        with pytest.raises(ProtocolError, match="not whole"):
            decode_pcm_v2(bad, encoding)
    with pytest.raises(ProtocolError, match="NaN"):
        decode_pcm_v2(np.array([np.nan], "<f4").tobytes(), "pcm_f32le")


def test_emotion_intensity_blends_the_presets_and_ramps_back_to_neutral(server) -> None:
    """An emotion message is a timed key: intensity 0.5 sits between the profile's
    presets (happiness_2 of 4), a later neutral eases back out over its ramp."""

    async def scenario() -> V2Result:
        result = V2Result()
        async with V2Client(v2_url(server)).connect() as conn:
            result.ready = await conn.start(V2Options(profile="vrm", output="binary"))
            silence = np.zeros(16000, np.float32)
            await conn.emotion("happiness", 0.5, ramp_s=0.0)
            await conn.send_audio(silence)
            await conn.emotion("neutral", 1.0, ramp_s=0.3)
            await conn.send_audio(silence)
            await conn.end()
            result.messages = [m async for m in conn.messages()]
        return result

    result = run(scenario())
    happy = result.values[:, result.names.index("happy")]
    half, full = happy[20], 0.8  # happiness_4 is 0.8 on "happy" (the test above)
    assert 0.2 * full < half < 0.8 * full
    assert np.all(np.diff(happy[30:40]) <= 1e-6) and happy[45:].max() < 1e-5
