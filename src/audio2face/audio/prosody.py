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
frame-by-frame state machine).

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import numpy.typing as npt

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

    def __post_init__(self) -> None:
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
        return Prosody(
            first_frame=self.first_frame + start,
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
    bands: npt.NDArray[np.float64]  # [nfft/2 + 1, n_bands], columns sum to 1
    bands_valid: bool


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
    # Long enough that the circular autocorrelation does not wrap up to lag_max.
    nfft = 1 << (win + lag_max * q + 1).bit_length()
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
    for a in (window, inv, tri):
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
        bands=np.ascontiguousarray(tri.T),
        bands_valid=options.band_max_hz <= 0.5 * rate,
    )


@dataclass(slots=True)
class _Machine:
    """Frame-by-frame state: noise floor, speaking hangover, loudness envelope."""

    floor_db: float = -70.0
    speaking: bool = False
    silent_frames: int = 10**9  # frames since the last speech frame (a pause at start)
    env: float = -100.0
    env_prev: float = -100.0
    rising: bool = False
    dip: float = -100.0
    peak_mean: float = -30.0  # running mean level of syllable peaks
    f0_mean: float = 0.0  # running mean log2 f0 of voiced frames (0: none yet)
    prev_voiced: bool = False


@dataclass(slots=True)
class _Pending:
    """Audio kept for windows not yet analysed: ``audio[0]`` is sample ``start``."""

    start: int = 0
    audio: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    @property
    def end(self) -> int:
        return self.start + int(self.audio.shape[0])


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
        dt = 1.0 / self.fps
        self._rise = options.noise_rise_db_per_s * dt
        self._pause_frames = max(1, round(options.pause_s * self.fps))
        self._env_a = 1.0 - math.exp(-dt / options.loudness_smoothing_s)
        self.reset()

    def reset(self) -> None:
        """Back to sample 0 and frame 0, with no history."""
        self._pending = _Pending()
        self._pushed = 0
        self._next = 0
        self._m = _Machine()

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
        x = np.asarray(audio, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"audio must be mono [n_samples], got shape {x.shape}")
        if x.shape[0]:
            self._pending.audio = np.concatenate([self._pending.audio, x])
            self._pushed += int(x.shape[0])

    def interrupt(self, resume_sample: int) -> None:
        """Barge-in: forget audio after the frames already taken; the stream is silent
        until ``resume_sample``, where the next :meth:`push` continues the clock."""
        if resume_sample < 0:
            raise ValueError(f"resume_sample must be >= 0, got {resume_sample}")
        p = self._pending
        cut = min(self._window_end(self._next - 1), p.end, resume_sample)
        cut = max(cut, p.start)
        p.audio = np.concatenate([p.audio[: cut - p.start], np.zeros(max(0, resume_sample - cut))])
        self._pushed = p.end

    def take(self, n_frames: int, *, final: bool = False) -> Prosody:
        """Features of the next ``n_frames`` frames.

        ``final``: the stream's audio has ended (or paused for a flush); windows past
        it are silence. Without it the same happens, but it means the caller asked
        for frames its audio does not cover yet (the tracker cannot wait).
        """
        return ProsodyTracker.take_many([self], [n_frames], final=final)[0]

    @staticmethod
    def take_many(
        trackers: Sequence[ProsodyTracker], counts: Sequence[int], *, final: bool = False
    ) -> list[Prosody]:
        """:meth:`take` for several streams with one FFT for all their frames (as
        :meth:`LogMelExtractor.push_many` does): per call the cost is mostly numpy's
        per-call overhead, which a server then pays once per batch. Trackers with the
        same sample rate and options share the FFT; rows are computed independently,
        so the result is exactly what separate calls give."""
        del final  # the analysis is the same; the flag documents the caller's intent
        if len(trackers) != len(counts):
            raise ValueError(f"{len(trackers)} trackers but {len(counts)} frame counts")
        for n in counts:
            if n < 0:
                raise ValueError(f"n_frames must be >= 0, got {n}")
        groups: dict[tuple[int, ProsodyOptions], list[int]] = {}
        for i, tr in enumerate(trackers):
            groups.setdefault((tr.sample_rate, tr.options), []).append(i)
        out: list[Prosody | None] = [None] * len(trackers)
        for (rate, options), members in groups.items():
            windows = [trackers[i]._windows(trackers[i]._next, counts[i]) for i in members]
            stacked = np.concatenate(windows) if len(windows) > 1 else windows[0]
            rms, f0, voiced, bands = _analyse(_analysis(rate, options), options, rate, stacked)
            lo = 0
            for i, w in zip(members, windows, strict=True):
                hi = lo + w.shape[0]
                out[i] = trackers[i]._finish_take(
                    counts[i], rms[lo:hi], f0[lo:hi], voiced[lo:hi], bands[lo:hi]
                )
                lo = hi
        return [p for p in out if p is not None]

    # -- internals -----------------------------------------------------------------------
    def _window_end(self, frame: int) -> int:
        """First sample after frame ``frame``'s window (half a frame past its time)."""
        return math.floor((frame + 0.5) * self.sample_rate / self.fps)

    def _windows(self, first: int, n: int) -> npt.NDArray[np.float64]:
        win = self._an.win
        out = np.zeros((n, win))
        p = self._pending
        for k in range(n):
            end = self._window_end(first + k)
            start = end - win
            lo, hi = max(start, p.start), min(end, p.end)
            if lo < hi:
                out[k, lo - start : hi - start] = p.audio[lo - p.start : hi - p.start]
        return out

    def _drop_consumed(self) -> None:
        keep_from = self._window_end(self._next) - self._an.win
        p = self._pending
        drop = min(max(0, keep_from - p.start), p.audio.shape[0])
        if drop:
            p.audio = p.audio[drop:]
            p.start += drop

    def _finish_take(
        self,
        n: int,
        rms_db: list[float],
        f0: list[float],
        voiced: list[bool],
        bands: FloatArray,
    ) -> Prosody:
        first = self._next
        speaking, starts, ends, nucleus = self._run_machine(rms_db, f0, voiced)
        self._next = first + n
        self._drop_consumed()
        return Prosody(
            first_frame=first,
            fps=self.fps,
            rms_db=np.array(rms_db, np.float32),
            f0_hz=np.array(f0, np.float32),
            voiced=np.array(voiced, bool),
            speaking=speaking,
            phrase_start=starts,
            phrase_end=ends,
            nucleus=nucleus,
            bands=bands,
            bands_valid=self._an.bands_valid,
        )

    def _run_machine(
        self, rms_db: list[float], f0: list[float], voiced: list[bool]
    ) -> tuple[BoolArray, BoolArray, BoolArray, FloatArray]:
        o, m = self.options, self._m
        n = len(rms_db)
        speaking = np.zeros(n, bool)
        starts = np.zeros(n, bool)
        ends = np.zeros(n, bool)
        nucleus = np.zeros(n, np.float32)
        a = self._env_a
        for t in range(n):
            level = rms_db[t]
            # Noise floor: follows the level down at once, creeps up slowly, so it
            # sits under the speech and tracks the room between phrases.
            m.floor_db = min(level, m.floor_db + self._rise)
            is_speech = level > max(o.speech_floor_db, m.floor_db + o.speech_above_noise_db)
            if is_speech:
                if not m.speaking:
                    m.speaking = True
                    starts[t] = m.silent_frames >= self._pause_frames
                m.silent_frames = 0
            else:
                m.silent_frames += 1
                if m.speaking and m.silent_frames >= self._pause_frames:
                    m.speaking = False
                    ends[t] = True
            speaking[t] = m.speaking
            # Syllable nuclei: peaks of the smoothed loudness of voiced frames.
            m.env_prev, m.env = m.env, m.env + a * (level - m.env)
            if m.env > m.env_prev:
                if not m.rising:
                    m.dip = m.env_prev
                m.rising = True
            elif m.rising:
                m.rising = False
                top = m.env_prev
                prominent = top - m.dip >= o.nucleus_dip_db and top > o.speech_floor_db
                if prominent and (voiced[t] or m.prev_voiced):
                    rel = top - m.peak_mean
                    pitch = 0.0
                    if f0[t] > 0 and m.f0_mean > 0:
                        pitch = 12.0 * (math.log2(f0[t]) - m.f0_mean)  # semitones
                    score = 0.5 + rel / 8.0 + pitch / 8.0
                    nucleus[t] = min(1.0, max(0.05, score))
                    m.peak_mean += 0.1 * (top - m.peak_mean)
            m.prev_voiced = voiced[t]
            if f0[t] > 0:
                lf = math.log2(f0[t])
                m.f0_mean = lf if m.f0_mean == 0.0 else m.f0_mean + 0.02 * (lf - m.f0_mean)
        return speaking, starts, ends, nucleus


def _analyse(
    an: _Analysis, o: ProsodyOptions, rate: int, windows: npt.NDArray[np.float64]
) -> tuple[list[float], list[float], list[bool], FloatArray]:
    """Level, pitch, voicing and bands of each window row (rows are independent)."""
    n = windows.shape[0]
    if n == 0:
        return [], [], [], np.zeros((0, o.n_bands), np.float32)
    # sum * (1/n) instead of mean(): mean's Python wrapper costs more than the sum here.
    x = windows - windows.sum(axis=1, keepdims=True) * (1.0 / windows.shape[1])
    power = np.einsum("ij,ij->i", x, x).tolist()
    spec = np.fft.rfft(x * an.window, an.nfft, axis=1)
    parts = spec.view(np.float64)
    psd = parts[:, 0::2] ** 2 + parts[:, 1::2] ** 2
    acf = np.fft.irfft(psd[:, : an.n_small // 2 + 1], an.n_small, axis=1)
    # Boersma's correction: divide by the window's own autocorrelation.
    seg = acf[:, an.lag_min : an.lag_max + 2] * an.inv_window_acf
    best = np.argmax(seg[:, :-1], axis=1).tolist()
    r0 = acf[:, 0].tolist()
    # Row by row: a matrix product's rows can differ in the last bit with the number
    # of rows (BLAS picks kernels by shape), which would make the features depend on
    # how frames were chunked.
    logb = np.log(np.stack([row @ an.bands for row in psd]) + 1e-12)
    bands = (logb - logb.sum(axis=1, keepdims=True) * (1.0 / logb.shape[1])).astype(np.float32)
    rms_db: list[float] = []
    f0: list[float] = []
    voiced: list[bool] = []
    win = an.win
    del rate  # the pitch is at the autocorrelation's rate
    for k in range(n):
        level = 10.0 * math.log10(power[k] / win + 1e-10)
        level = max(level, -100.0)
        j = best[k]
        row = seg[k]
        peak = float(row[j]) / r0[k] if r0[k] > 1e-12 else 0.0
        is_voiced = peak > o.voicing_threshold and level > o.speech_floor_db
        pitch = 0.0
        if is_voiced:
            # Parabolic interpolation around the best lag for sub-sample precision.
            left = float(row[j - 1]) if j > 0 else float(row[j])
            right = float(row[j + 1])
            mid = float(row[j])
            denom = left - 2.0 * mid + right
            shift = 0.5 * (left - right) / denom if abs(denom) > 1e-12 else 0.0
            pitch = an.acf_rate / (an.lag_min + j + max(-0.5, min(0.5, shift)))
        rms_db.append(level)
        f0.append(pitch)
        voiced.append(is_voiced)
    return rms_db, f0, voiced, bands
