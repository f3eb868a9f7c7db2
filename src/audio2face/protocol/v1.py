"""Protocol v1 messages: decoding requests and encoding responses.

See ``docs/protocol.md``. The schema is ``audio2face_v1.proto``; the generated module
``audio2face_v1_pb2`` is committed so the runtime needs no protoc.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError

from audio2face.audio.pcm import PcmFormat
from audio2face.errors import ProtocolError
from audio2face.protocol.audio2face_v1_pb2 import (
    Audio2FaceBlendshapeV1Request as Request,
)
from audio2face.protocol.audio2face_v1_pb2 import (
    Audio2FaceBlendshapeV1Response as Response,
)
from audio2face.types import FloatArray

__all__ = [
    "DTYPES",
    "RequestKind",
    "Request",
    "Response",
    "ResponseKind",
    "StartOptions",
    "decode_request",
    "encode_body",
    "encode_end",
    "encode_start",
    "parse_start",
]

DTYPES: dict[str, np.dtype] = {"float16": np.dtype("<f2"), "float32": np.dtype("<f4")}
"""The only two dtype spellings clients parse."""


class RequestKind(enum.StrEnum):
    START = "StreamingAudio2FaceV1ChunkStart"
    BODY = "StreamingAudio2FaceV1ChunkBody"
    END = "StreamingAudio2FaceV1ChunkEnd"


class ResponseKind(enum.StrEnum):
    START = "Audio2FaceV1ResponseChunkStart"
    BODY = "Audio2FaceV1ResponseChunkBody"
    END = "Audio2FaceV1ResponseChunkEnd"


def decode_request(frame: bytes) -> tuple[RequestKind, Request]:
    """Parse one binary WebSocket frame; raise :class:`ProtocolError` if it is not v1."""
    msg = Request()
    try:
        msg.ParseFromString(frame)
    except DecodeError as exc:
        raise ProtocolError(
            f"undecodable frame: not an Audio2FaceBlendshapeV1Request protobuf ({exc})"
        ) from exc
    try:
        kind = RequestKind(msg.class_name)
    except ValueError:
        raise ProtocolError(
            f"unknown class_name {msg.class_name[:80]!r}; expected one of "
            f"{[k.value for k in RequestKind]}"
        ) from None
    return kind, msg


@dataclass(frozen=True, slots=True)
class StartOptions:
    """What a valid ChunkStart asks for."""

    fmt: PcmFormat
    chunk_frames: int
    profile_name: str


def parse_start(
    msg: Request, accepted_rates: tuple[int, ...], default_chunk_frames: int
) -> StartOptions:
    """Validate a ChunkStart; raise :class:`ProtocolError` or
    :class:`~audio2face.errors.AudioFormatError` naming the allowed values."""
    fmt = PcmFormat(msg.sample_rate, msg.sample_width, msg.n_channels)
    fmt.validate(accepted_rates)
    if msg.response_chunk_n_frames < 0:
        raise ProtocolError(
            f"response_chunk_n_frames must be >= 0 (0 means the default "
            f"{default_chunk_frames}), got {msg.response_chunk_n_frames}"
        )
    return StartOptions(
        fmt=fmt,
        chunk_frames=msg.response_chunk_n_frames or default_chunk_frames,
        profile_name=msg.profile_name,
    )


def encode_start(names: tuple[str, ...] | list[str], dtype: str) -> bytes:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, not {dtype!r}")
    return Response(
        class_name=ResponseKind.START, blendshape_names=list(names), dtype=dtype
    ).SerializeToString()


def encode_body(values: FloatArray, dtype: str) -> bytes:
    """Row-major little-endian ``[n_frames, n_channels]`` in ``dtype``."""
    data = np.ascontiguousarray(values, dtype=DTYPES[dtype]).tobytes()
    return Response(class_name=ResponseKind.BODY, dtype=dtype, data=data).SerializeToString()


def encode_end() -> bytes:
    return Response(class_name=ResponseKind.END).SerializeToString()
