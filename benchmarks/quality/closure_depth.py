"""How deep the default model closes the lips, per voice (issue 12, session 6).

    AUDIO2FACE_DEFAULT_MODEL=MODEL.onnx python benchmarks/quality/closure_depth.py \
        CORPUS_DIR VOICE[,VOICE] OUT.json

For every /p b m/ of at least 30 ms: the smallest lip aperture within +-1 frame of the
phone divided by the clip's 90th-percentile aperture over speech (the benchmark's
closure test counts <= 0.25 as closed), and the offset of that minimum from the phone
centre. Medians per voice and class (M, P/B). One model per process."""
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import metrics as qm  # noqa: E402
from run import load_corpus  # noqa: E402
from systems import SYSTEMS  # noqa: E402

FPS = 30.0


def main() -> None:
    corpus, voices, out = Path(sys.argv[1]), set(sys.argv[2].split(",")), Path(sys.argv[3])
    clips = [c for c in load_corpus(corpus) if c.meta["voice"] in voices and c.phones]
    system = SYSTEMS["default"]()
    res: dict[str, dict[str, list[float]]] = {}
    for c in clips:
        frames = system(c.audio, 16000, FPS, phones=c.phones)
        ap = qm.aperture(frames)
        speech = qm.speech_mask(c.phones, ap.size, FPS)
        p90 = float(np.percentile(ap[speech], 90)) if speech.any() else 0.0
        for s, e, p in c.phones:
            if p not in ("P", "B", "M") or e - s < 0.03 - 1e-9 or p90 < 0.05:
                continue
            idx = qm._frames_in(s, e, FPS, ap.size, 1)
            k = idx[int(np.argmin(ap[idx]))]
            r = res.setdefault(c.meta["voice"] + (" M" if p == "M" else " P/B"), {"depth": [], "offset_ms": []})
            r["depth"].append(float(ap[k]) / p90)
            r["offset_ms"].append(1000 * (k / FPS - (s + e) / 2))
    summary = {v: {"n": len(r["depth"]), "median_depth": round(float(np.median(r["depth"])), 3),
                   "closed": round(float(np.mean(np.array(r["depth"]) <= 0.25)), 3),
                   "median_offset_ms": round(float(np.median(r["offset_ms"])), 1)} for v, r in sorted(res.items())}
    out.write_text(json.dumps({"model": os.environ.get("AUDIO2FACE_DEFAULT_MODEL"), "summary": summary}, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
