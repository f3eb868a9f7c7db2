"""Python client for protocol v2 (async, with a sync convenience): several utterances per
connection, flush, interrupt and emotions.

::

    result = stream_file_v2("hello.wav", url="ws://127.0.0.1:18083/api/v2/stream")
    result.values.shape                   # (frames, channels)

    client = V2Client(url, token="s3cret")
    async with client.connect() as conn:
        ready = await conn.start(V2Options(profile="arkit", output="binary"))
        await conn.send_audio(pcm16_bytes)
        await conn.flush()
        async for message in conn.messages():   # FramesReply, FlushedReply, ...
            ...

Layers: :class:`V2Connection` sends any message (tests send malformed ones) and yields
the server's typed messages (:mod:`audio2face.protocol.v2`); :meth:`V2Client.run`
sends utterances (each followed by a flush) and reads concurrently, and returns a
:class:`V2Result`. Errors are those of :mod:`audio2face.client` plus
:class:`V2StreamError` (the server's ``error`` message or close, with what arrived).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import websockets

from audio2face.client import ClientError, ConnectError, V1Client, load_wire_pcm
from audio2face.protocol.v2 import (
    EmotionMessage,
    EmotionSpec,
    EncodingName,
    EndMessage,
    EndReply,
    ErrorReply,
    FlushedReply,
    FlushMessage,
    FramesReply,
    InterruptedReply,
    InterruptMessage,
    OutputName,
    ReadyReply,
    ServerMessage,
    StartMessage,
    decode_frames_binary,
    encode,
    parse_server_message,
)
from audio2face.types import FloatArray, FrameBatch

__all__ = [
    "DEFAULT_V2_URL",
    "V2Client",
    "V2Connection",
    "V2Options",
    "V2Result",
    "V2StreamError",
    "astream_file_v2",
    "encode_audio",
    "stream_file_v2",
    "stream_pcm_v2",
]

DEFAULT_V2_URL = "ws://127.0.0.1:18083/api/v2/stream"
WIRE_RATE = 16000
DEFAULT_CHUNK_MS = 40.0


class V2StreamError(ClientError):
    """The server sent an ``error`` or closed without ``end``; ``code`` is the close
    code (or the error message's), ``partial`` what arrived before."""

    def __init__(self, code: int | None, reason: str, partial: V2Result | None = None) -> None:
        super().__init__(f"server ended the v2 stream ({code}): {reason or 'no reason given'}")
        self.code = code  # type: ignore[assignment]  # per instance: the code received
        self.reason = reason
        self.partial = partial


@dataclass(frozen=True)
class V2Options:
    """The ``start`` message's fields (``token`` there only for clients that cannot set
    headers; this client sends :attr:`V2Client.token` as a header)."""

    profile: str | None = None
    sample_rate: int = WIRE_RATE
    encoding: EncodingName = "pcm_s16le"
    channels: int = 1
    output: OutputName = "json"
    emotion: EmotionSpec | None = None
    token: str | None = None
    fps: float | None = None

    def start_message(self) -> StartMessage:
        return StartMessage(
            sample_rate=self.sample_rate, encoding=self.encoding, channels=self.channels,
            profile=self.profile, output=self.output, emotion=self.emotion, token=self.token,
            fps=self.fps,
        )  # fmt: skip


def encode_audio(audio: bytes | FloatArray, encoding: EncodingName) -> bytes:
    """Bytes pass through; a float array in [-1, 1] is encoded as ``encoding``."""
    if isinstance(audio, bytes | bytearray | memoryview):
        return bytes(audio)
    x = np.asarray(audio, dtype=np.float32)
    if encoding == "pcm_f32le":
        return x.astype("<f4").tobytes()
    return (np.clip(x, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2").tobytes()


@dataclass
class V2Result:
    """Everything the server sent on one stream, in order, and when."""

    ready: ReadyReply | None = None
    messages: list[ServerMessage] = field(default_factory=list)
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    """``(time.monotonic(), frames so far)`` after each frames message."""
    sends: list[tuple[float, int]] = field(default_factory=list)
    """``(time.monotonic(), samples so far)`` after each audio message."""
    end_frames: int | None = None
    connect_s: float = 0.0
    """Time to open the WebSocket and get ``ready``."""
    end_sent: float | None = None
    end_received: float | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return self.ready.names if self.ready else ()

    @property
    def fps(self) -> float:
        return self.ready.fps if self.ready else 30.0

    @property
    def frame_messages(self) -> list[FramesReply]:
        return [m for m in self.messages if isinstance(m, FramesReply)]

    @property
    def flushed(self) -> list[int]:
        return [m.frames for m in self.messages if isinstance(m, FlushedReply)]

    @property
    def interrupted(self) -> list[int]:
        return [m.frame for m in self.messages if isinstance(m, InterruptedReply)]

    @property
    def values(self) -> FloatArray:
        """All frames, row ``i`` = frame ``i``; raises :class:`ClientError` on a gap."""
        blocks = self.frame_messages
        if not blocks:
            return np.zeros((0, len(self.names)), np.float32)
        expected = 0
        for block in blocks:
            if block.first != expected:
                raise ClientError(f"frames out of order: got {block.first}, expected {expected}")
            expected += block.values.shape[0]
        return np.concatenate([b.values for b in blocks], axis=0)

    @property
    def frames(self) -> int:
        return sum(b.values.shape[0] for b in self.frame_messages)

    def to_batch(self) -> FrameBatch:
        return FrameBatch(0, self.names, self.values, self.fps)


class V2Connection:
    """One open v2 WebSocket. Use ``async with client.connect() as conn``."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.ready: ReadyReply | None = None

    async def send_raw(self, message: bytes | str) -> bool:
        """Send one frame as is; False when the server had already closed."""
        try:
            await self.ws.send(message)
        except websockets.ConnectionClosed:
            return False
        return True

    async def start(self, options: V2Options = V2Options()) -> ReadyReply:
        """Send ``start`` and wait for ``ready``; raises :class:`V2StreamError`."""
        await self.send_raw(encode(options.start_message()))
        async for message in self.messages():
            if isinstance(message, ReadyReply):
                self.ready = message
                return message
            if isinstance(message, ErrorReply):
                raise V2StreamError(message.code, message.message)
            raise ClientError(f"protocol violation: {message.type} before ready")
        raise V2StreamError(self.close_code, self.close_reason or "closed before ready")

    async def send_audio(
        self, audio: bytes | FloatArray, encoding: EncodingName = "pcm_s16le"
    ) -> bool:
        return await self.send_raw(encode_audio(audio, encoding))

    async def emotion(self, name: str | None, intensity: float = 1.0, ramp_s: float = 0.0) -> bool:
        return await self.send_raw(encode(EmotionMessage(EmotionSpec(name, intensity, ramp_s))))

    async def flush(self) -> bool:
        return await self.send_raw(encode(FlushMessage()))

    async def interrupt(self) -> bool:
        return await self.send_raw(encode(InterruptMessage()))

    async def end(self) -> bool:
        return await self.send_raw(encode(EndMessage()))

    async def messages(self) -> AsyncIterator[ServerMessage]:
        """The server's messages, typed, until it closes (see :attr:`close_code`)."""
        try:
            async for raw in self.ws:
                if isinstance(raw, str):
                    yield parse_server_message(raw)
                else:
                    yield decode_frames_binary(raw)
        except websockets.ConnectionClosed:
            return

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @property
    def close_reason(self) -> str:
        return self.ws.close_reason or ""

    async def close(self) -> None:
        await self.ws.close()


@dataclass(frozen=True)
class V2Client:
    """Where and how to connect; ``token`` goes in ``Authorization: Bearer``."""

    url: str = DEFAULT_V2_URL
    token: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    open_timeout_s: float = 30.0

    @contextlib.asynccontextmanager
    async def connect(self, **websocket_options: Any) -> AsyncIterator[V2Connection]:
        """Open a connection (errors as :meth:`audio2face.client.V1Client.connect`)."""
        transport = V1Client(self.url, self.token, self.headers, self.open_timeout_s)
        try:
            opened = transport.connect(**websocket_options)
            v1conn = await opened.__aenter__()
        except ConnectError as exc:
            if exc.status in (403, 404):
                raise ConnectError(
                    f"{self.url}: the server answered HTTP {exc.status}: wrong path or refused "
                    "origin; the v2 path is /api/v2/stream",
                    status=exc.status,
                ) from exc
            raise
        try:
            yield V2Connection(v1conn.ws)
        finally:
            await opened.__aexit__(None, None, None)

    async def run(
        self,
        utterances: Sequence[bytes | FloatArray],
        options: V2Options = V2Options(),
        *,
        chunk_ms: float = DEFAULT_CHUNK_MS,
        pace: bool = False,
        on_frames: Callable[[float, int], None] | None = None,
    ) -> V2Result:
        """Stream each utterance in ``chunk_ms`` messages followed by a ``flush``, then
        ``end``; read concurrently; return everything the server sent. ``on_frames(t,
        frames)`` is called after each frames message (``time.monotonic()``, frames so
        far), on the event loop."""
        if not chunk_ms > 0:
            raise ValueError(f"chunk_ms must be > 0, got {chunk_ms}")
        began = time.monotonic()
        async with self.connect() as conn:
            result = V2Result(ready=await conn.start(options))
            result.connect_s = time.monotonic() - began
            reader = asyncio.create_task(_read_until_end(conn, result, on_frames))
            sender = asyncio.create_task(
                _send_all(conn, utterances, options, chunk_ms, pace, result)
            )
            try:
                await asyncio.wait((reader, sender), return_when=asyncio.FIRST_EXCEPTION)
                failed = sender.exception() if sender.done() else None
                if failed is not None:
                    raise failed
                return await reader
            finally:
                for task in (sender, reader):
                    task.cancel()
                await asyncio.gather(sender, reader, return_exceptions=True)


async def _send_all(
    conn: V2Connection,
    utterances: Sequence[bytes | FloatArray],
    options: V2Options,
    chunk_ms: float,
    pace: bool,
    result: V2Result,
) -> None:
    width = (2 if options.encoding == "pcm_s16le" else 4) * options.channels
    step = max(1, int(options.sample_rate * chunk_ms / 1000)) * width
    t0, sent = time.monotonic(), 0
    for utterance in utterances:
        data = encode_audio(utterance, options.encoding)
        for i in range(0, len(data), step):
            if pace:
                delay = t0 + sent / options.sample_rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if not await conn.send_raw(data[i : i + step]):
                return
            sent += len(data[i : i + step]) // width
            result.sends.append((time.monotonic(), sent))
        if not await conn.flush():
            return
    await conn.end()
    result.end_sent = time.monotonic()


async def _read_until_end(
    conn: V2Connection, result: V2Result, on_frames: Callable[[float, int], None] | None
) -> V2Result:
    frames = 0
    async for message in conn.messages():
        result.messages.append(message)
        if isinstance(message, FramesReply):
            frames += message.values.shape[0]
            now = time.monotonic()
            result.arrivals.append((now, frames))
            if on_frames is not None:
                on_frames(now, frames)
        elif isinstance(message, EndReply):
            result.end_frames = message.frames
            result.end_received = time.monotonic()
            return result
        elif isinstance(message, ErrorReply):
            raise V2StreamError(message.code, message.message, result)
    raise V2StreamError(conn.close_code, conn.close_reason or "closed before end", result)


async def stream_pcm_v2(
    pcm: bytes,
    *,
    url: str = DEFAULT_V2_URL,
    token: str | None = None,
    profile: str | None = None,
    emotion: str | None = None,
    output: OutputName = "binary",
    chunk_ms: float = DEFAULT_CHUNK_MS,
    pace: bool = False,
    open_timeout_s: float = 30.0,
    on_frames: Callable[[float, int], None] | None = None,
) -> V2Result:
    """Stream 16 kHz mono int16 ``pcm`` as one utterance over v2 and collect the frames
    (the keyword form of ``V2Client(url, token).run([pcm], V2Options(...))``).
    ``emotion``: a name, or ``name_N`` for a preset step."""
    client = V2Client(url=url, token=token, open_timeout_s=open_timeout_s)
    options = V2Options(
        profile=profile or None, output=output,
        emotion=EmotionSpec(emotion) if emotion else None,
    )  # fmt: skip
    return await client.run([pcm], options, chunk_ms=chunk_ms, pace=pace, on_frames=on_frames)


async def astream_file_v2(
    path: str | Path,
    *,
    url: str = DEFAULT_V2_URL,
    token: str | None = None,
    options: V2Options = V2Options(),
    chunk_ms: float = DEFAULT_CHUNK_MS,
    pace: bool = False,
) -> V2Result:
    """Stream an audio file (any common rate, sent as 16 kHz int16) as one utterance."""
    if options.sample_rate != WIRE_RATE or options.encoding != "pcm_s16le" or options.channels != 1:
        raise ValueError("stream_file_v2 sends 16 kHz mono pcm_s16le; use V2Client.run for others")
    client = V2Client(url=url, token=token)
    return await client.run([load_wire_pcm(path)], options, chunk_ms=chunk_ms, pace=pace)


def stream_file_v2(path: str | Path, **kwargs: Any) -> V2Result:
    """Sync form of :func:`astream_file_v2`."""
    return asyncio.run(astream_file_v2(path, **kwargs))
