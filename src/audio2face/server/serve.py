"""Running the app under uvicorn with a graceful drain on SIGTERM/SIGINT.

With ``workers > 1`` the service runs as that many processes, each with its own
listening socket on the same port (``SO_REUSEPORT``: the kernel spreads connections
over them). One process is held to one core by the GIL in its per-message Python
work, so this is how a many-core machine serves more streams. The parent forwards
SIGTERM so every worker drains, and restarts a worker that dies.

uvicorn alone closes open WebSockets (1012) as soon as it shuts down, cutting
utterances mid-stream. Here the first signal starts a drain instead: ``/ready`` turns
503 and new streams are refused (1013) while in-flight streams finish, for up to
``shutdown_drain_s``; then uvicorn stops. A second signal stops at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from types import FrameType

import uvicorn

from audio2face.server.app import create_app
from audio2face.server.memory import limit_malloc_arenas
from audio2face.server.state import ServerState
from audio2face.settings import Settings, cpu_count
from audio2face.types import Engine

logger = logging.getLogger("audio2face.server")

BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Thread-count variables of the BLAS builds numpy ships with (OpenBLAS) or may use."""


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.a2f = state
        self._drain_thread: threading.Thread | None = None

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
    loading, as in :func:`~audio2face.server.app.create_app` (one process only)."""
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
) -> None:
    limit_malloc_arenas()
    app = create_app(settings, engines=engines)
    sockets = [_listen(settings.host, settings.port)] if reuse_port else None
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=1,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    DrainingServer(config, app.state.a2f).run(sockets=sockets)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


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


def _worker_main(settings: Settings, ssl_certfile: str | None, ssl_keyfile: str | None) -> None:
    from audio2face.logs import configure_logging

    configure_logging(settings)
    _serve_one(settings, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, reuse_port=True)


def serve_workers(
    settings: Settings, *, ssl_certfile: str | None = None, ssl_keyfile: str | None = None
) -> None:
    """Run ``settings.workers`` server processes on one port until SIGTERM/SIGINT."""
    ctx = multiprocessing.get_context("spawn")
    child = worker_settings(settings)
    # numpy's BLAS starts a thread per core in every process and its idle threads spin
    # while they wait for work: with one process per core they take the cores from
    # each other's event loops (2 cores, 2 workers: server CPU 1.6 -> 1.0 core at 100
    # streams, p95 0.14 -> 0.09 s). The children are spawned, so they read this at import.
    for var in BLAS_THREAD_VARS:
        os.environ.setdefault(var, str(max(1, cpu_count() // settings.workers)))
    # A plain flag, not a threading.Event: the handler runs between bytecodes of the
    # main thread, and Event.set() there can deadlock on the lock the main thread holds
    # inside Event.wait() (seen when two signals arrived together).
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        proc = ctx.Process(
            target=_worker_main, args=(child, ssl_certfile, ssl_keyfile), name="a2f-worker"
        )
        proc.start()
        return proc

    procs = [start() for _ in range(settings.workers)]
    logger.info(
        "started %d workers on %s:%d (pids %s)",
        len(procs), settings.host, settings.port, [p.pid for p in procs],
    )  # fmt: skip

    def forward(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while not stopping:
        for i, proc in enumerate(procs):
            if not proc.is_alive() and not stopping:
                logger.error("worker %s exited with %s; restarting it", proc.pid, proc.exitcode)
                procs[i] = start()
        time.sleep(0.5)
    deadline = time.monotonic() + settings.shutdown_drain_s + 5.0
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
