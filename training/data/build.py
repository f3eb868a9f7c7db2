"""Build the training corpus: ``python -m training.data.build --out data/corpus``.

Plans jobs deterministically (:mod:`training.data.plan`), renders them in at
most ``--workers`` processes, then writes ``manifest.jsonl`` (one JSON record
per clip, phones included) and ``metadata.json`` (sources, licences, text
sources, statistics).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import multiprocessing
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from training.data import asterisk_source, festival_source, flite_source
from training.data.corpus import seed_libc_rand
from training.data.debian import TextFiles, TextLock, installed_versions
from training.data.jobs import Job
from training.data.plan import PlanOptions, make_plan, text_origins
from training.data.split import SplitPolicy

__all__ = ["BuildOptions", "build", "check_lock", "main", "text_lock"]

log = logging.getLogger("training.data.build")

TEXT_SOURCES = {
    "licenses": "/usr/share/common-licenses/* prose (licence texts; verbatim copying permitted)",
    "copyright": "/usr/share/doc/*/copyright prose sentences",
    "gettext": "/usr/share/locale/<lang>/LC_MESSAGES/*.mo translated UI messages (licences of their packages)",
    "cmudict": "random word sequences from CMUdict in the pocketsphinx wheel (BSD-style)",
    "asterisk-en transcript": "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz (CC-BY-SA-3.0)",
    "asterisk-es transcript": "/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz (CC-BY-SA-3.0)",
}


@dataclass(frozen=True)
class BuildOptions:
    """Where to write and how hard to work; planning options are nested."""

    out: Path
    plan: PlanOptions = PlanOptions()
    workers: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= 8:
            raise ValueError(f"workers must be in 1..8, got {self.workers}")


def _run_job(args: tuple[Job, str]) -> tuple[str, list[dict[str, object]], int]:
    """Worker entry point: render a job, return (source, records, failures)."""
    job, root_s = args
    root = Path(root_s)
    if job.items:
        seed_libc_rand(job.items[0].id)  # libespeak-ng 1.51 calls rand() too
    records: list[dict[str, object]] = []
    failed = 0
    if job.source == "festival":
        try:
            records = festival_source.render_batch(job.items, root)
        except Exception:  # noqa: BLE001 - one bad batch must not sink the whole build
            log.exception("festival batch failed")
        failed = len(job.items) - len(records)
        return job.source, records, failed
    for item in job.items:
        try:
            if job.source == "espeak":
                from training.data import espeak_source

                rec = espeak_source.render(item, root)
            elif job.source == "flite":
                rec = flite_source.render(item, root)
            else:
                rec = asterisk_source.render(item, root, job.source.split("-")[1])
        except Exception:  # noqa: BLE001 - skip the clip, count it, keep going
            log.exception("failed %s", item.id)
            rec = None
        if rec is None:
            failed += 1
        else:
            records.append(rec)
    return job.source, records, failed


def git_commit() -> str:
    """The checkout's commit (with ``+dirty`` for uncommitted changes), or ``unknown``."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _stats(records: list[dict[str, object]]) -> dict[str, object]:
    hours: dict[str, dict[str, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    by_lang: dict[str, dict[str, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    by_voice: dict[str, dict[str, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    phones: collections.Counter[str] = collections.Counter()
    clips: collections.Counter[str] = collections.Counter()
    for r in records:
        split, dur = str(r["split"]), float(r["duration"])  # type: ignore[arg-type]
        hours[split][str(r["source"])] += dur / 3600
        by_lang[split][str(r["lang"])] += dur / 3600
        by_voice[split][str(r["voice"]).partition("+")[0]] += dur / 3600  # espeak variants fold into the base
        clips[split] += 1
        for s, e, p in r["phones"] or []:  # type: ignore[attr-defined]
            phones[p] += e - s
    return {
        "clips": dict(clips),
        "hours_by_source": {k: {s: round(v, 3) for s, v in d.items()} for k, d in hours.items()},
        "hours_by_lang": {k: {s: round(v, 3) for s, v in d.items()} for k, d in by_lang.items()},
        "hours_by_voice": {k: {s: round(v, 3) for s, v in sorted(d.items())} for k, d in by_voice.items()},
        "hours_total": {k: round(sum(d.values()), 3) for k, d in hours.items()},
        "phone_seconds": {p: round(v, 1) for p, v in phones.most_common()},
    }


def text_lock(plan_opts: PlanOptions, comment: str = "") -> TextLock:
    """The files the plan's text comes from, with their packages and installed versions
    (what ``--write-text-lock`` writes)."""
    files = TextFiles()
    origins = sorted(text_origins(plan_opts))
    owned = {p: files.package_of(p) for p in origins}
    unowned = [p for p, pkg in owned.items() if pkg is None]
    if unowned:
        log.warning("%d text files belong to no package, so no lock can pin them (first: %s)", len(unowned), unowned[0])
    installed = installed_versions()
    by_file = {p: pkg for p, pkg in owned.items() if pkg is not None}
    packages = {pkg: installed.get(pkg, "") for pkg in sorted(set(by_file.values()))}
    return TextLock(comment=comment, packages=packages, files=by_file)


def check_lock(lock: TextLock, path: Path, root: Path = Path("/")) -> tuple[str, ...]:
    """The lock's files if every package of it is installed; ``SystemExit`` with one line
    (the install command) if not. Other versions than the lock's, or files gone, only
    warn: the text may differ, and the metadata records what was used."""
    missing, moved, gone = lock.check(installed_versions(root), root)
    if missing:
        raise SystemExit(
            f"{len(missing)} of the {len(lock.packages)} text packages in {path} are not installed; "
            f"install them (apt-get install {' '.join(missing)}) or drop --text-lock"
        )
    if moved or gone:
        log.warning("%d text packages differ in version from %s and %d of its files are gone (first: %s), "
                    "so the text may differ", len(moved), path, len(gone), (moved or gone)[0])  # fmt: skip
    return tuple(sorted(lock.files))


def build(opts: BuildOptions) -> dict[str, object]:
    """Render the corpus into ``opts.out``; return its metadata (also saved as metadata.json)."""
    t0 = time.monotonic()
    plan_opts = opts.plan
    fest = tuple(festival_source.available_voices()) if plan_opts.use_festival else ()
    flite = tuple(flite_source.available_voices()) if plan_opts.use_flite else ()
    for name, wanted, found, used in (("festival", festival_source.VOICES, fest, plan_opts.use_festival),
                                      ("flite", flite_source.VOICES, flite, plan_opts.use_flite)):  # fmt: skip
        missing = sorted(set(wanted) - set(found))
        if used and missing:  # --no-festival / --no-flite leave them out on purpose
            log.warning("%s voices not installed, skipped: %s", name, ", ".join(missing))
    plan_opts = replace(plan_opts, festival_voices=fest, flite_voices=flite)
    jobs = make_plan(plan_opts)
    log.info("planned %d jobs (%d clips) in %.1fs", len(jobs), sum(len(j.items) for j in jobs), time.monotonic() - t0)
    texts_from = text_lock(plan_opts)
    out = opts.out
    for sub in ("train", "heldout", "validation"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    # Slow jobs (alignment, festival batches) first so the pool stays busy to the end.
    order = {"asterisk-en": 0, "festival": 1, "flite": 2, "asterisk-es": 3, "espeak": 4}
    jobs = sorted(jobs, key=lambda j: order.get(j.source, 9))
    records: list[dict[str, object]] = []
    failures: collections.Counter[str] = collections.Counter()
    ctx = multiprocessing.get_context("spawn")  # espeak/pocketsphinx hold global state: no forking
    # One fresh process per job (about 0.6 s to start): libespeak-ng carries its wave
    # generator's state from one synthesis to the next (pitch flutter, phase), so a clip
    # would otherwise sound slightly different depending on which jobs its worker ran
    # before. So a job's audio depends only on the job, whatever the worker count.
    with ctx.Pool(opts.workers, maxtasksperchild=1) as pool:
        for k, (source, recs, failed) in enumerate(pool.imap_unordered(_run_job, [(j, str(out)) for j in jobs])):
            records += recs
            failures[source] += failed
            if k % 50 == 0:
                log.info("%d/%d jobs, %d clips", k + 1, len(jobs), len(records))
    records.sort(key=lambda r: str(r["id"]))
    with (out / "manifest.jsonl").open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps({**r, "wav": f"{r['split']}/{r['id']}.wav"}, ensure_ascii=False) + "\n")
    meta = {
        "command": " ".join(sys.argv),
        "commit": git_commit(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "options": json.loads(json.dumps(asdict(plan_opts), default=sorted)),
        "workers": opts.workers,
        "wall_seconds": round(time.monotonic() - t0, 1),
        "failures": dict(failures),
        "sample_rate": 16000,
        "sources": {
            "espeak-ng": "libespeak-ng via audio2face.engines.phonemes.espeak; phones from PHONEME events",
            "festival": "festival voices (see training/DATA.md); phones from utt.save.segs, per-phoneset maps",
            "flite": "flite voices awb, rms, kal through libflite; phones from the Segment relation",
            "asterisk-en": "asterisk-core-sounds-en (Allison Smith), pocketsphinx 5.1.1 forced alignment",
            "asterisk-es": "asterisk-core-sounds-es (Allison Smith), UNLABELLED (phones null)",
        },
        "text_sources": TEXT_SOURCES,
        # Which packages' files the sentences came from, at which version: what makes this
        # corpus's text, and a lock for the same text elsewhere (--write-text-lock).
        "text_packages": texts_from.packages,
        "text_files": texts_from.files,
        "split": "heldout = held-out voices (espeak bases/variants) OR held-out sentences/prompt files; validation = "
                 "validation voices (czech_krb, espeak id) OR validation sentences/prompt files; see split.py",
        "stats": _stats(records),
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), "utf-8")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/corpus"))
    parser.add_argument("--hours", type=float, default=PlanOptions.hours, help="hours of training audio")
    parser.add_argument("--heldout-fraction", type=float, default=PlanOptions.heldout_fraction)
    parser.add_argument("--heldout-voice-minutes", type=float, default=PlanOptions.heldout_voice_minutes,
                        help="minutes of speech for every voice held out whole")
    parser.add_argument("--small", action="store_true", help="quick smoke run: about 2 minutes of audio")
    parser.add_argument("--seed", type=int, default=SplitPolicy.seed)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--english-share", type=float, default=PlanOptions.english_share,
                        help="share of espeak-ng training items read by English voices")
    parser.add_argument("--validation-fraction", type=float, default=PlanOptions.validation_fraction,
                        help="validation sentences (read by training voices), as a fraction of the training hours")
    parser.add_argument("--no-festival", action="store_true")
    parser.add_argument("--no-flite", action="store_true")
    parser.add_argument("--no-asterisk", action="store_true")
    parser.add_argument("--text-lock", type=Path, default=None, metavar="LOCK",
                        help="read sentences only from the files of the Debian packages in LOCK (JSON, as "
                             "--write-text-lock writes it): the same text on every machine that has them")
    parser.add_argument("--write-text-lock", type=Path, default=None, metavar="LOCK",
                        help="write the packages (and versions) this build's text came from to LOCK")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    locked: tuple[str, ...] | None = None
    if args.text_lock is not None:
        try:
            lock = TextLock.load(args.text_lock)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        locked = check_lock(lock, args.text_lock)
    hours = 2.0 / 60 if args.small else args.hours
    plan = PlanOptions(
        hours=hours, heldout_fraction=max(args.heldout_fraction, 0.2) if args.small else args.heldout_fraction,
        small=args.small, use_festival=not args.no_festival, use_asterisk=not args.no_asterisk,
        use_flite=not args.no_flite, heldout_voice_minutes=0.1 if args.small else args.heldout_voice_minutes,
        validation_voice_minutes=0.1 if args.small else PlanOptions.validation_voice_minutes,
        english_share=args.english_share, validation_fraction=args.validation_fraction,
        split=SplitPolicy(seed=args.seed, validation_fraction=args.validation_fraction),
        text_files=locked,
    )  # fmt: skip
    meta = build(BuildOptions(out=args.out, plan=plan, workers=args.workers))
    if args.write_text_lock is not None:
        comment = (f"The files (and their Debian packages) that gave the text of {args.out}: "
                   f"python -m training.data.build, commit {meta['commit']}, {meta['built_at']}")  # fmt: skip
        lock = TextLock(comment=comment, packages=meta["text_packages"], files=meta["text_files"])  # type: ignore[arg-type]
        lock.dump(args.write_text_lock)
    print(json.dumps({k: meta[k] for k in ("wall_seconds", "failures")} | {"stats": meta["stats"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
