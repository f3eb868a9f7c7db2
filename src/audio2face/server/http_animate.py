"""``POST /api/v1/animate``: animate a whole audio file over plain HTTP.

For batch jobs and tools that do not want a WebSocket: the request body is an audio
file (WAV, FLAC, OGG; any rate, width and channel count soundfile reads), the response
is the frames as JSON (default), ``.npz`` or Live Link Face CSV. Query parameters:
``profile``, ``emotion`` and ``format`` (``json`` | ``npz`` | ``csv``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
from pathlib import Path

import soundfile as sf
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from audio2face.audio.wav import read_audio
from audio2face.errors import Audio2FaceError, AudioFormatError
from audio2face.formats import save_frames
from audio2face.server.state import ServerState

ANIMATE_PATH = "/api/v1/animate"
MEDIA_TYPES = {"json": "application/json", "npz": "application/octet-stream", "csv": "text/csv"}

logger = logging.getLogger("audio2face.server.http")


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def animate(request: Request) -> Response:
    state: ServerState = request.app.state.a2f
    settings = state.settings
    runtime = state.runtime
    fmt = request.query_params.get("format", "json")
    if fmt not in MEDIA_TYPES:
        return _error(400, f"format must be one of {sorted(MEDIA_TYPES)}")
    if runtime is None or state.draining:
        return _error(503, "the service is not ready or is shutting down; try again later")
    if len(state.streams) + state.uploads >= settings.max_streams:
        state.metrics.refusals.labels(limit="max_streams").inc()
        return _error(503, f"too many concurrent streams (max_streams={settings.max_streams})")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_upload_bytes:
        state.metrics.refusals.labels(limit="max_upload_bytes").inc()
        return _error(413, f"upload exceeds max_upload_bytes={settings.max_upload_bytes}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.max_upload_bytes:
            state.metrics.refusals.labels(limit="max_upload_bytes").inc()
            return _error(413, f"upload exceeds max_upload_bytes={settings.max_upload_bytes}")
    state.uploads += 1
    try:
        payload = await asyncio.get_running_loop().run_in_executor(
            runtime.executor, _animate_bytes, state, bytes(body),
            request.query_params.get("profile"), request.query_params.get("emotion") or None, fmt,
        )  # fmt: skip
    except Audio2FaceError as exc:
        state.metrics.errors.labels(kind=type(exc).__name__).inc()
        status = 400 if isinstance(exc, AudioFormatError) else 500
        return _error(status, exc.reason)
    except ValueError as exc:  # e.g. CSV asked of a non-ARKit profile
        return _error(400, str(exc))
    finally:
        state.uploads -= 1
    return Response(payload, media_type=MEDIA_TYPES[fmt])


def _animate_bytes(
    state: ServerState, data: bytes, profile: str | None, emotion: str | None, fmt: str
) -> bytes:
    runtime = state.runtime
    if runtime is None:  # pragma: no cover - checked by the route
        raise RuntimeError("runtime not started")
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"the request body is not a readable audio file: {exc}") from None
    if info.duration > state.settings.max_utterance_s:
        raise AudioFormatError(
            f"audio of {info.duration:.1f} s exceeds max_utterance_s="
            f"{state.settings.max_utterance_s:g}"
        )
    audio, rate = read_audio(io.BytesIO(data))
    batch = runtime.convert(audio, rate, profile, emotion=emotion)
    state.metrics.audio_seconds_in.inc(audio.shape[0] / rate)
    state.metrics.frames_out.inc(len(batch))
    # The formats write to paths (their extension picks the writer).
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"out.{fmt}"
        save_frames(out, batch)
        return out.read_bytes()
