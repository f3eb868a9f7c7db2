"""Running the app under uvicorn with a graceful drain on SIGTERM/SIGINT.

Startup order: bind the port, load and check the models and profiles, then hand the
bound socket to uvicorn, which runs the lifespan and logs ``ready``. So a port in use,
a missing model file or a bad profile fails at once with one clear
:class:`~audio2face.errors.ConfigError`, before anything says the service is ready.

With ``workers > 1`` the service runs as that many processes, each with its own
listening socket on the same port (``SO_REUSEPORT``: the kernel spreads connections
over them). One process is held to one core by the GIL in its per-message Python
work, so this is how a many-core machine serves more streams. ``SO_REUSEPORT`` would
also let a second server with other settings join the port and take part of the
traffic, so the parent first checks that nothing listens there (a bind without
``SO_REUSEPORT``), and holds a lock file per port against a second multi-worker
server started in the same moment. Each worker reports back once it serves (or why
it could not start); one that fails at startup stops them all. The parent forwards
SIGTERM so every worker drains, and restarts a worker that dies later.

uvicorn alone closes open WebSockets (1012) as soon as it shuts down, cutting
utterances mid-stream. Here the first signal starts a drain instead: ``/ready`` turns
503 and new streams are refused (1013) while in-flight streams finish, for up to
``shutdown_drain_s``; then uvicorn stops. A second signal stops at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import os
import queue
import signal
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from audio2face.errors import Audio2FaceError, ConfigError
from audio2face.loading import load_checked
from audio2face.metrics import process_exited, shared_metrics_dir
from audio2face.server.admission import connection_cap, guarded_protocols, raise_fd_limit
from audio2face.server.app import create_app
from audio2face.server.memory import limit_malloc_arenas
from audio2face.server.state import ServerState
from audio2face.settings import Settings, cpu_count
from audio2face.types import Engine

__all__ = ["bind_listener", "check_port_free", "serve", "serve_workers", "worker_settings"]

logger = logging.getLogger("audio2face.server")

BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Thread-count variables of the BLAS builds numpy ships with (OpenBLAS) or may use."""

LISTEN_BACKLOG = 2048
WORKER_POLL_S = 0.2


class DrainingServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        state: ServerState,
        *,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.a2f = state
        self._on_started = on_started
        self._drain_thread: threading.Thread | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            # uvicorn logs no address when it is handed sockets: say where we listen.
            for sock in sockets or []:
                host, port = sock.getsockname()[:2]
                scheme = "https" if self.config.ssl is not None else "http"
                logger.info("listening on %s://%s:%d", scheme, _url_host(host), port)
            if self._on_started is not None:
                self._on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_thread is not None:
            logger.warning("second signal: stopping now")
            super().handle_exit(sig, frame)
            return
        self.a2f.draining = True
        logger.info(
            "draining: %d stream(s) in flight, up to %.1f s",
            len(self.a2f.streams), self.a2f.settings.shutdown_drain_s,
        )  # fmt: skip
        self._drain_thread = threading.Thread(target=self._drain, name="a2f-drain", daemon=True)
        self._drain_thread.start()

    def _drain(self) -> None:
        deadline = time.monotonic() + self.a2f.settings.shutdown_drain_s
        while self.a2f.streams and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.a2f.streams:
            logger.warning("drain deadline passed with %d stream(s) open", len(self.a2f.streams))
        self.should_exit = True


def serve(
    settings: Settings,
    *,
    engines: Mapping[str, Engine] | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> None:
    """Run the service until SIGTERM/SIGINT, then drain. ``engines`` replaces model
    loading, as in :func:`~audio2face.server.app.create_app` (one process only).

    Raises :class:`ConfigError` (one line saying what to change) when the port is taken
    or the models or profiles cannot be loaded; nothing has been served then.
    """
    check_tls_files(ssl_certfile, ssl_keyfile)
    if settings.workers > 1 and engines is None:
        serve_workers(settings, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
        return
    _serve_one(settings, engines=engines, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


def _serve_one(
    settings: Settings,
    *,
    engines: Mapping[str, Engine] | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    reuse_port: bool = False,
    on_started: Callable[[], None] | None = None,
) -> None:
    limit_malloc_arenas()
    fd_limit = raise_fd_limit()  # a default ulimit -n of 1024 is a few hundred clients
    listener = bind_listener(settings.host, settings.port, reuse_port=reuse_port)
    try:
        app = create_app(settings, engines=load_checked(settings, engines))
        # Header/handshake timeouts, the connection cap with its probe reserve, the
        # per-connection write-buffer bound and a 1009 reason naming the setting.
        http, ws, guard = guarded_protocols(settings, connection_cap(settings, fd_limit))
        app.state.a2f.guard = guard
        config = uvicorn.Config(
            app,
            http=http,
            ws=ws,
            host=settings.host,
            port=settings.port,
            log_config=None,
            ws_max_size=settings.max_message_bytes,
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            timeout_graceful_shutdown=1,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            backlog=LISTEN_BACKLOG,
        )
        server = DrainingServer(config, app.state.a2f, on_started=on_started)
        server.run(sockets=[listener])
    finally:
        listener.close()
    if not server.started:
        raise ConfigError("the service stopped during startup; see the log lines above")


def check_tls_files(certfile: str | None, keyfile: str | None) -> None:
    """Load the certificate and key once, so a wrong path or a key that does not match
    is one :class:`ConfigError` line before anything starts (uvicorn loads them later,
    and ``ssl`` names no file in its errors)."""
    if certfile is None and keyfile is None:
        return
    if certfile is None:
        raise ConfigError("--ssl-keyfile needs --ssl-certfile (the certificate it signs)")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile)
    except FileNotFoundError as exc:
        missing = certfile if not Path(certfile).is_file() else keyfile
        raise ConfigError(
            f"TLS file {missing!r} not found; check --ssl-certfile / --ssl-keyfile"
        ) from exc
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"cannot load the TLS certificate {certfile!r}"
            + (f" with key {keyfile!r}" if keyfile else "")
            + f": {exc.strerror or exc}; give a PEM certificate and its private key"
        ) from exc


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"cannot bind to host {host!r}: {exc.strerror}; set --host / AUDIO2FACE_HOST "
            "to an address of this machine (127.0.0.1, 0.0.0.0)"
        ) from exc
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _bind_error(host: str, port: int, exc: OSError) -> ConfigError:
    where = f"{_url_host(host)}:{port}"
    if exc.errno == errno.EADDRINUSE:
        why = (
            f"{where} is already in use (another audio2face serve?); "
            "stop that server or pick another port with --port / AUDIO2FACE_PORT"
        )
    elif exc.errno == errno.EACCES:
        why = f"no permission to bind {where}; ports below 1024 need privileges, use --port"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"{host!r} is not an address of this machine; use --host 127.0.0.1 or 0.0.0.0"
    else:
        why = f"cannot bind {where}: {exc.strerror or exc}"
    return ConfigError(why)


def bind_listener(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port``, ready for uvicorn.

    Without ``reuse_port`` no other socket can share the port (a second server fails
    to bind). Raises :class:`ConfigError` naming the problem (port in use, ...)."""
    family, sockaddr = _address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR only skips TIME_WAIT connections of a server that just stopped;
        # on Linux it never lets two listeners share a port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(sockaddr)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise _bind_error(host, port, exc) from exc
    sock.set_inheritable(True)
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`ConfigError` when anything, including ``SO_REUSEPORT`` listeners
    of another server, is bound to ``host:port``: a bind without ``SO_REUSEPORT``
    conflicts with all of them."""
    bind_listener(host, port).close()


@contextlib.contextmanager
def port_lock(port: int) -> Iterator[None]:
    """Hold ``audio2face-port-<port>.lock`` in the temp folder while the block runs, so a
    second multi-worker server started at the same moment (both probes finding the port
    free before either worker binds) fails instead of sharing it."""
    path = Path(tempfile.gettempdir()) / f"audio2face-port-{port}.lock"
    try:
        # Read-only is enough for flock, and works on a lock file another user created.
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as exc:  # the port probe still protects, outside that moment
        logger.warning("no port lock (%s: %s); starting without it", path, exc.strerror)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConfigError(
                f"port {port} is already being served by another audio2face with workers "
                f"(lock {path}); stop it or pick another port with --port / AUDIO2FACE_PORT"
            ) from exc
        yield
    finally:
        os.close(fd)


def worker_settings(settings: Settings) -> Settings:
    """One worker's share: thread counts not set by the operator are divided between
    the workers, so together they never use more threads than cores."""
    n = settings.workers
    update: dict[str, int] = {}
    if "intra_op_threads" not in settings.model_fields_set:
        update["intra_op_threads"] = max(1, settings.intra_op_threads // n)
    if "inference_workers" not in settings.model_fields_set:
        update["inference_workers"] = max(1, settings.inference_workers // n)
    return settings.model_copy(update=update)


WorkerReport = tuple[int, str, str]
"""``(worker index, "ready" | "error", detail)``, sent once by each worker."""


def _worker_main(
    index: int,
    settings: Settings,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    reports: multiprocessing.queues.Queue[WorkerReport],
) -> None:
    from audio2face.logs import configure_logging

    configure_logging(settings)

    def ready() -> None:
        reports.put((index, "ready", str(os.getpid())))

    try:
        _serve_one(
            settings, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, reuse_port=True,
            on_started=ready,
        )  # fmt: skip
    except Audio2FaceError as exc:
        logger.debug("worker startup failed", exc_info=True)
        reports.put((index, "error", exc.reason))
        raise SystemExit(1) from None
    except Exception as exc:  # a bug: the parent reports it in one line, the log has more
        logger.exception("worker failed")
        reports.put((index, "error", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None


def serve_workers(
    settings: Settings, *, ssl_certfile: str | None = None, ssl_keyfile: str | None = None
) -> None:
    """Run ``settings.workers`` server processes on one port until SIGTERM/SIGINT.

    Raises :class:`ConfigError` when the port is taken or a worker cannot start (with
    that worker's reason); the other workers are stopped then."""
    with port_lock(settings.port):
        check_port_free(settings.host, settings.port)
        with shared_metrics_dir():  # one /metrics over all workers
            _run_workers(settings, ssl_certfile, ssl_keyfile)


def _run_workers(settings: Settings, ssl_certfile: str | None, ssl_keyfile: str | None) -> None:
    ctx = multiprocessing.get_context("spawn")
    child = worker_settings(settings)
    # numpy's BLAS starts a thread per core in every process and its idle threads spin
    # while they wait for work: with one process per core they take the cores from
    # each other's event loops (2 cores, 2 workers: server CPU 1.6 -> 1.0 core at 100
    # streams, p95 0.14 -> 0.09 s). The children are spawned, so they read this at import.
    for var in BLAS_THREAD_VARS:
        os.environ.setdefault(var, str(max(1, cpu_count() // settings.workers)))
    reports: multiprocessing.queues.Queue[WorkerReport] = ctx.Queue()
    # A plain flag, not a threading.Event: the handler runs between bytecodes of the
    # main thread, and Event.set() there can deadlock on the lock the main thread holds
    # inside Event.wait() (seen when two signals arrived together).
    stopping = False

    def start(index: int) -> multiprocessing.process.BaseProcess:
        proc = ctx.Process(
            target=_worker_main,
            args=(index, child, ssl_certfile, ssl_keyfile, reports),
            name=f"a2f-worker-{index}",
        )
        proc.start()
        return proc

    procs = [start(i) for i in range(settings.workers)]

    def forward(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        failure = _await_workers(procs, reports, lambda: stopping)
        if failure is not None:
            raise ConfigError(failure)
        if not stopping:
            logger.info(
                "started %d workers on %s:%d (pids %s)",
                len(procs), settings.host, settings.port, [p.pid for p in procs],
            )  # fmt: skip
        while not stopping:
            for i, proc in enumerate(procs):
                if not proc.is_alive() and not stopping:
                    logger.error("worker %s exited with %s; restarting it", proc.pid, proc.exitcode)
                    if proc.pid is not None:
                        process_exited(proc.pid)  # its open streams no longer count
                    procs[i] = start(i)
            _drain_reports(reports)
            time.sleep(0.5)
    finally:
        # After a signal the workers are draining already: a second one would cut it.
        _stop_workers(procs, settings.shutdown_drain_s + 5.0, signal_them=not stopping)


def _await_workers(
    procs: list[multiprocessing.process.BaseProcess],
    reports: multiprocessing.queues.Queue[WorkerReport],
    stopping: Callable[[], bool],
) -> str | None:
    """Wait until every worker serves; the first failure's reason, or None."""
    pending = set(range(len(procs)))
    while pending and not stopping():
        try:
            index, kind, detail = reports.get(timeout=WORKER_POLL_S)
        except queue.Empty:
            for i in sorted(pending):
                # A worker the shutdown signal reached before it was ready is no failure.
                if not procs[i].is_alive() and not stopping():
                    return f"worker {i} exited with code {procs[i].exitcode} during startup"
            continue
        if kind == "error":
            return detail
        pending.discard(index)
    return None


def _drain_reports(reports: multiprocessing.queues.Queue[WorkerReport]) -> None:
    """Log what restarted workers report (their startup errors are not fatal)."""
    with contextlib.suppress(queue.Empty):
        while True:
            index, kind, detail = reports.get_nowait()
            if kind == "error":
                logger.error("restarted worker %d could not start: %s", index, detail)


def _stop_workers(
    procs: list[multiprocessing.process.BaseProcess], wait_s: float, *, signal_them: bool
) -> None:
    for proc in procs:
        if signal_them and proc.is_alive() and proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
