"""What every WebSocket transport shares: admission, registration, receiving with an
idle limit, sending with a timeout, closing with a reason, and the summary log line.

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
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

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

__all__ = ["MAX_CLOSE_REASON_BYTES", "Connection", "close_reason", "origin_allowed"]

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


def close_reason(text: str) -> str:
    """Truncate to what fits a close frame, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= MAX_CLOSE_REASON_BYTES:
        return text
    return data[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", errors="ignore") + "..."


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
        self.runner: StreamRunner | None = None
        self.opened_at = time.monotonic()
        self.outcome = "ok"

    @property
    def buffered_seconds(self) -> float:
        return self.runner.buffered_seconds if self.runner is not None else 0.0

    # -- admission -----------------------------------------------------------------------
    def refusal(self, token: str | None = None, *, check_token: bool = True) -> Audio2FaceError | None:
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
        self.log.warning("refused a stream: %s", refusal.reason)
        await self._close(refusal.code, refusal.reason)

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
            state.streams_closed += 1
            state.metrics.active_streams.dec()

    # -- messages -------------------------------------------------------------------------
    async def receive(self) -> MutableMapping[str, Any]:
        """The next ASGI message, within ``idle_timeout_s``; a disconnect raises
        ``WebSocketDisconnect`` and an oversized message ``LimitExceededError`` (1009)."""
        idle = self.settings.idle_timeout_s
        try:
            # asyncio.timeout, not wait_for: wait_for wraps each call in a new Task,
            # a real cost at thousands of messages per second.
            async with asyncio.timeout(idle):
                message = await self.ws.receive()
        except TimeoutError:
            raise LimitExceededError(
                f"no message for {idle:g} s (idle_timeout_s={idle:g})",
                limit="idle_timeout_s", value=idle,
            ) from None  # fmt: skip
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        size = len(message.get("bytes") or b"") + len(message.get("text") or "")
        if size > self.settings.max_message_bytes:
            raise LimitExceededError(
                f"message of {size} bytes exceeds max_message_bytes={self.settings.max_message_bytes}",
                limit="max_message_bytes", value=self.settings.max_message_bytes, code=1009,
            )  # fmt: skip
        return message

    async def send_bytes(self, data: bytes) -> None:
        await self._send(self.ws.send_bytes(data))

    async def send_text(self, data: str) -> None:
        await self._send(self.ws.send_text(data))

    async def _send(self, sending: Any) -> None:
        timeout = self.settings.send_timeout_s
        try:
            async with asyncio.timeout(timeout):
                await sending
        except TimeoutError:
            raise LimitExceededError(
                f"client did not read for {timeout:g} s (send_timeout_s={timeout:g})",
                limit="send_timeout_s", value=timeout,
            ) from None  # fmt: skip

    # -- the end ---------------------------------------------------------------------------
    async def close_with(self, exc: Audio2FaceError) -> None:
        """Record ``exc`` as the outcome, count it, log it and close with its code."""
        self.outcome = type(exc).__name__
        self.state.metrics.errors.labels(kind=self.outcome).inc()
        if isinstance(exc, LimitExceededError):
            self.state.metrics.refusals.labels(limit=exc.limit).inc()
        log = self.log.error if isinstance(exc, EngineError | InternalError) else self.log.warning
        log("stream %s closed with %d: %s", self.stream_id, exc.code, exc.reason)
        await self._close(exc.code, exc.reason)

    async def _close(self, code: int, reason: str) -> None:
        if self.ws.application_state is not WebSocketState.CONNECTED:
            return  # the client left first: nobody to tell
        # A client that does not read never drains the close frame: give up after a
        # while, and uvicorn drops the connection when the handler returns.
        with contextlib.suppress(RuntimeError, OSError, TimeoutError, WebSocketDisconnect):
            await asyncio.wait_for(
                self.ws.close(code=code, reason=close_reason(reason)),
                timeout=min(CLOSE_TIMEOUT_S, self.settings.send_timeout_s),
            )

    def bug(self, where: str) -> InternalError:
        """Log an unexpected exception (a bug) of this stream; the error to close with."""
        self.state.internal_errors += 1
        self.log.exception("stream %s: %s failed unexpectedly", self.stream_id, where)
        return InternalError("internal server error")

    def finish_log(self) -> None:
        """Count the stream's outcome and log its one summary line."""
        self.state.metrics.streams.labels(outcome=self.outcome).inc()
        runner = self.runner
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
