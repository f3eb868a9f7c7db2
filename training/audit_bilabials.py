"""Audit where labelled /m b p/ segments sit against the acoustic lip closure.

``python -m training.audit_bilabials --corpus data/corpus [--split train,heldout] [--source festival,espeak-ng]
[--json out.json] [--max-clips-per-voice 80]``

A bilabial closure leaves a clear trace in the audio: /p b/ are a near-silence (a
weak voice bar for /b/) ended by a burst, /m/ a nasal murmur with almost no energy
above ~800 Hz. Both are a *dip of the high-band energy* (800-7000 Hz log energy,
20 ms Hann window, 5 ms hop) between the neighbouring vowels. For every labelled
bilabial segment (unified phones ``P B M``; runs of them, e.g. a geminate, count as
one) this script finds that dip near the label and measures:

* ``offset_ms``: label centre minus the time of the dip's minimum (the middle of the
  frames within 3 dB of it, so a flat digital-silence floor counts by its centre;
  positive: the label is late);
* ``no_overlap``: the label span does not overlap the acoustic closure (the frames
  around the minimum that stay below halfway, in dB, between the minimum and the
  lower of the two neighbouring peaks);
* ``dur_ratio``: label duration / acoustic closure duration;
* ``iou``: intersection over union of the two spans;
* ``depth_db``: depth of the dip (lower neighbouring peak minus minimum).

The 20 ms analysis window smears the edges of a gap, so a digital-silence closure
measures about 15 ms *shorter* than it is (60 ms reads 45 ms) and ``dur_ratio`` reads
high by the same amount for every source; compare sources with each other, not with 1.

The search window is the label span widened by ``--search-ms`` (default 60 ms) on each
side, so a label that is off by more than that shows up as a shallow dip, a large
offset or no overlap. A neighbouring stop's closure is usually deeper than an /m/ murmur
and falls inside that window, so /m/ next to a consonant reads shifted towards it
(Hindi anusvara before a stop read 50 ms "early" this way): ``--between-vowels`` keeps
only runs with a vowel on both sides, the clean case. Segments touching ``SIL`` (utterance- or pause-initial stops
merge with the silence) are skipped and counted. Per voice it prints the number of
bilabials, the median offset (and its quartiles), the no-overlap fraction, the median
label and acoustic durations, the median ratio and IoU. espeak-ng, whose labels come
from the synthesiser's own phoneme events, is the reference.

The reusable part is :func:`audit_clip` (one clip) and :func:`summarise` (rows ->
per-voice table); :func:`high_band_db` is the acoustic measure.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from audio2face.engines.phonemes.phoneset import BILABIALS as BILABIAL
from audio2face.engines.phonemes.phoneset import VOWELS

__all__ = ["Closure", "audit_clip", "high_band_db", "main", "summarise"]

SR = 16000
HOP_S = 0.005
WIN_S = 0.020
BAND_HZ = (800.0, 7000.0)


@dataclass(frozen=True)
class Closure:
    """One labelled bilabial run against the acoustic dip found near it."""

    clip: str
    voice: str
    phones: str
    label_start: float
    label_end: float
    dip_time: float
    closure_start: float
    closure_end: float
    depth_db: float

    @property
    def offset_ms(self) -> float:
        return 1000.0 * ((self.label_start + self.label_end) / 2 - self.dip_time)

    @property
    def label_ms(self) -> float:
        return 1000.0 * (self.label_end - self.label_start)

    @property
    def closure_ms(self) -> float:
        return 1000.0 * (self.closure_end - self.closure_start)

    @property
    def overlap_s(self) -> float:
        return max(0.0, min(self.label_end, self.closure_end) - max(self.label_start, self.closure_start))

    @property
    def no_overlap(self) -> bool:
        return self.overlap_s <= 0.0

    @property
    def iou(self) -> float:
        union = max(self.label_end, self.closure_end) - min(self.label_start, self.closure_start)
        return self.overlap_s / union if union > 0 else 0.0


def high_band_db(audio: npt.NDArray[np.float32], sr: int = SR) -> npt.NDArray[np.float64]:
    """Log energy (dB) of ``BAND_HZ`` per ``HOP_S`` frame; frame k is centred at ``k * HOP_S``."""
    hop, win = round(HOP_S * sr), round(WIN_S * sr)
    x = np.pad(np.asarray(audio, np.float64), (win // 2, win // 2))
    n = max(1 + (len(x) - win) // hop, 0)
    if n == 0:
        return np.zeros(0)
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(win), axis=1)) ** 2
    freqs = np.fft.rfftfreq(win, 1 / sr)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    return 10.0 * np.log10(spec[:, band].sum(axis=1) + 1e-10)


def _runs(phones: list[list[object]]) -> list[tuple[int, int]]:
    """(first, last) indices of maximal runs of bilabial phones."""
    runs: list[tuple[int, int]] = []
    k = 0
    while k < len(phones):
        if phones[k][2] in BILABIAL:
            j = k
            while j + 1 < len(phones) and phones[j + 1][2] in BILABIAL:
                j += 1
            runs.append((k, j))
            k = j + 1
        else:
            k += 1
    return runs


def audit_clip(audio: npt.NDArray[np.float32], phones: list[list[object]], clip: str = "", voice: str = "",
               search_ms: float = 60.0, sr: int = SR, between_vowels: bool = False) -> tuple[list[Closure], int]:  # fmt: skip
    """Closures of one clip and the number of bilabial runs skipped (next to ``SIL``, or at an edge;
    with ``between_vowels``, also every run not flanked by vowels on both sides)."""
    energy = high_band_db(audio, sr)
    n = len(energy)
    out: list[Closure] = []
    skipped = 0
    for first, last in _runs(phones):
        before = phones[first - 1][2] if first > 0 else "SIL"
        after = phones[last + 1][2] if last + 1 < len(phones) else "SIL"
        if before == "SIL" or after == "SIL" or (between_vowels and not (before in VOWELS and after in VOWELS)):
            skipped += 1
            continue
        start, end = float(phones[first][0]), float(phones[last][1])  # type: ignore[arg-type]
        lo = max(int(math.floor((start - search_ms / 1000) / HOP_S)), 0)
        hi = min(int(math.ceil((end + search_ms / 1000) / HOP_S)), n - 1)
        if hi - lo < 4:
            skipped += 1
            continue
        seg = energy[lo : hi + 1]
        m = int(np.argmin(seg))
        # Neighbouring peaks: the loudest frame each side of the minimum, within the window.
        left_peak = float(seg[: m + 1].max())
        right_peak = float(seg[m:].max())
        ref = min(left_peak, right_peak)
        depth = ref - float(seg[m])
        thr = float(seg[m]) + depth / 2
        a = m
        while a > 0 and seg[a - 1] < thr:
            a -= 1
        b = m
        while b < len(seg) - 1 and seg[b + 1] < thr:
            b += 1
        # The minimum of a flat floor (digital silence) is the middle of the frames within 3 dB of it.
        fa, fb = m, m
        while fa > a and seg[fa - 1] <= seg[m] + 3.0:
            fa -= 1
        while fb < b and seg[fb + 1] <= seg[m] + 3.0:
            fb += 1
        # Frame k covers [k - 1/2, k + 1/2) hops.
        out.append(Closure(clip, voice, "".join(str(p[2]) for p in phones[first : last + 1]), start, end,
                           (lo + (fa + fb) / 2) * HOP_S, (lo + a - 0.5) * HOP_S, (lo + b + 0.5) * HOP_S,
                           depth))  # fmt: skip
    return out, skipped


def _q(values: list[float], q: float) -> float:
    return float(np.quantile(values, q)) if values else math.nan


def phone_class(r: Closure) -> str:
    """``M``, ``P/B`` or ``mixed`` (a run such as ``MB``)."""
    return "M" if r.phones == "M" else ("P/B" if r.phones in ("P", "B") else "mixed")


def summarise(rows: list[Closure], skipped: dict[str, int] | None = None,
              min_depth_db: float = 6.0, by_phone: bool = False) -> dict[str, dict[str, float]]:  # fmt: skip
    """Per voice: counts and medians (see the module docstring). Dips shallower than
    ``min_depth_db`` (no clear closure in the audio) are counted but left out of the timing stats."""
    by_voice: dict[str, list[Closure]] = collections.defaultdict(list)
    for r in rows:
        by_voice[f"{r.voice} {phone_class(r)}" if by_phone else r.voice].append(r)
    table: dict[str, dict[str, float]] = {}
    for voice in sorted(by_voice):
        allr = by_voice[voice]
        rs = [r for r in allr if r.depth_db >= min_depth_db]
        off = [r.offset_ms for r in rs]
        table[voice] = {
            "bilabials": len(allr),
            "skipped_next_to_sil": (skipped or {}).get(voice, 0),  # per voice only (not per phone class)
            "shallow": len(allr) - len(rs),
            "median_depth_db": round(_q([r.depth_db for r in allr], 0.5), 1),
            "median_offset_ms": round(_q(off, 0.5), 1),
            "offset_q25_ms": round(_q(off, 0.25), 1),
            "offset_q75_ms": round(_q(off, 0.75), 1),
            "no_overlap": round(sum(r.no_overlap for r in rs) / max(len(rs), 1), 3),
            "median_label_ms": round(_q([r.label_ms for r in rs], 0.5), 1),
            "median_closure_ms": round(_q([r.closure_ms for r in rs], 0.5), 1),
            "median_dur_ratio": round(_q([r.label_ms / max(r.closure_ms, 1e-3) for r in rs], 0.5), 2),
            "median_iou": round(_q([r.iou for r in rs], 0.5), 2),
            "median_label_start_minus_closure_start_ms": round(
                _q([1000 * (r.label_start - r.closure_start) for r in rs], 0.5), 1),
            "median_label_end_minus_closure_end_ms": round(
                _q([1000 * (r.label_end - r.closure_end) for r in rs], 0.5), 1),
        }  # fmt: skip
    return table


def _voice_key(rec: dict[str, object], by_lang: bool) -> str:
    if rec["source"] == "espeak-ng":
        return f"espeak:{rec['lang']}" if by_lang else "espeak-ng (all)"
    return str(rec["voice"]) if rec["source"] != "asterisk-en" else "asterisk-en allison"


def audit_corpus(corpus: Path, splits: set[str], sources: set[str] | None, max_per_voice: int,
                 espeak_by_lang: bool = False, between_vowels: bool = False) -> tuple[list[Closure], dict[str, int]]:  # fmt: skip
    rows: list[Closure] = []
    skipped: collections.Counter[str] = collections.Counter()
    seen: collections.Counter[str] = collections.Counter()
    with (corpus / "manifest.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["split"] not in splits or not rec.get("phones"):
                continue
            if sources and rec["source"] not in sources:
                continue
            key = _voice_key(rec, espeak_by_lang)
            if seen[key] >= max_per_voice:
                continue
            seen[key] += 1
            audio, sr = sf.read(corpus / rec["wav"], dtype="float32")
            got, skip = audit_clip(audio, rec["phones"], str(rec["id"]), key, sr=sr, between_vowels=between_vowels)
            rows += got
            skipped[key] += skip
    return rows, dict(skipped)


COLUMNS = ("bilabials", "shallow", "median_depth_db", "median_offset_ms", "offset_q25_ms", "offset_q75_ms",
           "no_overlap", "median_label_ms", "median_closure_ms", "median_dur_ratio", "median_iou",
           "median_label_start_minus_closure_start_ms", "median_label_end_minus_closure_end_ms")  # fmt: skip


def markdown(table: dict[str, dict[str, float]]) -> str:
    short = ("n", "shallow", "depth dB", "offset ms", "q25", "q75", "no overlap", "label ms", "closure ms",
             "label/closure", "IoU", "start diff ms", "end diff ms")  # fmt: skip
    lines = ["| voice | " + " | ".join(short) + " |", "|---" * (len(short) + 1) + "|"]
    for voice, row in table.items():
        lines.append(f"| {voice} | " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    parser.add_argument("--split", default="train,heldout")
    parser.add_argument("--source", default="", help="comma list (festival, espeak-ng, flite, asterisk-en); all")
    parser.add_argument("--max-clips-per-voice", type=int, default=80)
    parser.add_argument("--espeak-by-lang", action="store_true", help="one row per espeak-ng language")
    parser.add_argument("--by-phone", action="store_true", help="separate rows for M and P/B per voice")
    parser.add_argument("--between-vowels", action="store_true",
                        help="only runs with a vowel on both sides (a neighbouring stop's closure is no longer "
                             "mistaken for the bilabial's; use this for /m/)")
    parser.add_argument("--json", type=Path, default=None, help="write the per-voice table here")
    args = parser.parse_args(argv)
    sources = set(filter(None, args.source.split(","))) or None
    rows, skipped = audit_corpus(args.corpus, set(args.split.split(",")), sources, args.max_clips_per_voice,
                                 args.espeak_by_lang, args.between_vowels)  # fmt: skip
    table = summarise(rows, skipped, by_phone=args.by_phone)
    print(markdown(table))
    if args.json:
        args.json.write_text(json.dumps({"table": table, "rows": [asdict(r) for r in rows]}, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
