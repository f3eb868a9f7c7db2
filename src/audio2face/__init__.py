"""audio2face: streaming speech audio to facial animation (ARKit blendshapes).

The public API, everything the README uses::

    from audio2face import Runtime, Settings
    runtime = Runtime.start(Settings())
    frames = runtime.convert(audio, rate, "arkit")          # a FrameBatch

    async with runtime.open_stream("arkit", 16000) as stream:   # a StreamRunner
        ...

    from audio2face import stream_file                       # the protocol v1 client

Subpackages (``audio``, ``engines``, ``streaming``, ``postprocess``, ``profiles``,
``server``, ``protocol``, ``formats``) are the implementation: importable, documented,
but not covered by compatibility promises unless re-exported here. Heavy names
(``Runtime``, ``StreamRunner``, ``Session``, the client) are imported on first use, so
``import audio2face`` stays cheap for the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audio2face.errors import (
    Audio2FaceError,
    AudioFormatError,
    AuthError,
    ConfigError,
    EngineError,
    InternalError,
    LimitExceededError,
    ModelNotFoundError,
    ProtocolError,
    StreamClosedError,
    UnknownNameError,
)
from audio2face.settings import Settings
from audio2face.types import (
    Engine,
    EngineCapabilities,
    EngineStream,
    FrameBatch,
    SegmentModel,
    StreamState,
    frames_for_samples,
)

if TYPE_CHECKING:
    from audio2face.client import (
        ClientError,
        ConnectError,
        Hooks,
        StreamError,
        StreamResult,
        UtteranceOptions,
        V1Client,
        stream_file,
        stream_pcm,
    )
    from audio2face.runtime import Runtime
    from audio2face.streaming.runner import (
        Ended,
        Flushed,
        FramesEvent,
        Interrupted,
        StreamRunner,
    )
    from audio2face.streaming.session import Session

__version__ = "0.1.0"

_LAZY = {
    "Runtime": "audio2face.runtime",
    "Session": "audio2face.streaming.session",
    "StreamRunner": "audio2face.streaming.runner",
    "FramesEvent": "audio2face.streaming.runner",
    "Flushed": "audio2face.streaming.runner",
    "Interrupted": "audio2face.streaming.runner",
    "Ended": "audio2face.streaming.runner",
    "ClientError": "audio2face.client",
    "ConnectError": "audio2face.client",
    "Hooks": "audio2face.client",
    "UtteranceOptions": "audio2face.client",
    "V1Client": "audio2face.client",
    "StreamError": "audio2face.client",
    "StreamResult": "audio2face.client",
    "stream_file": "audio2face.client",
    "stream_pcm": "audio2face.client",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audio2face' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Audio2FaceError",
    "AudioFormatError",
    "AuthError",
    "ClientError",
    "ConfigError",
    "ConnectError",
    "Ended",
    "Engine",
    "EngineCapabilities",
    "EngineError",
    "EngineStream",
    "FrameBatch",
    "Flushed",
    "FramesEvent",
    "Hooks",
    "InternalError",
    "Interrupted",
    "LimitExceededError",
    "ModelNotFoundError",
    "ProtocolError",
    "Runtime",
    "SegmentModel",
    "Session",
    "Settings",
    "StreamClosedError",
    "StreamError",
    "StreamResult",
    "StreamRunner",
    "StreamState",
    "UnknownNameError",
    "UtteranceOptions",
    "V1Client",
    "__version__",
    "frames_for_samples",
    "stream_file",
    "stream_pcm",
]
