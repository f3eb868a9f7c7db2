"""The error hierarchy of audio2face.

::

    Audio2FaceError
    ├── ConfigError            bad settings, profile or preset data
    │   └── ModelNotFoundError a model file is missing or unreadable
    ├── ProtocolError          a client broke the wire protocol        (close 1008)
    ├── UnknownNameError       a profile or emotion name nobody knows  (close 1008)
    ├── AuthError              missing or wrong token                  (close 1008)
    ├── AudioFormatError       audio the server cannot take            (close 1008)
    ├── LimitExceededError     a configured limit was hit              (close 1009/1013/1008)
    ├── EngineError            inference failed                        (close 1011)
    ├── StreamClosedError      library code used a stream after its end (close 1011)
    └── InternalError          a bug surfaced in one stream            (close 1011)

Each carries a ``code`` (the WebSocket close code a transport should use) and a
human-readable ``reason`` that names what was wrong.
"""

from __future__ import annotations


class Audio2FaceError(Exception):
    """Base of every error raised on purpose by audio2face."""

    code: int = 1011

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, reason={self.reason!r})"


class ConfigError(Audio2FaceError):
    """Settings, a profile or preset data are invalid."""


class ModelNotFoundError(ConfigError):
    """A model file is missing or cannot be loaded; the reason says what to do."""


class ProtocolError(Audio2FaceError):
    """The client broke the protocol: wrong order, unknown message, undecodable frame."""

    code = 1008


class UnknownNameError(Audio2FaceError):
    """A name (profile, emotion, ...) that is not known here; the reason lists the known
    ones. ``kind`` says what was named, ``name`` the name asked for."""

    code = 1008

    def __init__(
        self, kind: str, name: str, known: object, *, where: str = "", hint: str = ""
    ) -> None:
        shown = name if len(name) <= 64 else name[:61] + "..."
        scope = f" for {where}" if where else ""
        extra = f"; {hint}" if hint else ""
        super().__init__(f"unknown {kind} {shown!r}{scope}; known: {known}{extra}")
        self.kind = kind
        self.name = name


class AuthError(Audio2FaceError):
    """The client did not present the configured token."""

    code = 1008


class AudioFormatError(Audio2FaceError):
    """Audio the server cannot take: rate, width, channels or byte count."""

    code = 1008


class LimitExceededError(Audio2FaceError):
    """A configured limit was hit. ``limit`` names the setting, ``value`` its value."""

    def __init__(self, reason: str, *, limit: str, value: object, code: int = 1008) -> None:
        super().__init__(reason)
        self.limit = limit
        self.value = value
        self.code = code


class EngineError(Audio2FaceError):
    """Inference failed. Never replaced by zeros: the stream ends with this error."""

    code = 1011


class StreamClosedError(Audio2FaceError):
    """A stream (``Session``, engine stream, scheduler, feature state) was used after it
    finished or failed. This is a bug in the calling code, not a client's fault, so it
    is not a :class:`ProtocolError`; ``state`` names the state the stream was in."""

    code = 1011

    def __init__(self, reason: str, *, state: str = "closed") -> None:
        super().__init__(reason)
        self.state = state


class InternalError(Audio2FaceError):
    """A bug surfaced in one stream; the reason names the exception type only."""

    code = 1011
