"""Decoding and validating raw PCM bytes from clients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio2face.errors import AudioFormatError
from audio2face.types import FloatArray

SUPPORTED_WIDTHS = (2,)
MAX_CHANNELS = 8


@dataclass(frozen=True, slots=True)
class PcmFormat:
    """Little-endian signed integer PCM, interleaved when ``n_channels > 1``."""

    sample_rate: int
    sample_width: int = 2
    n_channels: int = 1

    def validate(self, accepted_rates: tuple[int, ...]) -> None:
        """Raise :class:`AudioFormatError` naming the allowed values."""
        if self.sample_rate not in accepted_rates:
            raise AudioFormatError(
                f"sample_rate {self.sample_rate} is not supported; "
                f"accepted rates are {list(accepted_rates)}"
            )
        if self.sample_width not in SUPPORTED_WIDTHS:
            raise AudioFormatError(
                f"sample_width {self.sample_width} is not supported; "
                f"only {list(SUPPORTED_WIDTHS)} (16-bit PCM) is accepted"
            )
        if not 1 <= self.n_channels <= MAX_CHANNELS:
            raise AudioFormatError(
                f"n_channels {self.n_channels} is not supported; use 1 to {MAX_CHANNELS}"
            )

    @property
    def frame_bytes(self) -> int:
        """Bytes per sample frame (one sample of every channel)."""
        return self.sample_width * self.n_channels


def decode_pcm(data: bytes, fmt: PcmFormat) -> FloatArray:
    """Decode interleaved int16 PCM to mono float32 in [-1, 1).

    Channels are averaged: a face follows the voice, not the stereo image.
    """
    if len(data) % fmt.frame_bytes:
        raise AudioFormatError(
            f"pcm_bytes holds {len(data)} bytes, not a whole number of "
            f"{fmt.frame_bytes}-byte sample frames ({fmt.sample_width}-byte samples, "
            f"{fmt.n_channels} channel(s))"
        )
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) * (1.0 / 32768.0)
    if fmt.n_channels > 1:
        samples = samples.reshape(-1, fmt.n_channels).mean(axis=1, dtype=np.float32)
    return samples
