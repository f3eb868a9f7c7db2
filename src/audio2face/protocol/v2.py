"""Protocol v2: typed messages, JSON parsing with clear errors, and the binary frame format.

Text messages are JSON objects with a ``type``; binary messages are raw PCM from the
client and, with ``output: "binary"``, frame blocks from the server. See
``docs/protocol-v2.md`` for the exchange; this module only encodes and decodes, so the
transport (``server/ws_v2.py``) and the Python client (``client_v2.py``) share it.

Every parse error is a :class:`~audio2face.errors.ProtocolError` (close 1008) whose
reason names the message, the field and what is allowed.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from audio2face.errors import ProtocolError
from audio2face.types import FloatArray

__all__ = [
    "CLIENT_TYPES",
    "ENCODINGS",
    "EncodingName",
    "OutputName",
    "EmotionSpec",
    "FRAME_HEADER",
    "FRAME_MAGIC",
    "JSON_DECIMALS",
    "OUTPUTS",
    "SERVER_TYPES",
    "ClientMessage",
    "EmotionMessage",
    "EndMessage",
    "EndReply",
    "ErrorReply",
    "FlushMessage",
    "FlushedReply",
    "FramesReply",
    "InterruptMessage",
    "InterruptedReply",
    "ReadyReply",
    "ServerMessage",
    "StartMessage",
    "decode_frames_binary",
    "decode_pcm_v2",
    "encode",
    "encode_frames_binary",
    "encode_frames_json",
    "parse_client_message",
    "parse_server_message",
]

EncodingName = Literal["pcm_s16le", "pcm_f32le"]
OutputName = Literal["json", "binary"]
ENCODINGS: Final[tuple[str, ...]] = ("pcm_s16le", "pcm_f32le")
OUTPUTS: Final[tuple[str, ...]] = ("json", "binary")
SAMPLE_BYTES: Final[Mapping[str, int]] = {"pcm_s16le": 2, "pcm_f32le": 4}

FRAME_MAGIC: Final = b"A2F2"
"""First 4 bytes of a binary frame block (ASCII ``A2F2``: audio2face, protocol 2)."""
FRAME_HEADER: Final = struct.Struct("<4sIII")
"""Magic, first frame index, frame count, channel count: 16 bytes, little-endian; the
float32 values follow, row-major, so they start 4-byte aligned (a ``Float32Array`` view
needs no copy)."""
JSON_DECIMALS: Final = 5
"""JSON frame values are rounded to this many decimals (1e-5 of full scale, far below
what a face shows); it keeps a frame of 52 values near 400 bytes. Binary is exact."""
MAX_CHANNELS: Final = 8
DEFAULT_RATE: Final = 16000


# --- client -> server ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmotionSpec:
    """An emotion and how strongly it shows; ``name=None`` or intensity 0 is neutral."""

    name: str | None = None
    intensity: float = 1.0
    ramp_s: float = 0.0


@dataclass(frozen=True, slots=True)
class StartMessage:
    type: Literal["start"] = "start"
    sample_rate: int = DEFAULT_RATE
    encoding: EncodingName = "pcm_s16le"
    channels: int = 1
    profile: str | None = None
    output: OutputName = "json"
    emotion: EmotionSpec | None = None
    token: str | None = None
    fps: float | None = None
    """Output frame rate; ``None``: the profile's (30). Engines that cannot run at it
    are resampled, with the same frame clock."""

    @property
    def sample_bytes(self) -> int:
        return SAMPLE_BYTES[self.encoding]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "start", "sample_rate": self.sample_rate, "encoding": self.encoding,
            "channels": self.channels, "profile": self.profile, "output": self.output,
            "emotion": None, "token": self.token,
        }  # fmt: skip
        if self.fps is not None:
            out["fps"] = self.fps
        if self.emotion is not None:
            out["emotion"] = _emotion_json(self.emotion)
        return out


@dataclass(frozen=True, slots=True)
class EmotionMessage:
    """Change the emotion at the current audio position, easing in over ``ramp_s``."""

    emotion: EmotionSpec
    type: Literal["emotion"] = "emotion"

    def to_json(self) -> dict[str, Any]:
        return {"type": "emotion", **_emotion_json(self.emotion)}


@dataclass(frozen=True, slots=True)
class FlushMessage:
    type: Literal["flush"] = "flush"

    def to_json(self) -> dict[str, Any]:
        return {"type": "flush"}


@dataclass(frozen=True, slots=True)
class InterruptMessage:
    type: Literal["interrupt"] = "interrupt"

    def to_json(self) -> dict[str, Any]:
        return {"type": "interrupt"}


@dataclass(frozen=True, slots=True)
class EndMessage:
    type: Literal["end"] = "end"

    def to_json(self) -> dict[str, Any]:
        return {"type": "end"}


ClientMessage = StartMessage | EmotionMessage | FlushMessage | InterruptMessage | EndMessage


# --- server -> client ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadyReply:
    names: tuple[str, ...]
    fps: float
    lookahead_ms: float
    profile: str
    engine: str
    sample_rate: int
    encoding: str
    output: str
    emotions: tuple[str, ...] = ()
    stream_id: str = ""
    type: Literal["ready"] = "ready"

    def to_json(self) -> dict[str, Any]:
        fps: float | int = int(self.fps) if float(self.fps).is_integer() else self.fps
        return {
            "type": "ready", "names": list(self.names), "fps": fps,
            "lookahead_ms": round(self.lookahead_ms, 3), "profile": self.profile,
            "engine": self.engine, "sample_rate": self.sample_rate, "encoding": self.encoding,
            "output": self.output, "emotions": list(self.emotions), "stream_id": self.stream_id,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class FramesReply:
    """Frames ``first .. first + len(values) - 1``; row ``k`` shows ``(first + k) / fps``."""

    first: int
    values: FloatArray
    type: Literal["frames"] = "frames"

    def to_json(self) -> dict[str, Any]:
        return {"type": "frames", "first": self.first, "values": _rounded(self.values)}


@dataclass(frozen=True, slots=True)
class FlushedReply:
    frames: int
    type: Literal["flushed"] = "flushed"

    def to_json(self) -> dict[str, Any]:
        return {"type": "flushed", "frames": self.frames}


@dataclass(frozen=True, slots=True)
class InterruptedReply:
    frame: int
    type: Literal["interrupted"] = "interrupted"

    def to_json(self) -> dict[str, Any]:
        return {"type": "interrupted", "frame": self.frame}


@dataclass(frozen=True, slots=True)
class EndReply:
    frames: int
    type: Literal["end"] = "end"

    def to_json(self) -> dict[str, Any]:
        return {"type": "end", "frames": self.frames}


@dataclass(frozen=True, slots=True)
class ErrorReply:
    code: int
    message: str
    type: Literal["error"] = "error"

    def to_json(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message}


ServerMessage = ReadyReply | FramesReply | FlushedReply | InterruptedReply | EndReply | ErrorReply

CLIENT_TYPES: Final[tuple[str, ...]] = ("start", "emotion", "flush", "interrupt", "end")
SERVER_TYPES: Final[tuple[str, ...]] = (
    "ready", "frames", "flushed", "interrupted", "end", "error",
)  # fmt: skip


def encode(message: ClientMessage | ServerMessage) -> str:
    """A message as the JSON text that goes on the wire."""
    return json.dumps(message.to_json(), ensure_ascii=False, separators=(",", ":"))


def _emotion_json(e: EmotionSpec) -> dict[str, Any]:
    return {"name": e.name, "intensity": e.intensity, "ramp_s": e.ramp_s}


def _rounded(values: FloatArray) -> list[list[float]]:
    # Rounding in float64 makes the shortest repr short ("0.12346"), where float32's
    # widened to float64 would print 17 digits.
    rows: list[list[float]] = np.round(values.astype(np.float64), JSON_DECIMALS).tolist()
    return rows


# --- parsing -----------------------------------------------------------------------------


class _Fields:
    """Reads the fields of one JSON object, naming the message in every error."""

    def __init__(self, kind: str, obj: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        self.kind = kind
        self.obj = obj
        unknown = sorted(set(obj) - set(allowed) - {"type"})
        if unknown:
            raise ProtocolError(f"{kind}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")

    def _fail(self, name: str, what: str) -> ProtocolError:
        shown = json.dumps(self.obj.get(name))[:40]
        return ProtocolError(f"{self.kind}.{name} must be {what}, got {shown}")

    def int_(self, name: str, default: int, lo: int, hi: int) -> int:
        v = self.obj.get(name)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self._fail(name, f"an integer from {lo} to {hi}")
        return v

    def float_(self, name: str, default: float, lo: float, hi: float) -> float:
        v = self.obj.get(name)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise self._fail(name, f"a number from {lo:g} to {hi:g}")
        if not lo <= v <= hi:
            raise self._fail(name, f"a number from {lo:g} to {hi:g}")
        return float(v)

    def str_(self, name: str, max_len: int = 256) -> str | None:
        v = self.obj.get(name)
        if v is None:
            return None
        if not isinstance(v, str) or len(v) > max_len:
            raise self._fail(name, f"a string of at most {max_len} characters, or null")
        return v or None

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        v = self.obj.get(name)
        if v is None:
            return choices[0]
        if v not in choices:
            raise self._fail(name, f"one of {list(choices)}")
        return str(v)


MAX_RAMP_S: Final = 10.0
_EMOTION_FIELDS = ("name", "intensity", "ramp_s")


def _emotion(kind: str, obj: Mapping[str, Any]) -> EmotionSpec:
    f = _Fields(kind, obj, _EMOTION_FIELDS)
    return EmotionSpec(
        name=f.str_("name", 64),
        intensity=f.float_("intensity", 1.0, 0.0, 1.0),
        ramp_s=f.float_("ramp_s", 0.0, 0.0, MAX_RAMP_S),
    )


MAX_FPS = 240.0
"""Highest frame rate a v2 stream may ask for (``Runtime.open_stream`` takes the same)."""


def _parse_start(obj: Mapping[str, Any]) -> StartMessage:
    f = _Fields(
        "start", obj,
        ("sample_rate", "encoding", "channels", "profile", "output", "emotion", "token", "fps"),
    )  # fmt: skip
    emotion_raw = obj.get("emotion")
    emotion: EmotionSpec | None
    if emotion_raw is None:
        emotion = None
    elif isinstance(emotion_raw, str):
        emotion = EmotionSpec(name=emotion_raw or None)
    elif isinstance(emotion_raw, dict):
        emotion = _emotion("start.emotion", emotion_raw)
    else:
        raise ProtocolError('start.emotion must be null, a name or {"name": ..., "intensity": ...}')
    return StartMessage(
        sample_rate=f.int_("sample_rate", DEFAULT_RATE, 1, 1_000_000),
        encoding=f.choice("encoding", ENCODINGS),  # type: ignore[arg-type]  # checked: one of ENCODINGS
        channels=f.int_("channels", 1, 1, MAX_CHANNELS),
        profile=f.str_("profile", 128),
        output=f.choice("output", OUTPUTS),  # type: ignore[arg-type]  # checked: one of OUTPUTS
        emotion=emotion,
        token=f.str_("token", 4096),
        fps=f.float_("fps", 0.0, 1.0, MAX_FPS) or None,
    )


def _parse_empty(
    kind: str, make: Callable[[], ClientMessage]
) -> Callable[[Mapping[str, Any]], ClientMessage]:
    def parse(obj: Mapping[str, Any]) -> ClientMessage:
        _Fields(kind, obj, ())
        return make()

    return parse


_CLIENT_PARSERS: dict[str, Callable[[Mapping[str, Any]], ClientMessage]] = {
    "start": _parse_start,
    "emotion": lambda obj: EmotionMessage(_emotion("emotion", obj)),
    "flush": _parse_empty("flush", FlushMessage),
    "interrupt": _parse_empty("interrupt", InterruptMessage),
    "end": _parse_empty("end", EndMessage),
}


def _load_object(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise ProtocolError(f"text message is not valid JSON ({msg}); send a JSON object") from None
    if not isinstance(obj, dict):
        raise ProtocolError(
            f"text message must be a JSON object with a type, got {type(obj).__name__}"
        )
    return obj


def parse_client_message(text: str) -> ClientMessage:
    """Parse one text message from a client; raises :class:`ProtocolError`."""
    obj = _load_object(text)
    kind = obj.get("type")
    parser = _CLIENT_PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        shown = json.dumps(kind)[:40]
        raise ProtocolError(f"unknown message type {shown}; known: {list(CLIENT_TYPES)}")
    return parser(obj)


def parse_server_message(text: str) -> ServerMessage:
    """Parse one text message from a server (the client's side); raises
    :class:`ProtocolError` for anything that is not v2."""
    obj = _load_object(text)
    kind = obj.get("type")
    try:
        if kind == "frames":
            values = np.asarray(obj["values"], dtype=np.float32)
            if values.size == 0:
                values = values.reshape(0, 0)
            if values.ndim != 2:
                raise ValueError("values must be a list of rows")
            return FramesReply(int(obj["first"]), values)
        if kind == "ready":
            return ReadyReply(
                names=tuple(obj["names"]), fps=float(obj["fps"]),
                lookahead_ms=float(obj["lookahead_ms"]), profile=str(obj["profile"]),
                engine=str(obj["engine"]), sample_rate=int(obj.get("sample_rate", DEFAULT_RATE)),
                encoding=str(obj.get("encoding", "pcm_s16le")),
                output=str(obj.get("output", "json")),
                emotions=tuple(obj.get("emotions", ())), stream_id=str(obj.get("stream_id", "")),
            )  # fmt: skip
        if kind == "flushed":
            return FlushedReply(int(obj["frames"]))
        if kind == "interrupted":
            return InterruptedReply(int(obj["frame"]))
        if kind == "end":
            return EndReply(int(obj["frames"]))
        if kind == "error":
            return ErrorReply(int(obj["code"]), str(obj["message"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed {kind} message from the server: {exc}") from None
    raise ProtocolError(f"unknown server message type {json.dumps(kind)[:40]}")


# --- binary ------------------------------------------------------------------------------


def decode_pcm_v2(data: bytes, encoding: str, channels: int = 1) -> FloatArray:
    """Raw PCM bytes in ``encoding`` to mono float32; a byte count that is not whole
    sample frames is a :class:`ProtocolError`. Channels are averaged."""
    width = SAMPLE_BYTES[encoding] * channels
    if len(data) % width:
        raise ProtocolError(
            f"binary message of {len(data)} bytes is not whole {encoding} sample frames "
            f"({width} bytes each for {channels} channel(s))"
        )
    if encoding == "pcm_s16le":
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) * (1.0 / 32768.0)
    else:
        samples = np.frombuffer(data, dtype="<f4").astype(np.float32)
        if not np.isfinite(samples).all():
            raise ProtocolError("pcm_f32le audio holds NaN or infinite samples")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return samples


def encode_frames_binary(first: int, values: FloatArray) -> bytes:
    """One binary frame block: :data:`FRAME_HEADER` then float32 little-endian rows."""
    n, c = values.shape
    body = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return FRAME_HEADER.pack(FRAME_MAGIC, first, n, c) + body


def encode_frames_json(first: int, values: FloatArray) -> str:
    """One ``frames`` text message."""
    return encode(FramesReply(first, values))


def decode_frames_binary(data: bytes) -> FramesReply:
    """Parse a binary frame block; raises :class:`ProtocolError` if it is not one."""
    if len(data) < FRAME_HEADER.size:
        raise ProtocolError(f"binary frame block of {len(data)} bytes is shorter than its header")
    magic, first, n, c = FRAME_HEADER.unpack_from(data)
    if magic != FRAME_MAGIC:
        raise ProtocolError(f"binary frame block starts with {magic!r}, not {FRAME_MAGIC!r}")
    if len(data) != FRAME_HEADER.size + 4 * n * c:
        raise ProtocolError(
            f"binary frame block of {len(data)} bytes does not hold {n} x {c} float32 values"
        )
    values = np.frombuffer(data, dtype="<f4", offset=FRAME_HEADER.size).reshape(n, c)
    return FramesReply(first, values.astype(np.float32))
