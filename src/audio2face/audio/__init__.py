"""Audio at the edge: PCM decoding and validation, resampling, WAV files.

Internal: part of the implementation, not of the public API (``audio2face/__init__.py``);
names here may change between releases.
"""

from __future__ import annotations

from audio2face.audio.pcm import PcmFormat, decode_pcm
from audio2face.audio.resample import StreamResampler, resample

__all__ = ["PcmFormat", "StreamResampler", "decode_pcm", "resample"]
