"""Loopback receivers for the sink tests: what a VMC app and Unreal's Live Link see.

* :class:`VmcReceiver` decodes with python-osc's own UDP server and dispatcher (the
  library VMC receivers are commonly built on), so bundles and messages are checked by
  an independent OSC implementation.
* :class:`LiveLinkReceiver` parses each datagram with :func:`decode_packet`, written
  from the packet description, and keeps its arrival time.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from audio2face.sinks.livelink import LiveLinkPacket, decode_packet


@dataclass
class VmcFrame:
    """The messages between two ``/VMC/Ext/Blend/Apply``; ``t`` is Apply's arrival."""

    values: dict[str, float]
    t: float
    ok: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    bones: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """``/VMC/Ext/Bone/Pos``: bone name -> (px, py, pz, qx, qy, qz, qw)."""


class VmcReceiver:
    def __init__(self) -> None:
        self.frames: list[VmcFrame] = []
        self.datagrams = 0
        self.unknown: list[str] = []
        self._pending: dict[str, float] = {}
        self._ok: list[int] = []
        self._times: list[float] = []
        self._bones: dict[str, tuple[float, ...]] = {}
        self._lock = threading.Lock()
        dispatcher = Dispatcher()
        dispatcher.map("/VMC/Ext/Blend/Val", self._val)
        dispatcher.map("/VMC/Ext/Blend/Apply", self._apply)
        dispatcher.map("/VMC/Ext/OK", self._okmsg)
        dispatcher.map("/VMC/Ext/T", self._time)
        dispatcher.map("/VMC/Ext/Bone/Pos", self._bone)
        dispatcher.set_default_handler(self._other)
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _val(self, address: str, *args: Any) -> None:
        name, value = args
        if not isinstance(name, str) or not isinstance(value, float):
            self.unknown.append(f"{address} {args!r}")
            return
        self._pending[name] = value

    def _bone(self, address: str, *args: Any) -> None:
        name, *pose = args
        if (
            not isinstance(name, str)
            or len(pose) != 7
            or not all(isinstance(v, float) for v in pose)
        ):
            self.unknown.append(f"{address} {args!r}")
            return
        self._bones[name] = tuple(pose)

    def _apply(self, address: str, *args: Any) -> None:
        with self._lock:
            self.frames.append(
                VmcFrame(self._pending, time.monotonic(), self._ok, self._times, self._bones)
            )
        self._pending, self._ok, self._times, self._bones = {}, [], [], {}

    def _okmsg(self, address: str, *args: Any) -> None:
        self._ok.append(int(args[0]))

    def _time(self, address: str, *args: Any) -> None:
        self._times.append(float(args[0]))

    def _other(self, address: str, *args: Any) -> None:
        self.unknown.append(address)

    def __enter__(self) -> VmcReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_frames(self, n: int, timeout: float = 5.0) -> list[VmcFrame]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.frames) >= n:
                    return list(self.frames)
            time.sleep(0.01)
        with self._lock:
            return list(self.frames)


class LiveLinkReceiver:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.packets: list[tuple[float, LiveLinkPacket]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            try:
                packet = decode_packet(data)
            except ValueError as exc:
                self.errors.append(str(exc))
                continue
            with self._lock:
                self.packets.append((now, packet))

    def __enter__(self) -> LiveLinkReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def wait_packets(self, n: int, timeout: float = 5.0) -> list[tuple[float, LiveLinkPacket]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.packets) >= n:
                    return list(self.packets)
            time.sleep(0.01)
        with self._lock:
            return list(self.packets)
