"""Bad input, tried systematically against a live server (hypothesis).

For every input: the server answers with End or a close code it documents (never a
1011 from a bug, never a hang), leaves nothing behind (streams, tasks, buffers,
queue depth), and a healthy stream running at the same time gets exactly the frames
it gets alone.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hardening_support import (
    RESP_END,
    RESP_START,
    Reply,
    body,
    end,
    exchange,
    expected_frames,
    healthy_alone,
    pcm16,
    speechlike,
    split,
    start,
    wait_clean,
    with_healthy,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audio2face.protocol.audio2face_v1_pb2 import Audio2FaceBlendshapeV1Request as Req

FAST = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ACCEPTED = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
SHORT_PCM = pcm16(speechlike(0.3, seed=5))


@pytest.fixture(scope="module")
def reference(hard_server) -> np.ndarray:
    """The healthy stream's frames when it runs alone."""
    return healthy_alone(hard_server.ws_url)


def check(server, reference: np.ndarray, outgoing: list[bytes | str]) -> Reply:
    """Run ``outgoing`` beside the healthy stream; check the three invariants."""
    bad, healthy = with_healthy(server.ws_url, outgoing)
    assert healthy.got_end, "the concurrent healthy stream did not finish"
    np.testing.assert_array_equal(healthy.frames(), reference)
    wait_clean(server)
    if not bad.got_end and not bad.client_closed:
        # Closed by the server with a documented code (1009 comes from uvicorn's
        # max size), or by the client after End; never 1011 for bad input.
        assert bad.close_code in (1008, 1009), (bad.close_code, bad.close_reason)
        assert bad.close_reason or bad.close_code == 1009
    return bad


def n_frames(out: Reply) -> int:
    return out.frames().shape[0] if out.messages else 0


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def raw_string_field(number: int, data: bytes) -> bytes:
    """A length-delimited protobuf field holding any bytes (invalid UTF-8 included)."""
    return varint((number << 3) | 2) + varint(len(data)) + data


# --- frames that are not v1 -------------------------------------------------------------


@FAST
@given(frames=st.lists(st.binary(max_size=300), min_size=1, max_size=3), after_start=st.booleans())
def test_random_bytes_as_frames(hard_server, reference, frames, after_start) -> None:
    prefix = [start(), body(SHORT_PCM)] if after_start else []
    bad = check(hard_server, reference, [*prefix, *frames, end()])
    if after_start:
        # whatever happened next, the accepted audio's frames all came out
        assert bad.kinds[0] == RESP_START
        assert bad.frames().shape[0] >= expected_frames(len(SHORT_PCM) // 2) or not bad.got_end


@FAST
@given(which=st.sampled_from(["start", "body", "end"]), cut=st.integers(0, 10_000))
def test_truncated_protobuf(hard_server, reference, which, cut) -> None:
    full = {"start": start(profile="arkit"), "body": body(SHORT_PCM, "happiness_1"),
            "end": end()}[which]  # fmt: skip
    msg = full[: cut % (len(full) + 1)]
    msgs = [msg, end()] if which == "start" else [start(), msg, end()]
    check(hard_server, reference, msgs)


def test_oversized_message_is_1009(hard_server, reference) -> None:
    limit = hard_server.app.state.a2f.settings.max_message_bytes
    bad = check(hard_server, reference, [start(), body(b"\0\0" * (limit // 2 + 8)), end()])
    assert bad.close_code == 1009


@FAST
@given(st.lists(st.sampled_from(["start", "body", "end", "other", "empty"]), max_size=6))
def test_every_class_name_order(hard_server, reference, order) -> None:
    make = {
        "start": start, "end": end, "body": lambda: body(SHORT_PCM),
        "other": lambda: Req(class_name="StreamingAudio2FaceV1ChunkMiddle").SerializeToString(),
        "empty": lambda: b"",
    }  # fmt: skip
    bad = check(hard_server, reference, [make[k]() for k in order])
    # The protocol as a tiny state machine: what must have happened?
    bodies = 0
    for i, k in enumerate(order):
        if (i == 0 and k != "start") or (i > 0 and k in ("start", "other", "empty")):
            assert bad.close_code == 1008 and not bad.got_end
            want = {"start": "second ChunkStart", "other": "unknown class_name 'Streaming",
                    "empty": "unknown class_name ''", "body": "first message must be",
                    "end": "first message must be"}  # fmt: skip
            assert want[k] in bad.close_reason
            # none of the accepted audio's frames is lost
            assert n_frames(bad) == expected_frames(bodies * len(SHORT_PCM) // 2)
            break
        if k == "body":
            bodies += 1
        if k == "end":
            assert bad.got_end
            break
    else:
        if not order:
            return  # nothing sent, the client closed: nothing to check but the counters
        assert bad.client_closed and not bad.got_end  # no End sent: the client left
    if bad.messages:
        assert bad.kinds[0] == RESP_START
        if bad.got_end:
            assert bad.frames().shape[0] == expected_frames(bodies * len(SHORT_PCM) // 2)


@FAST
@given(text=st.text(max_size=50), where=st.integers(0, 2))
def test_text_frames(hard_server, reference, text, where) -> None:
    msgs: list[bytes | str] = [start(), body(SHORT_PCM), end()]
    msgs.insert(where, text)
    bad = check(hard_server, reference, msgs)
    assert bad.close_code == 1008 and "text frames" in bad.close_reason


@FAST
@given(sizes=st.lists(st.integers(0, 2001), min_size=1, max_size=5))
@example(sizes=[2000, 3])
def test_odd_byte_counts_and_empty_bodies(hard_server, reference, sizes) -> None:
    pcm = SHORT_PCM * 2
    msgs = [start(), *[body(pcm[:n]) for n in sizes], end()]
    bad = check(hard_server, reference, msgs)
    good = 0
    for n in sizes:
        if n % 2:
            assert bad.close_code == 1008 and f"holds {n} bytes" in bad.close_reason
            break
        good += n // 2
    else:
        assert bad.got_end
    # frames of the accepted audio are never lost, error or not
    assert n_frames(bad) == expected_frames(good)


INT32 = st.integers(-(2**31), 2**31 - 1)


@FAST
@given(
    rate=st.one_of(st.sampled_from(ACCEPTED), st.sampled_from([0, -1, 1, 16001, 2**31 - 1]), INT32),
    width=st.one_of(st.sampled_from([2, 0, 1, 3, 4, -2]), INT32),
    channels=st.one_of(st.sampled_from([1, 2, 8, 0, 9, -1]), INT32),
    chunk=st.one_of(st.sampled_from([0, 1, 10, -1]), INT32),
)
def test_rates_widths_channels_chunks(hard_server, reference, rate, width, channels, chunk) -> None:
    frame_bytes = 2 * channels if 1 <= channels <= 8 else 2
    pcm = b"\x01\x02" * (frame_bytes // 2) * 400
    msgs = [start(rate=rate, width=width, channels=channels, chunk=chunk), body(pcm), end()]
    bad = check(hard_server, reference, msgs)
    valid = rate in ACCEPTED and width == 2 and 1 <= channels <= 8 and chunk >= 0
    if valid:
        assert bad.got_end
        n_frames = bad.frames().shape[0]
        assert n_frames == expected_frames(400, rate)
        per_body = chunk or 10
        bodies = [m for m in bad.messages[1:-1]]
        assert all(len(m.data) // (4 * 52) <= per_body for m in bodies)
    else:
        assert bad.close_code == 1008 and not bad.messages


@pytest.mark.parametrize(
    ("first", "reason_part"),
    [
        (b"\xff\xff\xff\xff", "undecodable"),
        (body(b"\0\0" * 160), "first message must be"),
        (Req(class_name="Hello").SerializeToString(), "unknown class_name 'Hello'"),
        (start(rate=0), "sample_rate 0"),
        (start(width=3), "sample_width 3"),
        (start(channels=9), "n_channels 9"),
        (start(chunk=-1), "response_chunk_n_frames"),
    ],
)
def test_bad_openings_name_what_is_wrong(hard_server, reference, first, reason_part) -> None:
    """The reason a client reads says what was wrong (the hypothesis tests above only
    check the close code)."""
    bad = check(hard_server, reference, [first, end()])
    assert bad.close_code == 1008 and reason_part in bad.close_reason
    assert not bad.messages


# --- names -------------------------------------------------------------------------------

NASTY_NAMES = st.one_of(
    st.sampled_from(
        [
            "../../etc/passwd",
            "..\\..\\windows\\win.ini",
            "/etc/passwd",
            "arkit/../unitalker",
            "steady\x00.toml",
            "\x00",
            "a" * 100_000,
            "KQ-default",
            "con",
            ".",
            "..",
            "~root",
            "file:///etc/passwd",
            "%2e%2e%2f",
            "steady ",
            " steady",
            "ARKIT",
            "\u202esteady",
        ]
    ),
    st.text(max_size=200),
    st.text(alphabet="./\\\x00:~%", max_size=20),
)


@FAST
@given(profile=NASTY_NAMES, offset=NASTY_NAMES)
def test_profile_and_offset_names(hard_server, reference, profile, offset) -> None:
    msgs = [start(profile=profile), body(SHORT_PCM, offset), body(SHORT_PCM, offset[:10]), end()]
    bad = check(hard_server, reference, msgs)
    if not bad.got_end:
        # v1 refuses names that are neither a profile nor avatar-like (docs/profiles.md),
        # before any audio; an unknown offset name is only warned about, as before.
        # Names longer than max_name_chars are refused before any lookup.
        assert bad.close_code == 1008, bad.close_reason
        if len(profile) > 128:
            assert "max_name_chars=128" in bad.close_reason, bad.close_reason
        else:  # an unknown profile, or (in a body) an offset name over the limit
            assert bad.close_reason.startswith("unknown profile") or (
                len(offset) > 128 and "max_name_chars=128" in bad.close_reason
            ), bad.close_reason
        assert len(bad.close_reason.encode()) <= 123
        return
    assert bad.frames().shape[0] == expected_frames(len(SHORT_PCM))


@FAST
@given(raw=st.binary(min_size=1, max_size=40), field_no=st.sampled_from([1, 2, 6, 7]),
       in_body=st.booleans())  # fmt: skip
def test_non_utf8_strings(hard_server, reference, raw, field_no, in_body) -> None:
    """Protobuf strings must be UTF-8: craft raw bytes the schema's encoder refuses."""
    try:
        raw.decode("utf-8")
        is_utf8 = True
    except UnicodeDecodeError:
        is_utf8 = False
    if in_body:
        msgs = [start(), body(SHORT_PCM) + raw_string_field(field_no, raw), end()]
    else:
        msgs = [start() + raw_string_field(field_no, raw), body(SHORT_PCM), end()]
    bad = check(hard_server, reference, msgs)
    if not is_utf8:
        assert bad.close_code == 1008 and "undecodable" in bad.close_reason


# --- lengths -------------------------------------------------------------------------------


def test_zero_length_utterance(hard_server, reference) -> None:
    for msgs in ([start(), end()], [start(), body(b""), body(b""), end()]):
        bad = check(hard_server, reference, msgs)
        assert bad.kinds == [RESP_START, RESP_END]


def test_ten_minute_utterance_sent_fast(hard_server, reference) -> None:
    """600 s of audio as fast as the socket takes it: exact frame count, memory bounded
    by max_buffered_s (the reads pause), nothing left behind."""
    second = pcm16(speechlike(1.0, seed=11))
    chunk = second * 30  # 30 s per body, under max_message_bytes
    n_bodies = 20
    state = hard_server.app.state.a2f
    peak = 0.0

    async def run() -> Reply:
        nonlocal peak

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, state.buffered_seconds())
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        try:
            return await exchange(hard_server.ws_url, [start(), *[body(chunk)] * n_bodies, end()],
                                  wait_s=120)  # fmt: skip
        finally:
            watcher.cancel()

    out = asyncio.run(run())
    assert out.got_end
    frames = out.frames()
    assert frames.shape == (18_000, 52)
    assert np.isfinite(frames).all()
    # one oversized body may always enter an empty queue; beyond that the bound holds
    assert peak <= state.settings.max_buffered_s + 30.0
    wait_clean(hard_server)
    # and the server still serves exactly
    assert np.array_equal(healthy_alone(hard_server.ws_url), reference)


def test_split_invariance_of_the_frame_count(hard_server) -> None:
    pcm = pcm16(speechlike(2.0, seed=2))
    for size in (322, 3202, 64000):
        msgs = [start(), *[body(c) for c in split(pcm, size)], end()]
        out = asyncio.run(exchange(hard_server.ws_url, msgs))
        assert out.frames().shape[0] == 60
    wait_clean(hard_server)
