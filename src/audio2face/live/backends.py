"""Where ``live`` runs the model: in this process (the stream runner) or on a server
(protocol v1 or v2).

Both give a :class:`LiveStream`: push audio as it comes, iterate frames as they are made.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol
from urllib.parse import urlsplit

import numpy as np

from audio2face.audio.resample import StreamResampler
from audio2face.audio.wav import to_pcm16
from audio2face.client import (
    WIRE_RATE,
    V1Client,
    V1Connection,
    body_request,
    end_request,
    start_request,
)
from audio2face.client import StreamError as ClientStreamError
from audio2face.client_v2 import V2Client, V2Connection, V2Options, V2StreamError
from audio2face.protocol.v1 import DTYPES, ResponseKind
from audio2face.protocol.v2 import EmotionSpec, EndReply, ErrorReply, FramesReply, ReadyReply
from audio2face.runtime import Runtime
from audio2face.streaming.runner import FramesEvent, StreamRunner
from audio2face.types import FloatArray, FrameBatch

__all__ = [
    "Backend",
    "InProcessBackend",
    "LiveStream",
    "V1Backend",
    "V2Backend",
    "backend_for_url",
]

V1_FPS = 30.0  # v1 carries no frame rate; its profiles run at 30 fps
V1_LOOKAHEAD_S = 0.1  # unknown over v1: the default engine's look-ahead, rounded up


class LiveStream(Protocol):
    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def fps(self) -> float: ...

    @property
    def lookahead_s(self) -> float: ...

    async def push(self, audio: FloatArray) -> None: ...

    async def finish(self) -> None: ...

    def frames(self) -> AsyncIterator[FrameBatch]: ...


class Backend(Protocol):
    description: str

    def open(self, input_rate: int) -> contextlib.AbstractAsyncContextManager[LiveStream]: ...

    def close(self) -> None:
        """Release what the backend holds (threads of an in-process runtime)."""
        ...


class _RunnerStream:
    def __init__(self, runner: StreamRunner, emotion: str | None) -> None:
        self._runner = runner
        self._emotion = emotion

    @property
    def names(self) -> tuple[str, ...]:
        return self._runner.names

    @property
    def fps(self) -> float:
        return self._runner.fps

    @property
    def lookahead_s(self) -> float:
        return self._runner.lookahead_s

    async def push(self, audio: FloatArray) -> None:
        await self._runner.push(audio, self._emotion)

    async def finish(self) -> None:
        await self._runner.finish()

    async def frames(self) -> AsyncIterator[FrameBatch]:
        async for event in self._runner.events():
            if isinstance(event, FramesEvent) and len(event.batch):
                yield event.batch


class InProcessBackend:
    """The model in this process, through :meth:`Runtime.open_stream` (the default)."""

    def __init__(self, runtime: Runtime, profile: str | None, emotion: str | None = None) -> None:
        self.runtime = runtime
        self.profile = runtime.profile(profile)  # unknown names refused here, before audio
        self.emotion = emotion or None
        self.description = f"in-process, profile {self.profile.name}"

    @property
    def names(self) -> tuple[str, ...]:
        """The profile's output channel names (known before any audio)."""
        engine = self.runtime.engine_for(self.profile)
        return self.profile.build_chain(engine.output_names).output_names

    def close(self) -> None:
        self.runtime.close()

    @contextlib.asynccontextmanager
    async def open(self, input_rate: int) -> AsyncIterator[LiveStream]:
        # A first model run pays for onnxruntime's lazy set-up (tens to hundreds of ms);
        # pay it on half a second of silence, not on the user's first words.
        warm = np.zeros(input_rate // 2, np.float32)
        await self.runtime.animate(warm, input_rate, self.profile, seed=None)
        async with self.runtime.open_stream(self.profile, input_rate) as runner:
            stream = _RunnerStream(runner, self.emotion)
            if self.emotion:
                runner.check_emotion(self.emotion)
            yield stream


class _V1Stream:
    """One v1 utterance kept open for as long as the audio runs. The server names its
    channels in its Start response, which follows the first audio: ``names`` is empty
    until then (the frames carry them)."""

    def __init__(self, conn: V1Connection, input_rate: int, emotion: str) -> None:
        self._conn = conn
        self._resampler = StreamResampler(input_rate, WIRE_RATE)
        self._emotion = emotion
        self._names: tuple[str, ...] = ()
        self._dtype = np.dtype(np.float32)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def fps(self) -> float:
        return V1_FPS

    @property
    def lookahead_s(self) -> float:
        return V1_LOOKAHEAD_S

    async def _send(self, audio: FloatArray) -> None:
        if audio.shape[0] and not await self._conn.send(
            body_request(to_pcm16(audio), self._emotion)
        ):
            raise ClientStreamError(self._conn.close_code, self._conn.close_reason or "closed")

    async def push(self, audio: FloatArray) -> None:
        await self._send(self._resampler.push(audio))

    async def finish(self) -> None:
        await self._send(self._resampler.finish())
        await self._conn.send(end_request())

    async def frames(self) -> AsyncIterator[FrameBatch]:
        first = 0
        async for resp in self._conn.responses():
            if resp.class_name == ResponseKind.START:
                self._names = tuple(resp.blendshape_names)
                self._dtype = DTYPES[resp.dtype]
            elif resp.class_name == ResponseKind.BODY:
                if not self._names:
                    raise ClientStreamError(None, "protocol violation: a body before Start")
                values = np.frombuffer(resp.data, self._dtype).reshape(-1, len(self._names))
                batch = FrameBatch(first, self._names, values.astype(np.float32), V1_FPS)
                first += len(batch)
                yield batch
            elif resp.class_name == ResponseKind.END:
                return
        raise ClientStreamError(
            self._conn.close_code, self._conn.close_reason or "closed before End"
        )


class V1Backend:
    """The model on a protocol-v1 server (``--url ws://.../api/v1/streaming_audio2face/ws``).

    Audio goes as 16 kHz int16 bodies as it comes; frames come back one body per frame
    (``response_chunk_n_frames=1``), so the server adds no batching delay."""

    def __init__(
        self, url: str, *, token: str | None, profile: str | None, emotion: str | None
    ) -> None:
        self.client = V1Client(url=url, token=token)
        self.profile = profile or ""
        self.emotion = emotion or ""
        self.description = f"server {url} (v1), profile {self.profile or 'server default'}"

    def close(self) -> None:
        pass  # each open() closes its own connection

    @contextlib.asynccontextmanager
    async def open(self, input_rate: int) -> AsyncIterator[LiveStream]:
        async with self.client.connect() as conn:
            stream = _V1Stream(conn, input_rate, self.emotion)
            await conn.send(start_request(profile=self.profile, response_chunk_n_frames=1))
            yield stream


class _V2Stream:
    """One v2 stream: audio messages as they come, frames as the server makes them."""

    def __init__(self, conn: V2Connection, ready: ReadyReply, input_rate: int) -> None:
        self._conn = conn
        self._ready = ready
        self._resampler = StreamResampler(input_rate, ready.sample_rate)

    @property
    def names(self) -> tuple[str, ...]:
        return self._ready.names

    @property
    def fps(self) -> float:
        return self._ready.fps

    @property
    def lookahead_s(self) -> float:
        return self._ready.lookahead_ms / 1000

    async def _send(self, audio: FloatArray) -> None:
        if audio.shape[0] and not await self._conn.send_audio(audio):
            raise V2StreamError(self._conn.close_code, self._conn.close_reason or "closed")

    async def push(self, audio: FloatArray) -> None:
        await self._send(self._resampler.push(audio))

    async def finish(self) -> None:
        await self._send(self._resampler.finish())
        await self._conn.end()

    async def frames(self) -> AsyncIterator[FrameBatch]:
        async for message in self._conn.messages():
            if isinstance(message, FramesReply):
                values = np.asarray(message.values, np.float32)
                yield FrameBatch(message.first, self.names, values, self.fps)
            elif isinstance(message, ErrorReply):
                raise V2StreamError(message.code, message.message)
            elif isinstance(message, EndReply):
                return
        raise V2StreamError(self._conn.close_code, self._conn.close_reason or "closed before end")


class V2Backend:
    """The model on a protocol-v2 server (``--url ws://.../api/v2/stream``): 16 kHz
    16-bit audio messages, binary frames back; the ``ready`` message names the channels,
    the frame rate and the look-ahead before any audio."""

    def __init__(
        self, url: str, *, token: str | None, profile: str | None, emotion: str | None
    ) -> None:
        self.client = V2Client(url=url, token=token)
        self.options = V2Options(
            profile=profile or None,
            output="binary",
            emotion=EmotionSpec(emotion) if emotion else None,
        )
        self.description = f"server {url} (v2), profile {profile or 'server default'}"

    def close(self) -> None:
        pass  # each open() closes its own connection

    @contextlib.asynccontextmanager
    async def open(self, input_rate: int) -> AsyncIterator[LiveStream]:
        async with self.client.connect() as conn:
            ready = await conn.start(self.options)
            yield _V2Stream(conn, ready, input_rate)


def backend_for_url(
    url: str, *, token: str | None, profile: str | None, emotion: str | None
) -> Backend:
    """The client for ``url``, by its path: ``/api/v2/...`` speaks protocol v2, anything
    else v1 (``/api/v1/streaming_audio2face/ws``)."""
    if "/api/v2/" in urlsplit(url).path + "/":
        return V2Backend(url, token=token, profile=profile, emotion=emotion)
    return V1Backend(url, token=token, profile=profile, emotion=emotion)
