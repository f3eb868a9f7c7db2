"""Coarticulation synthesiser: timed phones -> ARKit-52 frames at any frame rate.

Model (Cohen & Massaro 1993, per articulator group, plus a closure constraint):

1. Each phone becomes one viseme *target* (diphthongs become two, split in time).
   A target's *core* is the central ``core_fraction`` of its span.
2. For each articulator group ``g`` (jaw, lips, round, spread, tongue) a target has a
   dominance ``D(t) = a_g * exp(-(d / theta)^c)``, where ``d`` is the distance from
   ``t`` to the core (0 inside it) and ``theta`` is the group's anticipation time
   before the core and its carry-over time after it. The dominance is tapered to
   exactly 0 at a finite reach, so a frame depends only on phones within
   :attr:`Synthesizer.reach_s` of it (this is what lets the engine stream exactly).
3. Each channel is the dominance-weighted mean of the targets' poses over the
   channel's group, with a tiny rest-pose weight so that far from all phones the
   face relaxes to neutral.
4. Blending alone cannot seal the lips for a 40 ms ``B`` between two open vowels, so
   bilabial targets carry a *closure* weight ``k(t)`` (1 over the phone, held at
   least ``min_hold_s`` around its centre, released with a Gaussian edge) which
   drives ``mouthClose`` to ``jawOpen`` and removes lip-opening channels, making
   the aperture exactly 0 at the closure.

Rounding anticipation comes from step 2: rounded vowels have a long anticipation
time on the ``round`` group and consonants have low ``round`` dominance, so pucker
rises through the consonants before the vowel. The jaw group is slow and smooth,
so it does not chatter between alternating phones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from audio2face.engines.phonemes.phoneset import normalize_phone
from audio2face.engines.phonemes.visemes import VisemeTables, load_viseme_tables
from audio2face.rigs import ARKIT_52
from audio2face.types import FloatArray

__all__ = ["Phone", "Segments", "Synthesizer", "default_synthesizer", "synthesize"]

Phone = tuple[float, float, str]
"""A timed phone ``(start_s, end_s, label)``; labels are normalised to the unified set."""

_CUTOFF = 6.9
"""Dominance is truncated where ``(d/theta)^c`` exceeds this (exp(-6.9) ~ 1e-3)."""
_REST_WEIGHT = 1e-3
"""Weight of the neutral pose in every blend: keeps the mean defined far from phones."""
_BLOCK = 2048
"""Frames rendered per block: bounds the [frames, targets] work arrays."""

_CLOSE = ARKIT_52.index("mouthClose")
_JAW = ARKIT_52.index("jawOpen")
_OPENERS = np.array(
    [ARKIT_52.index(n) for n in (
        "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight",
        "mouthFunnel", "tongueOut",
    )]
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Segments:
    """Viseme targets prepared from phones: parallel arrays sorted by start time."""

    start: npt.NDArray[np.float64]
    end: npt.NDArray[np.float64]
    viseme: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.start.shape[0])


def _taper(x: npt.NDArray[np.float64], c: float) -> npt.NDArray[np.float64]:
    """``exp(-x^c)`` shifted and rescaled to reach exactly 0 at the cutoff (continuous)."""
    floor = math.exp(-_CUTOFF)
    return np.clip((np.exp(-(x**c)) - floor) / (1.0 - floor), 0.0, None)


class Synthesizer:
    """Renders timed phones to ARKit-52 frames. Stateless and thread-safe."""

    def __init__(self, tables: VisemeTables | None = None) -> None:
        self.tables = tables if tables is not None else load_viseme_tables()
        t = self.tables
        c = t.shape_exponent
        xmax = _CUTOFF ** (1.0 / c)
        theta = max(float(t.anticipation_s.max()), float(t.carryover_s.max()))
        self._xmax = xmax
        self._closure_reach = t.closure_release_s * math.sqrt(_CUTOFF) + 0.5 * t.closure_hold_s
        # Phones farther than this from a frame (measured from the phone's span) have
        # no effect on it: dominance reach plus the closure release.
        self.reach_s: float = max(theta * xmax, self._closure_reach) + 1e-3
        self.names: tuple[str, ...] = ARKIT_52

    def prepare(self, phones: Iterable[Phone]) -> Segments:
        """Normalise labels, drop empty spans and expand diphthongs into targets."""
        starts: list[float] = []
        ends: list[float] = []
        vis: list[int] = []
        for start, end, label in phones:
            s, e = float(start), float(end)
            if not (math.isfinite(s) and math.isfinite(e)) or e < s:
                raise ValueError(f"bad phone span ({start}, {end}, {label!r}): need start <= end")
            if e == s:
                continue
            t = s
            for v, share in self.tables.phone_targets[normalize_phone(label)]:
                starts.append(t)
                t = t + share * (e - s)
                ends.append(t)
                vis.append(v)
        order = np.argsort(np.asarray(starts, np.float64), kind="stable")
        return Segments(
            np.asarray(starts, np.float64)[order],
            np.asarray(ends, np.float64)[order],
            np.asarray(vis, np.int64)[order],
        )

    def render(self, segments: Segments | Sequence[Phone], times: npt.ArrayLike) -> FloatArray:
        """Frames ``[len(times), 52]`` of the face at the given times (seconds)."""
        seg = segments if isinstance(segments, Segments) else self.prepare(segments)
        tt = np.asarray(times, np.float64).reshape(-1)
        out = np.zeros((tt.shape[0], len(self.names)), np.float32)
        for b in range(0, tt.shape[0], _BLOCK):
            block = tt[b : b + _BLOCK]
            lo, hi = float(block.min()) - self.reach_s, float(block.max()) + self.reach_s
            sel = np.nonzero((seg.end >= lo) & (seg.start <= hi))[0]
            if sel.size:
                out[b : b + _BLOCK] = self._render_block(
                    seg.start[sel], seg.end[sel], seg.viseme[sel], block
                )
        return out

    def frames(self, phones: Segments | Sequence[Phone], n_frames: int, fps: float,
               first_frame: int = 0) -> FloatArray:
        """Frames ``first_frame .. first_frame + n_frames - 1``; frame i is at ``i / fps``."""
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        return self.render(phones, (first_frame + np.arange(n_frames)) / fps)

    def _render_block(self, s: npt.NDArray[np.float64], e: npt.NDArray[np.float64],
                      v: npt.NDArray[np.int64], t: npt.NDArray[np.float64]) -> FloatArray:
        tab = self.tables
        mid, half = 0.5 * (s + e), 0.5 * (e - s) * tab.core_fraction
        d_pre = np.clip((mid - half)[None, :] - t[:, None], 0.0, None)  # [T, S]
        d_post = np.clip(t[:, None] - (mid + half)[None, :], 0.0, None)
        poses = tab.poses[v].astype(np.float64)  # [S, 52]
        out = np.zeros((t.shape[0], len(self.names)), np.float64)
        for g in range(len(tab.group_names)):
            cols = np.nonzero(tab.channel_group == g)[0]
            x = d_pre / tab.anticipation_s[g] + d_post / tab.carryover_s[g]
            w = tab.dominance[v, g][None, :] * _taper(x, tab.shape_exponent)  # [T, S]
            out[:, cols] = (w @ poses[:, cols]) / (w.sum(axis=1, keepdims=True) + _REST_WEIGHT)
        k = self._closure(s, e, v, t)
        if k is not None:
            keep = 1.0 - k
            out[:, _CLOSE] = out[:, _CLOSE] * keep + out[:, _JAW] * k
            out[:, _OPENERS] *= keep[:, None]
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def _closure(self, s: npt.NDArray[np.float64], e: npt.NDArray[np.float64],
                 v: npt.NDArray[np.int64], t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
        tab = self.tables
        m = tab.closure[v]
        if not m.any():
            return None
        cs, ce = s[m], e[m]
        mid, hold = 0.5 * (cs + ce), 0.5 * tab.closure_hold_s
        # Lips are sealed over the whole phone, and at least min_hold_s even when the
        # aligner gave a 20 ms bilabial, so that a 30 fps frame always lands in it.
        h0, h1 = np.minimum(cs, mid - hold), np.maximum(ce, mid + hold)
        d = np.clip(h0[None, :] - t[:, None], 0.0, None) + np.clip(t[:, None] - h1[None, :], 0.0, None)
        return _taper(d / tab.closure_release_s, 2.0).max(axis=1)


@cache
def default_synthesizer() -> Synthesizer:
    """The shared synthesiser built from the packaged viseme tables."""
    return Synthesizer()


def synthesize(phones: Sequence[Phone], duration_s: float, fps: float = 30.0) -> FloatArray:
    """ARKit-52 frames for ``phones`` over ``duration_s`` seconds.

    Returns ``round(duration_s * fps)`` frames (half up); frame i is the face at ``i/fps``.
    """
    n = int(math.floor(duration_s * fps + 0.5))
    return default_synthesizer().frames(phones, n, fps)
