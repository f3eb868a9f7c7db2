"""Issue 12's model experiments, paired by seed: a candidate recipe's runs against reference
runs of the same seeds on the same corpus, scored on the validation split.

    PYTHONPATH=. python benchmarks/quality/paired.py \\
        --candidate benchmarks/results/session16/issue12/s16_vtl \\
        --reference benchmarks/results/session15/issue12/s15_base \\
        --seeds 1234 7 99 42 [--also DIR/SETTING ...] > summary.json

Each run is ``<prefix><seed>_validation.json`` (``training.evaluate --split validation``)
and ``<prefix><seed>_gate.json`` (``gate_repeats.py --repeats 12``), as
``benchmarks/quality/seed_run.sh`` writes them. Per run: the pooled metrics, the worst
voice or language group of each lip metric and their sum (closure + nasal + open AUC +
round AUC, ``training.evaluate.validation_summary``, as sessions 10-15 scored), the real
speaker's numbers, whether it qualifies (jitter <= 0.0536 and lips shut at 10 dB SNR <=
0.25, session 13's guards), and the rms gate. Then, per seed with both runs, the
candidate's worst-group sum minus the reference's, their means, and how many differences
are positive (the sessions' rules decide on those).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from training.evaluate import validation_summary

SUM = ("bilabial_closure", "bilabial_nasal", "open_auc", "round_auc")
MAX_JITTER = 0.0536
MAX_NOISE10_LIPS_SHUT = 0.25


def row(prefix: Path) -> dict[str, Any] | None:
    """One run's line from ``<prefix>_validation.json`` and ``<prefix>_gate.json``
    (``None`` when the run has not been scored)."""
    path = prefix.parent / f"{prefix.name}_validation.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text("utf-8"))
    worst = validation_summary(doc)["worst_group"]
    d = doc["systems"]["default"]
    her = d["groups"]["voice"]["allison"]
    gate = prefix.parent / f"{prefix.name}_gate.json"
    g = json.loads(gate.read_text("utf-8")) if gate.exists() else None
    noise10 = doc["conditions"]["noise10"]["default"]["lips_shut"]
    return {
        "setting": prefix.name, "clips": d["clips"],
        "pooled": {m: round(d[m], 4) for m in (*SUM, "lips_shut", "jitter")},
        "noise10_lips_shut": round(noise10, 4),
        "worst_group": worst,
        "worst_group_sum": round(sum(worst[m]["value"] for m in SUM), 4),
        "allison": {"clips": her["clips"], "open_auc": round(her["open_auc"], 4),
                    "round_auc": round(her["round_auc"], 4),
                    "closure": round(her["bilabial_closure"], 4), "nasal": round(her["bilabial_nasal"], 4)},
        "qualifies": d["jitter"] <= MAX_JITTER and noise10 <= MAX_NOISE10_LIPS_SHUT,
        "rms_gate": f"{g['passed']}/{g['repeats']}" if g else None,
    }  # fmt: skip


def paired(candidate: str, reference: str, seeds: list[int], also: list[str]) -> dict[str, Any]:
    """The document this script prints (see the module doc)."""
    cand = {s: row(Path(f"{candidate}{s}")) for s in seeds}
    ref = {s: row(Path(f"{reference}{s}")) for s in seeds}
    pairs = [
        {"seed": s, "candidate": c["worst_group_sum"], "reference": r["worst_group_sum"],
         "diff": round(c["worst_group_sum"] - r["worst_group_sum"], 4)}
        for s in seeds if (c := cand[s]) and (r := ref[s])
    ]  # fmt: skip

    def mean(key: str) -> float | None:
        return round(sum(p[key] for p in pairs) / len(pairs), 4) if pairs else None

    return {
        "candidates": [r for r in cand.values() if r],
        "references": [r for r in ref.values() if r],
        "others": [r for a in also if (r := row(Path(a)))],
        "paired_by_seed": pairs,
        "mean_worst_group_sum": {"candidate": mean("candidate"), "reference": mean("reference")},
        "mean_diff": mean("diff"),
        "positive_diffs": sum(p["diff"] > 0 for p in pairs),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidate", required=True, help="path prefix of the candidate's runs (before the seed)")
    ap.add_argument("--reference", required=True, help="path prefix of the reference runs (before the seed)")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--also", nargs="*", default=[], help="other runs to list (DIR/SETTING)")
    args = ap.parse_args(argv)
    print(json.dumps(paired(args.candidate, args.reference, args.seeds, args.also), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
