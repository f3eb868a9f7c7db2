"""Run the real server (``audio2face.server.serve.serve``, SIGTERM drain included) on
the UniTalker engine alone, for tests that need a separate process.

The embedded default model may not be built yet, so engines are passed explicitly
instead of ``load_engines``. Settings come from ``AUDIO2FACE_*`` variables as usual.

    AUDIO2FACE_UNITALKER_MODEL=tiny.onnx AUDIO2FACE_DEFAULT_PROFILE=unitalker \\
    AUDIO2FACE_PORT=18099 python tests/hardening/serve_tiny.py
"""

from __future__ import annotations

import os
import socket

from audio2face.loading import load_unitalker_engine
from audio2face.logs import configure_logging
from audio2face.server.serve import serve
from audio2face.settings import Settings


def _small_send_buffers(size: int) -> None:
    """``A2F_TEST_SNDBUF``: accepted sockets inherit the listener's send buffer, so a
    client that does not read stalls the server's sends after kilobytes (tests)."""
    from audio2face.server import serve as serve_module

    bind = serve_module.bind_listener

    def bind_small(*args: object, **kwargs: object) -> socket.socket:
        sock = bind(*args, **kwargs)  # type: ignore[arg-type]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        return sock

    serve_module.bind_listener = bind_small  # type: ignore[assignment]


def main() -> None:
    if size := os.environ.get("A2F_TEST_SNDBUF"):
        _small_send_buffers(int(size))
    settings = Settings.load()
    configure_logging(settings)
    serve(settings, engines={"unitalker": load_unitalker_engine(settings)})


if __name__ == "__main__":
    main()
