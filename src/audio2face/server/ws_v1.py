"""Protocol v1 over WebSocket: ``/api/v1/streaming_audio2face/ws``.

One connection carries one utterance: ``ChunkStart``, ``ChunkBody``s, ``ChunkEnd`` in;
a response ``Start``, frame bodies of ``chunk_frames`` rows and ``End`` out. This file
only decodes, validates, encodes and picks close codes; the stream runner
(:mod:`audio2face.streaming.runner`) does the rest. Two tasks per connection:

* the receive loop decodes messages and pushes audio into the runner (which pauses it
  when its inbox is full: TCP backpressure);
* the main task iterates the runner's events and sends the frames, each send bounded
  by ``send_timeout_s``.

A receive-side error (bad message, a limit) still flushes the frames of the audio
already accepted, then closes with the error's code, so a client never loses earlier
output. An unexpected exception (a bug) ends only its own stream, with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from audio2face.audio.pcm import PcmFormat, decode_pcm
from audio2face.errors import Audio2FaceError, LimitExceededError, ProtocolError, StreamClosedError
from audio2face.protocol.v1 import (
    RequestKind,
    decode_request,
    encode_body,
    encode_end,
    encode_start,
    parse_start,
)
from audio2face.server.connection import Connection, HeldAudio
from audio2face.server.state import ServerState
from audio2face.streaming.runner import Ended, FramesEvent, StreamRunner
from audio2face.types import FloatArray, FrameBatch

__all__ = ["V1_PATH", "handle_v1"]

V1_PATH = "/api/v1/streaming_audio2face/ws"
END_LINGER_S = 10.0
"""Longest wait, after the response End, for the client to close the connection."""


async def handle_v1(websocket: WebSocket) -> None:
    """Route handler: admit the connection, then run one :class:`V1Stream`."""
    state: ServerState = websocket.app.state.a2f
    conn = Connection(websocket, state, "v1")
    await websocket.accept()
    if (refusal := conn.refusal()) is not None:
        await conn.refuse(refusal)
        return
    with conn.registered():
        await conn.run(V1Stream(conn).run())


class V1Stream:
    """The protocol state of one v1 connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.fmt = PcmFormat(16000)
        self.dtype = "float32"
        self.chunk_frames = conn.settings.default_chunk_frames
        self.started_response = False
        self.error: Audio2FaceError | None = None
        """Why the receive side stopped (reported after the flush), if it failed."""

    async def run(self) -> None:
        await self.conn.stream_with(self._open, self._stream, self.conn.close_with)

    async def _open(self) -> StreamRunner:
        conn = self.conn
        kind, msg = decode_request(await self._receive_bytes())
        if kind is not RequestKind.START:
            raise ProtocolError(
                f"the first message must be {RequestKind.START.value}, got {kind.value}"
            )
        options = parse_start(
            msg,
            conn.settings.accepted_sample_rates,
            conn.settings.default_chunk_frames,
        )
        self.chunk_frames, self.fmt = options.chunk_frames, options.fmt
        conn.check_name("profile_name", options.profile_name)
        runtime = conn.state.runtime
        if runtime is None:  # admission checked readiness; the runtime never goes away
            raise LimitExceededError(
                "the service is not ready", limit="ready", value=False, code=1013
            )
        profile = runtime.profiles.resolve_v1(options.profile_name).profile
        runner = runtime.open_stream(
            profile, self.fmt.sample_rate, chunk_frames=self.chunk_frames, strict_emotions=False
        )
        self.dtype = profile.dtype
        conn.log.info(
            "stream %s started: profile=%s rate=%d channels=%d chunk=%d",
            conn.stream_id, profile.name, self.fmt.sample_rate, self.fmt.n_channels,
            self.chunk_frames,
        )  # fmt: skip
        return runner

    async def _stream(self, runner: StreamRunner) -> None:
        conn = self.conn
        conn.idle_means_no_audio = True  # the receive loop reports its audio
        receiver = asyncio.create_task(
            self._receive_loop(runner), name=f"a2f-recv-{conn.stream_id}"
        )
        conn.state.tasks.add(receiver)
        try:
            async for event in runner.events():
                if isinstance(event, FramesEvent):
                    await self._send_frames(event.batch)
                elif isinstance(event, Ended) and self.error is None:
                    await self._ensure_response_start(runner)
                    await conn.send_bytes(encode_end())
            await receiver  # it has ended: at the client's End, an error or a disconnect
            if self.error is not None:
                raise self.error
            if conn.outcome == "ok":
                await self._linger()
        except Audio2FaceError as exc:
            await conn.close_with(exc)
        except (TimeoutError, WebSocketDisconnect, WebSocketDisconnected, OSError):
            # The client left while frames were being sent (barge-in): not an error.
            conn.outcome = "disconnected"
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
            conn.state.tasks.discard(receiver)

    async def _receive_bytes(self) -> bytes:
        data = (await self.conn.receive()).get("bytes")
        if data is None:
            raise ProtocolError("text frames are not part of protocol v1; send binary protobuf")
        return data

    async def _receive_loop(self, runner: StreamRunner) -> None:
        """Push audio until End; on any problem stop the input, never raise.

        Bodies shorter than ``min_body_s`` are joined until they reach it (or the
        emotion changes, or End): each push costs the engine a call whatever its
        length, so a client sending 2-byte bodies must not cost a call per body."""
        conn = self.conn
        settings = conn.settings
        rate = self.fmt.sample_rate
        max_samples = int(settings.max_utterance_s * rate)
        min_samples = int(settings.min_body_s * rate)
        received = 0
        held = HeldAudio()
        try:
            while True:
                kind, msg = decode_request(await self._receive_bytes())
                if kind is RequestKind.END:
                    await self._push(runner, held.take())
                    await runner.finish()
                    return
                if kind is RequestKind.START:
                    raise ProtocolError("a second ChunkStart on the same connection")
                emotion = msg.offset_name or None
                if emotion is not None:
                    conn.check_name("offset_name", emotion)
                audio = decode_pcm(msg.pcm_bytes, self.fmt)
                received += audio.shape[0]
                if received > max_samples:
                    raise LimitExceededError(
                        f"utterance longer than max_utterance_s={settings.max_utterance_s:g}",
                        limit="max_utterance_s", value=settings.max_utterance_s,
                    )  # fmt: skip
                if audio.shape[0] == 0:
                    continue  # nothing to animate, and no audio to keep the slot
                if held.samples and held.emotion != emotion:
                    await self._push(runner, held.take())
                held.add(audio, emotion)
                if held.samples >= min_samples:
                    await self._push(runner, held.take())
                # After any push, which may wait on backpressure: waiting is not idling.
                conn.note_audio(audio.shape[0] / rate)
        except WebSocketDisconnect:
            self.conn.outcome = "disconnected"
            await runner.abort()
        except Exception as exc:
            self.error = exc if isinstance(exc, Audio2FaceError) else self.conn.bug("receive")
            # Flush what the accepted audio (held short bodies too) is worth before the
            # error is reported.
            with contextlib.suppress(StreamClosedError):
                if (run := held.take()) is not None:
                    await runner.push(*run)
                await runner.finish()

    async def _push(self, runner: StreamRunner, run: tuple[FloatArray, str | None] | None) -> None:
        if run is None:
            return
        await runner.push(*run)

    async def _linger(self) -> None:
        """After the response End, wait for the client to close, as protocol v1 says
        it does. Closing first would race with what the client still sends: the
        kernel answers late data on a closed socket with a reset, and a reset can
        destroy the End still unread in the client's buffer. Late messages are
        ignored; a client that never closes is closed after ``END_LINGER_S``."""
        ws = self.conn.ws
        with contextlib.suppress(TimeoutError, RuntimeError, OSError, WebSocketDisconnect):
            async with asyncio.timeout(min(END_LINGER_S, self.conn.settings.idle_timeout_s)):
                while (await ws.receive())["type"] != "websocket.disconnect":
                    pass

    async def _ensure_response_start(self, runner: StreamRunner) -> None:
        if not self.started_response:
            self.started_response = True
            await self.conn.send_bytes(encode_start(runner.names, self.dtype))

    async def _send_frames(self, batch: FrameBatch) -> None:
        if len(batch) == 0 or self.conn.runner is None:
            return
        await self._ensure_response_start(self.conn.runner)
        for i in range(0, len(batch), self.chunk_frames):
            await self.conn.send_bytes(
                encode_body(batch.values[i : i + self.chunk_frames], self.dtype)
            )
