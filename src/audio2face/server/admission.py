"""Admission below and above the application: measured capacity, and the TCP edge.

**Capacity** (:class:`CapacityEstimate`): each engine's load is measured while it
serves: its compute in use (the ``a2f_inference_seconds{engine}`` sum per second of
wall time, over the compute available, ``inference_workers`` at most the cores) and its
compute per second of audio. Once the compute in use reaches ``capacity_target``, a
new stream is refused with 1013 "at capacity: N streams" instead of making every
stream fall behind. The rule is the measured load rather than a prediction: engines
that batch get cheaper per stream as streams join (a UniTalker-sized model in windows
carries 4 streams where one stream alone uses 60% of the cores), so any per-stream
extrapolation refuses streams that would fit. ``max_lag_s`` catches the overshoot of
a burst of arrivals. Before anything has been measured, only ``max_streams`` limits.
``/ready`` and the ``a2f_capacity_headroom`` gauge show the streams still admissible
(extrapolated linearly from the load now: a lower bound for batching engines).

**Shedding** (:class:`LoadShedder`, every ``SHED_TICK_S``): admission works on a load
measured once a second, so a burst of arrivals or a slower machine can still overload
an engine. Then all its streams fall behind together; while one is more than half of
``max_lag_s`` behind, the engine's newest stream is closed (1013), then the next
newest after ``max_lag_s / 4`` if the lag has not started to fall, so the older
streams catch up before their own bound closes them.

**The TCP edge** (:func:`guarded_protocols`): uvicorn protocol classes that

* close a connection whose request headers (or WebSocket handshake) have not arrived
  within ``handshake_timeout_s`` (slowloris: half-open requests would hold descriptors
  for ever);
* cap open connections at ``max_connections`` (by default 90% of the descriptor limit,
  which :func:`raise_fd_limit` first raises to its hard limit), keeping the last
  ``connection_reserve`` for ``/health``, ``/ready`` and ``/metrics``, and log when the
  cap is hit;
* disconnect a WebSocket client whose unsent data (pongs to its pings) passes
  ``max_write_buffer_bytes``: a client that pings without reading would grow the
  server's memory without bound.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Gauge

from audio2face.metrics import Metrics
from audio2face.settings import Settings, cpu_count

__all__ = [
    "RESERVED_PATHS",
    "CapacityEstimate",
    "ConnectionGuard",
    "LoadShedder",
    "connection_cap",
    "guarded_protocols",
    "raise_fd_limit",
]

logger = logging.getLogger("audio2face.server")

MIN_WINDOW_S = 1.0
"""Shortest measuring window: shorter ones are dominated by the timing of batches."""
MIN_AUDIO_S = 0.5
"""Least audio a window must hold to update the cost."""
SMOOTHING = 0.6
"""Weight of a new window in the running load (an exponential moving average): windows
are a second or more, already averages; the load must follow a ramp within seconds."""
TICK_S = 1.0
"""How often the load is measured while the server runs."""
SHED_TICK_S = 0.2
"""How often overload is shed (``on_tick``): a stream past half of ``max_lag_s`` has
the other half left, so shedding once a second would often come too late."""

RESERVED_PATHS = frozenset({"/health", "/ready", "/metrics"})
"""What the last connections below the cap may still ask for."""
CAP_LOG_INTERVAL_S = 10.0


# --- capacity ------------------------------------------------------------------------


@dataclass
class _EngineLoad:
    compute_s: float = 0.0
    audio_s: float = 0.0
    at: float = 0.0
    busy: float | None = None
    """Share of the engine's compute in use (``None``: not measured yet)."""
    cost: float | None = None
    """Compute seconds per audio second (``None``: not measured yet)."""


def _smooth(old: float | None, new: float) -> float:
    return new if old is None else SMOOTHING * new + (1.0 - SMOOTHING) * old


@dataclass
class CapacityEstimate:
    """How busy each engine is and how many streams it has room for, measured."""

    settings: Settings
    metrics: Metrics
    audio_seconds: Callable[[], dict[str, float]] = field(default=dict)
    """Seconds of audio animated so far, per engine (the server's open streams plus
    those that ended): set by the server state."""
    open_engines: Callable[[], list[str]] = field(default=list)
    """The engine of each open stream: set by the server state."""
    on_tick: Callable[[], None] | None = None
    """Called every ``SHED_TICK_S`` (the server state sheds overload there)."""
    _engines: dict[str, _EngineLoad] = field(default_factory=dict)
    _timer: asyncio.TimerHandle | None = None
    _measured_at: float = 0.0

    def __post_init__(self) -> None:
        self._gauge = Gauge(
            "a2f_capacity_headroom",
            "Streams that can still be admitted on measured capacity, per engine "
            "(-1: not measured yet)",
            ["engine"],
            registry=self.metrics.registry,
            multiprocess_mode="livesum",
        )

    @property
    def workers(self) -> int:
        return max(1, min(self.settings.inference_workers, cpu_count()))

    def _compute_seconds(self, engine: str) -> float:
        hist = self.metrics.inference_seconds.labels(engine=engine)
        return float(hist._sum.get())  # noqa: SLF001 (prometheus_client has no public read)

    def start(self) -> None:
        """Measure every ``TICK_S`` and call ``on_tick`` every ``SHED_TICK_S`` from now
        on, on the running event loop (idempotent). A timer, not a task: nothing is left
        pending when the loop closes."""
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called from plain code (tests): measured on demand only
                return
            self._measured_at = time.monotonic()
            self._timer = loop.call_later(SHED_TICK_S, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self._measured_at >= TICK_S - SHED_TICK_S / 2:
            self._measured_at = now
            self.headroom(self.open_engines())
        if self.on_tick is not None:
            self.on_tick()
        self._timer = asyncio.get_running_loop().call_later(SHED_TICK_S, self._tick)

    def update(self) -> None:
        """Fold the compute and audio since each engine's last window into its load."""
        now = time.monotonic()
        for engine, audio in self.audio_seconds().items():
            entry = self._engines.get(engine)
            if entry is None:  # first sight: its first window starts now
                compute = self._compute_seconds(engine)
                self._engines[engine] = _EngineLoad(compute, audio, now)
                continue
            elapsed = now - entry.at
            if elapsed < MIN_WINDOW_S:
                continue
            compute = self._compute_seconds(engine)
            d_compute = max(0.0, compute - entry.compute_s)
            entry.busy = _smooth(entry.busy, min(1.0, d_compute / elapsed / self.workers))
            d_audio = audio - entry.audio_s
            if d_audio >= MIN_AUDIO_S:
                entry.cost = _smooth(entry.cost, d_compute / d_audio)
            entry.compute_s, entry.audio_s, entry.at = compute, audio, now

    def streams_for(self, engine: str, open_streams: int) -> int | None:
        """Streams ``engine`` has room for, extrapolated linearly from its load now
        (a lower bound where streams share batches); ``None``: not measured yet."""
        entry = self._engines.get(engine)
        target = self.settings.capacity_target
        if entry is None or entry.busy is None or target <= 0.0:
            return None
        if open_streams > 0 and entry.busy > 0.0:
            return math.floor(open_streams * target / entry.busy)
        if entry.cost:
            return max(1, math.floor(target * self.workers / entry.cost))
        return self.settings.max_streams

    def headroom(self, open_engines: Iterable[str]) -> dict[str, int | None]:
        """Streams still admissible per engine (``None``: not measured yet)."""
        self.update()
        counts = _count(open_engines)
        room: dict[str, int | None] = {}
        for engine in sorted(set(self._engines) | set(counts)):
            cap = self.streams_for(engine, counts.get(engine, 0))
            left = None if cap is None else max(0, cap - counts.get(engine, 0))
            if left is not None and not self._saturated(engine):
                left = max(1, left)  # below the target one more is always tried
            room[engine] = left
            self._gauge.labels(engine=engine).set(-1 if left is None else left)
        return room

    def _saturated(self, engine: str) -> bool:
        entry = self._engines.get(engine)
        target = self.settings.capacity_target
        return entry is not None and entry.busy is not None and 0.0 < target <= entry.busy

    def refusal(self, engine: str, open_engines: Iterable[str]) -> str | None:
        """Why a new stream on ``engine`` cannot be admitted (``None``: it can);
        ``open_engines`` are the engines of the streams already open.

        The rule is the measured load, not the extrapolation: an engine that batches
        gets cheaper per stream as streams join, so a stream is refused only once the
        engine's compute is ``capacity_target`` busy. ``max_lag_s`` catches an
        overshoot."""
        engines = list(open_engines)
        self.start()
        self.headroom(engines)
        if not self._saturated(engine):
            return None
        n = engines.count(engine)
        return f"at capacity: {n} streams on the {engine!r} engine; try again later"


@dataclass
class LoadShedder:
    """Newest-first shedding (module doc). Call it with the open streams (objects with
    ``opened_at`` and a ``runner``: :class:`~audio2face.streaming.runner.StreamRunner`)
    every ``SHED_TICK_S``; it returns the streams it shed."""

    max_lag_s: float
    clock: Callable[[], float] = time.monotonic
    _last: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per engine: when it last shed a stream, and its worst lag then."""

    def __call__(self, streams: Iterable[Any]) -> list[Any]:
        half, hold = self.max_lag_s / 2.0, self.max_lag_s / 4.0
        now = self.clock()
        by_engine: dict[str, list[Any]] = {}
        for conn in streams:
            if conn.runner is not None and not conn.runner.ending:
                by_engine.setdefault(conn.runner.engine, []).append(conn)
        shed = []
        for engine, conns in by_engine.items():
            worst = max(c.runner.lag_s for c in conns)
            if worst <= half:
                self._last.pop(engine, None)
                continue
            if len(conns) < 2:
                continue  # a single stream: only its own bound applies
            last = self._last.get(engine)
            # After a shed, give the engine time to catch up: the next one goes only
            # once ``hold`` has passed with the lag still not falling.
            if last is not None and (now - last[0] < hold or worst < last[1]):
                continue
            youngest = max(conns, key=lambda c: c.opened_at)
            youngest.runner.shed(
                f"shedding the newest stream (max_lag_s={self.max_lag_s:g}; "
                f"one is {worst:.1f} s behind)"
            )
            self._last[engine] = (now, worst)
            shed.append(youngest)
        return shed


def _count(engines: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for engine in engines:
        counts[engine] = counts.get(engine, 0) + 1
    return counts


# --- descriptors ---------------------------------------------------------------------


def raise_fd_limit() -> int:
    """Raise the soft descriptor limit to the hard one (a default ``ulimit -n`` of
    1024 is a few hundred clients); the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # a container may forbid it: keep the soft one
            logger.warning("cannot raise the descriptor limit %d to %d: %s", soft, hard, exc)
    return int(soft) if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(settings: Settings, fd_limit: int) -> int:
    """``max_connections``, or 90% of ``fd_limit`` (model files, logs and the listening
    socket need descriptors too)."""
    cap = settings.max_connections or int(fd_limit * 0.9)
    return max(cap, settings.connection_reserve + 1)


# --- the TCP edge ----------------------------------------------------------------------


@dataclass
class ConnectionGuard:
    """State shared by one server's guarded protocols."""

    settings: Settings
    cap: int
    open: set[Any] = field(default_factory=set)
    """Transports open now (HTTP and WebSocket)."""
    dropped: int = 0
    """Connections dropped at the cap since the last log line."""
    _logged_at: float = -math.inf

    @property
    def reserve_only(self) -> bool:
        """Past the soft cap: only probes and metrics are served."""
        return len(self.open) >= self.cap - self.settings.connection_reserve

    def admit(self, transport: Any) -> bool:
        if len(self.open) >= self.cap:
            self.dropped += 1
            now = time.monotonic()
            if now - self._logged_at >= CAP_LOG_INTERVAL_S:
                logger.warning(
                    "connection cap reached: %d open (max_connections=%d); dropped %d new "
                    "connection(s)", len(self.open), self.cap, self.dropped,
                )  # fmt: skip
                self._logged_at, self.dropped = now, 0
            transport.abort()
            return False
        self.open.add(transport)
        return True

    def lost(self, transport: Any) -> None:
        self.open.discard(transport)


async def _unavailable(scope: Any, receive: Any, send: Any) -> None:
    body = b"at the connection cap: only /health, /ready and /metrics are served"
    await send({
        "type": "http.response.start", "status": 503,
        "headers": [(b"content-type", b"text/plain"), (b"connection", b"close"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def _reserve_gate(app: Any) -> Any:
    async def gate(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") not in RESERVED_PATHS:
            await _unavailable(scope, receive, send)
            return
        await app(scope, receive, send)

    return gate


# After a refusal, a client that has sent nothing for this long has finished writing
# (loopback and LAN writes of a big message arrive back to back), so closing then leaves
# no unread data to turn the close into a reset.
LINGER_QUIET_S = 0.1


def guarded_protocols(settings: Settings, cap: int) -> tuple[type, type, ConnectionGuard]:
    """uvicorn ``http`` and ``ws`` protocol classes with the guards of the module doc,
    and their shared state. Pass them as ``uvicorn.Config(http=..., ws=...)``."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    guard = ConnectionGuard(settings, cap)
    timeout = settings.handshake_timeout_s
    write_limit = settings.max_write_buffer_bytes
    http_base: Any = AutoHTTPProtocol
    ws_base: Any = WebSocketsSansIOProtocol

    class GuardedHttp(http_base):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            if not guard.admit(transport):
                return
            super().connection_made(transport)
            if guard.reserve_only:
                self.app: Any = _reserve_gate(self.app)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            guard.lost(self.transport)
            self._disarm()
            if self.transport is not None:
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.transport is None:
                return
            idle = self.cycle is None or self.cycle.response_complete
            if idle and self._header_timer is None:
                self._arm()  # the next request on a kept-alive connection
            before = self.cycle
            super().data_received(data)
            upgraded = self.transport.get_protocol() is not self
            if upgraded or self.cycle is not before:
                self._disarm()  # the headers are in

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(timeout, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.transport.get_protocol() is self and not self.transport.is_closing():
                logger.debug("closing a connection that sent no request headers in %g s", timeout)
                self.transport.abort()

    too_big = f"message exceeds max_message_bytes={settings.max_message_bytes}"
    linger_s = settings.close_linger_s

    class GuardedWebSocket(ws_base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            fail = self.conn.fail

            def fail_naming_the_setting(code: int, reason: str = "") -> None:
                # websockets' own 1009 reason speaks of frames and bytes; name the setting.
                fail(code, too_big if code == 1009 else reason)

            self.conn.fail = fail_naming_the_setting

        _lingering = False
        _quiet_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            guard.open.add(transport)  # usually counted already, by the HTTP protocol
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            guard.lost(self.transport)
            for timer in (self.close_timer, self._quiet_timer):
                if timer is not None:
                    timer.cancel()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._lingering:
                super().data_received(data)
                return
            self._close_when_quiet()  # lingering after a refusal: the data is dropped

        def _close_when_quiet(self) -> None:
            """Close LINGER_QUIET_S from now, unless more data comes first."""
            if self._quiet_timer is not None:
                self._quiet_timer.cancel()
            self._quiet_timer = self.loop.call_later(LINGER_QUIET_S, self.transport.close)

        def handle_parser_exception(self) -> None:
            # uvicorn closes the socket right after the close frame. A client still
            # sending the rest of a refused message then meets a TCP reset, which can
            # destroy the unread close frame: the client sees 1006 instead of 1009.
            # Linger instead: send the frame, read and drop what still comes, and close
            # once the client has been quiet for LINGER_QUIET_S (it has finished writing
            # and waits for us), or after close_linger_s at the latest. No half-close
            # (write_eof): a Python 3.11 asyncio client that gets EOF with its own write
            # buffer still full fails with an AttributeError, not ConnectionClosed.
            if linger_s <= 0:
                super().handle_parser_exception()
                return
            sent = self.conn.close_sent
            assert sent is not None  # the parser failed the connection with a code
            self.queue.put_nowait(
                {"type": "websocket.disconnect", "code": sent.code, "reason": sent.reason}
            )
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.stop_keepalive()
            self._lingering = True
            # uvicorn closes the socket when the app returns, unless close_timer is set.
            self.close_timer = self.loop.call_later(linger_s, self.transport.close)
            self._close_when_quiet()

        def handle_connect(self, event: Any) -> None:
            if guard.reserve_only:
                response = self.conn.reject(503, "at the connection cap; try again later\n")
                self.handshake_initiated = self.handshake_complete = self.close_sent = True
                self.conn.send_response(response)
                self.transport.write(b"".join(self.conn.data_to_send()))
                self.transport.close()
                return
            super().handle_connect(event)

        def handle_ping(self) -> None:
            super().handle_ping()
            if self.transport.get_write_buffer_size() > write_limit:
                logger.warning(
                    "disconnecting %s: %d unsent bytes (max_write_buffer_bytes=%d): it sends "
                    "pings without reading the answers",
                    self.client, self.transport.get_write_buffer_size(), write_limit,
                )  # fmt: skip
                self.transport.abort()

    return GuardedHttp, GuardedWebSocket, guard
