"""The whole recipe, one command: ``python -m training.recipe``.

1. rebuild the corpus (``python -m training.data.build --out data/corpus``);
2. render augmented variants, build targets and train (:mod:`training.train`);
3. export ONNX + sidecar into the package (:mod:`training.export`);
4. run the quality benchmark on the held-out split (:mod:`training.evaluate`), per
   voice, per language and under noise and GSM, for the new model and for the
   previous release (``--baseline``, read from git) on the same split; plot one
   held-out clip into ``docs/``;
5. write ``docs/model-card.md`` (data and licences from ``training/DATA.md`` and the
   corpus metadata, metrics against the energy and oracle baselines, limits).

Every step is seeded; on the 2-core development machine the whole run takes about
26 minutes (see ``training/README.md``). Intermediate files go to ``training/work/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

from audio2face.engines.default.model import packaged_model_path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "training" / "work"
CARD = ROOT / "docs" / "model-card.md"
PLOT = ROOT / "docs" / "default-model-aperture.png"
log = logging.getLogger("training.recipe")


def _run(args: list[str]) -> None:
    log.info("$ %s", " ".join(args))
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT)


def _fmt(metric: str, v: object) -> str:
    x = float(v)  # type: ignore[arg-type]
    return "n/a" if math.isnan(x) else (f"{x:.0f}" if metric == "sync_lag_ms" else f"{x:.3f}")


def metrics_table(systems: dict[str, dict[str, object]]) -> str:
    cols = ["bilabial_closure", "bilabial_nasal", "open_auc", "round_auc", "silence_rest",
            "sync_lag_ms", "jitter", "loudness_corr"]  # fmt: skip
    lines = ["| system | " + " | ".join(cols) + " | clips |", "|---" * (len(cols) + 2) + "|"]
    for name in ("energy", "oracle", "default"):
        row = systems.get(name, {})
        if "error" in row or not row:
            continue
        lines.append(f"| {name} | " + " | ".join(_fmt(c, row[c]) for c in cols) + f" | {row['clips']} |")
    return "\n".join(lines)


def _cell(row: dict[str, object] | None, metric: str) -> str:
    if not row:
        return "-"
    return _fmt(metric, row.get(metric, math.nan))


INTERVALS = 1000  # bootstrap resamples for the held-out groups' intervals
VOICE_COLS = ("bilabial_closure", "bilabial_nasal", "open_auc", "round_auc", "silence_rest", "sync_lag_ms")


def per_voice_table(new: dict, old: dict | None, report: dict[str, dict[str, object]]) -> str:
    """One row per unseen voice and per language: the new model's metrics, then the
    baseline's on the same clips (``new / old``), clips, silence_rest at 10 dB, targets met."""
    groups = new["systems"]["default"]["groups"]
    noisy = new.get("conditions", {}).get("noise10", {}).get("default", {}).get("groups", {})
    old_groups = old["systems"]["default"]["groups"] if old else {}
    old_noisy = old.get("conditions", {}).get("noise10", {}).get("default", {}).get("groups", {}) if old else {}
    head = ["group", *VOICE_COLS, "silence_rest @10 dB", "clips", "targets met"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, r in report.items():
        key, _, value = name.partition(":")
        row, orow = groups[key][value], old_groups.get(key, {}).get(value)
        cells = [f"{_cell(row, c)} / {_cell(orow, c)}" if old else _cell(row, c) for c in VOICE_COLS]
        n10 = _cell(noisy.get(key, {}).get(value), "silence_rest")
        if old:
            n10 += f" / {_cell(old_noisy.get(key, {}).get(value), 'silence_rest')}"
        lines.append(f"| {key} {value} | " + " | ".join(cells) + f" | {n10} | {r['clips']} | "
                     f"{'yes' if r['met'] else 'NO'} |")  # fmt: skip
    return "\n".join(lines)


def spread_section(report: dict[str, dict[str, object]]) -> str:
    """The misses (and near-misses) with their 95 % bootstrap intervals over clips, when
    the run measured them: which misses the held-out sample can tell from the goal."""
    from training.evaluate import target_lines

    has_ci = any("ci" in t for r in report.values() for c in ("clean", "noise10")
                 for t in r[c].values())  # type: ignore[attr-defined]  # fmt: skip
    lines = target_lines(report) if has_ci else []
    if not lines:
        return ""
    return ("\nTargets missed, or met with an interval that reaches past the goal (95 % "
            f"bootstrap intervals over each group's clips, {INTERVALS} resamples):\n\n"
            + "\n".join(f"- {line}" for line in lines) + "\n")


def conditions_table(new: dict, old: dict | None) -> str:
    """Whole held-out split per listening condition: energy baseline, new model, old model."""
    cols = ("bilabial_closure", "bilabial_nasal", "open_auc", "round_auc", "silence_rest", "sync_lag_ms")
    lines = ["| condition | system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for cond in ("clean", *new.get("conditions", {})):
        for label, doc, system in (("energy", new, "energy"), ("new", new, "default"), ("v1.0.0", old, "default")):
            if doc is None:
                continue
            rows = doc["systems"] if cond == "clean" else doc.get("conditions", {}).get(cond, {})
            row = rows.get(system)
            if not row or "error" in row:
                continue
            lines.append(f"| {cond} | {label} | " + " | ".join(_cell(row, c) for c in cols) + " |")
    return "\n".join(lines)


def extract_baseline(rev: str, out_dir: Path) -> Path | None:
    """The packaged model files as of git ``rev`` (the previous release), or None."""
    files = [packaged_model_path(), packaged_model_path().with_suffix(".json")]
    files.append(files[0].with_name(files[0].stem + "_stream.onnx"))
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in files:
        rel = f.relative_to(ROOT)
        got = subprocess.run(["git", "show", f"{rev}:{rel.as_posix()}"], cwd=ROOT, capture_output=True)
        if got.returncode != 0:
            log.warning("no baseline model at %s: %s", rev, got.stderr.decode(errors="replace").strip())
            return None
        (out_dir / f.name).write_bytes(got.stdout)
    return out_dir / files[0].name


def targets_table(report: dict[str, dict[str, object]]) -> str:
    lines = ["| target | goal | default | met |", "|---|---|---|---|"]
    for name, r in report.items():
        lines.append(f"| {name} | {r['op']} {r['goal']} | {r['value']} | {'yes' if r['met'] else 'NO'} |")
    return "\n".join(lines)


def write_model_card(out: Path, sidecar: dict, train_info: dict, quality: dict, targets: dict,
                     corpus_meta: dict, speed: dict | None, plot: str | None,
                     baseline: dict | None = None, voice_report: dict | None = None,
                     recipe_minutes: float | None = None) -> None:  # fmt: skip
    """Render ``docs/model-card.md`` from the run's JSON outputs."""
    data_md = ROOT / "training" / "DATA.md"
    data_text = data_md.read_text("utf-8") if data_md.exists() else "(training/DATA.md missing)"
    # From the source table on, one heading level down (the card has its own top).
    start = data_text.find("## Audio sources")
    data_section = (data_text[start:] if start >= 0 else data_text).replace("\n## ", "\n### ")
    data_section = data_section.replace("## Audio sources", "### Audio sources", 1)
    # What changed since the last release and what got worse: written by hand (data).
    notes_md = ROOT / "training" / "RELEASE.md"
    notes = notes_md.read_text("utf-8").split("\n", 1)[1].replace("\n## ", "\n### ") if notes_md.exists() else ""
    stats = corpus_meta.get("stats", {})
    arch = sidecar["architecture"]
    speed_line = (f"{speed['realtime_factor']:.0f}x real time on one core ({speed['note']}; "
                  f"by push size: {speed['by_chunk']}, `benchmarks/engine_speed.py`)"
                  if speed else "see benchmarks/engine_speed.py")  # fmt: skip
    card = f"""# Model card: audio2face default model v{sidecar['version']}

*Generated by `python -m training.recipe`; do not edit by hand.*

## What it is
A small convolutional network from 40-band log-mel features (16 kHz, 25 ms window,
10 ms hop) to the 52 ARKit blendshape weights, shipped in the package as
`src/audio2face/engines/default/audio2face_default.onnx` ({sidecar['bytes'] / 1e6:.2f} MB,
sha256 `{sidecar['sha256'][:16]}...`), with the same weights as a stateful streaming
step `{sidecar['stream']['file']}` (sha256 `{sidecar['stream']['sha256'][:16]}...`;
one cache per convolution, so a push computes only its new outputs). It streams: a fixed look-ahead of
{sidecar['lookahead_s'] * 1000:.1f} ms (network right context {arch['right_context'] * 10} ms, half
the STFT window 12.5 ms, one 20 ms model step for interpolation), any output fps.

- Architecture: conv k3 40->{arch['channels']} (100 Hz), conv k4 stride 2 (50 Hz), residual
  dilated convs (k3, dilations {arch['dilations']}) with 1x1 mixing, 1x1 head, sigmoid.
  Receptive field {arch['receptive_field']} feature frames ({arch['receptive_field'] * 10} ms),
  {arch['left_context'] * 10} ms left context. No recurrence, valid convolutions only.
- Parameters: {sidecar['parameters']:,}; {sidecar['macs_per_second_of_audio'] / 1e6:.1f} M multiply-adds per
  second of audio. Speed: {speed_line}.
- Provenance: data build at commit `{sidecar.get('data_build', {}).get('commit', 'unknown')}`
  ({sidecar.get('data_build', {}).get('built_at', '?')}), trained at commit `{sidecar.get('train_commit', 'unknown')}`{
  f"; the whole recipe took {recipe_minutes:.0f} min on this machine" if recipe_minutes else ""}.
- Trained for {train_info['options']['steps']} steps ({train_info['train_seconds'] / 60:.1f} min on
  {platform.machine()}, {train_info['options']['threads']} threads) on
  {train_info['train_hours_rendered']:.2f} h of rendered audio ({train_info['variants']} variants per clip).

## Release notes
{notes}
## Training targets
Targets come from `training/targets.py`: the mouth, jaw and tongue from the project's
phone-to-viseme coarticulation synthesiser (the `phonemes` engine) driven by the true
phone timings, brows from pitch and energy accents, cheeks from smiles and lip spread.
Eye blinks are *not* learned: the blink postprocess step adds them.

## Data
Corpus statistics: {json.dumps(stats.get('hours_total', {}))} hours (train/held-out);
by source {json.dumps(stats.get('hours_by_source', {}))}.

{data_section}

## Held-out results
Quality benchmark (`benchmarks/quality/run.py --systems energy,oracle,default`) on the
held-out split (unseen voices and sentences), 30 fps, engine streamed in 100 ms chunks:

{metrics_table(quality['systems'])}

Targets of issue 5:

{targets_table(targets)}

### Per unseen voice and per language
Every voice held out whole (never heard in training or model choice) and every
language of the held-out split, this model / v1.0.0 on the same clips; targets of
issue 12 (bilabial closure >= 0.90, nasal >= 0.85, open AUC >= 0.88, round AUC >= 0.85,
silence rest >= 0.98 clean and at 10 dB SNR, |lag| <= 20 ms):

{per_voice_table(quality, baseline, voice_report or {})}
{spread_section(voice_report or {})}
### Listening conditions
The whole held-out split clean, with white/pink noise at 10 and 20 dB SNR (scaled to the
speech level, running through the pauses) and through GSM at 8 kHz
(`benchmarks/quality/conditions.py`):

{conditions_table(quality, baseline)}

{f'![aperture vs phones]({plot})' if plot else ''}

## Limits
- Trained mostly on synthetic speech (espeak-ng, festival) plus one real speaker;
  accuracy on real, expressive or accented voices, children and singing is unmeasured.
- Speech over loud music or several talkers at once animates whichever voice dominates.
- Upper face: the model's own outputs move the brows with prosody only; it has no emotion,
  gaze or blink output. Gaze, blinks, head motion, `tongueOut` and voice arousal come from
  postprocess steps (profiles `arkit-alive`, `arkit-head`, `vrm-head`; docs/profiles.md).
- Look-ahead is fixed at {sidecar['lookahead_s'] * 1000:.1f} ms; lips cannot anticipate further.
"""
    out.write_text(card, "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "corpus")
    parser.add_argument("--skip-data", action="store_true", help="reuse an existing corpus")
    parser.add_argument("--text-lock", type=Path, default=None,
                        help="build the corpus from this lock's text files only (2.2.0's corpus: "
                        "training/data/text-lock.json; see training/README.md, Reproducibility)")
    parser.add_argument("--skip-train", action="store_true",
                        help="reuse training/work/model.pt (export, evaluate, card only)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None,
                        help="training seed (default: training.train's; the shipped model's is in its metadata)")
    parser.add_argument("--plot-clip", default=None, help="held-out clip to plot (default: first asterisk-en)")
    parser.add_argument("--baseline", default="a167065",
                        help="git revision whose packaged model is compared on the same split (v1.0.0)")
    parser.add_argument("--card-only", action="store_true",
                        help="only write the model card again from training/work's last outputs "
                        "(after editing training/RELEASE.md or training/DATA.md)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.card_only:
        return _card_only(args.corpus)
    t0 = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    if not args.skip_data:
        lock = ["--text-lock", str(args.text_lock)] if args.text_lock else []
        _run(["-m", "training.data.build", "--out", str(args.corpus), *lock])
    ckpt = WORK / "model.pt"
    if not args.skip_train:
        _run(["-m", "training.train", "--corpus", str(args.corpus), "--out", str(ckpt)]
             + (["--steps", str(args.steps)] if args.steps else [])
             + (["--seed", str(args.seed)] if args.seed is not None else []))  # fmt: skip
    onnx_path = packaged_model_path()
    _run(["-m", "training.export", "--ckpt", str(ckpt), "--out", str(onnx_path)])
    from training.evaluate import run_benchmark

    recs = [json.loads(line) for line in (args.corpus / "manifest.jsonl").open(encoding="utf-8")]
    held = [r for r in recs if r["split"] == "heldout" and r["phones"]]
    clip = args.plot_clip or next((r["id"] for r in held if r["source"] == "asterisk-en"), held[0]["id"])
    quality = run_benchmark(onnx_path, args.corpus / "heldout", WORK / "quality.json", clip, PLOT,
                            intervals=INTERVALS)
    baseline = None
    old_model = extract_baseline(args.baseline, WORK / "baseline")
    if old_model is not None:
        baseline = run_benchmark(old_model, args.corpus / "heldout", WORK / "quality_baseline.json",
                                 intervals=INTERVALS)
    if (args.corpus / "validation").is_dir():  # the split models are chosen on (training/DATA.md)
        from training.evaluate import validation_summary

        val = run_benchmark(onnx_path, args.corpus / "validation", WORK / "quality_validation.json")
        log.info("validation: %s", json.dumps(validation_summary(val)))
    _run(["benchmarks/engine_speed.py", "--out", str(WORK / "engine_speed.json")])
    speed = _load(WORK / "engine_speed.json")
    # the whole recipe's time only when it ran every step
    minutes = None if args.skip_data or args.skip_train else (time.monotonic() - t0) / 60
    targets, voice_report = _write_card(args.corpus, quality, baseline, speed, minutes)
    (WORK / "voice_targets.json").write_text(json.dumps(voice_report, indent=1), "utf-8")
    log.info("recipe done in %.1f min; targets: %s; per voice: %s", (time.monotonic() - t0) / 60,
             {k: v["met"] for k, v in targets.items()}, {k: v["met"] for k, v in voice_report.items()})  # fmt: skip
    return 0


def _load(path: Path) -> dict:
    return json.loads(path.read_text("utf-8"))


def _write_card(corpus: Path, quality: dict, baseline: dict | None, speed: dict | None,
                recipe_minutes: float | None = None) -> tuple[dict, dict]:  # fmt: skip
    """The model card from a run's outputs: the packaged model's sidecar, the checkpoint's
    log in ``training/work``, the corpus metadata and the benchmarks given; returns the
    pooled and per-voice target reports it shows."""
    from training.evaluate import check_targets, check_voice_targets

    targets, voice_report = check_targets(quality["systems"]), check_voice_targets(quality)
    write_model_card(
        CARD, _load(packaged_model_path().with_suffix(".json")), _load(WORK / "model.json"),
        quality, targets, _load(corpus / "metadata.json"), speed,
        PLOT.name if PLOT.exists() else None, baseline, voice_report, recipe_minutes,
    )  # fmt: skip
    return targets, voice_report


def _card_only(corpus: Path) -> int:
    """``--card-only``: the card from the last full run's outputs in ``training/work``."""
    need = [WORK / "quality.json", WORK / "model.json", packaged_model_path().with_suffix(".json")]
    if missing := [str(p) for p in need if not p.exists()]:
        raise SystemExit(f"--card-only needs a full run's outputs first; missing: {', '.join(missing)}")
    optional = lambda name: _load(WORK / name) if (WORK / name).exists() else None  # noqa: E731
    _write_card(corpus, _load(WORK / "quality.json"), optional("quality_baseline.json"),
                optional("engine_speed.json"))  # fmt: skip
    log.info("wrote %s", CARD)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
