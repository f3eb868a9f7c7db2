"""What every WebSocket transport shares: admission, registration, receiving with an
idle limit, sending with a timeout, closing with a reason, and the summary log line.

The protections against hostile or broken clients live here, so every protocol gets
them by using :class:`Connection`:

* **message rate**: more than ``max_messages_per_s`` (bursts of as many) ends the
  stream with 1008; a flood of tiny messages costs the server per message, not per
  byte, and would take the event loop from everyone else;
* **idle means no audio**: the receive deadline is moved only by audio
  (:meth:`Connection.note_audio`), each second of it buying ``1/min_audio_rate``
  seconds, at most ``idle_timeout_s``; empty bodies or a trickle do not hold a slot;
* **handshake**: the first message must come within ``handshake_timeout_s``;
* **a client that does not read** is cut off after ``send_timeout_s``: the transport
  is aborted, since a close handshake with a client that does not read never ends and
  a closed-but-unflushed socket keeps its descriptor and kernel buffers;
* **client text** (names, values) is cut to ``max_name_chars`` in every log line and
  close reason (:func:`clip`); transports refuse longer names (:meth:`Connection.check_name`);
* **1009** (a message over ``max_message_bytes``, refused by uvicorn before we see it)
  is logged and counted as that limit, not as a disconnect;
* **capacity and lag**: :meth:`Connection.attach` refuses a stream the engine has no
  capacity for (1013) and bounds the runner's lag behind real time (``max_lag_s``).

A transport (``ws_v1.py``, ``ws_v2.py``) keeps only its own decoding, validation,
encoding and close codes; everything between it and the frames is the stream runner's
(:mod:`audio2face.streaming.runner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from audio2face.errors import (
    Audio2FaceError,
    AuthError,
    EngineError,
    InternalError,
    LimitExceededError,
)
from audio2face.server.security import presented_token, token_ok
from audio2face.server.state import ServerState
from audio2face.streaming.runner import StreamRunner
from audio2face.types import FloatArray

__all__ = [
    "MAX_CLOSE_REASON_BYTES", "Connection", "HeldAudio", "clip", "close_reason", "origin_allowed",
    "transport_of",
]  # fmt: skip

MAX_CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's payload is at most 125 bytes
CLOSE_TIMEOUT_S = 5.0
"""Longest wait to write a close frame: a client that does not read never drains it."""


def origin_allowed(headers: Mapping[str, str], allowed: tuple[str, ...]) -> bool:
    """Browsers send ``Origin`` on a WebSocket handshake and let any page open one, so
    a page on another site could stream through a user's browser. Allowed: no
    ``Origin`` (not a browser), the service's own origin (the demo page), or one listed
    in ``allowed_origins`` (``"*"``: any)."""
    origin = headers.get("origin")
    if origin is None or "*" in allowed or origin in allowed:
        return True
    host = headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def clip(text: str, limit: int) -> str:
    """``text`` from a client, cut to ``limit`` characters for a log line or a reason
    (a 4 MB name must not become a 4 MB log line), saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text)} chars)"


def transport_of(websocket: WebSocket) -> Any:
    """The asyncio transport under a WebSocket, or ``None``. ASGI gives an application
    no handle on the socket; uvicorn's ``receive`` is a method of its protocol object,
    which holds the transport. Only used to abort a connection that cannot be closed
    politely."""
    owner = getattr(websocket._receive, "__self__", None)  # noqa: SLF001
    transport = getattr(owner, "transport", None)
    return transport if callable(getattr(transport, "abort", None)) else None


def close_reason(text: str) -> str:
    """Truncate to what fits a close frame, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= MAX_CLOSE_REASON_BYTES:
        return text
    return data[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", errors="ignore") + "..."


class HeldAudio:
    """Short bodies waiting to be pushed together (one emotion): each push costs the
    engine a call whatever its length, so a client sending 2-byte bodies must not cost
    a call per body. A transport adds each body and pushes what :meth:`take` returns
    once ``samples`` reaches ``min_body_s`` of audio, the emotion changes, or at the end."""

    def __init__(self) -> None:
        self.parts: list[FloatArray] = []
        self.samples = 0
        self.emotion: str | None = None

    def add(self, audio: FloatArray, emotion: str | None) -> None:
        self.parts.append(audio)
        self.samples += audio.shape[0]
        self.emotion = emotion

    def take(self) -> tuple[FloatArray, str | None] | None:
        """The held audio joined, with its emotion (``None``: nothing held)."""
        if not self.parts:
            return None
        audio = self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts)
        run = (audio, self.emotion)
        self.parts, self.samples = [], 0
        return run


class Connection:
    """One WebSocket stream's server-side bookkeeping (not its protocol).

    ``runner`` is set by the transport once its stream is open; ``outcome`` is what
    the summary line and the ``a2f_streams`` counter report."""

    def __init__(self, websocket: WebSocket, state: ServerState, protocol: str) -> None:
        self.ws = websocket
        self.state = state
        self.settings = state.settings
        self.protocol = protocol
        self.stream_id = uuid.uuid4().hex[:12]
        self.log = logging.LoggerAdapter(
            logging.getLogger(f"audio2face.server.{protocol}"), {"stream_id": self.stream_id}
        )
        self._runner: StreamRunner | None = None
        self.opened_at = time.monotonic()
        self._outcome = "ok"
        self._outcome_fixed = False
        self.aborted = False
        self._logged = False
        self.messages = 0
        settings = self.settings
        # The message budget: a token bucket of max_messages_per_s, holding one second.
        self._tokens = settings.max_messages_per_s
        self._tokens_at = self.opened_at
        # The receive deadline: moved by audio only (note_audio); the first message
        # must come within handshake_timeout_s.
        self._deadline = self.opened_at + min(settings.idle_timeout_s, settings.handshake_timeout_s)
        self._last_audio_at = self.opened_at
        self._audio_since = 0.0
        self.idle_means_no_audio = False
        """Set by a transport that reports its audio (:meth:`note_audio`): then only
        audio keeps the stream open."""

    @property
    def outcome(self) -> str:
        return self._outcome

    @outcome.setter
    def outcome(self, value: str) -> None:
        # A limit found while receiving (1009) is what ended the stream, even though the
        # transport then only sees the client gone.
        if not self._outcome_fixed:
            self._outcome = value

    @property
    def runner(self) -> StreamRunner | None:
        return self._runner

    @runner.setter
    def runner(self, runner: StreamRunner | None) -> None:
        """Every live stream's runner is held to ``max_lag_s`` behind real time."""
        if runner is not None:
            runner.bound_lag(self.settings.max_lag_s)
        self._runner = runner

    def attach(self, runner: StreamRunner) -> None:
        """Admit ``runner`` on its engine's measured capacity (``LimitExceededError``
        1013 "at capacity: N streams" when the engine has none left), then hold it to
        ``max_lag_s``. Call it once the stream is open, before any audio."""
        engines = [c.runner.engine for c in self.state.streams if c is not self and c.runner]
        if (refused := self.state.capacity.refusal(runner.engine, engines)) is not None:
            raise LimitExceededError(
                refused, limit="capacity_target", value=self.settings.capacity_target, code=1013
            )
        self.runner = runner

    async def stream_with(
        self,
        open_runner: Callable[[], Awaitable[StreamRunner]],
        stream: Callable[[StreamRunner], Awaitable[None]],
        fail: Callable[[Audio2FaceError], Awaitable[None]],
    ) -> None:
        """A transport's stream, from opening to the end: open the runner (the
        transport reads its start message here), admit it (capacity, lag bound), run
        ``stream`` on it. A refusal or error goes to ``fail``, the transport's own way to
        report one; a client gone before the start is a disconnect; a bug ends this
        stream only. The summary line is logged in every case."""
        try:
            runner = await open_runner()
        except WebSocketDisconnect:
            self.outcome = "disconnected"
        except Audio2FaceError as exc:
            await fail(exc)
        except Exception:  # a bug: end this stream only
            await fail(self.bug("start"))
        else:
            async with runner:
                try:
                    self.attach(runner)  # capacity (1013) and the lag bound
                except Audio2FaceError as exc:
                    await fail(exc)
                else:
                    await stream(runner)
        self.finish_log()

    @property
    def buffered_seconds(self) -> float:
        return self._runner.buffered_seconds if self._runner is not None else 0.0

    # -- admission -----------------------------------------------------------------------
    def refusal(
        self, token: str | None = None, *, check_token: bool = True
    ) -> Audio2FaceError | None:
        """Why this connection may not stream now (``None``: it may). ``token`` is one
        the protocol carried itself (v2's start message), tried after the headers."""
        if not origin_allowed(self.ws.headers, self.settings.allowed_origins):
            return AuthError(
                "this browser origin may not open streams here; add it to allowed_origins"
            )
        expected = self.settings.auth_token
        if check_token and expected is not None:
            presented = presented_token(self.ws.headers, self.ws.query_params) or token
            if not token_ok(expected.get_secret_value(), presented):
                return AuthError("missing or invalid token (send Authorization: Bearer <token>)")
        if self.state.runtime is None or self.state.draining:
            return LimitExceededError(
                "the service is not ready or is shutting down; try again later",
                limit="ready", value=False, code=1013,
            )  # fmt: skip
        if len(self.state.streams) + self.state.uploads >= self.settings.max_streams:
            return LimitExceededError(
                f"too many concurrent streams (max_streams={self.settings.max_streams}); "
                "try again later",
                limit="max_streams", value=self.settings.max_streams, code=1013,
            )  # fmt: skip
        return None

    async def refuse(self, refusal: Audio2FaceError) -> None:
        """Count, log and close a connection that was never admitted."""
        limit = refusal.limit if isinstance(refusal, LimitExceededError) else "auth"
        self.state.metrics.refusals.labels(limit=limit).inc()
        self.log.warning("refused a stream: %s", self._clip_reason(refusal.reason))
        await self._close(refusal.code, refusal.reason)

    def check_name(self, what: str, name: str) -> None:
        """Refuse (1008) a client-supplied ``name`` longer than ``max_name_chars``,
        before it reaches a lookup, a log line or a reason."""
        limit = self.settings.max_name_chars
        if len(name) > limit:
            raise LimitExceededError(
                f"{what} of {len(name)} characters is longer than max_name_chars={limit}",
                limit="max_name_chars", value=limit,
            )  # fmt: skip

    def _clip_reason(self, reason: str) -> str:
        # Reasons list known names (a few hundred characters); anything longer carries
        # client text that escaped a check.
        return clip(reason, 8 * self.settings.max_name_chars)

    @contextlib.contextmanager
    def registered(self) -> Iterator[None]:
        """Count this connection as an open stream while the block runs."""
        state = self.state
        state.streams.add(self)
        state.streams_opened += 1
        state.metrics.active_streams.inc()
        try:
            yield
        finally:
            state.streams.discard(self)
            if self._runner is not None:  # its audio moves from the open to the done total
                state.add_audio_done(self._runner.engine, self._runner.seconds_in)
            state.streams_closed += 1
            state.metrics.active_streams.dec()

    # -- messages -------------------------------------------------------------------------
    async def receive(self) -> MutableMapping[str, Any]:
        """The next ASGI message, before the audio deadline (see :meth:`note_audio`);
        a disconnect raises ``WebSocketDisconnect``, an oversized message
        ``LimitExceededError`` (1009), a flood of messages one for ``max_messages_per_s``."""
        try:
            # asyncio.timeout, not wait_for: wait_for wraps each call in a new Task,
            # a real cost at thousands of messages per second.
            async with asyncio.timeout_at(self._loop_deadline()):
                message = await self.ws.receive()
        except TimeoutError:
            raise self._idle_error() from None
        if message["type"] == "websocket.disconnect":
            code = message.get("code", 1000)
            if code == 1009:  # uvicorn refused a message over ws_max_size and closed
                self._fix_outcome(self._too_big(None))
            raise WebSocketDisconnect(code, message.get("reason"))
        size = len(message.get("bytes") or b"") + len(message.get("text") or "")
        if size > self.settings.max_message_bytes:
            raise self._too_big(size)
        self.messages += 1
        if self.messages == 1 or not self.idle_means_no_audio:
            # The handshake is done; a transport that does not report its audio keeps
            # the older rule, where any message keeps the stream open.
            self._deadline = time.monotonic() + self.settings.idle_timeout_s
        self._spend_token()
        return message

    def note_audio(self, seconds: float) -> None:
        """``seconds`` of audio were accepted: move the receive deadline (with
        ``idle_means_no_audio`` set). Call it after the push (which may wait on
        backpressure), so waiting is never held against the client."""
        settings = self.settings
        now = time.monotonic()
        if seconds <= 0.0:
            return
        self._last_audio_at = now
        self._audio_since += seconds
        bought = seconds / settings.min_audio_rate if settings.min_audio_rate > 0 else float("inf")
        self._deadline = min(now + settings.idle_timeout_s, max(self._deadline, now) + bought)

    def _loop_deadline(self) -> float:
        loop = asyncio.get_running_loop()
        return loop.time() + max(0.0, self._deadline - time.monotonic())

    def _idle_error(self) -> LimitExceededError:
        settings = self.settings
        idle = settings.idle_timeout_s
        if self.messages == 0:
            wait = min(idle, settings.handshake_timeout_s)
            name = "handshake_timeout_s" if wait < idle else "idle_timeout_s"
            return LimitExceededError(
                f"no first message within {wait:g} s ({name}={wait:g})", limit=name, value=wait
            )
        if not self.idle_means_no_audio:
            return LimitExceededError(
                f"no message for {idle:g} s (idle_timeout_s={idle:g})",
                limit="idle_timeout_s", value=idle,
            )  # fmt: skip
        quiet = time.monotonic() - self._last_audio_at
        if quiet >= idle - 1e-3:
            return LimitExceededError(
                f"no audio for {idle:g} s (idle_timeout_s={idle:g})",
                limit="idle_timeout_s", value=idle,
            )  # fmt: skip
        return LimitExceededError(
            f"too little audio: {self._audio_since:.2f} s in {time.monotonic() - self.opened_at:.1f} s "
            f"(min_audio_rate={settings.min_audio_rate:g})",
            limit="min_audio_rate", value=settings.min_audio_rate,
        )  # fmt: skip

    def _too_big(self, size: int | None) -> LimitExceededError:
        limit = self.settings.max_message_bytes
        what = f"message of {size} bytes" if size is not None else "a message"
        return LimitExceededError(
            f"{what} exceeds max_message_bytes={limit}",
            limit="max_message_bytes", value=limit, code=1009,
        )  # fmt: skip

    def _fix_outcome(self, exc: LimitExceededError) -> None:
        """Record a limit the protocol layer already enforced (the close is sent)."""
        self.outcome = type(exc).__name__
        self._outcome_fixed = True
        self.state.metrics.errors.labels(kind=self.outcome).inc()
        self.state.metrics.refusals.labels(limit=exc.limit).inc()
        self.log.warning("stream %s closed with %d: %s", self.stream_id, exc.code, exc.reason)

    def _spend_token(self) -> None:
        rate = self.settings.max_messages_per_s
        now = time.monotonic()
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        self._tokens -= 1.0
        if self._tokens < 0.0:
            raise LimitExceededError(
                f"more than {rate:g} messages per second (max_messages_per_s={rate:g}); "
                "send fewer, larger bodies",
                limit="max_messages_per_s", value=rate,
            )  # fmt: skip

    async def send_bytes(self, data: bytes) -> None:
        await self._send(self.ws.send_bytes(data))

    async def send_text(self, data: str) -> None:
        await self._send(self.ws.send_text(data))

    async def _send(self, sending: Any) -> None:
        timeout = self.settings.send_timeout_s
        if self.aborted:
            sending.close()  # the coroutine was never started: nothing to await
            raise WebSocketDisconnect(1006, "aborted")
        try:
            async with asyncio.timeout(timeout):
                await sending
        except TimeoutError:
            # A client that does not read would never take a close frame either, and
            # a transport closed with unsent data waits for the client to read it: drop
            # the connection now, with its buffers.
            self.abort()
            raise LimitExceededError(
                f"client did not read for {timeout:g} s (send_timeout_s={timeout:g})",
                limit="send_timeout_s", value=timeout,
            ) from None  # fmt: skip

    def abort(self) -> None:
        """Drop the connection now (no close handshake), discarding unsent data."""
        self.aborted = True
        transport = transport_of(self.ws)
        if transport is not None:
            transport.abort()

    # -- the end ---------------------------------------------------------------------------
    async def close_with(self, exc: Audio2FaceError) -> None:
        """Record ``exc`` as the outcome, count it, log it and close with its code."""
        self.outcome = type(exc).__name__
        self._outcome_fixed = True  # the client leaving during the close changes nothing
        self.state.metrics.errors.labels(kind=self.outcome).inc()
        if isinstance(exc, LimitExceededError):
            self.state.metrics.refusals.labels(limit=exc.limit).inc()
        log = self.log.error if isinstance(exc, EngineError | InternalError) else self.log.warning
        log("stream %s closed with %d: %s", self.stream_id, exc.code, self._clip_reason(exc.reason))
        await self._close(exc.code, exc.reason)

    async def _close(self, code: int, reason: str) -> None:
        if self.aborted or self.ws.application_state is not WebSocketState.CONNECTED:
            return  # the client left first (or was dropped): nobody to tell
        # A client that does not read never drains the close frame: give up after a
        # while, and uvicorn drops the connection when the handler returns.
        try:
            await asyncio.wait_for(
                self.ws.close(code=code, reason=close_reason(reason)),
                timeout=min(CLOSE_TIMEOUT_S, self.settings.send_timeout_s),
            )
        except TimeoutError:
            self.abort()  # it does not read: its close frame would wait for ever
        except (RuntimeError, OSError, WebSocketDisconnect):
            pass

    async def run(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a transport's ``work`` for this connection. When the server stops with
        the stream still open (past ``shutdown_drain_s``), uvicorn cancels the handler:
        the stream then ends with outcome ``shutdown``, its summary line and a dropped
        connection, not an "Exception in ASGI application" traceback."""
        try:
            await work
        except asyncio.CancelledError:
            self.outcome = "shutdown"
            self.log.warning("stream %s cut by the server's shutdown", self.stream_id)
            self.abort()
            if not self._logged:
                self.finish_log()
            # Not re-raised: the handler is the task's top; uvicorn would log the
            # cancellation as an application error.

    def bug(self, where: str) -> InternalError:
        """Log an unexpected exception (a bug) of this stream; the error to close with."""
        self.state.internal_errors += 1
        self.log.exception("stream %s: %s failed unexpectedly", self.stream_id, where)
        return InternalError("internal server error")

    def finish_log(self) -> None:
        """Count the stream's outcome and log its one summary line."""
        self._logged = True
        self.state.metrics.streams.labels(outcome=self.outcome).inc()
        runner = self._runner
        wall = time.monotonic() - self.opened_at
        audio_s = runner.seconds_in if runner is not None else 0.0
        frames = runner.frames_out if runner is not None else 0
        engine = runner.engine if runner is not None else "none"
        rtf = wall / audio_s if audio_s else 0.0
        summary = {
            "outcome": self.outcome, "duration_s": round(wall, 3), "audio_s": round(audio_s, 3),
            "frames": frames, "rtf": round(rtf, 4), "engine": engine, "protocol": self.protocol,
        }  # fmt: skip
        # The logger itself, not the adapter: LoggerAdapter drops a call's own extra.
        self.log.logger.info(
            "stream %s ended: outcome=%s audio=%.2fs frames=%d wall=%.2fs rtf=%.3f",
            self.stream_id, self.outcome, audio_s, frames, wall, rtf,
            extra={"stream_id": self.stream_id, "summary": summary},
        )  # fmt: skip
