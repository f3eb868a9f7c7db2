"""Where live audio comes from: a microphone, a file played in real time, raw PCM on stdin.

Every source yields :class:`AudioBlock`\\ s of mono float32 audio with the monotonic time
its first sample was captured (or, for a file, would have been heard). That time is the
stream's clock: frame ``k`` belongs at ``origin + k / fps``, where ``origin`` is the
first block's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from audio2face.audio.pcm import PcmFormat, decode_pcm
from audio2face.audio.wav import read_audio
from audio2face.sinks.pacing import Clock, MonotonicClock
from audio2face.types import FloatArray

__all__ = [
    "AudioBlock",
    "AudioSource",
    "FileSource",
    "MicSource",
    "StdinSource",
    "import_sounddevice",
    "list_devices",
]

LIVE_HINT = (
    "pip install 'audio2face[live]' (and the PortAudio library: apt-get install libportaudio2)"
)


@dataclass(frozen=True, slots=True)
class AudioBlock:
    audio: FloatArray
    captured: float
    """Monotonic time of the block's first sample."""


class AudioSource(Protocol):
    @property
    def rate(self) -> int: ...

    @property
    def description(self) -> str: ...

    def blocks(self) -> AsyncIterator[AudioBlock]:
        """The audio, block by block, until the source ends (or :meth:`stop`)."""
        ...

    def stop(self) -> None:
        """End :meth:`blocks` soon (Ctrl-C)."""
        ...


def import_sounddevice() -> Any:
    """``sounddevice``, or a one-line error with the install hint."""
    try:
        import sounddevice
    except ImportError:
        raise ImportError(f"the microphone and --play need sounddevice: {LIVE_HINT}") from None
    except OSError as exc:  # the module is there but libportaudio is not
        raise ImportError(f"sounddevice cannot load PortAudio ({exc}); {LIVE_HINT}") from None
    return sounddevice


def list_devices() -> str:
    """The audio devices PortAudio sees, one per line (``--list-devices``)."""
    return str(import_sounddevice().query_devices())


class FileSource:
    """A file played in real time: block ``i`` is delivered once its last sample would
    have been heard, against absolute deadlines (no drift over long files)."""

    def __init__(self, path: str | Path, block_s: float, *, clock: Clock | None = None) -> None:
        self.audio, self._rate = read_audio(path)
        self.path = Path(path)
        self.block = max(1, round(block_s * self._rate))
        self.clock: Clock = clock or MonotonicClock()
        self._stopped = False

    @property
    def rate(self) -> int:
        return self._rate

    @property
    def description(self) -> str:
        return f"file {self.path.name} ({self.audio.shape[0] / self._rate:.1f} s)"

    async def blocks(self) -> AsyncIterator[AudioBlock]:
        origin = self.clock.now()
        for start in range(0, self.audio.shape[0], self.block):
            if self._stopped:
                return
            chunk = self.audio[start : start + self.block]
            await self.clock.sleep_until(origin + (start + chunk.shape[0]) / self._rate)
            yield AudioBlock(chunk, origin + start / self._rate)

    def stop(self) -> None:
        self._stopped = True


def parse_wav_header(head: bytes) -> tuple[PcmFormat, int] | None:
    """``(format, header length)`` when ``head`` starts a 16-bit PCM WAV stream (what
    ``espeak-ng --stdout`` writes), else ``None``. Streamed WAVs carry a bogus data size,
    so only the ``fmt`` chunk is used."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, fmt = 12, None
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk == b"fmt ":
            tag, channels, rate = struct.unpack("<HHI", head[pos + 8 : pos + 16])
            bits = struct.unpack("<H", head[pos + 22 : pos + 24])[0]
            if tag not in (1, 0xFFFE) or bits != 16:
                raise ValueError(
                    f"stdin is a WAV of {bits}-bit samples (format {tag}); --stdin takes "
                    "16-bit PCM (e.g. sox in.wav -b 16 -t wav -)"
                )
            fmt = PcmFormat(sample_rate=rate, sample_width=2, n_channels=channels)
        elif chunk == b"data":
            if fmt is None:
                raise ValueError("stdin WAV stream has its data before its fmt chunk")
            return fmt, pos + 8
        pos += 8 + size + (size & 1)
    return None


class StdinSource:
    """Raw little-endian 16-bit PCM from a pipe at ``--rate`` (a WAV header, as
    ``espeak-ng --stdout`` writes one, is recognised and sets the rate itself).

    A pipe arrives as fast as its writer makes it; block ``i``'s time is
    ``origin + i * block_s`` (stream time), so frames still leave in real time."""

    def __init__(
        self,
        rate: int | None,
        block_s: float,
        *,
        channels: int = 1,
        stream: BinaryIO | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._stream = stream if stream is not None else sys.stdin.buffer
        self._fmt = PcmFormat(sample_rate=rate or 0, sample_width=2, n_channels=channels)
        self.block_s = block_s
        self.clock: Clock = clock or MonotonicClock()
        self._stopped = threading.Event()
        self._pending = b""
        self._known = rate is not None

    @property
    def rate(self) -> int:
        return self._fmt.sample_rate

    @property
    def description(self) -> str:
        return f"stdin ({self.rate} Hz, {self._fmt.n_channels} ch, 16-bit)"

    def _read(self, n: int) -> bytes:
        return self._stream.read(n) or b""

    async def open(self) -> None:
        """Read far enough to know the rate (a WAV header), before the stream opens."""
        head = await asyncio.to_thread(self._read, 44)
        wav = parse_wav_header(head)
        if wav is None and head.startswith(b"RIFF"):  # a longer header (LIST chunks)
            head += await asyncio.to_thread(self._read, 4096 - len(head))
            wav = parse_wav_header(head)
        if wav is not None:
            self._fmt, skip = wav
            self._pending = head[skip:]
        elif not self._known:
            raise ValueError(
                "--stdin needs --rate R for raw PCM (only a WAV stream carries its rate)"
            )
        else:
            self._pending = head

    async def blocks(self) -> AsyncIterator[AudioBlock]:
        step = max(1, round(self.block_s * self.rate)) * self._fmt.frame_bytes
        origin: float | None = None
        samples = 0
        while not self._stopped.is_set():
            if len(self._pending) < step:
                data = await asyncio.to_thread(self._read, step)
                if not data:
                    break
                self._pending += data
                if len(self._pending) < step:
                    continue
            take = self._pending[:step]
            self._pending = self._pending[step:]
            audio = decode_pcm(take, self._fmt)
            if origin is None:
                origin = self.clock.now()
            yield AudioBlock(audio, origin + samples / self.rate)
            samples += audio.shape[0]
        whole = len(self._pending) - len(self._pending) % self._fmt.frame_bytes
        if whole and origin is not None and not self._stopped.is_set():
            yield AudioBlock(
                decode_pcm(self._pending[:whole], self._fmt), origin + samples / self.rate
            )

    def stop(self) -> None:
        self._stopped.set()


class MicSource:
    """A microphone through PortAudio (``sounddevice``). The callback thread hands
    blocks to the event loop through a queue bounded by ``max_queue_s``; past it the
    oldest audio is dropped and counted (the model fell far behind the voice)."""

    def __init__(
        self,
        block_s: float,
        *,
        device: str | int | None = None,
        rate: int | None = None,
        max_queue_s: float = 5.0,
    ) -> None:
        self._sd = import_sounddevice()
        try:
            info = self._sd.query_devices(device, "input")
        except (ValueError, self._sd.PortAudioError) as exc:
            raise ValueError(f"microphone {device!r}: {exc}; see --list-devices") from None
        self._rate = int(rate or info["default_samplerate"])
        self.device = device
        self.device_name = str(info["name"])
        self.block = max(1, round(block_s * self._rate))
        self.max_blocks = max(1, round(max_queue_s / block_s))
        self.dropped = 0
        self._queue: asyncio.Queue[AudioBlock | None] | None = None
        self._stream: Any = None

    @property
    def rate(self) -> int:
        return self._rate

    @property
    def description(self) -> str:
        return f"mic {self.device_name} ({self._rate} Hz)"

    async def blocks(self) -> AsyncIterator[AudioBlock]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[AudioBlock | None] = asyncio.Queue(self.max_blocks)
        self._queue = queue

        def put(block: AudioBlock) -> None:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(block)

        def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
            # Runs on PortAudio's thread: copy, stamp, hand over; nothing else here.
            now = time.monotonic()
            block = AudioBlock(np.array(indata[:, 0], dtype=np.float32), now - frames / self._rate)
            loop.call_soon_threadsafe(put, block)

        try:
            self._stream = self._sd.InputStream(
                samplerate=self._rate, blocksize=self.block, device=self.device,
                channels=1, dtype="float32", callback=callback,
            )  # fmt: skip
        except self._sd.PortAudioError as exc:
            raise ValueError(f"cannot open microphone {self.device_name!r}: {exc}") from None
        self._stream.start()
        try:
            while True:
                block = await queue.get()
                if block is None:
                    return
                yield block
        finally:
            self._stream.stop()
            self._stream.close()

    def stop(self) -> None:
        if self._queue is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)
