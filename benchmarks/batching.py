"""Micro-batching gain: throughput of the default engine with and without batching.

``--streams`` threads each push 40 ms bodies of real speech through their own
``DefaultEngineStream`` as fast as they can (a saturated server); all share one model
whose session sits behind a :class:`~audio2face.engines.batching.BatchingSession` with
``max_batch_size`` 1 (no batching, still the bounded inference pool) or larger. The
result is audio seconds per wall second and the mean batch size.

    python benchmarks/batching.py [--model PATH] [--streams 64] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from audio2face.bench import WIRE_RATE, load_speech
from audio2face.engines.default import load_default_engine
from audio2face.settings import Settings


def run(settings: Settings, streams: int, seconds: float, speech: np.ndarray) -> dict:
    engine = load_default_engine(settings)  # its session sits behind a BatchingSession
    sizes: list[int] = []
    engine.attach_batch_observer(lambda n, s: sizes.append(n))
    body = int(0.04 * WIRE_RATE)
    audio = speech.astype(np.float32) / 32768.0
    stop = time.monotonic() + seconds
    pushed = [0] * streams

    def work(k: int) -> None:
        stream = engine.open_stream()
        pos = (k * 7919 * body) % (len(audio) - body)
        while time.monotonic() < stop:
            stream.push(audio[pos : pos + body])
            pushed[k] += 1
            pos = (pos + body) % (len(audio) - body)

    t0 = time.monotonic()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    return {
        "inference_workers": settings.inference_workers,
        "intra_op_threads": settings.intra_op_threads,
        "max_batch_size": settings.max_batch_size, "batch_wait_ms": settings.batch_wait_ms,
        "streams": streams, "audio_s_per_s": round(sum(pushed) * 0.04 / wall, 1),
        "mean_batch_size": round(float(np.mean(sizes)), 2) if sizes else None,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--model", type=Path, help="default model file (else the packaged one)")
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--configs", default="1:0,8:0,16:0,64:0,16:2,64:2",
                    help="max_batch_size:batch_wait_ms pairs, comma-separated")
    ap.add_argument("--threads", default="1x2,2x1",
                    help="inference_workers x intra_op_threads pairs, comma-separated")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    threads = [tuple(int(v) for v in t.split("x")) for t in args.threads.split(",")]
    args.configs = [(int(a), float(b)) for a, b in (c.split(":") for c in args.configs.split(","))]
    speech = load_speech()
    rows = []
    for workers, intra in threads:
        for size, wait in args.configs:
            s = Settings(default_model=args.model, max_batch_size=size, batch_wait_ms=wait,
                         inference_workers=workers, intra_op_threads=intra)  # fmt: skip
            rows.append(run(s, args.streams, args.seconds, speech))
            print(json.dumps(rows[-1]), flush=True)
    result = {"cpu_count": os.cpu_count(), "load_at_end": round(os.getloadavg()[0], 2),
              "rows": rows}  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
