"""``audio2face serve`` for benchmarks while the embedded default model is absent.

Same server, same settings; only engine loading skips a missing default model instead
of failing, so UniTalker-only benchmarks can run on a checkout without the model file.
Use it with ``audio2face bench --server-cmd "python benchmarks/serve_no_default.py"``.
"""

from __future__ import annotations

import logging
import sys

import audio2face.engines.loading as loading
from audio2face.cli import main
from audio2face.errors import ModelNotFoundError
from audio2face.settings import Settings
from audio2face.types import Engine

_original = loading.load_engines


def _load_engines(settings: Settings) -> dict[str, Engine]:
    engines: dict[str, Engine] = {}
    try:
        return _original(settings)
    except (ModelNotFoundError, ImportError) as exc:
        logging.getLogger("audio2face.bench").warning("no default engine: %s", exc)
    if settings.unitalker_model is not None:
        from audio2face.engines.unitalker import load_unitalker_engine

        engines["unitalker"] = load_unitalker_engine(settings)
    return engines


loading.load_engines = _load_engines
import audio2face.runtime as runtime  # noqa: E402 (patched before the server imports it)

runtime.load_engines = _load_engines

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
