"""The raw v1 exchange for tests that send malformed or out-of-order frames, on top of
:mod:`audio2face.client` (its requests, connection and response reading), plus
speech-like test audio. Well-formed utterances use ``audio2face.client`` directly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from audio2face.client import V1Client, V1Connection, body_request, end_request, start_request
from audio2face.protocol.v1 import DTYPES, Request, Response, ResponseKind

Req = Request
Resp = Response


def start(profile: str = "", rate: int = 16000, width: int = 2, channels: int = 1,
          chunk: int = 10, request_id: str | None = None) -> bytes:  # fmt: skip
    return start_request(profile=profile, sample_rate=rate, sample_width=width,
                         n_channels=channels, response_chunk_n_frames=chunk,
                         request_id=request_id)  # fmt: skip


def body(pcm: bytes, offset_name: str = "", request_id: str = "") -> bytes:
    return body_request(pcm, offset_name, request_id)


def end() -> bytes:
    return end_request()


@dataclass
class Reply:
    """What came back on one connection, message by message, and how it closed."""

    messages: list[Response] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    got_end: bool = False
    client_closed: bool = False
    """Nothing more came back within the wait and the client closed (a barge-in)."""

    @property
    def kinds(self) -> list[str]:
        return [m.class_name for m in self.messages]

    @property
    def names(self) -> list[str]:
        return list(self.messages[0].blendshape_names) if self.messages else []

    def frames(self) -> np.ndarray:
        start_msg = self.messages[0]
        n = len(start_msg.blendshape_names)
        rows = [
            np.frombuffer(m.data, DTYPES[start_msg.dtype]).reshape(-1, n)
            for m in self.messages
            if m.class_name == ResponseKind.BODY
        ]
        return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, n), np.float32)


async def read_replies(conn: V1Connection, reply: Reply, *, until_end: bool = True) -> Reply:
    """Append the responses arriving on ``conn`` to ``reply``, until End (with
    ``until_end``) or until the connection closes."""
    async for msg in conn.responses():
        reply.messages.append(msg)
        if msg.class_name == ResponseKind.END:
            reply.got_end = True
            if until_end:
                break
    return reply


async def converse(url: str, outgoing: list[bytes | str], *, wait_end: bool = True,
                   wait_s: float = 60.0, headers: dict[str, str] | None = None,
                   **connect: object) -> Reply:  # fmt: skip
    """Send ``outgoing`` while reading; return what came back until End (or, with
    ``wait_end=False``, until the server closes). After the last message the client
    waits ``wait_s`` at most, then closes itself (``client_closed``)."""
    reply = Reply()
    client = V1Client(url=url, headers=tuple((headers or {}).items()))
    async with client.connect(**connect) as conn:
        task = asyncio.create_task(read_replies(conn, reply, until_end=wait_end))
        for m in outgoing:
            if not await conn.send(m):
                break
        try:
            await asyncio.wait_for(task, wait_s)
        except TimeoutError:
            reply.client_closed = True
        reply.close_code = conn.close_code
        reply.close_reason = conn.close_reason
    return reply


def speechlike(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Bursts of harmonic 'syllables' separated by short and long pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voice = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / rate) / k for k in range(1, 6))
    env = np.zeros(n)
    pos = 0
    while pos < n:
        syl = int(rng.uniform(0.12, 0.3) * rate)
        env[pos : pos + syl] = np.hanning(min(syl, n - pos) + 2)[1:-1][: n - pos]
        pos += syl + int(rng.choice([0.05, 0.05, 0.7]) * rate)
    return (0.4 * voice * env + 0.003 * rng.standard_normal(n)).astype(np.float32)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()


def split(pcm: bytes, chunk_bytes: int) -> list[bytes]:
    return [pcm[i : i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
