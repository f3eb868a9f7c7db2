"""The table of results.md from this folder's outputs (session 12, issue 12 rounds 6b and 6c).

    PYTHONPATH=. python benchmarks/results/session12/issue12/summarise.py > benchmarks/results/session12/issue12/summary.json

Reads ``<setting>_<corpus>_validation.json`` (training.evaluate --split validation),
``<setting>_gate.json`` (gate_repeats.py --repeats 12) and, where present, the checkpoint
log ``training/work/<setting>/model.json`` (the real speaker's share of the drawn crops).
The worst-group sum is closure + nasal + open AUC + round AUC of the worst voice / language
group (``training.evaluate.validation_summary``), as in session 11's results.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.evaluate import validation_summary

HERE = Path(__file__).resolve().parent
WORK = HERE.parents[3] / "training" / "work"
SUM = ("bilabial_closure", "bilabial_nasal", "open_auc", "round_auc")


def row(setting: str, corpus: str) -> dict[str, object] | None:
    path = HERE / f"{setting}_{corpus}_validation.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    s = validation_summary(doc)
    d = doc["systems"]["default"]
    her = d["groups"]["voice"]["allison"]
    gate = HERE / f"{setting}_gate.json"
    log = WORK / setting / "model.json"
    real = json.loads(log.read_text()).get("real_speaker") if log.exists() else None
    g = json.loads(gate.read_text()) if gate.exists() else None
    return {
        "setting": setting, "corpus": corpus, "clips": doc["systems"]["default"]["clips"],
        "pooled": {m: round(d[m], 4) for m in (*SUM, "lips_shut", "jitter")},
        "noise10_lips_shut": round(doc["conditions"]["noise10"]["default"]["lips_shut"], 4),
        "worst_group": s["worst_group"],
        "worst_group_sum": round(sum(s["worst_group"][m]["value"] for m in SUM), 4),
        "allison": {"clips": her["clips"], "open_auc": round(her["open_auc"], 4), "round_auc": round(her["round_auc"], 4),
                    "closure": round(her["bilabial_closure"], 4), "nasal": round(her["bilabial_nasal"], 4)},
        "qualifies": d["jitter"] <= 0.0536 and doc["conditions"]["noise10"]["default"]["lips_shut"] <= 0.25,
        "rms_gate": f"{g['passed']}/{g['repeats']}" if g else None,
        "real_speaker": real,
    }


def main() -> None:
    rows = [r for c in ("corpus7", "corpus8") for s in ("r6_ref", "r6_rc0", "r6_c8", "shipped_2.1.0", "v1.0.0")
            if (r := row(s, c)) is not None]
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
