"""Running the app under uvicorn with a graceful drain on SIGTERM/SIGINT.

uvicorn alone closes open WebSockets (1012) as soon as it shuts down, cutting
utterances mid-stream. Here the first signal starts a drain instead: ``/ready`` turns
503 and new streams are refused (1013) while in-flight streams finish, for up to
``shutdown_drain_s``; then uvicorn stops. A second signal stops at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from types import FrameType

import uvicorn

from audio2face.server.app import create_app
from audio2face.server.state import ServerState
from audio2face.settings import Settings
from audio2face.types import Engine

logger = logging.getLogger("audio2face.server")


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
    loading, as in :func:`~audio2face.server.app.create_app`."""
    app = create_app(settings, engines=engines)
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
    DrainingServer(config, app.state.a2f).run()
