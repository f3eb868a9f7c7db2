"""Reading audio files of any common rate, width and channel count."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from audio2face.errors import AudioFormatError
from audio2face.types import FloatArray


def read_audio(path: str | Path | BinaryIO) -> tuple[FloatArray, int]:
    """Mono float32 samples and the file's sample rate (not resampled here: the
    Session resamples once, at the edge). ``path`` may also be an open binary file."""
    source = path if hasattr(path, "read") else str(path)
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"cannot read audio file {str(path)!r}: {exc}") from exc
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioFormatError(f"audio file {str(path)!r} holds non-finite samples")
    return np.ascontiguousarray(mono, dtype=np.float32), int(rate)


def to_pcm16(audio: FloatArray) -> bytes:
    """float32 [-1, 1) to little-endian int16 bytes, clipping out-of-range samples."""
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()
