"""Lip-sync quality metrics from ARKit-52 frames and true phone timings.

Curves (per frame, ARKit names in Apple spelling):

* ``aperture = clip(jawOpen - mouthClose, 0, 1) + 0.5*mean(mouthLowerDown L/R)
  + 0.25*mean(mouthUpperUp L/R)``
* ``rounding = mean(mouthPucker, mouthFunnel)``

Metrics (phone classes from :mod:`audio2face.engines.phonemes.phoneset`):

* ``bilabial_closure``: share of P/B/M phones (>= 30 ms) whose minimum aperture within
  +-1 frame of the phone is <= 0.25 x the utterance's P90 aperture over speech frames;
  an utterance with P90 < 0.05 scores 0 (a face that never opens closes nothing).
  ``bilabial_nasal`` is the same for M alone.
* ``lips_shut``: share of tongue-tip consonants /t d n l s z/ (>= 60 ms) whose aperture
  at the phone's centre is <= 0.25 x the same P90, where the lips stay apart. Lower is
  better; the oracle's value is the floor (coarticulation narrows some). It guards the
  closure metrics: a model that buys bilabial closure by closing its lips on every
  consonant (/n/ sounds much like /m/) scores high there and high here.
* ``open_auc``: AUC of per-phone mean aperture, open vowels (AA AE AH AW AY) vs spread +
  rounded vowels; schwa (``AX``) is on neither side (session 13).
* ``round_auc``: AUC of per-phone mean rounding, rounded vowels + W vs spread vowels.
* ``silence_rest``: share of silences >= 300 ms whose interior (100 ms trimmed at each
  end) has mean aperture <= 0.1.
* ``sync_lag_ms``: lag maximising the cross-correlation between aperture and the
  oracle synthesiser's aperture from the phones, over +-300 ms (positive = late);
  the median over clips.
* ``loudness_corr``: Pearson correlation of aperture with the RMS envelope in dB, for
  clips without phone timings.
* ``jitter``: mean |second difference| of aperture per frame.

Per-clip results keep raw counts and values so :func:`aggregate` can pool them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from audio2face.engines.phonemes.phoneset import (
    BILABIALS,
    OPEN_VOWELS,
    ROUNDED_VOWELS,
    SILENCE,
    SPREAD_VOWELS,
    normalize_phone,
)
from audio2face.engines.phonemes.synth import default_synthesizer
from audio2face.rigs import ARKIT_52

Phone = tuple[float, float, str]
Array = npt.NDArray[np.float64]

MIN_BILABIAL_S = 0.03
MIN_APART_S = 0.06
# Tongue-tip consonants: the lips stay apart (what lips_shut counts).
LIPS_APART: frozenset[str] = frozenset({"T", "D", "N", "L", "S", "Z"})
MIN_SILENCE_S = 0.3
SILENCE_TRIM_S = 0.1
REST_APERTURE = 0.1
MAX_LAG_S = 0.3
METRIC_NAMES = ("bilabial_closure", "bilabial_nasal", "lips_shut", "open_auc", "round_auc",
                "silence_rest", "sync_lag_ms", "loudness_corr", "jitter")  # fmt: skip


def _col(names: Sequence[str], name: str, frames: npt.NDArray[np.floating]) -> Array:
    return frames[:, list(names).index(name)].astype(np.float64)


def aperture(frames: npt.NDArray[np.floating], names: Sequence[str] = ARKIT_52) -> Array:
    """Mouth opening per frame (see module docstring)."""
    jaw = np.clip(_col(names, "jawOpen", frames) - _col(names, "mouthClose", frames), 0.0, 1.0)
    lower = 0.5 * (_col(names, "mouthLowerDownLeft", frames) + _col(names, "mouthLowerDownRight", frames))
    upper = 0.5 * (_col(names, "mouthUpperUpLeft", frames) + _col(names, "mouthUpperUpRight", frames))
    return jaw + 0.5 * lower + 0.25 * upper


def rounding(frames: npt.NDArray[np.floating], names: Sequence[str] = ARKIT_52) -> Array:
    """Lip rounding per frame: mean of mouthPucker and mouthFunnel."""
    return 0.5 * (_col(names, "mouthPucker", frames) + _col(names, "mouthFunnel", frames))


def normalize_phones(phones: Iterable[Sequence[object]]) -> list[Phone]:
    """``[(start, end, label)]`` with labels in the unified set, sorted by start."""
    out = [(float(p[0]), float(p[1]), normalize_phone(str(p[2]))) for p in phones]  # type: ignore[arg-type]
    return sorted(out)


def _frames_in(start: float, end: float, fps: float, n: int, pad_frames: int = 0) -> npt.NDArray[np.int64]:
    """Frames whose time lies in [start, end] widened by ``pad_frames``; never empty."""
    lo = math.ceil(start * fps - 1e-9) - pad_frames
    hi = math.floor(end * fps + 1e-9) + pad_frames
    if end > start and math.floor(end * fps + 1e-9) == end * fps and pad_frames == 0:
        hi -= 1  # [start, end) for span means: the frame at `end` belongs to the next phone
    lo, hi = max(lo, 0), min(hi, n - 1)
    if hi < lo:  # phone shorter than a frame: use the nearest frame to its centre
        c = min(max(int(round(0.5 * (start + end) * fps)), 0), n - 1)
        return np.array([c], np.int64)
    return np.arange(lo, hi + 1)


def speech_mask(phones: Sequence[Phone], n: int, fps: float) -> npt.NDArray[np.bool_]:
    """Frames inside non-silence phones."""
    t = np.arange(n) / fps
    mask = np.zeros(n, bool)
    for s, e, p in phones:
        if p != SILENCE:
            mask |= (t >= s) & (t < e)
    return mask


def _speech_p90(ap: Array, phones: Sequence[Phone], fps: float) -> float:
    """The utterance's 90th-percentile aperture over speech frames (0 without speech)."""
    speech = speech_mask(phones, ap.size, fps)
    return float(np.percentile(ap[speech], 90)) if speech.any() else 0.0


def bilabial_counts(ap: Array, phones: Sequence[Phone], fps: float,
                    classes: frozenset[str] = BILABIALS) -> tuple[int, int]:
    """(closed, total) over phones of ``classes`` lasting at least 30 ms."""
    targets = [(s, e) for s, e, p in phones if p in classes and e - s >= MIN_BILABIAL_S - 1e-9]
    if not targets or ap.size == 0:
        return 0, len(targets)
    p90 = _speech_p90(ap, phones, fps)
    if p90 < 0.05:
        return 0, len(targets)
    closed = sum(float(ap[_frames_in(s, e, fps, ap.size, 1)].min()) <= 0.25 * p90 for s, e in targets)
    return int(closed), len(targets)


def lips_shut_counts(ap: Array, phones: Sequence[Phone], fps: float,
                     classes: frozenset[str] = LIPS_APART) -> tuple[int, int]:
    """(shut, total) over phones of ``classes`` lasting at least 60 ms: shut when the
    aperture at the phone's centre is at most a quarter of the utterance's P90. An
    utterance that never opens (P90 < 0.05) counts none, as it closes nothing either."""
    targets = [(s, e) for s, e, p in phones if p in classes and e - s >= MIN_APART_S - 1e-9]
    if not targets or ap.size == 0:
        return 0, len(targets)
    p90 = _speech_p90(ap, phones, fps)
    if p90 < 0.05:
        return 0, 0
    centre = [min(round(0.5 * (s + e) * fps), ap.size - 1) for s, e in targets]
    return int(sum(float(ap[k]) <= 0.25 * p90 for k in centre)), len(targets)


def phone_means(curve: Array, phones: Sequence[Phone], fps: float, classes: frozenset[str]) -> list[float]:
    """Mean of ``curve`` over each phone of ``classes``."""
    return [float(curve[_frames_in(s, e, fps, curve.size)].mean())
            for s, e, p in phones if p in classes and curve.size]


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """P(pos > neg) + 0.5 P(tie) (Mann-Whitney); NaN when a side is empty."""
    a, b = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if a.size == 0 or b.size == 0:
        return math.nan
    allv = np.concatenate([a, b])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(allv.size)
    sorted_v = allv[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[: a.size].sum() - a.size * (a.size + 1) / 2.0
    return float(u / (a.size * b.size))


def silence_counts(ap: Array, phones: Sequence[Phone], fps: float) -> tuple[int, int]:
    """(at rest, total) over silences >= 300 ms, merged across adjacent SIL phones."""
    spans: list[list[float]] = []
    for s, e, p in phones:
        if p != SILENCE:
            continue
        if spans and s - spans[-1][1] <= 1e-6:
            spans[-1][1] = max(spans[-1][1], e)
        else:
            spans.append([s, e])
    rest = total = 0
    for s, e in spans:
        if e - s < MIN_SILENCE_S - 1e-9 or ap.size == 0:
            continue
        total += 1
        idx = _frames_in(s + SILENCE_TRIM_S, e - SILENCE_TRIM_S, fps, ap.size)
        rest += float(ap[idx].mean()) <= REST_APERTURE
    return rest, total


def oracle_aperture(phones: Sequence[Phone], n: int, fps: float) -> Array:
    """Aperture of the coarticulation synthesiser driven by the true phones."""
    return aperture(default_synthesizer().frames(list(phones), n, fps))


def sync_lag_ms(ap: Array, ref: Array, fps: float, max_lag_s: float = MAX_LAG_S) -> float:
    """Lag (ms) in [-max, +max] maximising corr(ap(t + lag), ref(t)); NaN if flat."""
    n = min(ap.size, ref.size)
    kmax = min(int(round(max_lag_s * fps)), max(n - 2, 0))
    best, best_k = -math.inf, None
    for k in range(-kmax, kmax + 1):
        a, r = (ap[k:n], ref[: n - k]) if k >= 0 else (ap[: n + k], ref[-k:n])
        c = _pearson(a, r)
        if not math.isnan(c) and c > best:
            best, best_k = c, k
    return math.nan if best_k is None else 1000.0 * best_k / fps


def _pearson(a: Array, b: Array) -> float:
    if a.size < 3:
        return math.nan
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return math.nan if den < 1e-12 else float((a * b).sum() / den)


def rms_db(audio: npt.NDArray[np.floating], sr: int, n: int, fps: float, window_s: float = 0.05) -> Array:
    """RMS envelope in dB at frame times (centred windows), floored 60 dB below the peak."""
    x = np.asarray(audio, np.float64)
    half = max(1, int(window_s * sr / 2))
    c = np.round(np.arange(n) / fps * sr).astype(np.int64)
    cs = np.concatenate([[0.0], np.cumsum(x * x)])
    lo, hi = np.clip(c - half, 0, x.size), np.clip(c + half, 0, x.size)
    ms = (cs[hi] - cs[lo]) / np.maximum(hi - lo, 1)
    db = 10.0 * np.log10(ms + 1e-12)
    return np.maximum(db, db.max(initial=-120.0) - 60.0)


def loudness_corr(ap: Array, audio: npt.NDArray[np.floating], sr: int, fps: float) -> float:
    """Pearson correlation of aperture with the RMS envelope in dB."""
    return _pearson(ap, rms_db(audio, sr, ap.size, fps))


def jitter(ap: Array) -> float:
    """Mean |second difference| of aperture per frame (NaN under 3 frames)."""
    return float(np.abs(np.diff(ap, 2)).mean()) if ap.size >= 3 else math.nan


@dataclass
class ClipResult:
    """Raw per-clip quantities; :func:`aggregate` pools them over clips."""

    clip_id: str
    bilabial: tuple[int, int] = (0, 0)
    nasal: tuple[int, int] = (0, 0)
    lips_shut: tuple[int, int] = (0, 0)
    open_pos: list[float] = field(default_factory=list)
    open_neg: list[float] = field(default_factory=list)
    round_pos: list[float] = field(default_factory=list)
    round_neg: list[float] = field(default_factory=list)
    silence: tuple[int, int] = (0, 0)
    lag_ms: float = math.nan
    loudness_corr: float = math.nan
    jitter_sum: float = 0.0
    jitter_n: int = 0


def evaluate_clip(clip_id: str, frames: npt.NDArray[np.floating], fps: float,
                  phones: Sequence[Sequence[object]] | None, audio: npt.NDArray[np.floating],
                  sr: int, names: Sequence[str] = ARKIT_52) -> ClipResult:
    """All metrics' raw quantities for one clip's output ``frames``."""
    ap = aperture(frames, names)
    res = ClipResult(clip_id)
    if ap.size >= 3:
        res.jitter_sum, res.jitter_n = float(np.abs(np.diff(ap, 2)).sum()), ap.size - 2
    if phones is None:
        res.loudness_corr = loudness_corr(ap, audio, sr, fps)
        return res
    ph = normalize_phones(phones)
    rd = rounding(frames, names)
    res.bilabial = bilabial_counts(ap, ph, fps)
    res.nasal = bilabial_counts(ap, ph, fps, frozenset({"M"}))
    res.lips_shut = lips_shut_counts(ap, ph, fps)
    res.open_pos = phone_means(ap, ph, fps, OPEN_VOWELS)
    res.open_neg = phone_means(ap, ph, fps, SPREAD_VOWELS | ROUNDED_VOWELS)
    res.round_pos = phone_means(rd, ph, fps, ROUNDED_VOWELS | {"W"})
    res.round_neg = phone_means(rd, ph, fps, SPREAD_VOWELS)
    res.silence = silence_counts(ap, ph, fps)
    res.lag_ms = sync_lag_ms(ap, oracle_aperture(ph, ap.size, fps), fps)
    return res


def _ratio(pairs: Iterable[tuple[int, int]]) -> float:
    hits = total = 0
    for h, t in pairs:
        hits, total = hits + h, total + t
    return hits / total if total else math.nan


def aggregate(results: Sequence[ClipResult]) -> dict[str, float]:
    """Pool clip results: counts and per-phone values pooled, lag median, corr mean."""
    lags = [r.lag_ms for r in results if not math.isnan(r.lag_ms)]
    corrs = [r.loudness_corr for r in results if not math.isnan(r.loudness_corr)]
    jn = sum(r.jitter_n for r in results)
    return {
        "bilabial_closure": _ratio(r.bilabial for r in results),
        "bilabial_nasal": _ratio(r.nasal for r in results),
        "lips_shut": _ratio(r.lips_shut for r in results),
        "open_auc": auc([v for r in results for v in r.open_pos], [v for r in results for v in r.open_neg]),
        "round_auc": auc([v for r in results for v in r.round_pos], [v for r in results for v in r.round_neg]),
        "silence_rest": _ratio(r.silence for r in results),
        "sync_lag_ms": float(np.median(lags)) if lags else math.nan,
        "loudness_corr": float(np.mean(corrs)) if corrs else math.nan,
        "jitter": sum(r.jitter_sum for r in results) / jn if jn else math.nan,
    }


# -- intervals ------------------------------------------------------------------------
MIN_INTERVAL_CLIPS = 5  # fewer clips than this: a resample can only repeat them, no interval
INTERVAL_METRICS = ("bilabial_closure", "bilabial_nasal", "lips_shut", "open_auc", "round_auc",
                    "silence_rest", "sync_lag_ms")  # fmt: skip
_RATIOS = {"bilabial_closure": "bilabial", "bilabial_nasal": "nasal", "lips_shut": "lips_shut",
           "silence_rest": "silence"}  # fmt: skip


def _weighted_ratio(pairs: Sequence[tuple[int, int]], w: npt.NDArray[np.float64]) -> Array:
    hits = np.array([h for h, _ in pairs], np.float64)
    totals = np.array([t for _, t in pairs], np.float64)
    den = w @ totals
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (w @ hits) / np.where(den > 0, den, 1.0), np.nan)


def _weighted_auc(pos: Sequence[list[float]], neg: Sequence[list[float]],
                  w: npt.NDArray[np.float64]) -> Array:  # fmt: skip
    """:func:`auc` of the pooled values when clip ``c`` counts ``w[r, c]`` times, for each
    row ``r`` of ``w``: each positive's weighted count of negatives below it (ties half)."""
    p = np.array([v for vals in pos for v in vals], np.float64)
    pc = np.array([c for c, vals in enumerate(pos) for _ in vals], np.intp)
    n = np.array([v for vals in neg for v in vals], np.float64)
    nc = np.array([c for c, vals in enumerate(neg) for _ in vals], np.intp)
    if p.size == 0 or n.size == 0:
        return np.full(w.shape[0], np.nan)
    order = np.argsort(n, kind="mergesort")
    n_sorted, nw = n[order], w[:, nc[order]]
    cum = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(nw, axis=1)], axis=1)
    below = cum[:, np.searchsorted(n_sorted, p, side="left")]
    upto = cum[:, np.searchsorted(n_sorted, p, side="right")]
    pw = w[:, pc]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pw * (below + 0.5 * (upto - below))).sum(axis=1) / (pw.sum(axis=1) * cum[:, -1])


def _weighted_median(values: Sequence[float], w: npt.NDArray[np.float64]) -> Array:
    """``np.median`` of the values repeated ``w[r, c]`` times, per row (NaNs left out)."""
    v = np.asarray(values, np.float64)
    keep = ~np.isnan(v)
    v, w = v[keep], w[:, keep]
    if v.size == 0:
        return np.full(w.shape[0], np.nan)
    order = np.argsort(v, kind="mergesort")
    v, cum = v[order], np.cumsum(w[:, order], axis=1)
    total = cum[:, -1:]
    # The k-th of the repeated, sorted values is the first whose running count exceeds k;
    # the median averages positions (total - 1) // 2 and total // 2.
    lo = v[(cum > (total - 1) // 2).argmax(axis=1)]
    hi = v[(cum > total // 2).argmax(axis=1)]
    return np.where(total[:, 0] > 0, 0.5 * (lo + hi), np.nan)


def weighted_metrics(results: Sequence[ClipResult], w: npt.ArrayLike) -> dict[str, Array]:
    """The :data:`INTERVAL_METRICS` of :func:`aggregate` when clip ``c`` of ``results``
    counts ``w[r, c]`` times (whole numbers), one value per row ``r`` of ``w``."""
    weights = np.atleast_2d(np.asarray(w, np.float64))
    out = {m: _weighted_ratio([getattr(r, f) for r in results], weights) for m, f in _RATIOS.items()}
    out["open_auc"] = _weighted_auc([r.open_pos for r in results], [r.open_neg for r in results], weights)
    out["round_auc"] = _weighted_auc([r.round_pos for r in results], [r.round_neg for r in results], weights)
    out["sync_lag_ms"] = _weighted_median([r.lag_ms for r in results], weights)
    return out


def intervals(results: Sequence[ClipResult], n_resamples: int = 1000, level: float = 0.95,
              seed: int = 0) -> dict[str, tuple[float, float] | None]:  # fmt: skip
    """Percentile bootstrap intervals over clips: the clips are drawn with replacement
    ``n_resamples`` times (a clip's phones stay together, since they share its voice,
    sentence and channel) and each metric pooled as :func:`aggregate` pools it. ``None``
    for a metric with nothing to measure, and for every metric of a group of fewer than
    :data:`MIN_INTERVAL_CLIPS` clips (one clip's "interval" would be a single point).
    Seeded, so a report is reproducible."""
    if len(results) < MIN_INTERVAL_CLIPS:
        return dict.fromkeys(INTERVAL_METRICS)
    rng = np.random.default_rng(seed)
    w = rng.multinomial(len(results), np.full(len(results), 1.0 / len(results)), size=n_resamples)
    tail = 50.0 * (1.0 - level)
    out: dict[str, tuple[float, float] | None] = {}
    for name, values in weighted_metrics(results, w).items():
        finite = values[~np.isnan(values)]
        if finite.size < 0.9 * n_resamples:  # too few resamples measure anything
            out[name] = None
            continue
        lo, hi = np.percentile(finite, [tail, 100.0 - tail])
        out[name] = (round(float(lo), 4), round(float(hi), 4))
    return out
