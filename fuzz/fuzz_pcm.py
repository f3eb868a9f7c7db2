"""Fuzz the PCM path: ``PcmFormat.validate`` and ``decode_pcm`` on arbitrary formats
and bytes, then a :class:`~audio2face.streaming.session.Session` (resampler, emotion
timeline, frame clock) pushed with the result in arbitrary splits, on a cheap engine.

Checks: no exception but :class:`~audio2face.errors.Audio2FaceError`; decoded audio is
finite and in [-1, 1); after ``finish`` the frame count is exactly the frame clock's.

    python fuzz/fuzz_pcm.py -max_total_time=300 fuzz/corpus/pcm
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    import numpy as np

    from audio2face.audio.pcm import PcmFormat, decode_pcm
    from audio2face.errors import Audio2FaceError
    from audio2face.streaming.session import Session
    from audio2face.types import frames_for_samples

ACCEPTED_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
ENGINE_RATE = 16000
FPS = 30.0
EMOTIONS = (None, "happiness_1", "anger_2", "no_such_emotion", "../x", "\x00")


class ClockEngineStream:
    """Emits one frame (mean |audio| per 1/30 s) as soon as its audio is in: no model,
    so the fuzzer spends its time in the code under test."""

    def __init__(self) -> None:
        self.samples = 0
        self.frames = 0

    def push(self, audio: np.ndarray, emotion: str | None = None) -> np.ndarray:
        self.samples += int(audio.shape[0])
        due = int(self.samples * FPS / ENGINE_RATE) - self.frames
        self.frames += max(due, 0)
        return np.full((max(due, 0), 2), float(np.abs(audio).mean()) if audio.size else 0.0,
                       dtype=np.float32)  # fmt: skip

    def finish(self) -> np.ndarray:
        due = frames_for_samples(self.samples, ENGINE_RATE, FPS) - self.frames
        self.frames += max(due, 0)
        return np.zeros((max(due, 0), 2), dtype=np.float32)


def identity_chain(values: np.ndarray, emotion: str | None) -> np.ndarray:
    return values


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    fmt = PcmFormat(
        sample_rate=fdp.PickValueInList([*ACCEPTED_RATES, 0, -16000, 1, 2**31 - 1]),
        sample_width=fdp.PickValueInList([2, 2, 2, 0, 1, 3, 4, -2]),
        n_channels=fdp.PickValueInList([1, 1, 2, 3, 8, 0, 9, -1, 2**31 - 1]),
    )
    try:
        fmt.validate(ACCEPTED_RATES)
    except Audio2FaceError:
        return
    session = Session(
        ClockEngineStream(), identity_chain, names=("a", "b"), fps=FPS,
        input_rate=fmt.sample_rate, engine_rate=ENGINE_RATE,
    )  # fmt: skip
    total = 0
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4000))
        try:
            audio = decode_pcm(chunk, fmt)
        except Audio2FaceError:
            continue
        if audio.dtype != np.float32 or not np.isfinite(audio).all():
            raise RuntimeError("decode_pcm returned non-finite or non-float32 audio")
        if audio.size and (audio.min() < -1.0 or audio.max() >= 1.0):
            raise RuntimeError("decode_pcm returned audio outside [-1, 1)")
        total += audio.shape[0]
        session.push(audio, fdp.PickValueInList(list(EMOTIONS)))
    session.finish()
    want = frames_for_samples(total, fmt.sample_rate, FPS)
    if session.frames_out != want:
        raise RuntimeError(f"{session.frames_out} frames for {total} samples, want {want}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
