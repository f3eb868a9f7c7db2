"""Exporters and importers of animation frames, chosen by file extension."""

from __future__ import annotations

from audio2face.formats.io import (
    DEFAULT_SAVE,
    SaveOptions,
    check_output,
    load_frames,
    save_frames,
    supported_extensions,
)
from audio2face.formats.vmd import VmdMotion, VmdOptions, read_vmd, write_vmd

__all__ = [
    "DEFAULT_SAVE",
    "SaveOptions",
    "VmdMotion",
    "VmdOptions",
    "check_output",
    "load_frames",
    "read_vmd",
    "save_frames",
    "supported_extensions",
    "write_vmd",
]
