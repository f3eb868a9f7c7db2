"""Does averaging seeds help? The frame-wise mean of several default-model exports,
scored like one model (issue 12, session 14: a measurement, not a candidate: N models
cost N times one).

    PYTHONPATH=. python benchmarks/results/session14/issue12/ensemble.py \
        --models a.onnx,b.onnx,... --corpus data/corpus9/validation --out E_validation.json \
        [--gate-out E_gate.json]

The quality benchmark (``benchmarks/quality/run.py``, with ``training.evaluate``'s
systems, groups and conditions) runs with its ``default`` system replaced by the
ensemble; ``--gate-out`` also runs the rms gate (``gate_repeats.py``, 12 takes) on it.
Every member streams the same 100 ms chunks, so their frames line up one to one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "benchmarks" / "quality"))

import gate_repeats  # noqa: E402
import run  # noqa: E402
import systems  # noqa: E402
from training.evaluate import CONDITIONS  # noqa: E402

from audio2face.engines import default as default_engine  # noqa: E402


class _Stream:
    def __init__(self, members: list) -> None:
        self.members = members

    def push(self, audio: np.ndarray) -> np.ndarray:
        return np.mean([m.push(audio) for m in self.members], axis=0, dtype=np.float32)

    def finish(self) -> np.ndarray:
        return np.mean([m.finish() for m in self.members], axis=0, dtype=np.float32)


class Ensemble:
    """The engine attributes the quality benchmark and the gate read, over ``engines``."""

    def __init__(self, engines: list) -> None:
        self.engines = engines
        head = engines[0]
        self.sample_rate, self.fps, self.output_names = (
            head.sample_rate,
            head.fps,
            head.output_names,
        )

    def open_stream(self) -> _Stream:
        return _Stream([e.open_stream() for e in self.engines])


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", required=True)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--gate-out", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=None, help="only the first N clips (a smoke test)")
    args = ap.parse_args()
    load = default_engine.load_default_engine
    ensemble = Ensemble([load(Path(p)) for p in args.models.split(",")])
    run.SYSTEMS["default"] = lambda: systems._engine_system(ensemble)
    run.main(["--corpus", str(args.corpus), "--systems", "energy,oracle,default", "--out", str(args.out),
              "--group-by", "voice,lang,source", "--conditions", CONDITIONS]
             + (["--limit", str(args.limit)] if args.limit else []))  # fmt: skip
    if args.gate_out:
        default_engine.load_default_engine = lambda *a, **k: ensemble
        gate_repeats.main(["--repeats", "12", "--out", str(args.gate_out)])
        # The gate names the model it loaded by its --model argument ("packaged" without one).
        doc = json.loads(args.gate_out.read_text())
        doc["model"] = "mean of " + args.models
        args.gate_out.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
