"""Live Link Face sink: the UDP packets Epic's Live Link Face app sends to Unreal.

One datagram per frame, big-endian throughout:

==========  ==============================================================
uint8       packet version, 6
int32 + s   device id: byte length, then UTF-8 bytes
int32 + s   subject name: byte length, then UTF-8 bytes (the Live Link subject)
int32       frame number (frames since the stream started)
float32     sub-frame (0)
int32       frame rate numerator (30 for 30 fps; 30000 for 29.97)
int32       frame rate denominator (1; 1001 for 29.97)
uint8       value count, 61
61 float32  the 52 ARKit shapes in Apple's enum order (``rigs/arkit52.json``), then head
            yaw, pitch, roll, left eye yaw, pitch, roll, right eye yaw, pitch, roll
==========  ==============================================================

The head rotation comes from the profile's ``headYaw``/``headPitch``/``headRoll``
channels when it has them (profile ``arkit-head``), in radians in ARKit's face-anchor
axes (:func:`~audio2face.formats.livelink.livelink_head`); otherwise it is 0, and the
eye rotations are always 0 (the gaze travels in the ``eyeLook*`` shapes).
:func:`decode_packet` reads the same format back (tests use it as the receiver).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from audio2face.formats.livelink import head_columns, livelink_head
from audio2face.rigs import ARKIT_52
from audio2face.sinks.base import SinkStats, UdpTarget, open_udp
from audio2face.types import FloatArray

__all__ = [
    "DEFAULT_LIVELINK_PORT",
    "LIVELINK_EXTRA",
    "LIVELINK_VERSION",
    "LiveLinkOptions",
    "LiveLinkPacket",
    "LiveLinkSink",
    "decode_packet",
    "encode_packet",
]

DEFAULT_LIVELINK_PORT = 11111
LIVELINK_VERSION = 6
LIVELINK_EXTRA: tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip
VALUE_COUNT = len(ARKIT_52) + len(LIVELINK_EXTRA)  # 61
_VALUES = struct.Struct(f">B{VALUE_COUNT}f")
_TIME = struct.Struct(">ifii")


@dataclass(frozen=True, slots=True)
class LiveLinkOptions:
    target: UdpTarget = UdpTarget("127.0.0.1", DEFAULT_LIVELINK_PORT)
    subject: str = "audio2face"
    """The Live Link subject name Unreal lists (pick it in the MetaHuman's Blueprint)."""
    device_id: str = ""
    """Identifies the sender (the app sends its device's UUID); empty: a new UUID."""

    def __post_init__(self) -> None:
        if not self.subject or len(self.subject.encode("utf-8")) > 255:
            raise ValueError("the Live Link subject name must be 1 to 255 bytes of UTF-8")
        if len(self.device_id.encode("utf-8")) > 255:
            raise ValueError("the Live Link device id must be at most 255 bytes of UTF-8")


@dataclass(frozen=True, slots=True)
class LiveLinkPacket:
    version: int
    device_id: str
    subject: str
    frame: int
    sub_frame: float
    rate: Fraction
    values: FloatArray
    """61 floats: ARKit 52 in Apple's order, then the 9 head and eye rotations."""


def rate_fraction(fps: float) -> Fraction:
    """``fps`` as numerator/denominator (29.97 -> 30000/1001), as Unreal frame rates are."""
    return Fraction(fps).limit_denominator(1001)


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">i", len(raw)) + raw


def encode_packet(
    device_id: str, subject: str, frame: int, rate: Fraction, values: FloatArray
) -> bytes:
    """One Live Link Face datagram; ``values`` are the 52 ARKit shapes (Apple's order),
    optionally followed by the 9 rotations (else 0)."""
    full = np.zeros(VALUE_COUNT, np.float32)
    full[: values.shape[0]] = values
    head = struct.pack(">B", LIVELINK_VERSION) + _string(device_id) + _string(subject)
    time_part = _TIME.pack(frame, 0.0, rate.numerator, rate.denominator)
    return head + time_part + _VALUES.pack(VALUE_COUNT, *full.tolist())


def decode_packet(data: bytes) -> LiveLinkPacket:
    """Parse one Live Link Face datagram; ``ValueError`` names what is malformed."""
    pos = 0

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise ValueError(f"Live Link packet of {len(data)} bytes ends inside the {what}")
        out = data[pos : pos + n]
        pos += n
        return out

    version = take(1, "version")[0]

    def string(what: str) -> str:
        (length,) = struct.unpack(">i", take(4, f"{what} length"))
        if not 0 <= length <= 1024:
            raise ValueError(f"Live Link packet: implausible {what} length {length}")
        return take(length, what).decode("utf-8")

    device_id = string("device id")
    subject = string("subject name")
    frame, sub_frame, numerator, denominator = _TIME.unpack(take(_TIME.size, "frame time"))
    count = take(1, "value count")[0]
    if count != VALUE_COUNT:
        raise ValueError(f"Live Link packet holds {count} values, expected {VALUE_COUNT}")
    values = np.frombuffer(take(4 * count, "values"), ">f4").astype(np.float32)
    if pos != len(data):
        raise ValueError(f"Live Link packet has {len(data) - pos} bytes after its values")
    if denominator <= 0:
        raise ValueError(f"Live Link packet: frame rate denominator {denominator}")
    return LiveLinkPacket(
        version, device_id, subject, frame, sub_frame, Fraction(numerator, denominator), values
    )


def arkit_columns(channels: tuple[str, ...]) -> list[int | None]:
    """For each ARKit shape in Apple's order, its column among ``channels`` (matched
    without regard to case: ``JawOpen`` and ``jawOpen`` are one shape)."""
    by_key = {name.lower(): i for i, name in enumerate(channels)}
    return [by_key.get(shape.lower()) for shape in ARKIT_52]


class LiveLinkSink:
    """Sends each frame to Unreal's Live Link (the "Live Link Face" source)."""

    def __init__(self, channels: tuple[str, ...], fps: float, options: LiveLinkOptions) -> None:
        columns = arkit_columns(channels)
        if sum(c is not None for c in columns) < len(ARKIT_52) // 2:
            raise ValueError(
                "Live Link Face carries the 52 ARKit shapes; this profile's channels are "
                f"{list(channels[:4])}...; use --profile arkit (or a profile with ARKit names)"
            )
        self.options = options
        self.fps = fps
        self._rate = rate_fraction(fps)
        self._device = options.device_id or str(uuid.uuid4()).upper()
        self._take = np.array([-1 if c is None else c for c in columns])
        self._head = head_columns(channels)
        self._sock, self._address = open_udp(options.target)
        self._stats = SinkStats()

    @property
    def name(self) -> str:
        return f"livelink {self.options.target}"

    @property
    def stats(self) -> SinkStats:
        return self._stats

    def send(self, index: int, values: FloatArray, t: float) -> None:
        shapes = np.where(self._take >= 0, values[np.maximum(self._take, 0)], 0.0).astype(
            np.float32
        )
        if self._head is not None:
            shapes = np.concatenate([shapes, livelink_head(values[self._head])])
        packet = encode_packet(self._device, self.options.subject, index, self._rate, shapes)
        self._stats.frames += 1
        try:
            self._sock.sendto(packet, self._address)
        except OSError as exc:  # full buffer, no route, ICMP refused: keep streaming
            self._stats.dropped += 1
            self._stats.last_error = exc.strerror or str(exc)
            return
        self._stats.packets += 1
        self._stats.bytes += len(packet)

    def close(self) -> None:
        self._sock.close()
