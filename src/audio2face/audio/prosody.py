"""Streaming prosody at the output frame rate: loudness, pitch, voicing, phrases,
syllable nuclei and a coarse spectrum, for the postprocess steps that animate more
than the lips (head, gaze, blinks, tongue, arousal).

A :class:`ProsodyTracker` is fed the stream's audio (:meth:`ProsodyTracker.push`)
and asked for the features of the next frames (:meth:`ProsodyTracker.take`). Frame
``i`` shows time ``i / fps`` (the frame clock of :mod:`audio2face.types`); its
analysis window is the ``window_s`` of audio that *ends* half a frame after that
time. Half a frame is exactly what the frame clock guarantees has arrived when
frame ``i`` is emitted, so the features never wait for audio and never depend on how
the audio or the frames were chunked (everything after the per-frame spectrum is a
frame-by-frame state machine). :meth:`ProsodyTracker.take_rows` advances many
streams at once with numpy (one FFT, one state machine step per frame slot for all of
them), so a server pays per batch, not per stream.

Per frame:

* ``rms_db``: RMS level of the window in dBFS (floor -100);
* ``f0_hz`` and ``voiced``: pitch from the window-corrected normalised
  autocorrelation (Boersma 1993, "Accurate short-term analysis of the fundamental
  frequency...", IFA Proceedings 17), 0 where unvoiced;
* ``speaking``: speech with a ``pause_s`` hangover, against an adaptive noise floor;
  ``phrase_start`` marks the first frame of speech after a pause (or the stream's
  first speech), ``phrase_end`` the frame a pause is confirmed;
* ``nucleus``: prominence in [0, 1] on the frame after a loudness peak of a voiced
  syllable, 0 elsewhere (a syllable-rate and stress cue: ``> 0.5`` is a stressed one);
* ``bands``: log power of ``n_bands`` mel-spaced bands, relative to the frame's mean
  band power (spectral shape, independent of level and sample rate).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from audio2face.jit import dot4, kernel, sum4
from audio2face.types import FloatArray

__all__ = ["DEFAULT_PROSODY", "Prosody", "ProsodyOptions", "ProsodyTracker"]

BoolArray = npt.NDArray[np.bool_]

MIN_RATE = 8000
MAX_RATE = 192000


@dataclass(frozen=True, slots=True)
class ProsodyOptions:
    """Analysis settings (defaults suit adult speech at any rate from 8 kHz)."""

    window_s: float = 0.040  # two periods of a 50 Hz voice
    f0_min_hz: float = 70.0
    f0_max_hz: float = 400.0
    voicing_threshold: float = 0.45  # normalised autocorrelation peak (Boersma: 0.45)
    speech_floor_db: float = -55.0  # never speech below this level (dBFS)
    speech_above_noise_db: float = 12.0  # speech is this far above the noise floor
    noise_rise_db_per_s: float = 3.0  # how fast the floor estimate may rise
    pause_s: float = 0.25  # silence this long ends a phrase
    loudness_smoothing_s: float = 0.03  # envelope time constant for syllable peaks
    nucleus_dip_db: float = 2.5  # a syllable peak rises this far above the last dip
    n_bands: int = 24
    band_min_hz: float = 100.0
    band_max_hz: float = 7600.0
    # Sessions group their trackers by these options on every push: hash them once.
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        return self._hash

    def __post_init__(self) -> None:
        fields = tuple(getattr(self, f.name) for f in dataclass_fields(self) if f.compare)
        object.__setattr__(self, "_hash", hash(fields))
        if not 0.01 <= self.window_s <= 0.2:
            raise ValueError(f"window_s must be in [0.01, 0.2] s, got {self.window_s}")
        if not 20.0 <= self.f0_min_hz < self.f0_max_hz <= 2000.0:
            raise ValueError("need 20 <= f0_min_hz < f0_max_hz <= 2000")
        if self.window_s * self.f0_min_hz < 1.0:
            raise ValueError("window_s must hold at least one period of f0_min_hz")
        if self.pause_s <= 0 or self.loudness_smoothing_s <= 0:
            raise ValueError("pause_s and loudness_smoothing_s must be positive")
        if not 4 <= self.n_bands <= 128 or not 0 <= self.band_min_hz < self.band_max_hz:
            raise ValueError("need 4 <= n_bands <= 128 and 0 <= band_min_hz < band_max_hz")


DEFAULT_PROSODY = ProsodyOptions()


@dataclass(frozen=True, slots=True, eq=False)
class Prosody:
    """Features of ``len(self)`` consecutive frames starting at ``first_frame``.

    ``bands_valid`` is false when the sample rate cannot carry ``band_max_hz`` (the
    spectral-shape features are then not comparable with a model trained on them).
    """

    first_frame: int
    fps: float
    rms_db: FloatArray
    f0_hz: FloatArray
    voiced: BoolArray
    speaking: BoolArray
    phrase_start: BoolArray
    phrase_end: BoolArray
    nucleus: FloatArray
    bands: FloatArray
    bands_valid: bool = True

    def __len__(self) -> int:
        return int(self.rms_db.shape[0])

    def slice(self, start: int, stop: int) -> Prosody:
        """Frames ``start:stop`` of this batch (indices relative to ``first_frame``)."""
        n = len(self)
        if not 0 <= start <= stop <= n:
            raise ValueError(f"slice {start}:{stop} is outside the {n} frames of this batch")
        return self.rows(start, stop, self.first_frame + start)

    def rows(self, start: int, stop: int, first_frame: int) -> Prosody:
        """Rows ``start:stop`` as the frames from ``first_frame`` on (rows of several
        streams, as :meth:`ProsodyTracker.take_rows` gives them, split per stream)."""
        return Prosody(
            first_frame=first_frame,
            fps=self.fps,
            rms_db=self.rms_db[start:stop],
            f0_hz=self.f0_hz[start:stop],
            voiced=self.voiced[start:stop],
            speaking=self.speaking[start:stop],
            phrase_start=self.phrase_start[start:stop],
            phrase_end=self.phrase_end[start:stop],
            nucleus=self.nucleus[start:stop],
            bands=self.bands[start:stop],
            bands_valid=self.bands_valid,
        )

    @staticmethod
    def concat(parts: list[Prosody]) -> Prosody:
        """Consecutive batches joined (used by tests and offline callers)."""
        if not parts:
            raise ValueError("need at least one Prosody batch to concatenate")
        for a, b in zip(parts, parts[1:], strict=False):
            if b.first_frame != a.first_frame + len(a):
                raise ValueError("Prosody batches are not consecutive")
        cat = np.concatenate
        return Prosody(
            first_frame=parts[0].first_frame,
            fps=parts[0].fps,
            rms_db=cat([p.rms_db for p in parts]),
            f0_hz=cat([p.f0_hz for p in parts]),
            voiced=cat([p.voiced for p in parts]),
            speaking=cat([p.speaking for p in parts]),
            phrase_start=cat([p.phrase_start for p in parts]),
            phrase_end=cat([p.phrase_end for p in parts]),
            nucleus=cat([p.nucleus for p in parts]),
            bands=cat([p.bands for p in parts]),
            bands_valid=all(p.bands_valid for p in parts),
        )


@dataclass(frozen=True, slots=True)
class _Analysis:
    """Per-rate constants, computed once per (rate, options)."""

    win: int
    nfft: int
    n_small: int  # size of the autocorrelation's inverse FFT (at acf_rate)
    acf_rate: float
    window: npt.NDArray[np.float64]
    inv_window_acf: npt.NDArray[np.float64]  # 1 / window autocorrelation over the lag range
    lag_min: int
    lag_max: int
    bands: npt.NDArray[np.float64]  # [n_bands, nfft/2 + 1], rows sum to 1
    band_lo: npt.NDArray[np.intp]  # band j's weights are non-zero in band_lo[j]:band_hi[j]
    band_hi: npt.NDArray[np.intp]
    bands_valid: bool


def _smooth_size(need: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` >= ``need`` with no prime factor above 5."""
    n = -(-need // multiple) * multiple
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += multiple


@cache
def _analysis(rate: int, options: ProsodyOptions) -> _Analysis:
    win = max(16, round(options.window_s * rate))
    # The autocorrelation is taken on the spectrum below rate / (2 q), i.e. on the
    # signal low-passed and decimated to >= 4 kHz (F0 and its first harmonics live
    # there): a 4-16x smaller inverse FFT than at the full rate.
    q = 1
    while rate / (2 * q) >= 4000:
        q *= 2
    acf_rate = rate / q
    lag_max = math.ceil(acf_rate / options.f0_min_hz)
    # Long enough that the circular autocorrelation does not wrap up to lag_max: the
    # smallest 5-smooth multiple of 2 q (pocketfft is fast on those; 768 rather than
    # 1024 at 16 kHz).
    nfft = _smooth_size(win + lag_max * q + 1, 2 * q)
    n_small = nfft // q
    lag_min = max(2, math.floor(acf_rate / options.f0_max_hz))
    lag_max = min(lag_max, n_small // 2 - 2)
    n = np.arange(win)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * (n + 0.5) / win)
    w_psd = np.abs(np.fft.rfft(window, nfft)) ** 2
    window_acf = np.fft.irfft(w_psd[: n_small // 2 + 1], n_small)
    window_acf = window_acf / window_acf[0]
    top = min(options.band_max_hz, 0.5 * rate)
    mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731  # HTK mel
    edges_mel = np.linspace(mel(options.band_min_hz), mel(top), options.n_bands + 2)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.arange(nfft // 2 + 1) * rate / nfft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0.0, None)
    # Mean power density in each band (weights sum to 1), so the band values do not
    # depend on the FFT size, i.e. on the sample rate.
    tri = tri / np.maximum(tri.sum(axis=1, keepdims=True), 1e-12)
    inv = 1.0 / np.maximum(window_acf[lag_min : lag_max + 2], 1e-3)
    nonzero = tri > 0
    band_lo = np.where(nonzero.any(axis=1), np.argmax(nonzero, axis=1), 0).astype(np.intp)
    band_hi = np.where(
        nonzero.any(axis=1), tri.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0
    ).astype(np.intp)
    tri = np.ascontiguousarray(tri)
    for a in (window, inv, tri, band_lo, band_hi):
        a.setflags(write=False)
    return _Analysis(
        win=win,
        nfft=nfft,
        n_small=n_small,
        acf_rate=acf_rate,
        window=window,
        inv_window_acf=inv,
        lag_min=lag_min,
        lag_max=lag_max,
        bands=tri,
        band_lo=band_lo,
        band_hi=band_hi,
        bands_valid=options.band_max_hz <= 0.5 * rate,
    )


# The frame-by-frame state of one stream, as one float64 row (so that many streams'
# states stack into one matrix and advance together): noise floor, speaking flag,
# frames since the last speech frame, loudness envelope and its previous value, rising
# flag, last dip, running mean of syllable peaks, running mean log2 F0 (0: none yet),
# previous frame voiced.
_FLOOR, _SPEAKING, _SILENT, _ENV, _ENV_PREV, _RISING, _DIP, _PEAK_MEAN, _F0_MEAN, _PREV_VOICED = (
    range(10)
)
_MACHINE0 = np.array([-70.0, 0.0, 1e9, -100.0, -100.0, 0.0, -100.0, -30.0, 0.0, 0.0])
_MACHINE0.setflags(write=False)


class _Audio:
    """The stream's audio from sample ``base`` on, in one growing float32 buffer:
    ``buf[:fill]`` holds samples ``base .. base + fill``. Pushing writes into it (one
    copy, no per-chunk objects); taking frames reads views of it; audio no window
    needs any more is dropped lazily, when a push would overflow the buffer. Per-push
    bookkeeping is a few integer operations, because a server pays it per stream."""

    __slots__ = ("base", "buf", "fill")

    def __init__(self, base: int, capacity: int) -> None:
        self.base = base
        # float32, as pushed: the batch's analysis converts while it joins the streams.
        self.buf = np.zeros(max(capacity, 16), np.float32)
        self.fill = 0

    @property
    def end(self) -> int:
        """Sample after the last one held."""
        return self.base + self.fill

    def append(self, x: npt.NDArray[np.floating], keep_from: int) -> None:
        """Add ``x``; samples before ``keep_from`` may be dropped to make room."""
        n = int(x.shape[0])
        if self.fill + n > self.buf.shape[0]:
            self.make_room(n, keep_from)
        self.buf[self.fill : self.fill + n] = x
        self.fill += n

    def make_room(self, n: int, keep_from: int) -> None:
        """Room for ``n`` more samples, dropping those before ``keep_from``."""
        drop = min(max(keep_from - self.base, 0), self.fill)
        kept = self.fill - drop
        if kept + n > self.buf.shape[0] // 2:  # keep room for pushes to come
            grown = np.empty(max(2 * (kept + n), self.buf.shape[0]), np.float32)
            grown[:kept] = self.buf[drop : self.fill]
            self.buf = grown
        else:
            self.buf[:kept] = self.buf[drop : self.fill]
        self.base += drop
        self.fill = kept

    def cut(self, at: int, resume: int) -> None:
        """Keep samples before ``at`` (>= ``base``), then silence up to ``resume``."""
        self.fill = max(min(at, self.end) - self.base, 0)
        gap = resume - self.end
        if gap > 0:
            self.append(np.zeros(gap), self.base)

    def span(self, start: int, stop: int) -> npt.NDArray[np.floating]:
        """Samples ``start .. stop``: a view when held, else padded with silence."""
        lo, hi = start - self.base, stop - self.base
        if lo >= 0 and hi <= self.fill:
            return self.buf[lo:hi]
        out = np.zeros(stop - start)
        a, b = max(lo, 0), min(hi, self.fill)
        if b > a:
            out[a - lo : b - lo] = self.buf[a:b]
        return out


class ProsodyTracker:
    """Per-stream prosody at ``fps`` from mono float32 audio at ``sample_rate``.

    ``push`` the audio as it arrives, then ``take`` the features of the next frames.
    A frame whose window reaches past the audio pushed so far is analysed with
    silence in its place (the frame clock guarantees that never happens before a
    stream's audio ends, except after :meth:`interrupt`).
    """

    def __init__(
        self, sample_rate: int, fps: float, options: ProsodyOptions = DEFAULT_PROSODY
    ) -> None:
        if isinstance(sample_rate, np.integer):
            sample_rate = int(sample_rate)
        if not isinstance(sample_rate, int) or not MIN_RATE <= sample_rate <= MAX_RATE:
            raise ValueError(
                f"sample_rate must be an integer in {MIN_RATE}..{MAX_RATE} Hz, got {sample_rate!r}"
            )
        if not 1.0 <= fps <= 240.0:
            raise ValueError(f"fps must be in 1..240, got {fps}")
        self.sample_rate = sample_rate
        self.fps = float(fps)
        self.options = options
        self._an = _analysis(sample_rate, options)
        self._step = sample_rate / self.fps  # samples per frame (a float)
        self._machine = _Machine.of(self.fps, options)
        self.reset()

    def reset(self) -> None:
        """Back to sample 0 and frame 0, with no history."""
        # Silence before sample 0 fills the first frames' windows.
        self._audio = _Audio(-self._an.win, 4 * self._an.win + 4 * round(self._step))
        self._audio.append(np.zeros(self._an.win), 0)
        self._pushed = 0
        self._next = 0
        self._state: npt.NDArray[np.float64] = _MACHINE0

    @property
    def samples_in(self) -> int:
        """Samples pushed so far (after an interrupt: the clock position it resumed at)."""
        return self._pushed

    @property
    def next_frame(self) -> int:
        """Frame number :meth:`take` returns next."""
        return self._next

    def push(self, audio: FloatArray) -> None:
        """Append mono float32 audio at ``sample_rate``."""
        x = np.asarray(audio)
        if x.ndim != 1:
            raise ValueError(f"audio must be mono [n_samples], got shape {x.shape}")
        n = x.shape[0]
        if n:
            # _Audio.append, inlined: this runs for every stream on every push.
            a = self._audio
            if a.fill + n > a.buf.shape[0]:
                # Samples the next frame's window needs stay; older ones may go.
                a.make_room(n, self._window_end(self._next) - self._an.win)
            a.buf[a.fill : a.fill + n] = x
            a.fill += n
            self._pushed = a.base + a.fill

    def interrupt(self, resume_sample: int) -> None:
        """Barge-in: forget audio after the frames already taken; the stream is silent
        until ``resume_sample``, where the next :meth:`push` continues the clock."""
        if resume_sample < 0:
            raise ValueError(f"resume_sample must be >= 0, got {resume_sample}")
        a = self._audio
        a.cut(max(min(self._window_end(self._next - 1), resume_sample), a.base), resume_sample)
        self._pushed = a.end

    def take(self, n_frames: int, *, final: bool = False) -> Prosody:
        """Features of the next ``n_frames`` frames.

        ``final``: the stream's audio has ended (or paused for a flush); windows past
        it are silence. Without it the same happens, but it means the caller asked
        for frames its audio does not cover yet (the tracker cannot wait).
        """
        return ProsodyTracker.take_rows([self], [n_frames], final=final)

    @staticmethod
    def take_many(
        trackers: Sequence[ProsodyTracker], counts: Sequence[int], *, final: bool = False
    ) -> list[Prosody]:
        """:meth:`take` for several streams at once (see :meth:`take_rows`), one
        :class:`Prosody` per tracker."""
        firsts = [tr._next for tr in trackers]
        rows = ProsodyTracker.take_rows(trackers, counts, final=final)
        out = []
        lo = 0
        for first, n in zip(firsts, counts, strict=True):
            out.append(rows.rows(lo, lo + n, first))
            lo += n
        return out

    @staticmethod
    def take_rows(
        trackers: Sequence[ProsodyTracker], counts: Sequence[int], *, final: bool = False
    ) -> Prosody:
        """The next ``counts[i]`` frames of each tracker, as the rows of one
        :class:`Prosody` (tracker by tracker, in order; ``first_frame`` is the first
        tracker's). One FFT serves every frame of every stream, and the frame-by-frame
        state machines of all streams advance together as numpy arrays, so a server's
        cost is per batch rather than per stream. Every row is computed on its own, so
        the result is exactly what separate calls give, whatever the batch."""
        del final  # the analysis is the same; the flag documents the caller's intent
        if len(trackers) != len(counts):
            raise ValueError(f"{len(trackers)} trackers but {len(counts)} frame counts")
        for n in counts:
            if n < 0:
                raise ValueError(f"n_frames must be >= 0, got {n}")
        first = trackers[0]._next if trackers else 0
        fps = trackers[0].fps if trackers else 30.0
        key = (trackers[0].sample_rate, trackers[0].options, trackers[0].fps) if trackers else None
        if all((t.sample_rate, t.options, t.fps) == key for t in trackers):
            rows = _take_group(trackers, counts)
        else:
            # Mixed rates or options: per group, then back into the callers' order.
            groups: dict[tuple[int, ProsodyOptions, float], list[int]] = {}
            for i, tr in enumerate(trackers):
                groups.setdefault((tr.sample_rate, tr.options, tr.fps), []).append(i)
            starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
            parts: list[Prosody] = []
            order: list[npt.NDArray[np.intp]] = []
            for members in groups.values():
                parts.append(
                    _take_group([trackers[i] for i in members], [counts[i] for i in members])
                )
                order += [np.arange(starts[i], starts[i + 1]) for i in members]
            rows = _gather(parts, np.argsort(np.concatenate(order), kind="stable"))
        return replace(rows, first_frame=first, fps=fps)

    # -- internals -----------------------------------------------------------------------
    def _window_end(self, frame: int) -> int:
        """First sample after frame ``frame``'s window (half a frame past its time)."""
        return math.floor((frame + 0.5) * self.sample_rate / self.fps)


_FEATURE_ARRAYS = (
    "rms_db", "f0_hz", "voiced", "speaking", "phrase_start", "phrase_end", "nucleus", "bands"
)  # fmt: skip


def _gather(parts: list[Prosody], where: npt.NDArray[np.intp]) -> Prosody:
    """The rows of ``parts`` joined, then taken in the order ``where`` (frame clock of
    the first part: the caller sets its own)."""
    arrays = {f: np.concatenate([getattr(p, f) for p in parts])[where] for f in _FEATURE_ARRAYS}
    return Prosody(
        first_frame=parts[0].first_frame, fps=parts[0].fps, **arrays,
        bands_valid=all(p.bands_valid for p in parts),
    )  # fmt: skip


def _take_group(trackers: Sequence[ProsodyTracker], counts: Sequence[int]) -> Prosody:
    """Rows of trackers that share a sample rate, frame rate and options, as one batch
    from the first tracker's next frame."""
    head = trackers[0]
    first = head._next
    an, o = head._an, head.options
    win, rate, fps = an.win, head.sample_rate, head.fps
    # Per stream: the audio under its frames' windows (a view of its buffer), and
    # where that starts in the joined audio relative to the stream's own clock.
    pieces: list[npt.NDArray[np.floating]] = []
    live: list[tuple[int, int, int]] = []  # per stream with frames: first, count, shift
    base = 0
    for tr, n in zip(trackers, counts, strict=True):
        if n:
            start = math.floor((tr._next + 0.5) * rate / fps) - win
            stop = math.floor((tr._next + n - 0.5) * rate / fps)
            a = tr._audio
            lo, hi = start - a.base, stop - a.base
            # _Audio.span, its usual case inlined (this loop runs per stream).
            pieces.append(a.buf[lo:hi] if lo >= 0 and hi <= a.fill else a.span(start, stop))
            live.append((tr._next, n, base - start))
            base += stop - start
    if pieces:
        audio = np.concatenate(pieces, out=_WORK.get("audio", base, 1)[:, 0])
        spans = np.array(live, np.intp)
        at = np.empty(int(spans[:, 1].sum()), np.intp)
        _window_starts_kernel(spans, float(rate), fps, win, at)
    else:
        audio, at = np.zeros(win, np.float32), np.zeros(0, np.intp)
    rms_db, f0, voiced, bands = _analyse(an, o, audio, at)
    states = np.array([tr._state for tr in trackers])
    speaking, starts_, ends_, nucleus = head._machine.run(states, counts, rms_db, f0, voiced)
    for tr, n, row in zip(trackers, counts, states, strict=True):
        if n:
            tr._state = row
            tr._next += n
    return Prosody(
        first,
        head.fps,
        rms_db.astype(np.float32),
        f0.astype(np.float32),
        voiced,
        speaking,
        starts_,
        ends_,
        nucleus,
        bands,
        an.bands_valid,
    )


@dataclass(frozen=True, slots=True)
class _Machine:
    """The frame-by-frame part, for many streams at once: noise floor and speaking
    hangover (phrases), and syllable nuclei from the loudness envelope."""

    rise: float
    pause_frames: int
    env_a: float
    o: ProsodyOptions

    @classmethod
    def of(cls, fps: float, o: ProsodyOptions) -> _Machine:
        dt = 1.0 / fps
        return cls(
            rise=o.noise_rise_db_per_s * dt,
            pause_frames=max(1, round(o.pause_s * fps)),
            env_a=1.0 - math.exp(-dt / o.loudness_smoothing_s),
            o=o,
        )

    def run(
        self,
        states: npt.NDArray[np.float64],
        counts: Sequence[int],
        rms_db: npt.NDArray[np.float64],
        f0: npt.NDArray[np.float64],
        voiced: BoolArray,
    ) -> tuple[BoolArray, BoolArray, BoolArray, FloatArray]:
        """Advance ``states`` (one row per stream, updated in place) over each stream's
        ``counts[i]`` frames, whose features are consecutive rows; per-row outputs.

        Frame ``k`` of every stream that has one is processed together; each stream's
        row only ever meets its own values, so a stream's output does not depend on
        which others share the batch."""
        o = self.o
        n = rms_db.shape[0]
        speaking = np.zeros(n, bool)
        starts = np.zeros(n, bool)
        ends = np.zeros(n, bool)
        nucleus = np.zeros(n, np.float32)
        if n:
            _machine_kernel(
                states, np.asarray(counts, np.intp), rms_db, f0, voiced, self.rise,
                float(self.pause_frames), self.env_a, o.speech_above_noise_db,
                o.speech_floor_db, o.nucleus_dip_db, speaking, starts, ends, nucleus,
            )  # fmt: skip
        return speaking, starts, ends, nucleus


@kernel
def _machine_kernel(  # noqa: PLR0913 - a compiled kernel takes plain arrays and numbers
    states, counts, rms_db, f0, voiced, rise, pause_frames, env_a, above_noise_db,
    floor_db, dip_db, speaking, starts, ends, nucleus,
):  # fmt: skip
    """:meth:`_Machine.run`'s loop, compiled: stream ``i``'s ``counts[i]`` rows follow
    stream ``i - 1``'s; each advances only its own state row."""
    r = 0
    for i in range(states.shape[0]):
        st = states[i]
        for _ in range(counts[i]):
            level = rms_db[r]
            # Noise floor: follows the level down at once, creeps up slowly, so it
            # sits under the speech and tracks the room between phrases.
            floor = min(level, st[_FLOOR] + rise)
            speech = level > max(floor + above_noise_db, floor_db)
            was = st[_SPEAKING] > 0.5
            silent = st[_SILENT]
            starts[r] = speech and not was and silent >= pause_frames
            silent = 0.0 if speech else silent + 1.0
            end = not speech and was and silent >= pause_frames
            ends[r] = end
            now = (was or speech) and not end
            speaking[r] = now
            # Syllable nuclei: peaks of the smoothed loudness of voiced frames.
            env_prev = st[_ENV]
            env = env_prev + env_a * (level - env_prev)
            up = env > env_prev
            rising = st[_RISING] > 0.5
            dip = env_prev if up and not rising else st[_DIP]
            top = env_prev
            v = voiced[r]
            prominent = (
                not up and rising and top - dip >= dip_db and top > floor_db
                and (v or st[_PREV_VOICED] > 0.5)
            )  # fmt: skip
            f0_mean = st[_F0_MEAN]
            has_f0 = f0[r] > 0
            lf = math.log2(max(f0[r], 1.0))
            pitch = 12.0 * (lf - f0_mean) if has_f0 and f0_mean > 0 else 0.0  # semitones
            peak_mean = st[_PEAK_MEAN]
            if prominent:
                score = 0.5 + (top - peak_mean) / 8.0 + pitch / 8.0
                nucleus[r] = min(max(score, 0.05), 1.0)
                st[_PEAK_MEAN] = peak_mean + 0.1 * (top - peak_mean)
            if has_f0:
                st[_F0_MEAN] = lf if f0_mean == 0.0 else f0_mean + 0.02 * (lf - f0_mean)
            st[_FLOOR] = floor
            st[_SPEAKING] = 1.0 if now else 0.0
            st[_SILENT] = silent
            st[_ENV] = env
            st[_ENV_PREV] = env_prev
            st[_RISING] = 1.0 if up else 0.0
            st[_DIP] = dip
            st[_PREV_VOICED] = 1.0 if v else 0.0
            r += 1


class _Workspace(threading.local):
    """Per-thread scratch arrays for :func:`_analyse`, reused from batch to batch.

    A batch's temporaries are a few hundred kilobytes each; allocated afresh every
    batch, glibc hands them back to the system and takes them again (mmap and heap
    trimming), and the page faults cost more than the FFT (measured: 1.2 ms against
    0.5 ms for 77 frames)."""

    def __init__(self) -> None:
        self.arrays: dict[tuple[str, int, np.dtype], npt.NDArray[Any]] = {}

    def get(
        self, name: str, rows: int, cols: int, dtype: npt.DTypeLike = np.float64
    ) -> npt.NDArray[Any]:
        """A ``[rows, cols]`` array, its contents left from the last use. Allocated
        zeroed, and row ``r`` is always the same memory (``cols`` is part of the
        name), so columns nobody writes stay zero (:func:`_analyse`'s FFT padding)."""
        key = (name, cols, np.dtype(dtype))
        flat = self.arrays.get(key)
        if flat is None or flat.shape[0] < rows * cols:
            flat = np.zeros(max(rows, 64) * cols * 2, dtype)
            self.arrays[key] = flat
        return flat[: rows * cols].reshape(rows, cols)


_WORK = _Workspace()


def _analyse(
    an: _Analysis, o: ProsodyOptions, audio: npt.NDArray[np.float32], at: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], BoolArray, FloatArray]:
    """Level (dBFS), pitch (Hz, 0 when unvoiced), voicing and bands of the windows
    ``audio[at[r] : at[r] + win]``.

    Rows are independent: the FFTs transform rows, and the compiled kernels around
    them work row by row (a single matrix product's rows could differ in the last bit
    with the number of rows, as BLAS picks kernels by shape, which would make the
    features depend on the batch)."""
    n = at.shape[0]
    if n == 0:
        empty = np.zeros(0)
        return empty, empty, np.zeros(0, bool), np.zeros((0, o.n_bands), np.float32)
    work = _WORK
    # The windows go straight into rows of the FFT's zero-padded input. One buffer per
    # window length: its columns from ``win`` on are never written, so they stay zero
    # even when another analysis (another rate or options) has the same FFT size.
    padded = work.get(f"padded-{an.win}", n, an.nfft)
    power = np.empty(n)
    _windows_kernel(audio, at, an.window, padded, power)
    bins = an.nfft // 2 + 1
    spec = np.fft.rfft(padded, axis=1, out=work.get("spec", n, bins, np.complex128))
    psd = work.get("psd", n, bins)
    _power_kernel(spec, psd)
    acf = np.fft.irfft(
        psd[:, : an.n_small // 2 + 1], an.n_small, axis=1, out=work.get("acf", n, an.n_small)
    )
    level, pitch = np.empty(n), np.empty(n)
    voiced = np.empty(n, bool)
    bands = np.empty((n, o.n_bands), np.float32)
    _features_kernel(
        power, psd, acf, an.inv_window_acf, an.bands, an.band_lo, an.band_hi, an.win,
        an.lag_min, an.acf_rate, o.voicing_threshold, o.speech_floor_db,
        level, pitch, voiced, bands,
    )  # fmt: skip
    return level, pitch, voiced, bands


@kernel
def _window_starts_kernel(spans, rate, fps, win, at):
    """Where each frame's window starts in the joined audio: per stream (rows of
    ``spans``: first frame, frame count, the stream's shift into the joined audio),
    its frames' window ends as :meth:`ProsodyTracker._window_end` computes them."""
    r = 0
    for i in range(spans.shape[0]):
        first, n, shift = spans[i, 0], spans[i, 1], spans[i, 2]
        for k in range(n):
            at[r] = math.floor((first + k + 0.5) * rate / fps) - win + shift
            r += 1


@kernel
def _windows_kernel(audio, at, window, padded, power):
    """Row ``r`` of ``padded`` (its first ``win`` columns): the window at ``at[r]``,
    mean removed and tapered; ``power[r]``: its energy before the taper."""
    win = window.shape[0]
    inv = 1.0 / win
    for r in range(at.shape[0]):
        seg = audio[at[r] : at[r] + win]
        mean = sum4(seg) * inv
        row = padded[r]
        for j in range(win):
            row[j] = seg[j] - mean
        power[r] = dot4(row[:win], row[:win])
        for j in range(win):
            row[j] *= window[j]


@kernel
def _power_kernel(spec, psd):
    """Power spectrum of each row."""
    for r in range(spec.shape[0]):
        for k in range(spec.shape[1]):
            z = spec[r, k]
            psd[r, k] = z.real * z.real + z.imag * z.imag


@kernel
def _features_kernel(  # noqa: PLR0913 - a compiled kernel takes plain arrays and numbers
    power, psd, acf, inv_window_acf, band_w, band_lo, band_hi, win, lag_min, acf_rate,
    voicing_threshold, speech_floor_db, level, pitch, voiced, bands,
):  # fmt: skip
    """Per row: level from ``power``; pitch and voicing from the autocorrelation
    ``acf`` (Boersma's window correction, the best lag in range, parabolic
    interpolation); the log band powers from ``psd``, relative to their mean."""
    n_lags = inv_window_acf.shape[0]  # lags lag_min .. lag_max + 1
    n_bands = band_w.shape[0]
    logb = np.empty(n_bands)
    for r in range(power.shape[0]):
        lv = max(10.0 * math.log10(power[r] / win + 1e-10), -100.0)
        level[r] = lv
        best = 0
        mid = acf[r, lag_min] * inv_window_acf[0]
        for j in range(1, n_lags - 1):
            v = acf[r, lag_min + j] * inv_window_acf[j]
            if v > mid:
                best, mid = j, v
        r0 = acf[r, 0]
        peak = mid / r0 if r0 > 1e-12 else 0.0
        is_voiced = peak > voicing_threshold and lv > speech_floor_db
        voiced[r] = is_voiced
        if is_voiced:
            # Parabolic interpolation around the best lag for sub-sample precision.
            left = acf[r, lag_min + max(best - 1, 0)] * inv_window_acf[max(best - 1, 0)]
            right = acf[r, lag_min + best + 1] * inv_window_acf[best + 1]
            denom = left - 2.0 * mid + right
            shift = 0.5 * (left - right) / denom if abs(denom) > 1e-12 else 0.0
            shift = min(max(shift, -0.5), 0.5)
            pitch[r] = acf_rate / (lag_min + best + shift)
        else:
            pitch[r] = 0.0
        total = 0.0
        for j in range(n_bands):
            lo, hi = band_lo[j], band_hi[j]
            logb[j] = math.log(dot4(psd[r, lo:hi], band_w[j, lo:hi]) + 1e-12)
            total += logb[j]
        mean = total * (1.0 / n_bands)
        for j in range(n_bands):
            bands[r, j] = logb[j] - mean
