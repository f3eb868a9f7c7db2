"""The validation table of session 14's results (issue 12: 128 channels against 96, paired
by seed), with the shipped 2.1.0 and v1.0.0 from session 13 (same split, same metric).

    PYTHONPATH=. python benchmarks/results/session14/issue12/summarise.py > benchmarks/results/session14/issue12/summary.json

Lines as session 13's ``summarise.py`` makes them; then, per seed with both widths, the
worst-group sum at 128 minus that at 96, and the two means (``rule.md``).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
S13 = HERE.parents[1] / "session13" / "issue12"
SEEDS = (1234, 7, 99, 42)

_spec = importlib.util.spec_from_file_location("s13_summarise", S13 / "summarise.py")
assert _spec and _spec.loader
s13 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(s13)


def main() -> None:
    wide = {seed: s13.row(f"s14_w128_{seed}", HERE) for seed in SEEDS}
    # Session 13 named seed 1234's run s13_ax, the others s13_ax<seed>.
    narrow = {seed: s13.row("s13_ax" if seed == 1234 else f"s13_ax{seed}", S13) for seed in SEEDS}
    pairs = [
        {"seed": seed, "w128": w["worst_group_sum"], "w96": n["worst_group_sum"],
         "diff": round(w["worst_group_sum"] - n["worst_group_sum"], 4)}
        for seed in SEEDS if (w := wide[seed]) and (n := narrow[seed])
    ]  # fmt: skip
    mean = lambda k: round(sum(p[k] for p in pairs) / len(pairs), 4) if pairs else None  # noqa: E731
    doc = {
        "runs": [r for r in wide.values() if r]
        + [r for s in ("shipped_2.1.0", "v1.0.0") if (r := s13.row(s, S13))],
        "paired_by_seed": pairs,
        "mean_worst_group_sum": {"w128": mean("w128"), "w96": mean("w96")},
    }
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
