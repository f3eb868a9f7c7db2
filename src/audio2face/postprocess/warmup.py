"""Compile the alive features' kernels before a stream needs them.

The prosody tracker and the alive steps run compiled kernels (:mod:`audio2face.jit`).
numba compiles a kernel on its first call, about a second each with an empty cache,
which would stall the first stream that asks for head motion or gaze. The service
calls :func:`warm_up` while it starts instead: a short synthetic stream through every
alive step, on both of the chain's paths (every feature on; some streams with a
feature off), so each kernel is compiled for the array types the service passes, or
loaded from numba's disk cache in milliseconds.
"""

from __future__ import annotations

import time

import numpy as np

from audio2face.audio.prosody import ProsodyTracker
from audio2face.postprocess import StreamOptions, build_chain
from audio2face.postprocess.base import BindEnv
from audio2face.rigs import ARKIT_52

__all__ = ["warm_up"]

ALIVE_STEPS = (
    {"type": "arousal"},
    {"type": "tongue"},
    {"type": "gaze"},
    {"type": "natural_blink"},
    {"type": "head"},
)


def warm_up(sample_rate: int = 16000, fps: float = 30.0) -> float:
    """Run every alive kernel once; returns the seconds it took."""
    t0 = time.perf_counter()
    chain = build_chain(ALIVE_STEPS, ARKIT_52, BindEnv(fps=fps))
    streams = [
        chain.new_stream(0, StreamOptions()),
        chain.new_stream(1, StreamOptions(off=frozenset({"gaze"}))),
    ]
    trackers = [ProsodyTracker(sample_rate, fps) for _ in streams]
    # Half a second of a buzzy vowel: voiced frames, a phrase start, syllable peaks.
    t = np.arange(sample_rate // 2) / sample_rate
    voice = (0.1 * np.sign(np.sin(2 * np.pi * 120.0 * t)) * np.sin(2 * np.pi * 4.0 * t))
    counts = [int(0.5 * fps) - 1] * len(streams)
    for tr in trackers:
        tr.push(voice.astype(np.float32))
    prosody = ProsodyTracker.take_rows(trackers, counts)
    frames = np.zeros((sum(counts), len(ARKIT_52)), np.float32)
    for everyone in (streams, streams[:1]):  # some features off, then all on
        n = sum(counts[: len(everyone)])
        chain.run_many(everyone, frames[:n], counts[: len(everyone)], [None] * len(everyone),
                       prosody.rows(0, n, prosody.first_frame))  # fmt: skip
    return time.perf_counter() - t0
