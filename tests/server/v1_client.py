"""A minimal protocol v1 client written from docs/protocol.md alone, for tests."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import numpy as np
import websockets

from audio2face.protocol.audio2face_v1_pb2 import (
    Audio2FaceBlendshapeV1Request as Req,
)
from audio2face.protocol.audio2face_v1_pb2 import (
    Audio2FaceBlendshapeV1Response as Resp,
)

START = "StreamingAudio2FaceV1ChunkStart"
BODY = "StreamingAudio2FaceV1ChunkBody"
END = "StreamingAudio2FaceV1ChunkEnd"


def start(profile: str = "", rate: int = 16000, width: int = 2, channels: int = 1,
          chunk: int = 10, request_id: str | None = None) -> bytes:  # fmt: skip
    return Req(
        class_name=START,
        request_id=str(uuid.uuid4()) if request_id is None else request_id,
        sample_rate=rate,
        sample_width=width,
        n_channels=channels,
        profile_name=profile,
        response_chunk_n_frames=chunk,
    ).SerializeToString()


def body(pcm: bytes, offset_name: str = "", request_id: str = "") -> bytes:
    return Req(
        class_name=BODY, pcm_bytes=pcm, offset_name=offset_name, request_id=request_id
    ).SerializeToString()


def end() -> bytes:
    return Req(class_name=END).SerializeToString()


@dataclass
class Reply:
    messages: list[Resp] = field(default_factory=list)
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
        dtype = {"float16": "<f2", "float32": "<f4"}[start_msg.dtype]
        n = len(start_msg.blendshape_names)
        rows = [
            np.frombuffer(m.data, dtype).reshape(-1, n)
            for m in self.messages
            if m.class_name == "Audio2FaceV1ResponseChunkBody"
        ]
        return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, n), np.float32)


async def read_replies(ws: websockets.ClientConnection, reply: Reply, *,
                       until_end: bool = True) -> Reply:  # fmt: skip
    """Append the responses arriving on ``ws`` to ``reply``, until End (with
    ``until_end``) or until the connection closes."""
    try:
        async for raw in ws:
            msg = Resp()
            msg.ParseFromString(raw)
            reply.messages.append(msg)
            if msg.class_name == "Audio2FaceV1ResponseChunkEnd":
                reply.got_end = True
                if until_end:
                    break
    except websockets.ConnectionClosed:
        pass
    return reply


async def converse(url: str, outgoing: list[bytes | str], *, wait_end: bool = True,
                   wait_s: float = 60.0, **connect: object) -> Reply:  # fmt: skip
    """Send ``outgoing`` while reading; return what came back until End (or, with
    ``wait_end=False``, until the server closes). After the last message the client
    waits ``wait_s`` at most, then closes itself (``client_closed``)."""
    reply = Reply()
    async with websockets.connect(url, max_size=None, **connect) as ws:  # type: ignore[arg-type]
        task = asyncio.create_task(read_replies(ws, reply, until_end=wait_end))
        try:
            for m in outgoing:
                await ws.send(m)
        except websockets.ConnectionClosed:
            pass
        try:
            await asyncio.wait_for(task, wait_s)
        except TimeoutError:
            reply.client_closed = True
        reply.close_code = ws.close_code
        reply.close_reason = ws.close_reason or ""
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
