"""Throughput of inference_workers x intra_op_threads on this machine.

For each (workers, intra-op threads) pair, ``workers`` threads share one onnxruntime
session (as the server's inference pool does) and run windows back to back for a
fixed time; the result is audio seconds inferred per wall second, and the wall time
of one window. This is how the defaults in ``settings.py`` were chosen
(``docs/benchmarks.md``, "Threads").

    python benchmarks/threads.py benchmarks/models/unitalker_like.onnx --window-s 0.8
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def feeds_for(session: ort.InferenceSession, window_s: float) -> tuple[dict, float]:
    """Inputs for one window, and the audio seconds it stands for."""
    names = {i.name for i in session.get_inputs()}
    if names == {"audio", "emo_id", "time_steps"}:  # UniTalker signature
        n = int(window_s * 16000)
        return {
            "audio": np.random.default_rng(0).normal(size=(1, n)).astype(np.float32),
            "emo_id": np.array([10], np.int32),
            "time_steps": np.array([round(window_s * 30)], np.int32),
        }, window_s
    (inp,) = session.get_inputs()  # default model: [B, T, n_mels] log-mel, 100 frames/s
    t = int(window_s * 100)
    return {inp.name: np.zeros((1, t, inp.shape[-1]), np.float32)}, window_s


def measure(path: Path, workers: int, intra: int, window_s: float, seconds: float) -> dict:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feeds, audio_s = feeds_for(session, window_s)
    session.run(None, feeds)  # warm-up
    stop = time.monotonic() + seconds
    runs: list[float] = []
    lock = threading.Lock()

    def loop() -> None:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            session.run(None, feeds)
            with lock:
                runs.append(time.perf_counter() - t0)

    t0 = time.monotonic()
    threads = [threading.Thread(target=loop) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    return {
        "workers": workers, "intra_op_threads": intra, "window_s": window_s,
        "audio_s_per_s": round(len(runs) * audio_s / wall, 2),
        "window_p50_s": round(float(np.median(runs)), 4),
        "compute_s_per_audio_s": round(wall / (len(runs) * audio_s), 4),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("model", type=Path)
    ap.add_argument("--window-s", type=float, default=0.8)
    ap.add_argument("--seconds", type=float, default=8.0, help="per configuration")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    configs = sorted({(1, 1), (cores, 1), (1, cores), (cores, cores)})
    rows = [measure(args.model, w, i, args.window_s, args.seconds) for w, i in configs]
    result = {"model": args.model.name, "cpu_count": cores,
              "load_at_end": round(os.getloadavg()[0], 2), "rows": rows}  # fmt: skip
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
