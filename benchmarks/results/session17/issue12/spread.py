"""Session 17, issue 12: the held-out per-voice and per-language targets of 2.2.0 (and v1.0.0 on
the same clips) with 95 % bootstrap intervals over each group's clips.

    PYTHONPATH=. python benchmarks/results/session17/issue12/spread.py > spread.md

Reads heldout_2.2.0.json and heldout_2.2.0_baseline.json beside this file (``training.evaluate
--split heldout --baseline ... --intervals 1000``, run at e2a5775's parent, 8e93270, which still
gave groups of under 5 clips a one-point "interval": dropped here as e2a5775 drops them).
"""

from __future__ import annotations

import json
from pathlib import Path

from training.evaluate import MIN_INTERVAL_CLIPS, check_voice_targets, target_lines

HERE = Path(__file__).resolve().parent


def load(name: str) -> dict:
    doc = json.loads((HERE / name).read_text("utf-8"))
    runs = [doc["systems"], *doc.get("conditions", {}).values()]
    for systems in runs:
        for row in systems.values():
            for groups in row.get("groups", {}).values():
                for g in groups.values():
                    if g.get("clips", 0) < MIN_INTERVAL_CLIPS:
                        g.pop("ci", None)
    return doc


def main() -> None:
    for label, name in (("2.2.0", "heldout_2.2.0.json"), ("v1.0.0", "heldout_2.2.0_baseline.json")):
        if not (HERE / name).exists():
            continue
        report = check_voice_targets(load(name))
        entries = [(g, report[g][c][t]) for g, e in report.items() for c in ("clean", "noise10")
                   for t, v in e[c].items() if v["met"] is not None]  # fmt: skip
        print(f"## {label}\n")
        for kind in ("voice:", "lang:"):
            mine = [v for g, v in entries if g.startswith(kind)]
            met = sum(1 for v in mine if v["met"])
            clear = sum(1 for v in mine if v["met"] is False and v.get("sure") is True)
            print(f"- {kind[:-1]} groups: {met} of {len(mine)} (group, target) pairs met; "
                  f"{clear} missed with the whole interval below the goal")
        print()
        for line in target_lines(report):
            print(f"- {line}")
        print()


if __name__ == "__main__":
    main()
