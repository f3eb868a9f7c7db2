"""Sample-rate conversion with soxr, done once at the edge of the pipeline."""

from __future__ import annotations

import numpy as np
import soxr

from audio2face.types import FloatArray


def resample(audio: FloatArray, in_rate: int, out_rate: int) -> FloatArray:
    """Resample a whole signal (files, offline conversion)."""
    if in_rate == out_rate:
        return np.asarray(audio, dtype=np.float32)
    return soxr.resample(np.asarray(audio, dtype=np.float32), in_rate, out_rate, quality="HQ")


class StreamResampler:
    """Chunked resampling whose output does not depend on how input is chunked.

    With equal rates it passes audio through untouched (no filter delay), which is
    the common case: the main v1 client always sends 16 kHz.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
        )

    def push(self, audio: FloatArray) -> FloatArray:
        if self._stream is None:
            return audio
        return self._stream.resample_chunk(audio, last=False)

    def finish(self) -> FloatArray:
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        return self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
