"""VMC protocol sink: blend shapes over OSC/UDP to VSeeFace, VNyan, Warudo, VMagicMirror.

Each frame is, in this order (the VMC protocol's "performer" side):

* ``/VMC/Ext/OK (int 1)``: a model is loaded and the sender is alive;
* ``/VMC/Ext/T (float seconds)``: the sender's time, the frame's stream time;
* one ``/VMC/Ext/Blend/Val (string name, float value)`` per shape;
* when the profile carries a head pose (``headYaw``/``headPitch``/``headRoll``, profile
  ``arkit-head``): ``/VMC/Ext/Bone/Pos ("Head", px, py, pz, qx, qy, qz, qw)``, the head
  bone's local rotation as a Unity quaternion (:func:`head_quaternion`) and the local
  position ``head_position``;
* ``/VMC/Ext/Blend/Apply``: the receiver applies the values it got since the last one.

Messages are packed into OSC bundles of at most ``max_packet_bytes`` (default: one
Ethernet frame, so nothing is fragmented); ``Apply`` always ends the frame's last
bundle. Which names go out is data (:class:`VmcNames`, files under
``audio2face/rigs/vmc/``): VRM 0 presets, VRM 1.0 expressions or the 52 ARKit names.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from pythonosc.osc_message_builder import OscMessageBuilder

from audio2face.errors import UnknownNameError
from audio2face.formats.livelink import head_columns
from audio2face.sinks.base import SinkStats, UdpTarget, open_udp
from audio2face.types import FloatArray

__all__ = [
    "DEFAULT_VMC_PORT",
    "VMC_NAME_SETS",
    "VmcNames",
    "VmcOptions",
    "VmcSink",
    "encode_frame",
    "head_quaternion",
]

DEFAULT_VMC_PORT = 39539
"""The port VMC receivers (marionettes) listen on by default."""
DEFAULT_MAX_PACKET = 1472
"""An Ethernet MTU of 1500 less the IP and UDP headers: bundles that never fragment."""
VMC_NAME_SETS = ("vrm0", "vrm1", "arkit")
_BUNDLE_HEAD = b"#bundle\x00" + struct.pack(">Q", 1)  # time tag 1: "immediately"


@dataclass(frozen=True, slots=True)
class VmcNames:
    """Which profile feeds a VMC receiver, and what each of its channels is called there.

    ``mapping``: profile channel name -> VMC blend shape name (``None``: not sent)."""

    name: str
    profile: str
    mapping: dict[str, str | None]
    description: str = ""

    @classmethod
    def load(cls, which: str) -> VmcNames:
        """A built-in set (``vrm0``, ``vrm1``, ``arkit``) or a JSON file of the same form
        (``{"profile": "vrm", "map": {"aa": "A", ...}}``)."""
        if which in VMC_NAME_SETS:
            text = (
                resources.files("audio2face.rigs").joinpath(f"vmc/{which}.json").read_text("utf-8")
            )
            where = f"built-in set {which!r}"
        elif which.endswith(".json"):
            try:
                text = Path(which).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot read VMC name map {which!r}: {exc.strerror}") from None
            where = which
        else:
            raise UnknownNameError(
                "VMC name set", which, list(VMC_NAME_SETS), hint="or a .json name map file"
            )
        try:
            doc = json.loads(text)
            mapping = {str(k): (None if v is None else str(v)) for k, v in doc["map"].items()}
            profile = str(doc["profile"])
        except (ValueError, KeyError, AttributeError) as exc:
            raise ValueError(
                f'VMC name map {where}: {exc!s}; expected {{"profile": ..., "map": {{...}}}}'
            ) from None
        return cls(str(doc.get("name", which)), profile, mapping, str(doc.get("description", "")))

    def select(self, channels: tuple[str, ...]) -> tuple[list[int], list[str]]:
        """The column indices of ``channels`` that are sent, and their VMC names.

        Raises ``ValueError`` when none of the profile's channels is in the map (the wrong
        profile for this name set)."""
        columns: list[int] = []
        names: list[str] = []
        for i, channel in enumerate(channels):
            target = self.mapping.get(channel)
            if target:
                columns.append(i)
                names.append(target)
        if not columns:
            raise ValueError(
                f"VMC names {self.name!r} map the {self.profile!r} profile's channels, and none "
                f"of this profile's ({list(channels[:4])}...) is among them; use "
                f"--profile {self.profile} or another --vmc-names"
            )
        return columns, names


@dataclass(frozen=True, slots=True)
class VmcOptions:
    target: UdpTarget = UdpTarget("127.0.0.1", DEFAULT_VMC_PORT)
    max_packet_bytes: int = DEFAULT_MAX_PACKET
    """Largest datagram; a frame that does not fit goes out in several bundles."""
    send_ok: bool = True
    """Send ``/VMC/Ext/OK`` and ``/VMC/Ext/T`` with every frame."""
    send_head: bool = True
    """Send the head bone when the profile has a head pose."""
    head_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """The head bone's local position sent with its rotation (metres, Unity axes).
    Receivers such as VSeeFace use only the rotation; EVMC4U applies positions unless
    its "Bone Position Synchronize" is off, so set the model's neck-to-head offset
    there, or switch that off."""

    def __post_init__(self) -> None:
        if not 256 <= self.max_packet_bytes <= 65507:
            raise ValueError(
                f"max_packet_bytes must be 256..65507 (a UDP datagram), got {self.max_packet_bytes}"
            )


def head_quaternion(yaw_deg: float, pitch_deg: float, roll_deg: float) -> tuple[float, ...]:
    """Our head pose (degrees: yaw > 0 turns to the avatar's left, pitch > 0 lifts the
    chin, roll > 0 tilts to the left shoulder) as a Unity local rotation ``(x, y, z,
    w)``.

    Unity is left-handed with the avatar facing +z: a positive turn about y faces it to
    its right, about x tips the chin down, about z tilts the head to its left; Euler
    angles apply z, then x, then y (``q = qy * qx * qz``)."""
    half = np.radians([-pitch_deg, -yaw_deg, roll_deg]) / 2.0
    (sx, sy, sz), (cx, cy, cz) = np.sin(half), np.cos(half)
    qx, qy, qz = (sx, 0.0, 0.0, cx), (0.0, sy, 0.0, cy), (0.0, 0.0, sz, cz)
    return _qmul(_qmul(qy, qx), qz)


def _qmul(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    """Hamilton product of quaternions ``(x, y, z, w)``."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        float(aw * bx + ax * bw + ay * bz - az * by),
        float(aw * by - ax * bz + ay * bw + az * bx),
        float(aw * bz + ax * by - ay * bx + az * bw),
        float(aw * bw - ax * bx - ay * by - az * bz),
    )


def _message(address: str, *args: tuple[str | float | int, str]) -> bytes:
    builder = OscMessageBuilder(address)
    for value, tag in args:
        builder.add_arg(value, tag)
    return bytes(builder.build().dgram)


def _bundles(messages: list[bytes], limit: int) -> list[bytes]:
    """Pack messages in order into bundles of at most ``limit`` bytes."""
    out: list[bytes] = []
    current = [_BUNDLE_HEAD]
    size = len(_BUNDLE_HEAD)
    for msg in messages:
        item = struct.pack(">i", len(msg)) + msg
        if size + len(item) > limit and len(current) > 1:
            out.append(b"".join(current))
            current, size = [_BUNDLE_HEAD], len(_BUNDLE_HEAD)
        current.append(item)
        size += len(item)
    if len(current) > 1:
        out.append(b"".join(current))
    return out


class VmcEncoder:
    """Turns one frame's values into VMC datagrams. The per-name message prefix is
    built once with python-osc; each frame only appends the big-endian float."""

    def __init__(self, names: list[str], options: VmcOptions) -> None:
        self.options = options
        self._prefixes = [_message("/VMC/Ext/Blend/Val", (n, "s"), (0.0, "f"))[:-4] for n in names]
        self._apply = _message("/VMC/Ext/Blend/Apply")
        # "/VMC/Ext/Bone/Pos" ("Head", 7 floats): the prefix up to the floats.
        self._bone = _message("/VMC/Ext/Bone/Pos", ("Head", "s"), *[(0.0, "f")] * 7)[:-28]
        self._ok = _message("/VMC/Ext/OK", (1, "i"))

    def encode(
        self, values: list[float], t: float, head: tuple[float, float, float] | None = None
    ) -> list[bytes]:
        """One frame's datagrams; ``head``: yaw, pitch, roll in degrees, or ``None``."""
        messages: list[bytes] = []
        if self.options.send_ok:
            messages += [self._ok, _message("/VMC/Ext/T", (float(t), "f"))]
        messages += [p + struct.pack(">f", v) for p, v in zip(self._prefixes, values, strict=True)]
        if head is not None:
            pose = (*self.options.head_position, *head_quaternion(*head))
            messages.append(self._bone + struct.pack(">7f", *pose))
        messages.append(self._apply)
        return _bundles(messages, self.options.max_packet_bytes)


def encode_frame(
    names: list[str], values: list[float], t: float, options: VmcOptions
) -> list[bytes]:
    """The datagrams of one frame (see the module doc)."""
    return VmcEncoder(names, options).encode(values, t)


class VmcSink:
    """Sends each frame to a VMC receiver over UDP."""

    def __init__(self, channels: tuple[str, ...], names: VmcNames, options: VmcOptions) -> None:
        self.options = options
        self.names = names
        self._columns, self.sent_names = names.select(channels)
        self._encoder = VmcEncoder(self.sent_names, options)
        self._head = head_columns(channels) if options.send_head else None
        self._sock, self._address = open_udp(options.target)
        self._stats = SinkStats()

    @property
    def name(self) -> str:
        return f"vmc {self.options.target}"

    @property
    def stats(self) -> SinkStats:
        return self._stats

    def send(self, index: int, values: FloatArray, t: float) -> None:
        picked = [float(values[c]) for c in self._columns]
        head = None
        if self._head is not None:
            yaw, pitch, roll = (float(values[c]) for c in self._head)
            head = (yaw, pitch, roll)
        for datagram in self._encoder.encode(picked, t, head):
            try:
                self._sock.sendto(datagram, self._address)
            except OSError as exc:  # full buffer, no route, ICMP refused: keep streaming
                self._stats.dropped += 1
                self._stats.last_error = exc.strerror or str(exc)
                continue
            self._stats.packets += 1
            self._stats.bytes += len(datagram)
        self._stats.frames += 1

    def close(self) -> None:
        self._sock.close()
