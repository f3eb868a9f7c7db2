"""Issue 12's per-voice targets on the held-out split, counted as the model card counts them.

    PYTHONPATH=. python benchmarks/results/session13/issue12/voice_targets.py FILE.json [...]

For each ``training.evaluate --split heldout`` output: the (voice, target) pairs over the voices
held out whole (clean targets and the 10 dB ones, ``training.evaluate.check_voice_targets``),
how many are met, and the misses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from training.evaluate import check_voice_targets


def main() -> None:
    for path in sys.argv[1:]:
        report = check_voice_targets(json.loads(Path(path).read_text()))
        pairs = [(group, f"{kind}:{name}", r["met"], r["value"])
                 for group, row in report.items() if group.startswith("voice:")
                 for kind in ("clean", "noise10") for name, r in row[kind].items()
                 if r["met"] is not None]  # fmt: skip
        met = sum(1 for p in pairs if p[2])
        print(f"{path}: {met} of {len(pairs)} (voice, target) pairs met; whole voices met: "
              f"{sum(1 for g, row in report.items() if g.startswith('voice:') and row['met'])}")
        for group, target, ok, value in pairs:
            if not ok:
                print(f"   miss {group} {target} {value}")


if __name__ == "__main__":
    main()
