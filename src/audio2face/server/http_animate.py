"""``POST /api/v1/animate``: animate a whole audio file over plain HTTP.

For batch jobs and tools that do not want a WebSocket. The file is the raw request
body with an audio content type (``curl -H 'Content-Type: audio/wav' --data-binary
@speech.wav``) or the one file field of a ``multipart/form-data`` form (``curl -F
file=@speech.wav``). The response is the frames as JSON (default), ``.npz`` or Live
Link Face CSV. Query parameters: ``profile``, ``emotion`` and ``format`` (``json`` |
``npz`` | ``csv``). Unknown profiles and emotions are refused (400) with the known
ones. The clip runs through a stream runner, exactly as a WebSocket stream.

What a hostile upload could cost is bounded before anything is decoded:

* a body content type other than audio (``text/plain``, a form) is refused (415): a
  page on another site can send those without asking (CORS does not stop a "simple"
  request), and then it would run on a visitor's machine;
* the container must be one of ``upload_formats`` (WAV, FLAC, OGG by default), the
  rate one of ``accepted_sample_rates``, the channels one of ``upload_channels``,
  and channels x rate x seconds at most ``max_upload_samples`` (a 356 KB FLAC can
  hold 900 s of 8-channel 48 kHz audio: 1.4 GB once decoded);
* decoding runs in blocks mixed down to mono as they come, so memory is the mono
  clip, not all its channels;
* an upload counts against ``max_streams`` before its body is read, and at most
  ``max_uploads`` are decoded and animated at once (``max_upload_queue`` more wait;
  beyond, 503), so uploads cannot take the inference from live streams.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from audio2face.errors import Audio2FaceError, AudioFormatError, UnknownNameError
from audio2face.formats import save_frames
from audio2face.server.state import ServerState
from audio2face.settings import Settings
from audio2face.types import FloatArray, FrameBatch

ANIMATE_PATH = "/api/v1/animate"
MEDIA_TYPES = {"json": "application/json", "npz": "application/octet-stream", "csv": "text/csv"}
HOW_TO_SEND = (
    "send the file as the raw request body with an audio content type "
    "(curl -H 'Content-Type: audio/wav' --data-binary @speech.wav) or as the one "
    "file field of a multipart/form-data form (curl -F file=@speech.wav)"
)
BODY_TYPES = ("audio/", "application/octet-stream", "multipart/form-data")
"""Content types a request may carry (a missing one too, for tools that send none)."""
DECODE_BLOCK = 1 << 16
"""Sample frames decoded at a time, before mixing down to mono."""

logger = logging.getLogger("audio2face.server.http")


class _TooLarge(Exception):
    pass


class _Refused(Exception):
    """An upload refused with an HTTP status before it was decoded."""

    def __init__(self, status: int, detail: str, limit: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.limit = limit


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
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and not content_type.startswith(BODY_TYPES):
        state.metrics.refusals.labels(limit="content_type").inc()
        return _error(415, f"content type {content_type[:60]!r} is not audio; {HOW_TO_SEND}")
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
        profile = runtime.profile(_name(request, "profile", settings))
        emotion = _name(request, "emotion", settings)
        info = await asyncio.to_thread(_check, data, settings)
        if state.uploads_waiting >= settings.max_upload_queue and state.upload_slots.locked():
            raise _Refused(
                503,
                f"too many uploads waiting (max_uploads={settings.max_uploads}, "
                f"max_upload_queue={settings.max_upload_queue}); try again later",
                "max_upload_queue",
            )
        state.uploads_waiting += 1
        try:
            await state.upload_slots.acquire()
        finally:
            state.uploads_waiting -= 1
        try:
            audio, rate = await asyncio.to_thread(_decode, data, info)
            batch = await runtime.animate(audio, rate, profile, emotion=emotion or None)
            state.add_audio_done(profile.engine, audio.shape[0] / rate)
        finally:
            state.upload_slots.release()
        payload = await asyncio.to_thread(_encode, batch, fmt)
    except _Refused as exc:
        if exc.limit is not None:
            state.metrics.refusals.labels(limit=exc.limit).inc()
        return _error(exc.status, exc.detail)
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
            raise AudioFormatError(
                f"the form holds {len(files)} files, expected one; {HOW_TO_SEND}"
            )
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


def _name(request: Request, key: str, settings: Settings) -> str | None:
    value = request.query_params.get(key)
    if value is not None and len(value) > settings.max_name_chars:
        raise _Refused(
            400,
            f"{key} of {len(value)} characters is longer than "
            f"max_name_chars={settings.max_name_chars}",
            "max_name_chars",
        )
    return value


def _check(data: bytes, settings: Settings) -> sf._SoundFileInfo:
    """The upload's header, checked against every bound before a sample is decoded."""
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError):
        raise AudioFormatError(
            f"the uploaded body is not an audio file in a format accepted here "
            f"({', '.join(settings.upload_formats)}); {HOW_TO_SEND}"
        ) from None
    if info.format not in settings.upload_formats:
        raise _Refused(
            415,
            f"{info.format} files are not accepted here; accepted formats: "
            f"{', '.join(settings.upload_formats)} (upload_formats)",
            "upload_formats",
        )
    if info.samplerate not in settings.accepted_sample_rates:
        raise AudioFormatError(
            f"sample rate {info.samplerate} is not supported; accepted rates are "
            f"{list(settings.accepted_sample_rates)}"
        )
    if info.channels not in settings.upload_channels:
        raise AudioFormatError(
            f"{info.channels} channels are not accepted; upload_channels is "
            f"{list(settings.upload_channels)} (mix down first)"
        )
    if info.duration > settings.max_utterance_s:
        raise AudioFormatError(
            f"audio of {info.duration:.1f} s exceeds max_utterance_s={settings.max_utterance_s:g}"
        )
    samples = info.frames * info.channels
    if samples > settings.max_upload_samples:
        raise _Refused(
            413,
            f"audio of {samples} samples ({info.channels} channels x {info.samplerate} Hz x "
            f"{info.duration:.1f} s) exceeds max_upload_samples={settings.max_upload_samples}",
            "max_upload_samples",
        )
    return info


def _decode(data: bytes, info: sf._SoundFileInfo) -> tuple[FloatArray, int]:
    """Mono float32, decoded ``DECODE_BLOCK`` frames at a time: memory stays at the
    mono clip whatever the channel count."""
    mono = np.empty(info.frames, np.float32)
    filled = 0
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            for block in f.blocks(DECODE_BLOCK, dtype="float32", always_2d=True):
                n = min(block.shape[0], mono.shape[0] - filled)
                if n <= 0:
                    break  # more frames than the header said: keep what it declared
                mono[filled : filled + n] = block[:n].mean(axis=1)
                filled += n
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"the uploaded audio cannot be decoded: {exc}") from None
    mono = mono[:filled]
    if not np.isfinite(mono).all():
        raise AudioFormatError("the uploaded audio holds non-finite samples (NaN or infinity)")
    return mono, int(info.samplerate)


def _encode(batch: FrameBatch, fmt: str) -> bytes:
    # The formats write to paths (their extension picks the writer).
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"out.{fmt}"
        save_frames(out, batch)
        return out.read_bytes()
