"""HTTP and WebSocket transports.

Internal: part of the implementation, not of the public API (``audio2face/__init__.py``);
names here may change between releases.
"""

from __future__ import annotations

from audio2face.server.app import create_app

__all__ = ["create_app"]
