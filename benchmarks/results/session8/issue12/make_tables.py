"""Per-voice tables and seed spread from ``training.evaluate`` JSON files (session 8, issue 12).

``python benchmarks/results/session8/issue12/make_tables.py --min-clips 5 NAME=FILE.json ...``
prints one markdown table (cells ``a / b / c`` in the order given, voices with at least
``--min-clips`` clips, plus the pooled row), and with ``--spread A,B,C[:LABEL]`` (names
given) the per-voice range (max - min) of each metric over that set of runs.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

METRICS = ("bilabial_closure", "bilabial_nasal", "lips_shut", "open_auc", "round_auc", "silence_rest", "sync_lag_ms")
SHORT = {"bilabial_closure": "closure", "bilabial_nasal": "nasal", "lips_shut": "lips_shut", "open_auc": "open",
         "round_auc": "round", "silence_rest": "silence", "sync_lag_ms": "lag ms"}  # fmt: skip


def load(path: Path, key: str = "voice") -> dict[str, dict[str, float]]:
    d = json.loads(path.read_text("utf-8"))["systems"]["default"]
    rows = dict(d["groups"][key])
    rows["**all**"] = {m: d.get(m) for m in METRICS} | {"clips": d.get("clips", "")}
    return rows


def fmt(v: object) -> str:
    if not isinstance(v, (int, float)) or math.isnan(v):
        return "-"
    return f"{v:.0f}" if abs(v) > 1.5 else f"{v:.2f}"


def table(runs: dict[str, dict[str, dict[str, float]]], min_clips: int) -> str:
    first = next(iter(runs.values()))
    voices = [v for v in sorted(first) if v != "**all**" and int(first[v].get("clips", 0)) >= min_clips]
    lines = ["| voice | clips | " + " | ".join(SHORT[m] for m in METRICS) + " |", "|---" * (len(METRICS) + 2) + "|"]
    for v in [*voices, "**all**"]:
        cells = [" / ".join(fmt(r.get(v, {}).get(m)) for r in runs.values()) for m in METRICS]
        lines.append(f"| {v} | {first[v].get('clips', '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spread(runs: dict[str, dict[str, dict[str, float]]], sets: list[tuple[str, list[str]]], min_clips: int,
           metrics: tuple[str, ...] = ("bilabial_closure", "bilabial_nasal", "open_auc", "round_auc")) -> str:  # fmt: skip
    """Range (max - min) over each set of runs, per voice; the last rows: mean and max over voices."""
    first = next(iter(runs.values()))
    voices = [v for v in sorted(first) if v != "**all**" and int(first[v].get("clips", 0)) >= min_clips]
    head = [f"{SHORT[m]} {label}" for m in metrics for label, _ in sets]
    lines = ["| voice | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    cols: dict[str, list[float]] = {h: [] for h in head}
    for v in [*voices, "**all**"]:
        cells = []
        for m in metrics:
            for label, names in sets:
                vals = [runs[n].get(v, {}).get(m) for n in names]
                ok = [float(x) for x in vals if isinstance(x, (int, float)) and not math.isnan(x)]
                r = max(ok) - min(ok) if len(ok) == len(names) else math.nan
                if v != "**all**" and not math.isnan(r):
                    cols[f"{SHORT[m]} {label}"].append(r)
                cells.append(fmt(r))
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    lines.append("| *mean over voices* | " + " | ".join(fmt(sum(c) / len(c)) if c else "-" for c in cols.values()) + " |")
    lines.append("| *max over voices* | " + " | ".join(fmt(max(c)) if c else "-" for c in cols.values()) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="NAME=FILE.json, in column order")
    parser.add_argument("--min-clips", type=int, default=5)
    parser.add_argument("--key", default="voice")
    parser.add_argument("--spread", action="append", default=[], help="NAME,NAME,...:LABEL (a set of runs)")
    args = parser.parse_args()
    runs = {n: load(Path(p), args.key) for n, p in (r.split("=", 1) for r in args.runs)}
    print("cells: " + " / ".join(runs) + "\n")
    print(table(runs, args.min_clips))
    if args.spread:
        sets = [(s.split(":")[1], s.split(":")[0].split(",")) for s in args.spread]
        print("\nrange (max - min) over the runs of each set:\n")
        print(spread(runs, sets, args.min_clips))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
