"""The CI gate on flite's ``rms`` /m/, over many syntheses (issue 12, session 9).

    python benchmarks/quality/gate_repeats.py [--model MODEL.onnx] [--repeats 12] [--out FILE.json]

``tests/engines/test_default_model.py::test_lips_close_on_m_better_than_energy`` (which
calls :func:`closure` and reads ``TEXT`` and ``GATE`` from here) asks that the lips close (aperture <= 0.25 x the utterance's P90) on at least 70 % of the /m/
of "mama mia, my mum makes more lemon ham" spoken by flite's ``rms``, a voice held out
of training. flite's ``rms`` draws its excitation from libc's ``rand()``, so each take
sounds a little different: this runs the same measure on ``--repeats`` takes, seeded
``"0"``, ``"1"``, ... (the test's is take ``"0"``), and reports every value and how many
pass. A model that fails some takes passes or fails the test by the luck of one take
(``benchmarks/results/session9/grid/rule.md``). Needs flite (``apt-get install flite``).
Until session 12 the takes were unseeded (whichever came next in the process), so
earlier results are over other takes of the same distribution.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # training.data.flite_source

SR = 16000
FPS = 30.0
TEXT = "mama mia, my mum makes more lemon ham"
GATE = 0.7  # the test's bound
PAD_S = 0.3  # the test pads each clip with this much silence on both sides


def closure(aperture: np.ndarray, phones: list[tuple[float, float, str]]) -> float:
    """The test's measure: the share of /m/ (>= 30 ms) whose smallest opening within the
    phone's frames is at most a quarter of the P90 opening (edges of 0.3 s left out)."""
    n = len(aperture)
    spans = [np.arange(int(np.floor(a * FPS)), min(n, int(np.ceil(b * FPS)) + 1))
             for a, b, p in phones if p == "M" and b - a >= 0.03]  # fmt: skip
    edge = int(PAD_S * FPS)
    p90 = np.percentile(aperture[edge:-edge], 90)
    return float(np.mean([aperture[s].min() <= 0.25 * p90 for s in spans]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="default-model ONNX file (default: the packaged one)")
    ap.add_argument("--voice", default="rms")
    ap.add_argument("--repeats", type=int, default=12)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    import soxr
    from training.data import flite_source

    from audio2face.engines.default import load_default_engine
    from audio2face.engines.onnx import OrtOptions

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import metrics as qm  # the quality benchmark's aperture

    if args.voice not in flite_source.available_voices():
        print(f"flite voice {args.voice!r} is not installed (apt-get install flite)", file=sys.stderr)
        return 2
    engine = load_default_engine(args.model, ort_options=OrtOptions(providers="cpu"))
    values = []
    for take in range(args.repeats):
        audio, rate, ends = flite_source.synthesize(TEXT, args.voice, seed=str(take))
        phones = flite_source.segments_to_phones(ends, len(audio) / rate)
        audio = soxr.resample(np.asarray(audio, np.float32), rate, SR).astype(np.float32)
        pad = int(PAD_S * SR)
        audio = np.pad(audio, (pad, pad))
        stream = engine.open_stream()
        frames = np.concatenate([stream.push(audio), stream.finish()])
        values.append(round(closure(qm.aperture(frames), [(a + PAD_S, b + PAD_S, p) for a, b, p in phones]), 3))
    result = {
        "model": str(args.model or "packaged"),
        "voice": args.voice,
        "text": TEXT,
        "gate": GATE,
        "values": values,
        "passed": sum(v >= GATE for v in values),
        "seeds": [str(take) for take in range(args.repeats)],
        "repeats": args.repeats,
    }
    print(json.dumps(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
