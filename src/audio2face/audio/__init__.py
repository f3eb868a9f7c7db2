"""Audio at the edge: PCM decoding and validation, resampling, WAV files."""

from __future__ import annotations

from audio2face.audio.pcm import PcmFormat, decode_pcm
from audio2face.audio.resample import StreamResampler, resample

__all__ = ["PcmFormat", "StreamResampler", "decode_pcm", "resample"]
