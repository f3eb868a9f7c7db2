"""Python client for protocol v1 (async and sync): the one place the v1 exchange is written.

::

    result = stream_file("hello.wav", url="ws://127.0.0.1:18083/api/v1/streaming_audio2face/ws")
    result.values.shape  # (frames, channels)

    client = V1Client(url, token="s3cret")          # connection settings, reusable
    result = await client.stream(load_wire_pcm("hello.wav"), UtteranceOptions(pace=True))

Layers, each usable on its own:

- :func:`start_request`, :func:`body_request`, :func:`end_request`: request bytes.
  :class:`Utterance` encodes a whole utterance once, so a load generator spends its
  time on the socket, not on protobuf.
- :class:`V1Connection`: one WebSocket. Sends any frame (tests send malformed ones),
  yields the server's responses, and says how the server closed.
- :meth:`V1Client.run`: one utterance (Start, bodies, End) on a new connection, sending
  and reading concurrently so a long utterance never stalls on a full socket buffer,
  with timing hooks (:class:`Hooks`) and send/arrival times in the result.

Audio goes on the wire as 16 kHz mono int16, as the original client sent it. Errors::

    Audio2FaceError
    └── ClientError          anything this client reports
        ├── ConnectError     the WebSocket could not be opened (refused, HTTP status, URL)
        └── StreamError      the server ended the stream without End (close code, reason)
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import websockets
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from audio2face.audio.resample import resample
from audio2face.audio.wav import read_audio, to_pcm16
from audio2face.errors import Audio2FaceError
from audio2face.protocol.v1 import DTYPES, Request, RequestKind, Response, ResponseKind
from audio2face.types import FloatArray, FrameBatch

__all__ = [
    "DEFAULT_URL",
    "WIRE_RATE",
    "ClientError",
    "ConnectError",
    "Hooks",
    "StreamError",
    "StreamResult",
    "Utterance",
    "UtteranceOptions",
    "V1Client",
    "V1Connection",
    "astream_file",
    "body_request",
    "end_request",
    "load_wire_pcm",
    "start_request",
    "stream_file",
    "stream_pcm",
]

DEFAULT_URL = "ws://127.0.0.1:18083/api/v1/streaming_audio2face/ws"
WIRE_RATE = 16000
DEFAULT_CHUNK_MS = 40.0
DEFAULT_OPEN_TIMEOUT_S = 30.0
DEFAULT_RESPONSE_CHUNK_N_FRAMES = 10
FPS = 30.0  # v1 carries no frame rate; every v1 profile runs at 30 fps


# --- errors ---------------------------------------------------------------------------


class ClientError(Audio2FaceError):
    """Base of the errors this client raises."""


class ConnectError(ClientError):
    """The WebSocket could not be opened; the reason says what to check."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        """The HTTP status the server answered the upgrade with, if it answered."""


class StreamError(ClientError):
    """The server closed the stream without an End; ``code`` and ``reason`` say why.

    ``partial`` holds what arrived before the close (a stream that fails keeps the
    frames of the audio accepted so far)."""

    def __init__(self, code: int | None, reason: str, partial: StreamResult | None = None) -> None:
        super().__init__(f"server closed the stream ({code}): {reason or 'no reason given'}")
        self.code = code  # type: ignore[assignment]  # per instance: the close code received
        self.reason = reason
        self.partial = partial


# --- requests -------------------------------------------------------------------------


def start_request(
    *,
    profile: str = "",
    sample_rate: int = WIRE_RATE,
    sample_width: int = 2,
    n_channels: int = 1,
    response_chunk_n_frames: int = DEFAULT_RESPONSE_CHUNK_N_FRAMES,
    request_id: str | None = None,
) -> bytes:
    """A ChunkStart (a random ``request_id`` unless one is given; ``""`` is allowed)."""
    return Request(
        class_name=RequestKind.START.value,
        request_id=str(uuid.uuid4()) if request_id is None else request_id,
        sample_rate=sample_rate,
        sample_width=sample_width,
        n_channels=n_channels,
        profile_name=profile,
        response_chunk_n_frames=response_chunk_n_frames,
    ).SerializeToString()


def body_request(pcm: bytes, emotion: str = "", request_id: str = "") -> bytes:
    """A ChunkBody carrying ``pcm``; ``emotion`` goes in ``offset_name``."""
    return Request(
        class_name=RequestKind.BODY.value, pcm_bytes=pcm, offset_name=emotion, request_id=request_id
    ).SerializeToString()


def end_request() -> bytes:
    return Request(class_name=RequestKind.END.value).SerializeToString()


@dataclass(frozen=True)
class UtteranceOptions:
    """How one utterance is sent.

    ``chunk_ms`` is the audio per body; ``pace=True`` sends one body every ``chunk_ms``
    (real time, as a microphone would), otherwise as fast as the socket takes them.
    """

    profile: str = ""
    emotion: str = ""
    chunk_ms: float = DEFAULT_CHUNK_MS
    pace: bool = False
    response_chunk_n_frames: int = DEFAULT_RESPONSE_CHUNK_N_FRAMES

    def __post_init__(self) -> None:
        if not self.chunk_ms > 0:
            raise ValueError(f"chunk_ms must be > 0 (audio per body), got {self.chunk_ms}")
        if self.response_chunk_n_frames < 0:
            raise ValueError(
                "response_chunk_n_frames must be >= 0 (0: the server's default), "
                f"got {self.response_chunk_n_frames}"
            )


@dataclass(frozen=True)
class Utterance:
    """One utterance's requests, encoded once (load generators reuse them)."""

    start: bytes
    bodies: tuple[bytes, ...]
    samples_after: tuple[int, ...]
    """Samples sent once body ``i`` is out (cumulative), for the timing hooks."""
    end: bytes
    samples: int
    options: UtteranceOptions

    @classmethod
    def from_pcm(cls, pcm: bytes, options: UtteranceOptions = UtteranceOptions()) -> Utterance:
        """``pcm``: 16 kHz mono int16 little-endian bytes (see :func:`load_wire_pcm`)."""
        if len(pcm) % 2:
            raise ValueError(f"pcm must be whole int16 samples, got {len(pcm)} bytes")
        step = max(2, int(WIRE_RATE * options.chunk_ms / 1000) * 2)
        starts = range(0, len(pcm), step)
        return cls(
            start=start_request(
                profile=options.profile, response_chunk_n_frames=options.response_chunk_n_frames
            ),
            bodies=tuple(body_request(pcm[i : i + step], options.emotion) for i in starts),
            samples_after=tuple(min(i + step, len(pcm)) // 2 for i in starts),
            end=end_request(),
            samples=len(pcm) // 2,
            options=options,
        )

    @property
    def seconds(self) -> float:
        return self.samples / WIRE_RATE


# --- results and hooks ----------------------------------------------------------------


@dataclass(frozen=True)
class Hooks:
    """Called on the event loop as things happen (keep them cheap).

    ``on_send(t, samples)``: after each body, with ``time.monotonic()`` and the samples
    sent so far. ``on_frames(t, frames)``: after each body the server sent, with the
    frames received so far. ``on_end_sent(t)``: after the End request.
    """

    on_send: Callable[[float, int], None] | None = None
    on_frames: Callable[[float, int], None] | None = None
    on_end_sent: Callable[[float], None] | None = None


NO_HOOKS = Hooks()


@dataclass
class StreamResult:
    """Everything the server sent for one utterance, and when (``time.monotonic()``)."""

    names: tuple[str, ...]
    dtype: str
    values: FloatArray
    fps: float = FPS
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    """``(time, frames so far)`` after each body arrived."""
    sends: list[tuple[float, int]] = field(default_factory=list)
    """``(time, samples so far)`` after each body was sent."""
    connect_started: float = 0.0
    connected: float = 0.0
    end_sent: float | None = None
    end_received: float | None = None

    @property
    def frames(self) -> int:
        return int(self.values.shape[0])

    @property
    def connect_s(self) -> float:
        """Time to open the WebSocket (TCP and HTTP upgrade)."""
        return self.connected - self.connect_started

    def to_batch(self) -> FrameBatch:
        return FrameBatch(first_frame=0, names=self.names, values=self.values, fps=self.fps)


class _Collector:
    """Builds a :class:`StreamResult` from responses as they arrive."""

    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks
        self.names: tuple[str, ...] = ()
        self.dtype = "float32"
        self.row_bytes = 0
        self.data: list[bytes] = []
        self.frames = 0
        self.result = StreamResult(names=(), dtype="float32", values=_no_rows(0))

    def add(self, resp: Response, now: float) -> bool:
        """Take one response; True once it was the End."""
        if resp.class_name == ResponseKind.BODY:
            if not self.row_bytes:
                raise StreamError(None, "protocol violation: a body before the Start response")
            if len(resp.data) % self.row_bytes:
                raise StreamError(None, f"protocol violation: a body of {len(resp.data)} bytes "
                                  f"is not whole rows of {self.row_bytes}")  # fmt: skip
            self.data.append(resp.data)
            self.frames += len(resp.data) // self.row_bytes
            self.result.arrivals.append((now, self.frames))
            if self.hooks.on_frames is not None:
                self.hooks.on_frames(now, self.frames)
        elif resp.class_name == ResponseKind.START:
            if resp.dtype not in DTYPES:
                raise StreamError(None, f"protocol violation: unknown dtype {resp.dtype!r}")
            self.names, self.dtype = tuple(resp.blendshape_names), resp.dtype
            self.row_bytes = DTYPES[self.dtype].itemsize * len(self.names)
        elif resp.class_name == ResponseKind.END:
            self.result.end_received = now
            return True
        return False

    def finish(self) -> StreamResult:
        raw = b"".join(self.data)
        if raw:
            values = np.frombuffer(raw, DTYPES[self.dtype]).reshape(-1, len(self.names))
            values = values.astype(np.float32)
        else:
            values = _no_rows(len(self.names))
        self.result.names, self.result.dtype, self.result.values = self.names, self.dtype, values
        return self.result


def _no_rows(width: int) -> FloatArray:
    return np.zeros((0, width), dtype=np.float32)


# --- one connection -------------------------------------------------------------------


class V1Connection:
    """One open WebSocket to a v1 server. Use ``async with client.connect() as conn``."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: bytes | str) -> bool:
        """Send one frame as is; False when the server had already closed."""
        try:
            await self.ws.send(message)
        except websockets.ConnectionClosed:
            return False
        return True

    async def responses(self) -> AsyncIterator[Response]:
        """The server's responses, parsed, until it closes (see :attr:`close_code`)."""
        try:
            async for message in self.ws:
                if isinstance(message, str):
                    raise StreamError(None, f"unexpected text frame: {message[:80]!r}")
                resp = Response()
                resp.ParseFromString(message)
                yield resp
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

    def abort(self) -> None:
        """Drop the TCP connection without a close frame, as a crashed client would."""
        self.ws.transport.abort()


@dataclass(frozen=True)
class V1Client:
    """Where and how to connect. ``token`` is sent as ``Authorization: Bearer``, so it
    never appears in a URL (and so in an access log)."""

    url: str = DEFAULT_URL
    token: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S
    compression: bool = False
    """permessage-deflate; off by default: frame data hardly compresses and it costs CPU."""

    def __post_init__(self) -> None:
        if not self.open_timeout_s > 0:
            raise ValueError(f"open_timeout_s must be > 0 seconds, got {self.open_timeout_s}")
        scheme = urlsplit(self.url).scheme
        if scheme not in ("ws", "wss"):
            hint = f" (try {'wss' if scheme == 'https' else 'ws'}://...)" if scheme else ""
            raise ConnectError(f"{self.url!r} is not a WebSocket URL: it must start with "
                               f"ws:// or wss://{hint}")  # fmt: skip

    def _headers(self) -> dict[str, str]:
        out = dict(self.headers)
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return out

    @contextlib.asynccontextmanager
    async def connect(self, **websocket_options: Any) -> AsyncIterator[V1Connection]:
        """Open a connection; ``websocket_options`` go to ``websockets.connect`` as is
        (tests pass ``sock=`` or ``max_queue=``)."""
        options: dict[str, Any] = {
            "max_size": None,
            "compression": "deflate" if self.compression else None,
            "open_timeout": self.open_timeout_s,
            "additional_headers": self._headers() or None,
        }
        options.update(websocket_options)
        try:
            ws = await websockets.connect(self.url, **options)
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ConnectError(_status_hint(self.url, status), status=status) from exc
        except InvalidURI as exc:
            raise ConnectError(f"{self.url!r} is not a valid WebSocket URL ({exc})") from exc
        except InvalidHandshake as exc:
            raise ConnectError(f"{self.url}: not a WebSocket server ({exc})") from exc
        except TimeoutError as exc:
            raise ConnectError(
                f"{self.url}: no WebSocket handshake within {self.open_timeout_s:g} s; "
                "is the server overloaded or is this the right port?"
            ) from exc
        except ssl.SSLError as exc:
            raise ConnectError(f"{self.url}: TLS handshake failed ({exc.reason or exc})") from exc
        except OSError as exc:
            raise ConnectError(
                f"cannot connect to {self.url}: {exc.strerror or exc}; "
                "is the server running (`audio2face serve`) on that host and port?"
            ) from exc
        try:
            yield V1Connection(ws)
        finally:
            await ws.close()

    async def run(self, utterance: Utterance, hooks: Hooks = NO_HOOKS) -> StreamResult:
        """Send ``utterance`` on a new connection while reading; return every frame.

        Raises :class:`ConnectError` when no connection opens, :class:`StreamError` when
        the server closes without an End (with what arrived so far in ``partial``).
        """
        t_connect = time.monotonic()
        async with self.connect() as conn:
            collector = _Collector(hooks)
            collector.result.connect_started = t_connect
            collector.result.connected = time.monotonic()
            reader = asyncio.create_task(_read_until_end(conn, collector))
            sender = asyncio.create_task(_send_utterance(conn, utterance, collector.result, hooks))
            try:
                await asyncio.wait((reader, sender), return_when=asyncio.FIRST_EXCEPTION)
                failed = sender.exception() if sender.done() else None
                if failed is not None:
                    raise failed  # a bug in the sender or a hook: not the server's doing
                return await reader
            finally:
                for task in (sender, reader):
                    task.cancel()
                # collect both, so no exception goes unretrieved
                await asyncio.gather(sender, reader, return_exceptions=True)

    async def stream(
        self, pcm: bytes, options: UtteranceOptions = UtteranceOptions(), hooks: Hooks = NO_HOOKS
    ) -> StreamResult:
        """Encode 16 kHz mono int16 ``pcm`` as one utterance and :meth:`run` it."""
        return await self.run(Utterance.from_pcm(pcm, options), hooks)

    def stream_sync(
        self, pcm: bytes, options: UtteranceOptions = UtteranceOptions(), hooks: Hooks = NO_HOOKS
    ) -> StreamResult:
        """:meth:`stream` for code without an event loop."""
        return asyncio.run(self.stream(pcm, options, hooks))


def _status_hint(url: str, status: int) -> str:
    why = {
        401: "the server wants a token (pass --token / V1Client(token=...))",
        403: "wrong path or refused origin; the v1 path is /api/v1/streaming_audio2face/ws",
        404: "wrong path; the v1 path is /api/v1/streaming_audio2face/ws",
    }.get(status, "not a v1 WebSocket endpoint?")
    return f"{url}: the server answered HTTP {status} instead of a WebSocket upgrade: {why}"


async def _send_utterance(
    conn: V1Connection, utt: Utterance, result: StreamResult, hooks: Hooks
) -> None:
    """Start, the bodies (paced when asked), End. Stops quietly when the server closed:
    the reader reports why."""
    if not await conn.send(utt.start):
        return
    period = utt.options.chunk_ms / 1000
    t0 = time.monotonic()
    for i, body in enumerate(utt.bodies):
        if utt.options.pace:
            delay = t0 + i * period - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if not await conn.send(body):
            return
        now = time.monotonic()
        result.sends.append((now, utt.samples_after[i]))
        if hooks.on_send is not None:
            hooks.on_send(now, utt.samples_after[i])
    if await conn.send(utt.end):
        result.end_sent = time.monotonic()
        if hooks.on_end_sent is not None:
            hooks.on_end_sent(result.end_sent)


async def _read_until_end(conn: V1Connection, collector: _Collector) -> StreamResult:
    async for resp in conn.responses():
        if collector.add(resp, time.monotonic()):
            return collector.finish()
    partial = collector.finish()
    raise StreamError(conn.close_code, conn.close_reason or "closed before End", partial)


# --- conveniences ---------------------------------------------------------------------


def load_wire_pcm(path: str | Path) -> bytes:
    """A file as 16 kHz mono int16 bytes, ready for :func:`stream_pcm`."""
    audio, rate = read_audio(path)
    return to_pcm16(resample(audio, rate, WIRE_RATE))


async def stream_pcm(
    pcm: bytes,
    *,
    url: str = DEFAULT_URL,
    profile: str = "",
    emotion: str = "",
    chunk_ms: float = DEFAULT_CHUNK_MS,
    pace: bool = False,
    response_chunk_n_frames: int = DEFAULT_RESPONSE_CHUNK_N_FRAMES,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    hooks: Hooks = NO_HOOKS,
) -> StreamResult:
    """Stream 16 kHz mono int16 ``pcm`` as one utterance and collect the frames (the
    keyword form of ``V1Client(url, token).stream(pcm, UtteranceOptions(...))``)."""
    client = V1Client(url=url, token=token, headers=tuple((headers or {}).items()))
    options = UtteranceOptions(profile=profile, emotion=emotion, chunk_ms=chunk_ms, pace=pace,
                               response_chunk_n_frames=response_chunk_n_frames)  # fmt: skip
    return await client.stream(pcm, options, hooks)


async def astream_file(path: str | Path, **kwargs: Any) -> StreamResult:
    """Async: stream an audio file (any common rate) and collect the frames; ``kwargs``
    as :func:`stream_pcm`."""
    return await stream_pcm(load_wire_pcm(path), **kwargs)


def stream_file(path: str | Path, **kwargs: Any) -> StreamResult:
    """Sync: stream an audio file (any common rate) and collect the frames."""
    return asyncio.run(astream_file(path, **kwargs))
