"""Lip-sync quality benchmark.

    python benchmarks/quality/run.py --corpus data/corpus/heldout \
        --systems energy,oracle,default [--fps 30] [--out results.json] [--md] \
        [--group-by voice,lang] [--conditions noise10,gsm] [--intervals 1000] \
        [--plot CLIP_ID --plot-out clip.png] [--make-synthetic N]

A corpus is a folder of ``<id>.wav`` (16 kHz mono; other rates are resampled) and
``<id>.json`` with ``{"phones": [[start_s, end_s, phone], ...]}`` or ``"phones": null``.
``--make-synthetic N`` first writes N made-up clips into the corpus folder (for trying
the benchmark before a real corpus exists). Metrics are defined in ``metrics.py``.

``--group-by`` also pools the metrics per value of sidecar fields (``voice`` is the
voice with any espeak-ng ``+variant`` folded into its base, ``lang``, ``source``), so
a voice that does badly is not hidden in the average. ``--conditions`` repeats the
run on degraded copies of every clip (``conditions.py``: noise at 10 / 20 dB SNR,
GSM) for the systems that listen (``oracle`` reads only the labels).

``--intervals N`` adds to every row (whole corpus and each group) ``"ci"``: 95 %
percentile bootstrap intervals over the row's clips (N resamples, seeded;
``metrics.intervals``), so a group of 20 clips that misses a target by 0.02 can be told
from one that misses it by more than its sampling spread.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import metrics as qm
import numpy as np
import numpy.typing as npt
from systems import SYSTEMS, SystemUnavailableError

SR = 16000


@dataclass(frozen=True)
class Clip:
    clip_id: str
    audio: npt.NDArray[np.float32]
    phones: list[qm.Phone] | None
    meta: dict[str, str] = field(default_factory=dict)


def load_corpus(directory: Path, limit: int | None = None) -> list[Clip]:
    """All clips of a corpus folder, audio at 16 kHz."""
    import soundfile as sf

    clips: list[Clip] = []
    for wav in sorted(directory.glob("*.wav"))[:limit]:
        audio, sr = sf.read(wav, dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        if sr != SR:
            import soxr

            audio = soxr.resample(audio, sr, SR).astype(np.float32)
        meta_path = wav.with_suffix(".json")
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        phones = meta.get("phones")
        keys = {k: str(meta.get(k, "?")) for k in ("voice", "lang", "source")}
        keys["voice"] = keys["voice"].partition("+")[0]
        clips.append(Clip(wav.stem, audio, qm.normalize_phones(phones) if phones is not None else None, keys))
    return clips


def degrade(clips: list[Clip], condition: str) -> list[Clip]:
    """The clips as heard through ``condition`` (conditions.py)."""
    from conditions import CONDITIONS

    if condition not in CONDITIONS:
        raise SystemExit(f"unknown condition {condition!r}; known: {sorted(CONDITIONS)}")
    apply = CONDITIONS[condition]
    return [Clip(c.clip_id, apply(c.clip_id, c.audio, SR, c.phones), c.phones, c.meta) for c in clips]


def evaluate(clips: list[Clip], system_names: list[str], fps: float,
             group_by: Sequence[str] = (), n_intervals: int = 0) -> dict[str, dict[str, object]]:  # fmt: skip
    """{system: {metric: value, ..., "clips": n, "seconds": runtime}} or {"error": ...};
    with ``group_by``, each row also has ``"groups": {field: {value: {metric: ...}}}``;
    with ``n_intervals``, each row also has ``"ci": {metric: [lo, hi] | None}``."""
    results: dict[str, dict[str, object]] = {}
    for name in system_names:
        if name not in SYSTEMS:
            raise SystemExit(f"unknown system {name!r}; known: {sorted(SYSTEMS)}")
        try:
            system = SYSTEMS[name]()
        except SystemUnavailableError as exc:
            results[name] = {"error": str(exc)}
            continue
        t0 = time.perf_counter()
        per_clip: list[tuple[Clip, qm.ClipResult]] = []
        for clip in clips:
            frames = system(clip.audio, SR, fps, phones=clip.phones)
            if frames is None:
                continue
            per_clip.append((clip, qm.evaluate_clip(clip.clip_id, frames, fps, clip.phones, clip.audio, SR)))
        row: dict[str, object] = _pooled([r for _, r in per_clip], n_intervals)
        row["seconds"] = round(time.perf_counter() - t0, 3)
        if group_by:
            row["groups"] = {key: {value: _pooled([r for c, r in per_clip if c.meta.get(key) == value], n_intervals)
                                   for value in sorted({c.meta.get(key, "?") for c, _ in per_clip})}
                             for key in group_by}  # fmt: skip
        results[name] = row
    return results


def _pooled(results: list[qm.ClipResult], n_intervals: int = 0) -> dict[str, object]:
    row: dict[str, object] = dict(qm.aggregate(results))
    row["clips"] = len(results)
    if n_intervals:
        row["ci"] = qm.intervals(results, n_intervals)
    return row


def markdown(results: dict[str, dict[str, object]]) -> str:
    """A Markdown table: one row per system, one column per metric."""
    head = ["system", *qm.METRIC_NAMES, "clips"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for name, row in results.items():
        if "error" in row:
            lines.append(f"| {name} |" + " unavailable |" * (len(head) - 1))
            notes.append(f"- {name}: {row['error']}")
            continue
        cells = []
        for m in qm.METRIC_NAMES:
            v = float(row[m])  # type: ignore[arg-type]
            cells.append("n/a" if math.isnan(v) else (f"{v:.0f}" if m == "sync_lag_ms" else f"{v:.3f}"))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['clips']} |")
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--systems", default="energy,oracle,default")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--limit", type=int, default=None, help="evaluate only the first N clips")
    ap.add_argument("--out", type=Path, default=None, help="write results as JSON")
    ap.add_argument("--md", action="store_true", help="print the Markdown table (default: JSON)")
    ap.add_argument("--plot", default=None, help="clip id to plot")
    ap.add_argument("--plot-out", type=Path, default=Path("quality_plot.png"))
    ap.add_argument("--make-synthetic", type=int, default=0, metavar="N")
    ap.add_argument("--group-by", default="", help="comma-separated sidecar fields: voice, lang, source")
    ap.add_argument("--conditions", default="", help="comma-separated: noise10, noise20, gsm (see conditions.py)")
    ap.add_argument("--intervals", type=int, default=0, metavar="N",
                    help="95%% bootstrap intervals over clips from N resamples (0: none)")
    args = ap.parse_args(argv)
    if args.intervals < 0:
        raise SystemExit(f"--intervals must be >= 0, got {args.intervals}")

    if args.make_synthetic:
        from synth_corpus import write_corpus

        write_corpus(args.corpus, args.make_synthetic)
    clips = load_corpus(args.corpus, args.limit)
    if not clips:
        raise SystemExit(f"no <id>.wav clips in {args.corpus}")
    names = [s.strip() for s in args.systems.split(",") if s.strip()]
    group_by = [g.strip() for g in args.group_by.split(",") if g.strip()]
    results = evaluate(clips, names, args.fps, group_by, args.intervals)
    doc: dict[str, object] = {"corpus": str(args.corpus), "fps": args.fps, "n_clips": len(clips), "systems": results}
    listening = [n for n in names if n != "oracle"]  # the oracle reads labels, not audio
    conditions = {}
    for cond in (c.strip() for c in args.conditions.split(",") if c.strip()):
        conditions[cond] = evaluate(degrade(clips, cond), listening, args.fps, group_by, args.intervals)
    if conditions:
        doc["conditions"] = conditions
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1, allow_nan=True), encoding="utf-8")
    print(markdown(results) if args.md else json.dumps(doc, indent=1))
    if args.plot:
        _plot(clips, args.plot, names, args.fps, args.plot_out)
    return 0


def _plot(clips: list[Clip], clip_id: str, names: list[str], fps: float, out: Path) -> None:
    from plot import plot_aperture

    clip = next((c for c in clips if c.clip_id == clip_id), None)
    if clip is None:
        raise SystemExit(f"no clip {clip_id!r} in the corpus")
    curves = {}
    for name in names:
        try:
            frames = SYSTEMS[name]()(clip.audio, SR, fps, phones=clip.phones)
        except SystemUnavailableError:
            continue
        if frames is not None:
            curves[name] = qm.aperture(frames)
    print(f"plot: {plot_aperture(out, curves, fps, clip.phones, title=clip_id)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
