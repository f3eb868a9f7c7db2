"""data/corpus8 = data/corpus7 plus the Asterisk prompts it skipped and this session's
asterisk_source now aligns (commits cdf37d6, 1c47006), without synthesising the rest again.

    PYTHONPATH=. python benchmarks/results/session11/issue12/derive_corpus8.py

The plan is corpus7's (its metadata's options); every other clip is corpus7's file (hard
links), so the two corpora differ only in the recovered clips. The manifest is sorted by
id, as ``training.data.build`` writes it.
"""

import json
import os
import shutil
from pathlib import Path

from training.data import asterisk_source
from training.data.plan import PlanOptions, make_plan
from training.data.split import SplitPolicy

SRC, DST = Path("data/corpus7"), Path("data/corpus8")
meta = json.loads((SRC / "metadata.json").read_text())
o = dict(meta["options"])
o["split"] = SplitPolicy(**{k: frozenset(v) if isinstance(v, list) else v for k, v in o["split"].items()})
o = {k: tuple(v) if isinstance(v, list) else v for k, v in o.items()}
jobs = make_plan(PlanOptions(**o))
old = [json.loads(line) for line in (SRC / "manifest.jsonl").read_text().splitlines()]
have = {r["id"] for r in old}
shutil.rmtree(DST, ignore_errors=True)
for r in old:
    (DST / r["split"]).mkdir(parents=True, exist_ok=True)
    os.link(SRC / r["wav"], DST / r["wav"])
new = []
for job in jobs:
    if job.source != "asterisk-en":
        continue
    for item in job.items:
        if item.id not in have:
            rec = asterisk_source.render(item, DST, "en")
            if rec is not None:
                new.append({**rec, "wav": f"{rec['split']}/{rec['id']}.wav"})
records = sorted(old + new, key=lambda r: str(r["id"]))
with (DST / "manifest.jsonl").open("w", encoding="utf-8") as fh:
    for r in records:
        fh.write(json.dumps(r, ensure_ascii=False) + "\n")
meta["command"] = "derive_corpus8.py (corpus7 + recovered Asterisk prompts)"
meta["failures"]["asterisk-en"] -= len(new)
meta["recovered_asterisk_en"] = {s: sum(r["split"] == s for r in new) for s in ("train", "validation", "heldout")}
(DST / "metadata.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
print(len(old), "+", len(new), meta["recovered_asterisk_en"])
