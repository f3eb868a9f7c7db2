"""Run the real server (``audio2face.server.serve.serve``, SIGTERM drain included) on
the UniTalker engine alone, for tests that need a separate process.

The embedded default model may not be built yet, so engines are passed explicitly
instead of ``load_engines``. Settings come from ``AUDIO2FACE_*`` variables as usual.

    AUDIO2FACE_UNITALKER_MODEL=tiny.onnx AUDIO2FACE_DEFAULT_PROFILE=unitalker \\
    AUDIO2FACE_PORT=18099 python tests/hardening/serve_tiny.py
"""

from __future__ import annotations

from audio2face.engines.loading import load_unitalker_engine
from audio2face.logs import configure_logging
from audio2face.server.serve import serve
from audio2face.settings import Settings


def main() -> None:
    settings = Settings.load()
    configure_logging(settings)
    serve(settings, engines={"unitalker": load_unitalker_engine(settings)})


if __name__ == "__main__":
    main()
