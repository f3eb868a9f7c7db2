"""data/corpus7 (2.1.0's corpus: what the build made before commits cdf37d6 and 1c47006)
from a corpus built with today's code, the inverse of session 11's derive_corpus8.py.

    PYTHONPATH=. python -m training.data.build --out data/corpus8
    PYTHONPATH=. python benchmarks/results/session12/issue12/derive_corpus7.py [--src data/corpus8] [--verify]

Since corpus7 was built, the only change to ``training/data`` is ``asterisk_source.align_words``
(and the words its decoder knows); the plan, the split (SHA-1 of each prompt's text), the pad
and level draws and every other source are the same code. So each Asterisk ``en`` prompt of
the plan is decided by the words the *earlier* code would have aligned (:func:`old_words`,
its ``align_words`` verbatim: lower case; any digit, or a word outside cmudict-en-us, refuses):

* earlier code refused it (a digit, a misspelling, a word not in cmudict): a recovered clip,
  left out (75 prompts);
* earlier code would align the same words as today's: the source's files (hard links);
* earlier code would align other words (a note in brackets made only of dictionary words:
  ``confbridge-join`` "<beep ascending>", ``vm-intro`` "... (simple tone sound plays)"):
  aligned again here with the earlier words through a decoder without today's added
  pronunciations, as the earlier build did; both fail (no alignment), so ``vm-intro``, which
  today's code aligns, is a recovered clip too (76 in all: 62 train, 10 validation, 4 held
  out, the numbers of round 6c's rule) and ``confbridge-join`` is in neither corpus.

This gives 563 - 463 = 100 failed Asterisk ``en`` prompts, as 2.1.0's build recorded, and its
360 / 40 / 63 Asterisk ``en`` clips per split. It is not bit-exact for the Asterisk audio and phones of a build made before commit 912a7a6:
there, ``decode_gsm`` let sox dither with noise seeded from the clock, which moved pocketsphinx's
boundaries from one build to the next. ``--verify`` aligns each kept clip again with the
earlier words and decoder and counts how many come out identical. This is meaningful only
for a source built at 912a7a6 or later; for session 12's corpus8 (built at 719ae1e) the
dither alone makes most of them differ.

Every other clip is the source's file (hard links). The manifest is sorted by id, as
``training.data.build`` writes it; the metadata's ``failures`` and ``stats`` are recomputed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from pathlib import Path
from unittest import mock

from training.data import asterisk_source
from training.data.build import _stats
from training.data.corpus import finish_clip
from training.data.plan import PlanOptions, make_plan
from training.data.split import SplitPolicy


def cmudict() -> frozenset[str]:
    import pocketsphinx

    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    return frozenset(line.split(" ", 1)[0] for line in path.read_text("utf-8", errors="ignore").splitlines())


def old_words(text: str) -> str | None:
    """``align_words`` as it was before cdf37d6 (git show cdf37d6~1:training/data/asterisk_source.py)."""
    words = re.findall(r"[a-z']+", text.lower().replace("’", "'"))
    if not words or re.search(r"\d", text):
        return None
    vocab = cmudict()
    return " ".join(words) if all(w in vocab for w in words) else None


_PLAIN = None


def old_align(audio, words):  # noqa: ANN001, ANN201
    """``force_align`` through the earlier decoder (no added pronunciations)."""
    global _PLAIN
    if _PLAIN is None:
        from pocketsphinx import Decoder

        _PLAIN = Decoder(samprate=asterisk_source.SAMPLE_RATE, bestpath=False, loglevel="FATAL")
    with mock.patch.object(asterisk_source, "_decoder", lambda: _PLAIN):
        return asterisk_source.force_align(audio, words)


def old_render(item, root: Path) -> dict[str, object] | None:  # noqa: ANN001
    """``asterisk_source.render`` for ``en`` as it was before cdf37d6."""
    audio = asterisk_source.decode_gsm(Path(item.path))
    words = old_words(item.text)
    if words is None:
        return None
    try:
        phones = old_align(audio, words)
    except (RuntimeError, ValueError, KeyError):
        return None
    if phones is None or sum(e - s for s, e, p in phones if p != asterisk_source.SILENCE) < 0.2:
        return None
    return finish_clip(root, item, audio, phones, source="asterisk-en", voice="allison", lang="en",
                       licence=asterisk_source.LICENCE, text_source="asterisk-core-sounds-en transcript")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=Path, default=Path("data/corpus8"))
    ap.add_argument("--dst", type=Path, default=Path("data/corpus7"))
    ap.add_argument("--verify", action="store_true")
    args = ap.parse_args()
    src, dst = args.src, args.dst
    meta = json.loads((src / "metadata.json").read_text())
    o = dict(meta["options"])
    o["split"] = SplitPolicy(**{k: frozenset(v) if isinstance(v, list) else v for k, v in o["split"].items()})
    o = {k: tuple(v) if isinstance(v, list) else v for k, v in o.items()}
    items = [i for job in make_plan(PlanOptions(**o)) if job.source == "asterisk-en" for i in job.items]
    have = {r["id"]: r for r in map(json.loads, (src / "manifest.jsonl").read_text().splitlines())}
    shutil.rmtree(dst, ignore_errors=True)
    dropped, rerendered, kept = [], [], []
    records = []
    plan_ids = {i.id for i in items}
    for r in have.values():  # every clip that is not an Asterisk en prompt: the source's files
        if r["source"] != "asterisk-en":
            assert r["id"] not in plan_ids
            records.append(r)
    for item in items:
        ow = old_words(item.text)
        if ow is None:
            if item.id in have:
                dropped.append(item.id)
            continue
        if ow == asterisk_source.align_words(item.text):
            if item.id in have:
                kept.append(item.id)
                records.append(have[item.id])
            continue
        rec = old_render(item, dst)
        rerendered.append((item.id, rec is not None))
        if rec is not None:
            records.append({**rec, "wav": f"{rec['split']}/{rec['id']}.wav"})
    fresh = {i for i, ok in rerendered if ok}
    for r in records:
        if r["id"] in fresh:
            continue
        (dst / r["split"]).mkdir(parents=True, exist_ok=True)
        os.link(src / r["wav"], dst / r["wav"])
        j = Path(r["wav"]).with_suffix(".json")
        if (src / j).exists():
            os.link(src / j, dst / j)
    records.sort(key=lambda r: str(r["id"]))
    with (dst / "manifest.jsonl").open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    n_en = sum(r["source"] == "asterisk-en" for r in records)
    meta["command"] = f"derive_corpus7.py --src {src} (the build before cdf37d6: recovered Asterisk prompts removed)"
    meta["failures"]["asterisk-en"] = len(items) - n_en
    meta["stats"] = _stats(records)
    out_ids = {r["id"] for r in records}
    removed = sorted(i for i in have if i not in out_ids)  # refused words, or earlier words that fail to align
    by_split = {s: sum(have[i]["split"] == s for i in removed) for s in ("train", "validation", "heldout")}
    meta["derived_from"] = {"src": str(src), "src_commit": meta.get("commit"), "recovered_removed": by_split,
                            "rerendered_with_earlier_words": rerendered}  # fmt: skip
    (dst / "metadata.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    meta["derived_from"]["removed_ids"] = removed
    print(f"{len(have)} - {len(removed)} recovered {by_split} ({len(dropped)} refused by the earlier words); "
          f"re-rendered with the earlier words (True: aligned): {rerendered}")
    print("corpus7:", meta["stats"]["clips"], "asterisk-en", n_en, "failures", meta["failures"])
    if args.verify:
        same, shifts, relabelled = 0, [], []
        for iid in kept:
            r = have[iid]
            item = next(i for i in items if i.id == iid)
            audio = asterisk_source.decode_gsm(Path(item.path))
            probe = finish_clip(Path("/tmp/derive7_verify"), item, audio, old_align(audio, old_words(item.text)),
                                source="asterisk-en", voice="allison", lang="en", licence="")  # fmt: skip
            a, b = probe["phones"], r["phones"]
            if a == b:
                same += 1
            elif [p for _, _, p in a] == [p for _, _, p in b]:
                shifts += [abs(x[1] - y[1]) for x, y in zip(a, b, strict=True)]
            else:
                relabelled.append(iid)
        shutil.rmtree("/tmp/derive7_verify", ignore_errors=True)
        shifts.sort()
        print(f"verify: {same}/{len(kept)} kept clips' phones equal the earlier decoder's; "
              f"{len(kept) - same - len(relabelled)} the same phones with moved boundaries "
              f"(median {1000 * shifts[len(shifts) // 2]:.0f} ms, {sum(s <= 0.0101 for s in shifts) / len(shifts):.0%} "
              f"within 10 ms, max {1000 * shifts[-1]:.0f} ms over their boundaries); {len(relabelled)} other "
              f"phones (optional silences): {relabelled}")

if __name__ == "__main__":
    main()
