"""What every real-time sink shares: the target address, the sink interface, counters."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from audio2face.types import FloatArray

__all__ = ["FrameSink", "SinkStats", "UdpTarget", "parse_target"]


@dataclass(frozen=True, slots=True)
class UdpTarget:
    """Where a sink sends its datagrams."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_target(text: str, default_port: int, *, flag: str = "target") -> UdpTarget:
    """``HOST:PORT``, ``HOST`` (the default port) or ``:PORT`` (localhost); IPv6 hosts
    in brackets (``[::1]:39539``)."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"{flag} {text!r}: missing ']' after an IPv6 address")
        host, rest = text[1:close], text[close + 1 :]
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    host = host or "127.0.0.1"
    if not port_text:
        return UdpTarget(host, default_port)
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(
            f"{flag} {text!r}: port {port_text!r} is not a number; use HOST:PORT"
        ) from None
    if not 0 < port < 65536:
        raise ValueError(f"{flag} {text!r}: port {port} is outside 1-65535")
    return UdpTarget(host, port)


def open_udp(target: UdpTarget) -> tuple[socket.socket, tuple[str, int]]:
    """A non-blocking UDP socket for ``target`` and the resolved address to send to.

    UDP sends never wait on the receiver: a missing receiver must not stall the face
    (the operating system drops what nobody reads)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ValueError(
            f"cannot resolve {target.host!r} ({exc.strerror}); check the host name"
        ) from None
    # IPv4 first: "localhost" often resolves to ::1 first, while avatar apps listen on
    # 0.0.0.0 (IPv4 only); an IPv6 literal still gets IPv6.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    return sock, (str(address[0]), int(address[1]))


@dataclass(slots=True)
class SinkStats:
    """Counters of one sink (read by the status line)."""

    frames: int = 0
    packets: int = 0
    bytes: int = 0
    dropped: int = 0
    """Datagrams the OS refused (a full send buffer, no route); the stream goes on."""
    last_error: str = field(default="")


@runtime_checkable
class FrameSink(Protocol):
    """A real-time output: one call per frame, at the frame's time (see pacing)."""

    @property
    def name(self) -> str:
        """How the status line names it, e.g. ``vmc 127.0.0.1:39539``."""
        ...

    @property
    def stats(self) -> SinkStats: ...

    def send(self, index: int, values: FloatArray, t: float) -> None:
        """Send frame ``index`` (its channel values); ``t`` is the stream time in s."""
        ...

    def close(self) -> None: ...
