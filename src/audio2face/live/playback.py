"""``--play``: the input audio through the speakers, delayed to line up with the face.

A frame for stream time ``t`` leaves at ``origin + t + delay``; so the sample at ``t``
must reach the speaker at that moment too. The player queues samples as they arrive
and starts its output stream at ``origin + delay - output_latency`` (PortAudio reports
the device's latency), after which it plays continuously: the queue then holds about
``delay`` of audio. ``offset_s`` shifts the sound further, for an avatar app that
renders a little after it receives (positive: sound later).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

import numpy as np

from audio2face.live.sources import import_sounddevice
from audio2face.types import FloatArray

__all__ = ["DelayBuffer", "DelayedPlayer"]


class DelayBuffer:
    """A thread-safe FIFO of samples read in fixed-size pieces (zeros when empty).

    Bounded: past ``max_samples`` the oldest audio is dropped (the output device
    stopped consuming), so it never grows without limit."""

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self._chunks: deque[FloatArray] = deque()
        self._size = 0
        self._lock = threading.Lock()
        self.underruns = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, audio: FloatArray) -> None:
        with self._lock:
            self._chunks.append(np.asarray(audio, np.float32))
            self._size += audio.shape[0]
            while self._size > self.max_samples and self._chunks:
                self._size -= self._chunks.popleft().shape[0]

    def read(self, n: int) -> FloatArray:
        out = np.zeros(n, np.float32)
        filled = 0
        with self._lock:
            while filled < n and self._chunks:
                head = self._chunks[0]
                take = min(n - filled, head.shape[0])
                out[filled : filled + take] = head[:take]
                filled += take
                if take == head.shape[0]:
                    self._chunks.popleft()
                else:
                    self._chunks[0] = head[take:]
            self._size -= filled
        if filled < n:
            self.underruns += 1
        return out


class DelayedPlayer:
    """Plays the input through the default (or given) output device, delayed."""

    def __init__(
        self, rate: int, delay_s: float, *, offset_s: float = 0.0, device: Any = None
    ) -> None:
        self._sd = import_sounddevice()
        self.rate = rate
        self.delay_s = delay_s + offset_s
        self.buffer = DelayBuffer(max_samples=int(rate * (self.delay_s + 5.0)))
        self._device = device
        self._stream: Any = None
        self._timer: asyncio.TimerHandle | None = None
        #: When (``time.monotonic()``) the output stream is scheduled to start; None before
        #: ``start``. The event loop may run the start later under load, never earlier.
        self.start_at: float | None = None

    def start(self, origin: float) -> None:
        """Schedule the output to start so that sample 0 sounds at ``origin + delay``."""

        def callback(outdata: Any, frames: int, time_info: Any, status: Any) -> None:
            outdata[:, 0] = self.buffer.read(frames)

        try:
            self._stream = self._sd.OutputStream(
                samplerate=self.rate, channels=1, dtype="float32", device=self._device,
                callback=callback, latency="low",
            )  # fmt: skip
        except self._sd.PortAudioError as exc:
            raise ValueError(f"--play: cannot open the output device: {exc}") from None
        loop = asyncio.get_running_loop()
        self.start_at = origin + max(0.0, self.delay_s - float(self._stream.latency))
        # loop.time() is time.monotonic() on every platform asyncio supports.
        self._timer = loop.call_at(self.start_at, self._stream.start)

    def write(self, audio: FloatArray) -> None:
        self.buffer.write(audio)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
