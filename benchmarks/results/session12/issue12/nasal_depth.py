"""Issue 12, session 12: does the default model miss /m/ where the audio has no nasal murmur?

    PYTHONPATH=. python benchmarks/results/session12/issue12/nasal_depth.py --corpus data/corpus8 \
        [--voices lp_diphone,pc_diphone,hy_fi_mv_diphone] [--model M.onnx]

For every /m/ between vowels (``training.audit_bilabials``: the dip of 800-7000 Hz energy
near the label, its depth in dB) of the given voices' clips, whether the model closes
the lips there by the quality benchmark's rule (aperture at most 0.25 x the utterance's
P90 somewhere in the phone's frames, ``metrics.bilabial_counts``), grouped by dip depth;
and, by the same rule, how often it closes on /n/ between vowels (an error).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "benchmarks" / "quality"))
sys.path.insert(0, str(ROOT))

import metrics as qm  # noqa: E402
from training.audit_bilabials import VOWELS, audit_clip  # noqa: E402

FPS = 30.0
BINS = (0.0, 6.0, 10.0, 15.0, 20.0, 99.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", type=Path, default=ROOT / "data" / "corpus8")
    ap.add_argument("--voices", default="lp_diphone,pc_diphone,hy_fi_mv_diphone")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    from audio2face.engines.default import load_default_engine
    from audio2face.engines.onnx import OrtOptions

    engine = load_default_engine(args.model, ort_options=OrtOptions(providers="cpu"))
    voices = set(args.voices.split(","))
    rows: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    n_rows: dict[str, list[bool]] = defaultdict(list)
    for line in (args.corpus / "manifest.jsonl").open(encoding="utf-8"):
        rec = json.loads(line)
        if rec["voice"] not in voices or not rec.get("phones"):
            continue
        audio, sr = sf.read(args.corpus / rec["wav"], dtype="float32")
        stream = engine.open_stream()
        frames = np.concatenate([stream.push(audio), stream.finish()])
        aperture = qm.aperture(frames)
        phones = qm.normalize_phones(rec["phones"])
        closures, _ = audit_clip(audio, rec["phones"], between_vowels=True)
        p90 = qm._speech_p90(aperture, phones, FPS)
        for c in closures:
            if (
                c.phones != "M"
                or c.label_end - c.label_start < qm.MIN_BILABIAL_S - 1e-9
                or p90 < 0.05
            ):
                continue
            at = qm._frames_in(c.label_start, c.label_end, FPS, aperture.size, 1)
            rows[rec["voice"]].append((c.depth_db, bool(aperture[at].min() <= 0.25 * p90)))
        # /n/ between vowels, the same rule: here a closure is the error (the apart hinge's side).
        for k in range(1, len(phones) - 1):
            s0, e0, label = phones[k]
            long_n = label == "N" and e0 - s0 >= qm.MIN_BILABIAL_S - 1e-9 and p90 >= 0.05
            if long_n and phones[k - 1][2] in VOWELS and phones[k + 1][2] in VOWELS:
                at = qm._frames_in(s0, e0, FPS, aperture.size, 1)
                n_rows[rec["voice"]].append(bool(aperture[at].min() <= 0.25 * p90))
    result = {}
    for voice, got in sorted(rows.items()):
        depth = np.array([d for d, _ in got])
        shut = np.array([s for _, s in got])
        bins = {}
        for lo, hi in zip(BINS, BINS[1:], strict=False):
            sel = (depth >= lo) & (depth < hi)
            bins[f"{lo:g}-{hi:g} dB"] = [
                int(sel.sum()),
                round(float(shut[sel].mean()), 2) if sel.any() else None,
            ]
        result[voice] = {
            "n": len(got),
            "median_depth_db": round(float(np.median(depth)), 1),
            "closed": round(float(shut.mean()), 3),
            "by_depth": bins,
            "n_between_vowels": len(n_rows[voice]),
            "n_closed": round(float(np.mean(n_rows[voice])), 3) if n_rows[voice] else None,
        }
        print(voice, json.dumps(result[voice]))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
