"""The live status line: input level, frame rate, latency and each target's packet rate."""

from __future__ import annotations

import asyncio
import time
from typing import TextIO

import numpy as np

from audio2face.live.runner import LiveRun

__all__ = ["StatusLine", "format_status", "summary"]


def format_status(run: LiveRun, rates: dict[str, float], fps_out: float) -> str:
    stats = run.stats
    parts = [
        f"in {stats.level_dbfs:6.1f} dBFS",
        f"{fps_out:5.1f} fps",
        f"latency {stats.last_latency_s * 1000:4.0f} ms",
    ]
    parts += [f"{name} {rate:5.1f} pkt/s" for name, rate in rates.items()]
    if stats.late:
        parts.append(f"late {stats.late}")
    return " | ".join(parts)


class StatusLine:
    """Redraws one line on a terminal every ``interval_s`` while the run goes."""

    def __init__(self, run: LiveRun, out: TextIO, interval_s: float = 0.5) -> None:
        self.run = run
        self.out = out
        self.interval_s = interval_s
        self._width = 0

    async def loop(self) -> None:
        last_t = time.monotonic()
        last_frames = 0
        last_packets: dict[str, int] = {}
        while True:
            await asyncio.sleep(self.interval_s)
            now = time.monotonic()
            span = max(now - last_t, 1e-6)
            rates: dict[str, float] = {}
            for sink in self.run.sinks:
                packets = sink.stats.packets
                rates[sink.name] = (packets - last_packets.get(sink.name, packets)) / span
                last_packets[sink.name] = packets
            fps_out = (self.run.stats.frames_sent - last_frames) / span
            last_t, last_frames = now, self.run.stats.frames_sent
            line = format_status(self.run, rates, fps_out)
            self.out.write("\r" + line.ljust(self._width))
            self.out.flush()
            self._width = len(line)

    def clear(self) -> None:
        if self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self.out.flush()


def summary(run: LiveRun) -> str:
    """One line for the end of a run."""
    stats = run.stats
    text = (
        f"{stats.seconds_in:.1f} s of audio, {stats.frames_sent} frames at {stats.fps:g} fps "
        f"to {', '.join(s.name for s in run.sinks) or 'no target'}"
    )
    if stats.latencies:
        lat = np.array(stats.latencies) * 1000
        text += (
            f"; latency p50 {np.percentile(lat, 50):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms"
        )
    if stats.ready:
        ready = np.array(stats.ready) * 1000
        text += f" (frames ready after p95 {np.percentile(ready, 95):.0f} ms)"
    if stats.late:
        text += f"; {stats.late} frames late"
    return text
