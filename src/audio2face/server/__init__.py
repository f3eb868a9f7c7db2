"""HTTP and WebSocket transports."""

from __future__ import annotations

from audio2face.server.app import create_app

__all__ = ["create_app"]
