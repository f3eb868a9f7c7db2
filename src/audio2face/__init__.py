"""audio2face: streaming speech audio to facial animation (ARKit blendshapes)."""

from __future__ import annotations

from audio2face.errors import (
    Audio2FaceError,
    AudioFormatError,
    AuthError,
    ConfigError,
    EngineError,
    LimitExceededError,
    ModelNotFoundError,
    ProtocolError,
)
from audio2face.settings import Settings
from audio2face.types import Engine, EngineStream, FrameBatch, SegmentModel, frames_for_samples

__version__ = "0.1.0"

__all__ = [
    "Audio2FaceError",
    "AudioFormatError",
    "AuthError",
    "ConfigError",
    "Engine",
    "EngineError",
    "EngineStream",
    "FrameBatch",
    "LimitExceededError",
    "ModelNotFoundError",
    "ProtocolError",
    "SegmentModel",
    "Settings",
    "__version__",
    "frames_for_samples",
]
