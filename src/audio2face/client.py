"""Python client for protocol v1 (async and sync).

::

    result = stream_file("hello.wav", url="ws://127.0.0.1:18083/api/v1/streaming_audio2face/ws")
    result.values.shape  # (frames, channels)

Audio is resampled to 16 kHz mono int16 before sending, as the original client did.
Sending and reading run concurrently, so a long utterance never stalls on a full
socket buffer.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import websockets

from audio2face.audio.resample import resample
from audio2face.audio.wav import read_audio, to_pcm16
from audio2face.protocol.v1 import DTYPES, Request, RequestKind, Response, ResponseKind
from audio2face.types import FloatArray, FrameBatch

DEFAULT_URL = "ws://127.0.0.1:18083/api/v1/streaming_audio2face/ws"
WIRE_RATE = 16000


class StreamError(RuntimeError):
    """The server closed the stream with an error; ``code`` and ``reason`` say why."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"server closed the stream ({code}): {reason}")
        self.code = code
        self.reason = reason


@dataclass
class StreamResult:
    """Everything the server sent for one utterance."""

    names: tuple[str, ...]
    dtype: str
    values: FloatArray
    fps: float = 30.0
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    """``(monotonic time, frames so far)`` after each body arrived."""

    def to_batch(self) -> FrameBatch:
        return FrameBatch(first_frame=0, names=self.names, values=self.values, fps=self.fps)


def _request(kind: RequestKind, **fields: object) -> bytes:
    return Request(class_name=kind.value, **fields).SerializeToString()  # type: ignore[arg-type]


async def stream_pcm(
    pcm: bytes,
    *,
    url: str = DEFAULT_URL,
    profile: str = "",
    emotion: str = "",
    chunk_ms: float = 40.0,
    pace: bool = False,
    response_chunk_n_frames: int = 10,
    fps: float = 30.0,
    headers: dict[str, str] | None = None,
    on_send: Callable[[float, int], None] | None = None,
) -> StreamResult:
    """Stream 16 kHz mono int16 ``pcm`` over protocol v1 and collect the frames.

    ``pace=True`` sends in real time (one chunk every ``chunk_ms``); ``on_send`` is
    called with ``(monotonic time, samples sent so far)`` after each body.
    """
    chunk_bytes = max(2, int(WIRE_RATE * chunk_ms / 1000) * 2)
    async with websockets.connect(
        url, max_size=None, additional_headers=headers, open_timeout=30
    ) as ws:
        reader = asyncio.create_task(_read_all(ws, fps))
        await ws.send(
            _request(
                RequestKind.START,
                request_id=str(uuid.uuid4()),
                sample_rate=WIRE_RATE,
                sample_width=2,
                n_channels=1,
                profile_name=profile,
                response_chunk_n_frames=response_chunk_n_frames,
            )
        )
        t0 = time.monotonic()
        try:
            for i, start in enumerate(range(0, len(pcm), chunk_bytes)):
                if pace:
                    delay = t0 + i * chunk_ms / 1000 - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                body = pcm[start : start + chunk_bytes]
                await ws.send(
                    _request(RequestKind.BODY, pcm_bytes=body, offset_name=emotion)
                )
                if on_send is not None:
                    on_send(time.monotonic(), (start + len(body)) // 2)
            await ws.send(_request(RequestKind.END))
        except websockets.ConnectionClosed:
            pass  # the reader reports why
        return await reader


async def _read_all(ws: websockets.ClientConnection, fps: float) -> StreamResult:
    names: tuple[str, ...] = ()
    dtype = "float32"
    rows: list[np.ndarray] = []
    arrivals: list[tuple[float, int]] = []
    total = 0
    try:
        async for message in ws:
            if isinstance(message, str):
                raise StreamError(None, f"unexpected text frame: {message[:80]!r}")
            resp = Response()
            resp.ParseFromString(message)
            if resp.class_name == ResponseKind.START:
                names, dtype = tuple(resp.blendshape_names), resp.dtype
            elif resp.class_name == ResponseKind.BODY:
                block = np.frombuffer(resp.data, dtype=DTYPES[dtype]).astype(np.float32)
                rows.append(block.reshape(-1, len(names)))
                total += rows[-1].shape[0]
                arrivals.append((time.monotonic(), total))
            elif resp.class_name == ResponseKind.END:
                break
    except websockets.ConnectionClosedError as exc:
        rcvd = exc.rcvd
        raise StreamError(rcvd.code if rcvd else None, rcvd.reason if rcvd else str(exc)) from exc
    else:
        if ws.close_code not in (None, 1000) and not names and not rows:
            raise StreamError(ws.close_code, ws.close_reason or "")
    values = np.concatenate(rows) if rows else np.zeros((0, len(names)), dtype=np.float32)
    return StreamResult(names=names, dtype=dtype, values=values, fps=fps, arrivals=arrivals)


def load_wire_pcm(path: str | Path) -> bytes:
    """A file as 16 kHz mono int16 bytes, ready for :func:`stream_pcm`."""
    audio, rate = read_audio(path)
    return to_pcm16(resample(audio, rate, WIRE_RATE))


async def astream_file(path: str | Path, **kwargs: object) -> StreamResult:
    """Async: stream an audio file (any common rate) and collect the frames."""
    return await stream_pcm(load_wire_pcm(path), **kwargs)  # type: ignore[arg-type]


def stream_file(path: str | Path, **kwargs: object) -> StreamResult:
    """Sync: stream an audio file (any common rate) and collect the frames."""
    return asyncio.run(astream_file(path, **kwargs))
