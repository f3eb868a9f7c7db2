"""Where live audio comes from: a microphone, a file played in real time, raw PCM on stdin.

Every source yields :class:`AudioBlock`\\ s of mono float32 audio with the monotonic time
its first sample was captured (or, for a file, would have been heard). That time is the
stream's clock: frame ``k`` belongs at ``origin + k / fps``, where ``origin`` is the
first block's time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import struct
import sys
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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

    def blocks(self) -> AsyncGenerator[AudioBlock, None]:
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
    devices = str(import_sounddevice().query_devices())
    return devices or "PortAudio sees no audio devices on this machine"


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

    async def blocks(self) -> AsyncGenerator[AudioBlock, None]:
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

    A daemon thread reads the pipe, so a stop never waits on a writer that says nothing;
    its queue is bounded, so a fast writer is held back by the pipe (backpressure). A
    pipe arrives as fast as its writer makes it; block ``i``'s time is
    ``origin + i * block_s`` (stream time), so frames still leave in real time."""

    READ_BYTES = 65536
    QUEUE_READS = 64

    def __init__(
        self,
        rate: int | None,
        block_s: float,
        *,
        channels: int = 1,
        fd: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._fd = fd if fd is not None else sys.stdin.fileno()
        self._fmt = PcmFormat(sample_rate=rate or 0, sample_width=2, n_channels=channels)
        self.block_s = block_s
        self.clock: Clock = clock or MonotonicClock()
        self._pending = b""
        self._eof = False
        self._known = rate is not None
        self._queue: asyncio.Queue[bytes] | None = None
        self._stop = asyncio.Event()

    @property
    def rate(self) -> int:
        return self._fmt.sample_rate

    @property
    def description(self) -> str:
        return f"stdin ({self.rate} Hz, {self._fmt.n_channels} ch, 16-bit)"

    def _start_reader(self) -> asyncio.Queue[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue(self.QUEUE_READS)

        def read() -> None:
            while True:
                try:
                    data = os.read(self._fd, self.READ_BYTES)
                except OSError:
                    data = b""
                try:
                    asyncio.run_coroutine_threadsafe(queue.put(data), loop).result()
                except (RuntimeError, concurrent.futures.CancelledError):
                    return  # the loop is gone: nobody reads any more
                if not data:
                    return

        threading.Thread(target=read, name="a2f-stdin", daemon=True).start()
        return queue

    async def _more(self) -> bool:
        """Append the next read to the pending bytes; False at the end (EOF or stop)."""
        if self._eof or self._stop.is_set():
            return False
        if self._queue is None:
            self._queue = self._start_reader()
        getter = asyncio.ensure_future(self._queue.get())
        stopper = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait((getter, stopper), return_when=asyncio.FIRST_COMPLETED)
        for task in (getter, stopper):
            if not task.done():
                task.cancel()
        if not getter.done() or getter.cancelled():
            return False
        data = getter.result()
        if not data:
            self._eof = True
            return False
        self._pending += data
        return True

    async def open(self) -> None:
        """Read far enough to know the rate (a WAV header), before the stream opens."""
        while len(self._pending) < 44 and await self._more():
            pass
        wav = parse_wav_header(self._pending)
        while wav is None and self._pending.startswith(b"RIFF") and len(self._pending) < 4096:
            if not await self._more():  # a longer header (LIST chunks before the data)
                break
            wav = parse_wav_header(self._pending)
        if wav is not None:
            self._fmt, skip = wav
            self._pending = self._pending[skip:]
        elif not self._known:
            raise ValueError(
                "--stdin needs --rate R for raw PCM (only a WAV stream carries its rate)"
            )

    async def blocks(self) -> AsyncGenerator[AudioBlock, None]:
        step = max(1, round(self.block_s * self.rate)) * self._fmt.frame_bytes
        origin: float | None = None
        samples = 0
        while True:
            while len(self._pending) < step and await self._more():
                pass
            whole = min(step, len(self._pending) - len(self._pending) % self._fmt.frame_bytes)
            if whole <= 0 or self._stop.is_set():
                return
            take, self._pending = self._pending[:whole], self._pending[whole:]
            audio = decode_pcm(take, self._fmt)
            if origin is None:
                origin = self.clock.now()
            yield AudioBlock(audio, origin + samples / self.rate)
            samples += audio.shape[0]

    def stop(self) -> None:
        self._stop.set()


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
            which = "no default microphone" if device is None else f"microphone {device!r}"
            raise ValueError(
                f"{which} ({exc}); pick one with --device (see --list-devices)"
            ) from None
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

    async def blocks(self) -> AsyncGenerator[AudioBlock, None]:
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
            if self._queue.full():  # make room: the stop must get through
                with contextlib.suppress(asyncio.QueueEmpty):
                    self._queue.get_nowait()
            self._queue.put_nowait(None)
