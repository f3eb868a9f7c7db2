"""Exporters and importers of animation frames, chosen by file extension."""

from __future__ import annotations

from audio2face.formats.io import load_frames, save_frames, supported_extensions

__all__ = ["load_frames", "save_frames", "supported_extensions"]
