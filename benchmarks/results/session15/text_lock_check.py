"""Does a text-package lock pin the corpus plan? (issue 12: corpora that repeat across machines)

    PYTHONPATH=. python benchmarks/results/session15/text_lock_check.py plan-unpinned A.json
    PYTHONPATH=. python benchmarks/results/session15/text_lock_check.py lock LOCK.json
    PYTHONPATH=. python benchmarks/results/session15/text_lock_check.py plan-locked LOCK.json B.json
    PYTHONPATH=. python benchmarks/results/session15/text_lock_check.py compare A.json B.json

Plans the default corpus (``training.data.build``'s defaults, every installed festival and
flite voice) without rendering it, and writes each job's items (id, voice, split, text) as
JSON; ``lock`` writes the files (and packages) the unpinned plan's text comes from; ``compare`` counts
the items whose text or split differ. Installing packages between two plans (this
session: ``apt-get install hello``, whose gettext catalogues cover dozens of languages)
shows what moves the unpinned plan and what the lock keeps.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from training.data import festival_source, flite_source
from training.data.build import text_lock
from training.data.debian import TextLock
from training.data.plan import PlanOptions, make_plan


def options(locked: tuple[str, ...] | None) -> PlanOptions:
    return replace(
        PlanOptions(),
        festival_voices=tuple(festival_source.available_voices()),
        flite_voices=tuple(flite_source.available_voices()),
        text_files=locked,
    )


def plan(opts: PlanOptions, out: Path) -> None:
    items = [
        {"id": i.id, "voice": i.voice, "split": i.split, "text": i.text}
        for job in make_plan(opts)
        for i in job.items
    ]
    out.write_text(json.dumps(items, ensure_ascii=False) + "\n", "utf-8")
    print(f"{len(items)} items -> {out}")


def main(argv: list[str]) -> int:
    verb = argv[0]
    if verb == "plan-unpinned":
        plan(options(None), Path(argv[1]))
    elif verb == "lock":
        lock = text_lock(options(None), "text_lock_check.py lock")
        lock.dump(Path(argv[1]))
        print(f"{len(lock.files)} files of {len(lock.packages)} packages -> {argv[1]}")
    elif verb == "plan-locked":
        lock = TextLock.load(Path(argv[1]))
        plan(options(tuple(sorted(lock.files))), Path(argv[2]))
    elif verb == "compare":
        a, b = (json.loads(Path(p).read_text("utf-8")) for p in argv[1:3])
        key = lambda items: {i["id"]: (i["split"], i["voice"], i["text"]) for i in items}  # noqa: E731
        ka, kb = key(a), key(b)
        differ = sum(ka[k] != kb.get(k) for k in ka) + sum(k not in ka for k in kb)
        print(f"{len(a)} and {len(b)} items; {differ} differ (id, split, voice or text)")
    else:
        raise SystemExit(f"unknown verb {verb!r}: plan-unpinned, lock, plan-locked or compare")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
