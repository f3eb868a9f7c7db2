"""Real-time animation: audio in (microphone, file, pipe), frames out to avatar apps.

::

    run = LiveRun(FileSource("speech.wav", 0.02), InProcessBackend(runtime, "vrm"),
                  lambda names, fps: [VmcSink(names, VmcNames.load("vrm0"), VmcOptions())])
    stats = await run.run()

The ``audio2face live`` command (:mod:`audio2face.live.cli`) is a thin layer over this.
"""

from __future__ import annotations

from audio2face.live.backends import (
    Backend,
    InProcessBackend,
    LiveStream,
    V1Backend,
    V2Backend,
)
from audio2face.live.runner import DEFAULT_LIVE, LiveOptions, LiveRun, LiveStats, Player
from audio2face.live.sources import AudioBlock, AudioSource, FileSource, MicSource, StdinSource

__all__ = [
    "DEFAULT_LIVE",
    "AudioBlock",
    "AudioSource",
    "Backend",
    "FileSource",
    "InProcessBackend",
    "LiveOptions",
    "LiveRun",
    "LiveStats",
    "LiveStream",
    "MicSource",
    "Player",
    "StdinSource",
    "V1Backend",
    "V2Backend",
]
