"""Lifecycle of a per-stream scheduler: open until ``finish()``, reusable via ``reset()``."""

from __future__ import annotations

import enum

from audio2face.errors import ProtocolError

__all__ = ["StreamState", "require_open"]


class StreamState(enum.Enum):
    OPEN = "open"
    FINISHED = "finished"


def require_open(state: StreamState, action: str) -> None:
    """Raise :class:`ProtocolError` unless ``state`` allows ``action`` (push or finish)."""
    if state is not StreamState.OPEN:
        raise ProtocolError(f"cannot {action}: the stream is {state.value}; call reset() first")
