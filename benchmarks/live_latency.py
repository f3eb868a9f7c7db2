"""Latency of ``audio2face live`` from an audio sample to the UDP packet of its frame.

A file is played through ``live`` in real time (as a microphone would deliver it, in
``--block-ms`` blocks) with the model in this process, to a Live Link receiver on
loopback. For frame ``k``, latency = the packet's arrival time minus the capture time
of the sample at the frame's time, ``origin + k / fps``, where ``origin`` is the first
sample's capture. Both on ``time.monotonic()`` in one process.

Two runs: the default delay (steady 30 packets/s) and ``--delay-ms 0`` (each frame sent
as soon as it is made: the pipeline's own latency).

    python benchmarks/live_latency.py --seconds 30 --out benchmarks/results/live_latency.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from audio2face.live import FileSource, InProcessBackend, LiveOptions, LiveRun
from audio2face.runtime import Runtime
from audio2face.settings import Settings, cpu_count
from audio2face.sinks import LiveLinkOptions, LiveLinkSink, UdpTarget, decode_packet

TEXT = (
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
    "How vexingly quick daft zebras jump. Sphinx of black quartz, judge my vow. "
)


def speech(seconds: float) -> tuple[np.ndarray, int]:
    """espeak-ng speech, repeated to ``seconds``."""
    from audio2face.engines.phonemes.espeak import synthesize

    said = synthesize(TEXT)
    reps = int(np.ceil(seconds / said.duration))
    audio = np.tile(said.audio, reps)[: int(seconds * said.sample_rate)]
    return audio.astype(np.float32), said.sample_rate


class Receiver:
    """Live Link packets with their arrival times, on a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.arrivals: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.arrivals[decode_packet(data).frame] = time.monotonic()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def one_run(runtime: Runtime, wav: Path, options: LiveOptions, profile: str) -> dict[str, object]:
    rx = Receiver()
    target = UdpTarget("127.0.0.1", rx.port)
    live = LiveRun(
        FileSource(wav, options.block_s),
        InProcessBackend(runtime, profile),
        lambda names, fps: [LiveLinkSink(names, fps, LiveLinkOptions(target))],
        options,
    )
    stats = asyncio.run(live.run())
    time.sleep(0.2)
    rx.close()
    origin = live.origin or 0.0
    frames = sorted(rx.arrivals)
    lat = np.array([rx.arrivals[k] - (origin + k / stats.fps) for k in frames]) * 1000
    ready = np.array(stats.ready) * 1000
    arrivals = np.array([rx.arrivals[k] for k in frames])
    return {
        "delay_ms": round(stats.delay_s * 1000, 1),
        "frames_sent": stats.frames_sent,
        "frames_received": len(frames),
        "late_frames": stats.late,
        "latency_ms": {p: round(float(np.percentile(lat, q)), 1)
                       for p, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))},
        "ready_ms": {p: round(float(np.percentile(ready, q)), 1)
                     for p, q in (("p50", 50), ("p95", 95), ("max", 100))},
        "packets_per_s": round((len(frames) - 1) / float(arrivals[-1] - arrivals[0]), 3),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio played per run")
    parser.add_argument("--wav", type=Path, help="audio to play (default: espeak-ng speech)")
    parser.add_argument("--block-ms", type=float, default=20.0)
    parser.add_argument("--profile", default="arkit")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wav = args.wav
        if wav is None:
            wav = Path(tmp) / "speech.wav"
            audio, rate = speech(args.seconds)
            sf.write(wav, audio, rate, subtype="PCM_16")
        runtime = Runtime.start(Settings())
        try:
            block = args.block_ms / 1000
            results = {
                "seconds": args.seconds,
                "block_ms": args.block_ms,
                "cpu_count": cpu_count(),
                "profile": args.profile,
                "default_delay": one_run(runtime, wav, LiveOptions(block_s=block), args.profile),
                "no_delay": one_run(
                    runtime, wav, LiveOptions(block_s=block, delay_s=0.0), args.profile
                ),
            }
        finally:
            runtime.close()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
