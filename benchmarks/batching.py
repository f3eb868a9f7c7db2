"""Micro-batching gain: throughput of the default engine with and without batching.

``--streams`` streams on one asyncio event loop each push 40 ms bodies of real speech
through their own ``Session`` (the ``arkit`` profile, postprocessing included) as fast
as they can, each awaiting its frames before its next body: a saturated server
without the network. Bodies go the way the server sends them, through the runtime's
:class:`~audio2face.streaming.pusher.BatchPusher` (the one batching layer), with
``max_batch_size`` 1 (every body alone: the batch-size-1 baseline) or larger.

The result is audio seconds per wall second and the mean rows per model run.

    python benchmarks/batching.py [--streams 64] [--seconds 8] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from audio2face.bench import WIRE_RATE, load_speech
from audio2face.runtime import Runtime
from audio2face.settings import Settings


def run(settings: Settings, path: str, streams: int, seconds: float, audio: np.ndarray) -> dict:
    runtime = Runtime.start(settings)
    sizes: list[int] = []
    runtime.engines["default"].attach_batch_observer(lambda n, s: sizes.append(n))
    body = int(0.04 * WIRE_RATE)
    pushed = [0] * streams

    pusher = runtime.pushers["default"]

    async def stream(k: int, stop: float) -> None:
        session, _ = runtime.open_session("arkit", WIRE_RATE, seed=k)
        pos = (k * 7919 * body) % (len(audio) - body)
        while time.monotonic() < stop:
            piece = audio[pos : pos + body]
            await pusher.push(session, piece)
            pushed[k] += 1
            pos = (pos + body) % (len(audio) - body)

    async def main() -> float:
        t0 = time.monotonic()
        await asyncio.gather(*(stream(k, t0 + seconds) for k in range(streams)))
        return time.monotonic() - t0

    try:
        wall = asyncio.run(main())
    finally:
        runtime.close()
    return {
        "path": path, "streams": streams,
        "inference_workers": settings.inference_workers,
        "max_batch_size": settings.max_batch_size, "batch_wait_ms": settings.batch_wait_ms,
        "audio_s_per_s": round(sum(pushed) * 0.04 / wall, 1),
        "mean_batch_size": round(float(np.mean(sizes)), 2) if sizes else None,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--configs", default="pusher:1:0,pusher:8:0,pusher:64:0,pusher:64:2",
                    help="path:max_batch_size:batch_wait_ms triples, comma-separated")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    audio = load_speech().astype(np.float32) / 32768.0
    rows = []
    for config in args.configs.split(","):
        path, size, wait = config.split(":")
        settings = Settings(max_batch_size=int(size), batch_wait_ms=float(wait))
        rows.append(run(settings, path, args.streams, args.seconds, audio))
        print(json.dumps(rows[-1]), flush=True)
    result = {"cpu_count": os.cpu_count(), "load_at_end": round(os.getloadavg()[0], 2),
              "argv": argv if argv is not None else sys.argv[1:], "rows": rows}  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
