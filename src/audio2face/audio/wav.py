"""Reading audio files of any common rate, width and channel count."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from audio2face.errors import AudioFormatError
from audio2face.types import FloatArray

__all__ = ["ACCEPTED_FORMATS", "read_audio", "to_pcm16"]

ACCEPTED_FORMATS = "WAV, FLAC, OGG (Vorbis/Opus), MP3, AIFF, CAF or W64"
"""What :func:`read_audio` decodes (through libsndfile), for error messages. MP3 needs
libsndfile >= 1.1, which the ``soundfile`` wheels bundle."""


def read_audio(path: str | Path | BinaryIO, *, name: str | None = None) -> tuple[FloatArray, int]:
    """Mono float32 samples and the file's sample rate (not resampled here: the
    Session resamples once, at the edge). ``path`` may also be an open binary file;
    ``name`` is what errors call it (default: the path, or "the audio data").

    Raises :class:`AudioFormatError` naming the file, what is wrong with it and the
    formats that are accepted.
    """
    is_file_object = hasattr(path, "read")
    shown = name or ("the audio data" if is_file_object else repr(str(path)))
    if not is_file_object:
        _check_readable(Path(str(path)), shown)
    source = path if is_file_object else str(path)
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        detail = getattr(exc, "error_string", "") or str(exc)
        raise AudioFormatError(
            f"{shown} is not audio that can be read ({detail.rstrip('.')}); "
            f"accepted formats: {ACCEPTED_FORMATS}"
        ) from exc
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioFormatError(f"{shown} holds non-finite samples (NaN or infinity)")
    return np.ascontiguousarray(mono, dtype=np.float32), int(rate)


def _check_readable(path: Path, shown: str) -> None:
    """libsndfile says "System error." for a missing file; say what the system said."""
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError as exc:
        raise AudioFormatError(f"audio file {shown} not found; check the path") from exc
    except IsADirectoryError as exc:
        raise AudioFormatError(f"{shown} is a directory, not an audio file") from exc
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = "; check its permissions" if exc.errno in (errno.EACCES, errno.EPERM) else ""
        raise AudioFormatError(f"cannot open audio file {shown}: {why}{hint}") from exc


def to_pcm16(audio: FloatArray) -> bytes:
    """float32 [-1, 1) to little-endian int16 bytes, clipping out-of-range samples."""
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()
