"""Protocol v1 over WebSocket: ``/api/v1/streaming_audio2face/ws``.

One connection carries one utterance. Three stages overlap per connection:

* the receive loop decodes and validates messages and queues audio (bounded by
  buffered seconds, so a fast sender is paused rather than buffered without end);
* the worker runs inference and postprocessing off the event loop, one body at a
  time and in order: in the runtime's pusher, batched with other streams' bodies,
  when the engine can batch whole pushes (the default model), else in the thread pool;
* sends happen in the worker, with a timeout, so a client that stops reading pauses
  its own stream and, past ``send_timeout_s``, is closed with a reason.

Any error flushes the frames of the audio already accepted before the close, so a
client never loses earlier output. An unexpected exception (a bug) ends only its own
stream, with 1011, and is counted in ``ServerState.internal_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from starlette.websockets import (
    WebSocket,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketState,
)

from audio2face.audio.pcm import PcmFormat, decode_pcm
from audio2face.errors import (
    Audio2FaceError,
    AuthError,
    EngineError,
    LimitExceededError,
    ProtocolError,
)
from audio2face.protocol.v1 import (
    RequestKind,
    decode_request,
    encode_body,
    encode_end,
    encode_start,
    parse_start,
)
from audio2face.server.inbox import AudioInbox
from audio2face.server.security import presented_token, token_ok
from audio2face.server.state import ServerState
from audio2face.streaming.session import Session
from audio2face.types import FrameBatch

V1_PATH = "/api/v1/streaming_audio2face/ws"
MAX_CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's payload is at most 125 bytes
MAX_PUSH_S = 0.2
"""Longest audio handed to one ``Session.push``: bounds the wait for a body's first frames."""
END_LINGER_S = 10.0
"""Longest wait, after the response End, for the client to close the connection."""
CLOSE_TIMEOUT_S = 5.0
"""Longest wait to write a close frame: a client that does not read never drains it."""

logger = logging.getLogger("audio2face.server.v1")


@dataclass(slots=True)
class _Body:
    """Decoded audio of one ChunkBody, queued for inference."""

    audio: np.ndarray
    emotion: str | None
    arrived: float  # time.monotonic() at receipt, for the latency metric


@dataclass(slots=True)
class _End:
    """The client sent ChunkEnd."""


@dataclass(slots=True)
class _Stop:
    """The receive side stopped: an error to report after flushing, or a disconnect."""

    error: Audio2FaceError | None


class InternalError(Audio2FaceError):
    """A bug surfaced in one stream; the reason names the exception type only."""

    code = 1011


def _joinable(first: object, item: object) -> bool:
    """Queued bodies of one emotion can be pushed together; End and stops cannot."""
    return isinstance(first, _Body) and isinstance(item, _Body) and item.emotion == first.emotion


def close_reason(text: str) -> str:
    """Truncate to what fits a close frame, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= MAX_CLOSE_REASON_BYTES:
        return text
    return data[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", errors="ignore") + "..."


async def handle_v1(websocket: WebSocket) -> None:
    """Route handler: one :class:`V1Stream` per connection."""
    state: ServerState = websocket.app.state.a2f
    await websocket.accept()
    refusal = _refusal(state, websocket)
    if refusal is not None:
        limit = refusal.limit if isinstance(refusal, LimitExceededError) else "auth"
        state.metrics.refusals.labels(limit=limit).inc()
        logger.warning("refused a stream: %s", refusal.reason)
        await websocket.close(code=refusal.code, reason=close_reason(refusal.reason))
        return
    stream = V1Stream(websocket, state)
    state.streams.add(stream)
    state.streams_opened += 1
    state.metrics.active_streams.inc()
    try:
        await stream.run()
    finally:
        state.streams.discard(stream)
        state.streams_closed += 1
        state.metrics.active_streams.dec()


def _refusal(state: ServerState, websocket: WebSocket) -> Audio2FaceError | None:
    token = state.settings.auth_token
    if token is not None and not token_ok(
        token.get_secret_value(), presented_token(websocket.headers, websocket.query_params)
    ):
        return AuthError("missing or invalid token (send Authorization: Bearer <token>)")
    if state.runtime is None or state.draining:
        return LimitExceededError(
            "the service is not ready or is shutting down; try again later",
            limit="ready", value=False, code=1013,
        )  # fmt: skip
    if len(state.streams) + state.uploads >= state.settings.max_streams:
        return LimitExceededError(
            f"too many concurrent streams (max_streams={state.settings.max_streams}); "
            "try again later",
            limit="max_streams", value=state.settings.max_streams, code=1013,
        )  # fmt: skip
    return None


class V1Stream:
    """The state of one v1 connection. Dropped when the connection ends."""

    def __init__(self, websocket: WebSocket, state: ServerState) -> None:
        self.ws = websocket
        self.state = state
        self.settings = state.settings
        self.stream_id = uuid.uuid4().hex[:12]
        self.log = logging.LoggerAdapter(logger, {"stream_id": self.stream_id})
        self.session: Session | None = None
        self.engine = "none"
        self.fmt = PcmFormat(16000)
        self.dtype = "float32"
        self.chunk_frames = self.settings.default_chunk_frames
        self.started_response = False
        self.inbox = AudioInbox(self.settings.max_buffered_s, depth=state.metrics.queue_depth)
        self.opened_at = time.monotonic()
        self.outcome = "ok"

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except Exception:  # a bug: end this stream only, never the worker
            self.state.internal_errors += 1
            self.log.exception("stream %s failed unexpectedly", self.stream_id)
            await self._close_with(InternalError("internal server error"))
            self._finish_log(self.outcome)
        finally:
            self.inbox.clear()

    async def _run(self) -> None:
        try:
            await self._open()
        except WebSocketDisconnect:
            self._finish_log("disconnected")
            return
        except Audio2FaceError as exc:
            await self._close_with(exc)
            self._finish_log(self.outcome)
            return
        receiver = asyncio.create_task(self._receive_loop(), name=f"a2f-recv-{self.stream_id}")
        self.state.tasks.add(receiver)
        try:
            await self._work()
            await receiver  # it has ended: at the client's End, or at a disconnect
            if self.outcome == "ok":
                await self._linger()
        except Audio2FaceError as exc:
            await self._close_with(exc)
        except (TimeoutError, WebSocketDisconnect, WebSocketDisconnected, OSError):
            # The client left while frames were being sent (barge-in): not an error.
            self.outcome = "disconnected"
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
            self.state.tasks.discard(receiver)
            if self.session is not None and self.outcome != "ok":
                self.session.fail()
        self._finish_log(self.outcome)

    async def _linger(self) -> None:
        """After the response End, wait for the client to close, as protocol v1 says
        it does. Closing first would race with what the client still sends: the
        kernel answers late data on a closed socket with a reset, and a reset can
        destroy the End still unread in the client's buffer. Late messages are
        ignored; a client that never closes is closed after ``END_LINGER_S``."""
        with contextlib.suppress(TimeoutError, RuntimeError, OSError, WebSocketDisconnect):
            async with asyncio.timeout(min(END_LINGER_S, self.settings.idle_timeout_s)):
                while (await self.ws.receive())["type"] != "websocket.disconnect":
                    pass

    async def _open(self) -> None:
        kind, msg = await self._receive()
        if kind is not RequestKind.START:
            raise ProtocolError(
                f"the first message must be {RequestKind.START.value}, got {kind.value}"
            )
        options = parse_start(
            msg,  # type: ignore[arg-type]
            self.settings.accepted_sample_rates,
            self.settings.default_chunk_frames,
        )
        self.chunk_frames = options.chunk_frames
        self.fmt = options.fmt
        runtime = self.state.runtime
        if runtime is None:  # pragma: no cover - refused before a stream starts
            raise LimitExceededError("the service is not ready", limit="ready", value=False)
        self.session, profile = runtime.open_session(options.profile_name, self.fmt.sample_rate)
        self.dtype = profile.dtype
        self.engine = profile.engine
        self.log.info(
            "stream %s started: profile=%s rate=%d channels=%d chunk=%d",
            self.stream_id, profile.name, self.fmt.sample_rate, self.fmt.n_channels,
            self.chunk_frames,
        )  # fmt: skip

    async def _close_with(self, exc: Audio2FaceError) -> None:
        self.outcome = type(exc).__name__
        self.state.metrics.errors.labels(kind=self.outcome).inc()
        if isinstance(exc, LimitExceededError):
            self.state.metrics.refusals.labels(limit=exc.limit).inc()
        log = self.log.error if isinstance(exc, EngineError | InternalError) else self.log.warning
        log("stream %s closed with %d: %s", self.stream_id, exc.code, exc.reason)
        if self.ws.application_state is WebSocketState.CONNECTED:
            # The client may have left first; then there is nobody to tell. A client
            # that does not read never drains the close frame: give up after a while,
            # and uvicorn drops the connection when the handler returns.
            with contextlib.suppress(RuntimeError, OSError, TimeoutError, WebSocketDisconnect):
                await asyncio.wait_for(
                    self.ws.close(code=exc.code, reason=close_reason(exc.reason)),
                    timeout=min(CLOSE_TIMEOUT_S, self.settings.send_timeout_s),
                )

    def _finish_log(self, outcome: str) -> None:
        """Count the stream's outcome and log its one summary line."""
        self.state.metrics.streams.labels(outcome=outcome).inc()
        session = self.session
        wall = time.monotonic() - self.opened_at
        audio_s = session.seconds_in if session is not None else 0.0
        frames = session.frames_out if session is not None else 0
        rtf = wall / audio_s if audio_s else 0.0
        summary = {
            "outcome": outcome, "duration_s": round(wall, 3), "audio_s": round(audio_s, 3),
            "frames": frames, "rtf": round(rtf, 4), "engine": self.engine,
        }  # fmt: skip
        # The module logger, not the adapter: LoggerAdapter drops a call's own extra.
        logger.info(
            "stream %s ended: outcome=%s audio=%.2fs frames=%d wall=%.2fs rtf=%.3f",
            self.stream_id, outcome, audio_s, frames, wall, rtf,
            extra={"stream_id": self.stream_id, "summary": summary},
        )  # fmt: skip

    # -- receiving -------------------------------------------------------------------

    async def _receive(self) -> tuple[RequestKind, object]:
        try:
            # asyncio.timeout, not wait_for: wait_for wraps each call in a new Task,
            # a real cost at thousands of messages per second.
            async with asyncio.timeout(self.settings.idle_timeout_s):
                message = await self.ws.receive()
        except TimeoutError:
            raise LimitExceededError(
                f"no message for {self.settings.idle_timeout_s:g} s "
                f"(idle_timeout_s={self.settings.idle_timeout_s:g})",
                limit="idle_timeout_s", value=self.settings.idle_timeout_s,
            ) from None  # fmt: skip
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        data = message.get("bytes")
        if data is None:
            raise ProtocolError("text frames are not part of protocol v1; send binary protobuf")
        if len(data) > self.settings.max_message_bytes:
            raise LimitExceededError(
                f"message of {len(data)} bytes exceeds max_message_bytes="
                f"{self.settings.max_message_bytes}",
                limit="max_message_bytes", value=self.settings.max_message_bytes, code=1009,
            )  # fmt: skip
        return decode_request(data)

    async def _receive_loop(self) -> None:
        """Queue audio until End; on any problem queue a stop, never raise."""
        session = self.session
        if session is None:  # pragma: no cover - _open sets it
            return
        max_samples = int(self.settings.max_utterance_s * self.fmt.sample_rate)
        received = 0
        try:
            while True:
                kind, msg = await self._receive()
                if kind is RequestKind.END:
                    await self.inbox.put(_End(), 0.0)
                    return
                if kind is RequestKind.START:
                    raise ProtocolError("a second ChunkStart on the same connection")
                audio = decode_pcm(msg.pcm_bytes, self.fmt)  # type: ignore[attr-defined]
                received += audio.shape[0]
                if received > max_samples:
                    raise LimitExceededError(
                        f"utterance longer than max_utterance_s={self.settings.max_utterance_s:g}",
                        limit="max_utterance_s", value=self.settings.max_utterance_s,
                    )  # fmt: skip
                emotion = msg.offset_name or None  # type: ignore[attr-defined]
                seconds = audio.shape[0] / self.fmt.sample_rate
                self.state.metrics.audio_seconds_in.inc(seconds)
                await self.inbox.put(_Body(audio, emotion, time.monotonic()), seconds)
        except WebSocketDisconnect:
            await self.inbox.put(_Stop(None), 0.0)
        except Audio2FaceError as exc:
            await self.inbox.put(_Stop(exc), 0.0)
        except Exception:  # a bug: report it through the worker rather than hang it
            self.state.internal_errors += 1
            self.log.exception("stream %s: receive failed unexpectedly", self.stream_id)
            await self.inbox.put(_Stop(InternalError("internal server error")), 0.0)

    # -- inference and sending -------------------------------------------------------

    async def _work(self) -> None:
        session = self.session
        runtime = self.state.runtime
        if session is None or runtime is None:  # pragma: no cover - _open sets both
            return
        loop = asyncio.get_running_loop()
        while True:
            # Bodies queued behind each other (same emotion, up to MAX_PUSH_S) are
            # pushed as one: a stream that fell behind catches up with fewer, larger
            # engine calls and sends; a stream that keeps up pushes every body alone.
            run = await self.inbox.get_run(_joinable, MAX_PUSH_S)
            item = run[0]
            if isinstance(item, _End):
                batch = await self._infer(loop, session.finish)
                await self._send_frames(batch, None)
                await self._ensure_response_start()
                await self._send(encode_end())
                return
            if isinstance(item, _Stop):
                if item.error is None:
                    self.outcome = "disconnected"
                    return
                # Flush what the accepted audio is worth before reporting the error.
                batch = await self._infer(loop, session.finish)
                await self._send_frames(batch, None)
                raise item.error
            audio = np.concatenate([b.audio for b in run]) if len(run) > 1 else item.audio
            await self._push_body(loop, session, audio, item.emotion, run[-1].arrived)

    async def _push_body(
        self, loop: asyncio.AbstractEventLoop, session: Session, audio: np.ndarray,
        emotion: str | None, arrived: float,
    ) -> None:  # fmt: skip
        """Push one body's audio and send its frames. A long body (a whole utterance
        sent at once) is pushed in short pieces, so its first frames leave while the
        rest is still being inferred. Frames short of a full response body wait for
        the next piece, so the bodies a client sees do not depend on this cut."""
        step = max(1, int(MAX_PUSH_S * self.fmt.sample_rate))
        carry: FrameBatch | None = None
        for start in range(0, max(1, audio.shape[0]), step):
            piece = audio[start : start + step]
            pushed = await self._push(loop, session, piece, emotion)
            batch = carry.then(pushed) if carry is not None else pushed
            keep = len(batch) % self.chunk_frames if start + step < audio.shape[0] else 0
            batch, carry = batch.split_at(len(batch) - keep)
            await self._send_frames(batch, arrived)

    async def _push(
        self, loop: asyncio.AbstractEventLoop, session: Session, audio: np.ndarray, emotion: str | None
    ) -> FrameBatch:
        """One push: with other streams' in the runtime's pusher when the session's engine
        can batch whole pushes (the default model), else in the thread pool."""
        runtime = self.state.runtime
        pusher = runtime.pusher if runtime is not None else None
        if pusher is not None and session.batch_key is not None:
            return await pusher.push(session, audio, emotion)
        return await self._infer(loop, session.push, audio, emotion)

    async def _infer(
        self, loop: asyncio.AbstractEventLoop, call: Callable[..., FrameBatch], *args: object
    ) -> FrameBatch:
        """Run one session call in the inference pool, timed per engine."""
        runtime = self.state.runtime
        executor = runtime.executor if runtime is not None else None
        began = time.perf_counter()
        try:
            return await loop.run_in_executor(executor, call, *args)
        finally:
            # Engines behind a batcher time their own runs (engines/batching.py).
            if runtime is None or self.engine not in runtime.batch_timed_engines:
                self.state.metrics.inference_seconds.labels(engine=self.engine).observe(
                    time.perf_counter() - began
                )

    async def _ensure_response_start(self) -> None:
        if not self.started_response:
            self.started_response = True
            session = self.session
            names = session.names if session is not None else ()
            await self._send(encode_start(names, self.dtype))

    async def _send_frames(self, batch: FrameBatch, arrived: float | None) -> None:
        if len(batch) == 0:
            return
        await self._ensure_response_start()
        for i in range(0, len(batch), self.chunk_frames):
            await self._send(encode_body(batch.values[i : i + self.chunk_frames], self.dtype))
        self.state.metrics.frames_out.inc(len(batch))
        if arrived is not None:
            self.state.metrics.frame_latency.observe(time.monotonic() - arrived)

    async def _send(self, data: bytes) -> None:
        try:
            async with asyncio.timeout(self.settings.send_timeout_s):
                await self.ws.send_bytes(data)
        except TimeoutError:
            raise LimitExceededError(
                f"client did not read for {self.settings.send_timeout_s:g} s "
                f"(send_timeout_s={self.settings.send_timeout_s:g})",
                limit="send_timeout_s", value=self.settings.send_timeout_s,
            ) from None  # fmt: skip
