"""Per-stream cost of the default model's streaming step, by graph (issue 12, session 14).

    python benchmarks/results/session14/issue12/stepcost.py NAME=PATH.onnx [NAME=PATH.onnx ...]

One core (onnxruntime and BLAS on one thread): a step of 4 feature frames (40 ms, what a
40 ms push feeds) for batches of 1, 32 and 64 streams, 300 runs after 20 to warm up, the
best of 3 rounds that alternate the graphs (the VM's speed drifts). Pin it with taskset.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from audio2face.engines.default.model import DefaultModel  # noqa: E402
from audio2face.engines.onnx import OrtOptions  # noqa: E402

graphs = dict(arg.split("=", 1) for arg in sys.argv[1:])
models = {name: DefaultModel.load(Path(path), OrtOptions(intra_op_threads=1)) for name, path in graphs.items()}
res: dict[tuple[str, int], list[float]] = {}
for _ in range(3):
    for name, m in models.items():
        for batch in (1, 32, 64):
            caches = [np.concatenate([x] * batch) for x in m.initial_caches]
            feats = np.random.default_rng(0).standard_normal((batch, 4, 40)).astype(np.float32) - 5
            for _ in range(20):
                m.step(feats, caches)
            t0 = time.perf_counter()
            for _ in range(300):
                m.step(feats, caches)
            res.setdefault((name, batch), []).append((time.perf_counter() - t0) / 300 * 1e6)
for (name, batch), v in sorted(res.items()):
    print(f"{name} batch {batch}: {min(v):.1f} us per 4-frame step, {min(v) / batch:.2f} us per stream")
