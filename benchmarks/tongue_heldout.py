"""``tongueOut`` against the phones of voices it never heard: the training corpus's
held-out split (issue 14, part 6).

    python benchmarks/tongue_heldout.py [--corpus data/corpus] [--limit N]
                                        [--profile arkit-alive] [--out FILE.json]

The corpus (``python -m training.data.build``, see ``training/README.md``) holds out
whole voices: festival Italian, Czech, Finnish and Telugu voices, flite's ``rms``, the
Asterisk English speaker and two espeak-ng languages. Neither the tongue classifier
(trained on espeak-ng English, ``audio2face.postprocess.tongue_train``) nor the
default model has heard them. Each clip runs through the service's own path
(:meth:`Runtime.convert` with ``--profile``: the default engine's lips, the prosody
tracker, the tongue step with its lip gate), and frame ``i`` is labelled with the
phone sounding at ``i / 30 s`` (the corpus's unified phone set):

* interdental: ``TH DH``; alveolar: ``T D N L`` (and the flap ``DX``); the step shows
  the tongue for both (``tongueOut`` > ``--shown``);
* the sibilants ``S Z`` and everything else: no tongue.

Per voice (and pooled: espeak-ng voices, the other synthesisers and the real speaker,
all): recall on interdental and on alveolar frames, precision over both, and how often
the tongue shows on other speech frames; the base rate says what precision chance
would give. Only speech frames (not ``SIL``) count.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from audio2face.postprocess.tongue_train import FPS
from audio2face.postprocess.tongue_train import UNIFIED_ALVEOLAR as ALVEOLAR
from audio2face.postprocess.tongue_train import UNIFIED_DENTAL as DENTAL

SILENCE = "SIL"


def frame_labels(phones: list[list], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: class (0 other, 1 interdental, 2 alveolar) and whether it is speech."""
    cls = np.zeros(n, np.int8)
    speech = np.zeros(n, bool)
    t = np.arange(n) / FPS
    for start, end, label in phones:
        at = (t >= start) & (t < end)
        if label == SILENCE:
            continue
        speech[at] = True
        cls[at] = 1 if label in DENTAL else 2 if label in ALVEOLAR else 0
    return cls, speech


def scores(shown: np.ndarray, cls: np.ndarray, speech: np.ndarray) -> dict[str, float | int]:
    """Recall per class, precision over both, false showing and base rate (speech frames)."""
    s, c, m = shown[speech], cls[speech], speech.sum()
    tongue = c > 0

    def ratio(a: int, b: int) -> float:
        return round(a / b, 3) if b else float("nan")

    return {
        "speech_frames": int(m),
        "dental_frames": int((c == 1).sum()),
        "alveolar_frames": int((c == 2).sum()),
        "dental_recall": ratio(int((s & (c == 1)).sum()), int((c == 1).sum())),
        "alveolar_recall": ratio(int((s & (c == 2)).sum()), int((c == 2).sum())),
        "precision": ratio(int((s & tongue).sum()), int(s.sum())),
        "base_rate": ratio(int(tongue.sum()), int(m)),
        "shown_elsewhere": ratio(int((s & ~tongue).sum()), int((~tongue).sum())),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--limit", type=int, default=None, help="first N held-out clips")
    ap.add_argument("--profile", default="arkit-alive")
    ap.add_argument("--shown", type=float, default=0.1, help="tongueOut above this is shown")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    import soundfile as sf

    from audio2face.runtime import Runtime
    from audio2face.settings import Settings

    folder = args.corpus / "heldout"
    clips = sorted(folder.glob("*.json"))[: args.limit]
    if not clips:
        print(f"no held-out clips in {folder}: build the corpus first "
              "(python -m training.data.build --out data/corpus)", file=sys.stderr)  # fmt: skip
        return 2
    runtime = Runtime.start(Settings())
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = defaultdict(list)
    try:
        for meta_path in clips:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not meta.get("phones"):
                continue
            audio, rate = sf.read(meta_path.with_suffix(".wav"), dtype="float32")
            frames = runtime.convert(audio, rate, args.profile, seed=0)
            tongue = frames.values[:, list(frames.names).index("tongueOut")]
            cls, speech = frame_labels(meta["phones"], tongue.shape[0])
            voice = f"{meta['source']} {meta['voice']}".strip()
            parts[voice].append((tongue > args.shown, cls, speech))
    finally:
        runtime.close()
    report: dict[str, dict] = {}
    for voice in sorted(parts):
        shown, cls, speech = (np.concatenate(a) for a in zip(*parts[voice], strict=True))
        report[voice] = scores(shown, cls, speech)
    def pool(name: str, voices: list[str]) -> None:
        clips = [clip for voice in voices for clip in parts[voice]]
        if clips:
            shown, cls, speech = (np.concatenate(a) for a in zip(*clips, strict=True))
            report[name] = scores(shown, cls, speech)

    # The first tongue model heard only espeak-ng; the others are new synthesisers
    # and the one real speaker.
    pool("pooled: espeak-ng", [v for v in parts if v.startswith("espeak-ng")])
    pool("pooled: festival, flite, Asterisk", [v for v in parts if not v.startswith("espeak-ng")])
    pool("pooled: all", list(parts))
    cols = ("dental_frames", "dental_recall", "alveolar_frames", "alveolar_recall",
            "precision", "base_rate", "shown_elsewhere")  # fmt: skip
    print(f"| voice | {' | '.join(cols)} |")
    print("|---" * (len(cols) + 1) + "|")
    for voice, r in report.items():
        print(f"| {voice} | " + " | ".join(str(r[c]) for c in cols) + " |")
    if args.out:
        args.out.write_text(json.dumps({"profile": args.profile, "shown": args.shown,
                                        "clips": len(clips), "voices": report}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
