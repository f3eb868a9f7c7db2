"""``POST /api/v1/animate``: animate a whole audio file over plain HTTP.

For batch jobs and tools that do not want a WebSocket. The file is the raw request
body (``curl --data-binary @speech.wav``) or the one file field of a
``multipart/form-data`` form (``curl -F file=@speech.wav``); any rate, width and
channel count soundfile reads. The response is the frames as JSON (default), ``.npz``
or Live Link Face CSV. Query parameters: ``profile``, ``emotion`` and ``format``
(``json`` | ``npz`` | ``csv``). Unknown profiles and emotions are refused (400) with
the known ones. The clip runs through a stream runner, exactly as a WebSocket stream.
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
from starlette.datastructures import UploadFile

from audio2face.audio.wav import read_audio
from audio2face.errors import Audio2FaceError, AudioFormatError, UnknownNameError
from audio2face.formats import save_frames
from audio2face.server.state import ServerState
from audio2face.settings import Settings
from audio2face.types import FloatArray, FrameBatch

ANIMATE_PATH = "/api/v1/animate"
MEDIA_TYPES = {"json": "application/json", "npz": "application/octet-stream", "csv": "text/csv"}
HOW_TO_SEND = (
    "send the file as the raw request body (curl --data-binary @speech.wav) or as the one "
    "file field of a multipart/form-data form (curl -F file=@speech.wav)"
)

logger = logging.getLogger("audio2face.server.http")


class _TooLarge(Exception):
    pass


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
    # Count the upload before its body is read: concurrent uploads must not all pass
    # the check and then exceed max_streams together.
    if len(state.streams) + state.uploads >= settings.max_streams:
        state.metrics.refusals.labels(limit="max_streams").inc()
        return _error(503, f"too many concurrent streams (max_streams={settings.max_streams})")
    state.uploads += 1
    try:
        return await _animate(request, state, fmt)
    finally:
        state.uploads -= 1


async def _animate(request: Request, state: ServerState, fmt: str) -> Response:
    settings = state.settings
    runtime = state.runtime
    if runtime is None:  # checked by the route; the runtime never goes away
        return _error(503, "the service is not ready")
    try:
        data = await _upload(request, settings.max_upload_bytes)
    except _TooLarge:
        state.metrics.refusals.labels(limit="max_upload_bytes").inc()
        return _error(413, f"upload exceeds max_upload_bytes={settings.max_upload_bytes}")
    except AudioFormatError as exc:
        return _error(400, exc.reason)
    try:
        profile = runtime.profile(request.query_params.get("profile"))
        audio, rate = await asyncio.to_thread(_decode, data, settings)
        batch = await runtime.animate(
            audio, rate, profile, emotion=request.query_params.get("emotion") or None
        )
        payload = await asyncio.to_thread(_encode, batch, fmt)
    except (UnknownNameError, AudioFormatError) as exc:
        state.metrics.errors.labels(kind=type(exc).__name__).inc()
        return _error(400, exc.reason)
    except Audio2FaceError as exc:
        state.metrics.errors.labels(kind=type(exc).__name__).inc()
        return _error(500, exc.reason)
    except ValueError as exc:  # e.g. CSV asked of a non-ARKit profile
        return _error(400, str(exc))
    return Response(payload, media_type=MEDIA_TYPES[fmt])


async def _upload(request: Request, limit: int) -> bytes:
    """The uploaded file's bytes: the raw body, or a multipart form's one file."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=8, max_fields=8, max_part_size=limit)
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        if len(files) != 1:
            raise AudioFormatError(f"the form holds {len(files)} files, expected one; {HOW_TO_SEND}")
        data = await files[0].read(limit + 1)
    else:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _TooLarge
        data = bytes(body)
    if len(data) > limit:
        raise _TooLarge
    if not data:
        raise AudioFormatError(f"the request holds no audio; {HOW_TO_SEND}")
    return data


def _decode(data: bytes, settings: Settings) -> tuple[FloatArray, int]:
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError):
        raise AudioFormatError(
            "the uploaded body is not an audio file soundfile can read (WAV, FLAC, OGG/Vorbis, "
            f"MP3, ...); {HOW_TO_SEND}"
        ) from None
    if info.duration > settings.max_utterance_s:
        raise AudioFormatError(
            f"audio of {info.duration:.1f} s exceeds max_utterance_s={settings.max_utterance_s:g}"
        )
    return read_audio(io.BytesIO(data), name="the request body")


def _encode(batch: FrameBatch, fmt: str) -> bytes:
    # The formats write to paths (their extension picks the writer).
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"out.{fmt}"
        save_frames(out, batch)
        return out.read_bytes()
