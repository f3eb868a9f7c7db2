"""The validation table of session 13's results (issue 12: schwa as AX).

    PYTHONPATH=. python benchmarks/results/session13/issue12/summarise.py > benchmarks/results/session13/issue12/summary.json

Reads ``<setting>_validation.json`` (training.evaluate --split validation on data/corpus9)
and ``<setting>_gate.json`` (gate_repeats.py --repeats 12). The worst-group sum is closure +
nasal + open AUC + round AUC of the worst voice / language group
(``training.evaluate.validation_summary``), as in sessions 10-12; a run qualifies with jitter
<= 0.0536 and noise10 lips_shut <= 0.25 (rule.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from training.evaluate import validation_summary

HERE = Path(__file__).resolve().parent
SUM = ("bilabial_closure", "bilabial_nasal", "open_auc", "round_auc")
SETTINGS = ("s13_ax", "s13_ax7", "s13_ax99", "s13_ax42", "shipped_2.1.0", "v1.0.0")


def row(setting: str, here: Path = HERE) -> dict[str, object] | None:
    """One run's line, from ``here``'s ``<setting>_validation.json`` and ``_gate.json``."""
    path = here / f"{setting}_validation.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    s = validation_summary(doc)
    d = doc["systems"]["default"]
    her = d["groups"]["voice"]["allison"]
    gate = here / f"{setting}_gate.json"
    g = json.loads(gate.read_text()) if gate.exists() else None
    noise10 = doc["conditions"]["noise10"]["default"]["lips_shut"]
    return {
        "setting": setting, "clips": d["clips"],
        "pooled": {m: round(d[m], 4) for m in (*SUM, "lips_shut", "jitter")},
        "noise10_lips_shut": round(noise10, 4),
        "worst_group": s["worst_group"],
        "worst_group_sum": round(sum(s["worst_group"][m]["value"] for m in SUM), 4),
        "allison": {"clips": her["clips"], "open_auc": round(her["open_auc"], 4), "round_auc": round(her["round_auc"], 4),
                    "closure": round(her["bilabial_closure"], 4), "nasal": round(her["bilabial_nasal"], 4)},
        "qualifies": d["jitter"] <= 0.0536 and noise10 <= 0.25,
        "rms_gate": f"{g['passed']}/{g['repeats']}" if g else None,
    }


def main() -> None:
    print(json.dumps([r for s in SETTINGS if (r := row(s)) is not None], indent=1))


if __name__ == "__main__":
    main()
