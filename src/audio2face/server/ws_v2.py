"""Protocol v2 over WebSocket: ``/api/v2/stream`` (JSON control, binary PCM).

Many utterances per connection: ``start``, then PCM and ``emotion`` / ``flush`` /
``interrupt`` messages, then ``end``. This file decodes, validates and encodes
(:mod:`audio2face.protocol.v2`); the stream runner (:mod:`audio2face.streaming.runner`)
does the rest. As in v1, two tasks per connection:

* the receive loop parses messages and feeds the runner (whose bounded inbox pauses it:
  TCP backpressure);
* the main task iterates the runner's events and sends them, each send bounded by
  ``send_timeout_s``.

An error sends ``{"type": "error", "code": c, "message": ...}`` and closes with ``c``.
A receive-side error first delivers the frames of the audio already accepted.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from audio2face.errors import (
    Audio2FaceError,
    AudioFormatError,
    LimitExceededError,
    ProtocolError,
    StreamClosedError,
)
from audio2face.protocol.v2 import (
    ENCODINGS,
    OUTPUTS,
    EmotionMessage,
    EmotionSpec,
    EndMessage,
    ErrorReply,
    FlushedReply,
    FlushMessage,
    InterruptedReply,
    InterruptMessage,
    ReadyReply,
    StartMessage,
    decode_pcm_v2,
    encode,
    encode_frames_binary,
    encode_frames_json,
    parse_client_message,
)
from audio2face.protocol.v2 import EndReply as EndReplyMsg
from audio2face.server.connection import CLOSE_TIMEOUT_S, Connection, HeldAudio
from audio2face.server.state import ServerState
from audio2face.streaming.runner import (
    Ended,
    Flushed,
    FramesEvent,
    Interrupted,
    StreamRunner,
    emotion_names,
)
from audio2face.types import FloatArray, FrameBatch

__all__ = ["V2_INFO_PATH", "V2_PATH", "handle_v2", "v2_info"]

V2_PATH = "/api/v2/stream"


async def handle_v2(websocket: WebSocket) -> None:
    """Route handler: admit the connection (the token may come in ``start``), then run
    one :class:`V2Stream`."""
    state: ServerState = websocket.app.state.a2f
    conn = Connection(websocket, state, "v2")
    await websocket.accept()
    # Origin, readiness and capacity are known now; the token may still come in start.
    if (refusal := conn.refusal(check_token=False)) is not None:
        await _refuse(conn, refusal)
        return
    await conn.run(V2Stream(conn).run())  # a shutdown cut: summary line, no traceback


async def _send_error(conn: Connection, exc: Audio2FaceError) -> None:
    """Tell the client why before the close frame (which truncates the reason)."""
    with contextlib.suppress(Exception):  # the client may be gone or not reading
        await conn.send_text(encode(ErrorReply(exc.code, exc.reason)))


async def _refuse(conn: Connection, refusal: Audio2FaceError) -> None:
    await _send_error(conn, refusal)
    await conn.refuse(refusal)


# --- one stream ---------------------------------------------------------------------------


class V2Stream:
    """The protocol state of one v2 connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.start = StartMessage()
        self.error: Audio2FaceError | None = None
        """Why the receive side stopped (reported after the frames), if it failed."""

    async def run(self) -> None:
        conn = self.conn
        try:
            self.start = await self._receive_start()
        except WebSocketDisconnect:
            conn.outcome = "disconnected"
            conn.finish_log()
            return
        except Audio2FaceError as exc:
            await self._fail(exc)
            conn.finish_log()
            return
        if (refusal := conn.refusal(self.start.token)) is not None:
            await _refuse(conn, refusal)
            return
        with conn.registered():
            await conn.stream_with(self._open, self._stream, self._fail)

    async def _fail(self, exc: Audio2FaceError) -> None:
        await _send_error(self.conn, exc)
        await self.conn.close_with(exc)

    async def _receive_start(self) -> StartMessage:
        message = await self.conn.receive()
        text = message.get("text")
        if text is None:
            raise ProtocolError('binary message before start; send {"type": "start"} first')
        start = parse_client_message(text)
        if not isinstance(start, StartMessage):
            raise ProtocolError(f'the first message must be "start", got "{start.type}"')
        self.conn.check_name("profile", start.profile or "")
        if start.emotion is not None:
            self.conn.check_name("emotion", start.emotion.name or "")
        rates = self.conn.settings.accepted_sample_rates
        if start.sample_rate not in rates:
            raise AudioFormatError(
                f"sample_rate {start.sample_rate} is not supported; accepted rates are {list(rates)}"
            )
        return start

    async def _open(self) -> StreamRunner:
        conn, start = self.conn, self.start
        runtime = conn.state.runtime
        if runtime is None:  # admission checked readiness; the runtime never goes away
            raise LimitExceededError(
                "the service is not ready", limit="ready", value=False, code=1013
            )
        profile = runtime.profile(start.profile)
        runner = runtime.open_stream(profile, start.sample_rate, fps=start.fps)
        if start.emotion is not None:
            runner.check_emotion_spec(start.emotion.name)  # refused before ready
        conn.log.info(
            "stream %s started: profile=%s rate=%d encoding=%s output=%s",
            conn.stream_id, profile.name, start.sample_rate, start.encoding, start.output,
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
            if self.start.emotion is not None:
                await _key(runner, 0, self.start.sample_rate, self.start.emotion, ramp=False)
            await conn.send_text(encode(self._ready(runner)))
            async for event in runner.events():
                if isinstance(event, FramesEvent):
                    await self._send_frames(event.batch)
                elif isinstance(event, Flushed):
                    await conn.send_text(encode(FlushedReply(event.frames)))
                elif isinstance(event, Interrupted):
                    await conn.send_text(encode(InterruptedReply(event.frame)))
                elif isinstance(event, Ended) and self.error is None:
                    await conn.send_text(encode(EndReplyMsg(event.frames)))
            await receiver  # it has ended: at the client's end, an error or a disconnect
            if self.error is not None:
                raise self.error
            if conn.outcome == "ok":
                await self._close_normally()
        except Audio2FaceError as exc:
            await self._fail(exc)
        except (TimeoutError, WebSocketDisconnect, WebSocketDisconnected, OSError):
            conn.outcome = "disconnected"  # the client left while frames were sent
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
            conn.state.tasks.discard(receiver)

    async def _send_frames(self, batch: FrameBatch) -> None:
        if len(batch) == 0:
            return
        if self.start.output == "binary":
            await self.conn.send_bytes(encode_frames_binary(batch.first_frame, batch.values))
        else:
            await self.conn.send_text(encode_frames_json(batch.first_frame, batch.values))

    def _ready(self, runner: StreamRunner) -> ReadyReply:
        start = self.start
        return ReadyReply(
            names=runner.names, fps=runner.fps, lookahead_ms=runner.lookahead_s * 1000.0,
            profile=runner.profile, engine=runner.engine, sample_rate=start.sample_rate,
            encoding=start.encoding, output=start.output,
            emotions=runner.emotion_names, stream_id=self.conn.stream_id,
        )  # fmt: skip

    async def _close_normally(self) -> None:
        ws = self.conn.ws
        with contextlib.suppress(RuntimeError, OSError, TimeoutError, WebSocketDisconnect):
            await asyncio.wait_for(ws.close(code=1000, reason="end"), timeout=CLOSE_TIMEOUT_S)

    async def _receive_loop(self, runner: StreamRunner) -> None:
        """Feed the runner until ``end``; on any problem stop the input, never raise."""
        settings = self.conn.settings
        start = self.start
        max_samples = int(settings.max_utterance_s * start.sample_rate)
        min_samples = int(settings.min_body_s * start.sample_rate)
        held = HeldAudio()  # short bodies joined before they reach the engine
        position = 0  # samples received on this stream
        utterance = 0  # samples since the last flush or interrupt
        try:
            while True:
                message = await self.conn.receive()
                data = message.get("bytes")
                if data is not None:
                    audio = decode_pcm_v2(data, start.encoding, start.channels)
                    if audio.shape[0] == 0:
                        continue  # nothing to animate, and no audio to keep the slot
                    utterance += audio.shape[0]
                    if utterance > max_samples:
                        raise LimitExceededError(
                            f"utterance longer than max_utterance_s={settings.max_utterance_s:g}; "
                            'send {"type": "flush"} between utterances',
                            limit="max_utterance_s", value=settings.max_utterance_s,
                        )  # fmt: skip
                    held.add(audio, None)
                    if held.samples >= min_samples:
                        await _push(runner, held.take())
                    position += audio.shape[0]
                    # After the push, which may wait on backpressure: waiting is not idling.
                    self.conn.note_audio(audio.shape[0] / start.sample_rate)
                    continue
                await _push(runner, held.take())  # control messages keep their order
                msg = parse_client_message(message.get("text") or "")
                if isinstance(msg, EmotionMessage):
                    self.conn.check_name("emotion", msg.emotion.name or "")
                    await _key(runner, position, start.sample_rate, msg.emotion)
                elif isinstance(msg, FlushMessage):
                    await runner.flush()
                    utterance = 0
                elif isinstance(msg, InterruptMessage):
                    await runner.interrupt()
                    utterance = 0
                elif isinstance(msg, EndMessage):
                    await runner.finish()
                    return
                else:
                    raise ProtocolError("a second start on the same connection")
        except WebSocketDisconnect:
            self.conn.outcome = "disconnected"
            await runner.abort()
        except Exception as exc:
            self.error = exc if isinstance(exc, Audio2FaceError) else self.conn.bug("receive")
            # Deliver what the accepted audio is worth before the error is reported.
            with contextlib.suppress(StreamClosedError):
                await _push(runner, held.take())
                await runner.finish()


async def _push(runner: StreamRunner, run: tuple[FloatArray, str | None] | None) -> None:
    if run is not None:
        await runner.push(*run)


async def _key(
    runner: StreamRunner, position: int, rate: int, spec: EmotionSpec, *, ramp: bool = True
) -> None:
    """An emotion message as a timed key at the current audio position: the chain eases
    from whatever it shows to ``spec`` over ``ramp_s``, blending intensity levels."""
    neutral = spec.name is None or spec.name == "neutral" or spec.intensity <= 0.0
    await runner.key_emotion(
        position / rate, "neutral" if neutral else str(spec.name),
        1.0 if neutral else spec.intensity, spec.ramp_s if ramp else 0.0,
    )  # fmt: skip


# --- discovery ----------------------------------------------------------------------------

V2_INFO_PATH = "/api/v2/info"


async def v2_info(request: Request) -> JSONResponse:
    """What a v2 client may ask for: usable profiles with their channels and emotions,
    accepted rates and encodings. Protected like every HTTP route when auth is on."""
    state: ServerState = request.app.state.a2f
    runtime = state.runtime
    if runtime is None:
        return JSONResponse({"detail": "not ready"}, status_code=503)
    profiles = []
    for name in runtime.profiles.usable():
        profile = runtime.profiles.get(name)
        engine = runtime.engine_for(profile)
        profiles.append({
            "name": profile.name, "engine": profile.engine, "fps": profile.fps,
            "aliases": list(profile.aliases),
            "names": list(profile.build_chain(engine.output_names).output_names),
            "emotions": emotion_names(profile.build_chain(engine.output_names).emotions),
        })  # fmt: skip
    settings = state.settings
    return JSONResponse({
        "protocol": 2, "path": V2_PATH, "default_profile": runtime.profiles.default.name,
        "profiles": profiles, "sample_rates": list(settings.accepted_sample_rates),
        "encodings": list(ENCODINGS), "outputs": list(OUTPUTS),
        "auth": settings.auth_token is not None,
    })  # fmt: skip
