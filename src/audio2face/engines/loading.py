"""Build the engines a server needs from settings: a plain dict, name -> Engine."""

from __future__ import annotations

import logging

from audio2face.settings import Settings
from audio2face.types import Engine

logger = logging.getLogger("audio2face.engines")


def load_engines(settings: Settings) -> dict[str, Engine]:
    """The embedded default engine, plus UniTalker when a model path is configured.

    A configured UniTalker model that cannot be loaded is an error (the operator asked
    for it); the default model ships with the package and must always load.
    """
    engines: dict[str, Engine] = {}
    from audio2face.engines.default import load_default_engine

    engines["default"] = load_default_engine(settings)
    if settings.unitalker_model is not None:
        from audio2face.engines.unitalker import load_unitalker_engine

        engines["unitalker"] = load_unitalker_engine(settings)
    return engines
