"""The validation table of session 13's results (issue 12: schwa as AX).

    PYTHONPATH=. python benchmarks/results/session13/issue12/summarise.py > benchmarks/results/session13/issue12/summary.json

Reads ``<setting>_validation.json`` (training.evaluate --split validation on data/corpus9)
and ``<setting>_gate.json`` (gate_repeats.py --repeats 12). The worst-group sum is closure +
nasal + open AUC + round AUC of the worst voice / language group
(``training.evaluate.validation_summary``), as in sessions 10-12; a run qualifies with jitter
<= 0.0536 and noise10 lips_shut <= 0.25 (rule.md).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = ("s13_ax", "s13_ax7", "s13_ax99", "s13_ax42", "shipped_2.1.0", "v1.0.0")

# benchmarks/quality/paired.py scores one run the same way for every session (the benchmark
# folder is not a package).
_spec = importlib.util.spec_from_file_location("quality_paired", HERE.parents[2] / "quality" / "paired.py")
assert _spec and _spec.loader
paired = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(paired)


def row(setting: str, here: Path = HERE) -> dict[str, object] | None:
    """One run's line, from ``here``'s ``<setting>_validation.json`` and ``_gate.json``."""
    return paired.row(here / setting)


def main() -> None:
    print(json.dumps([r for s in SETTINGS if (r := row(s)) is not None], indent=1))


if __name__ == "__main__":
    main()
