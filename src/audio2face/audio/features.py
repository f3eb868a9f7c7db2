"""Log-mel features, computed identically at training and serving time.

One definition, two ways to call it:

* :func:`log_mel` maps a whole signal to ``[n_frames, n_mels]`` float32 features;
* :class:`LogMelExtractor` does the same incrementally, with all per-stream state in
  a :class:`LogMelState`, so a stream fed in any chunking yields exactly the rows
  that :func:`log_mel` gives for the whole signal (tested bit for bit).

Framing: frame ``k`` is centred on sample ``k * hop``; its ``win_length`` window
spans samples ``[k*hop - win/2, k*hop + win/2)``. Samples before the stream start
are zeros, so frame 0 exists as soon as ``win/2`` samples have arrived. After
:meth:`LogMelExtractor.finish`, the stream has produced ``ceil(N / hop)`` frames
(every frame whose centre lies inside the signal), the tail zero-padded, which is
also what :func:`log_mel` returns.

The feature is ``log(mel_power + eps)`` of a Hann-windowed power spectrum, with an
HTK-style triangular mel filterbank. It is kept deliberately plain: no
pre-emphasis, no per-utterance normalisation (the model carries global mean/std),
because anything data-dependent would break chunking invariance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import numpy.typing as npt

from audio2face.types import FloatArray, StreamState, require_open

__all__ = [
    "DEFAULT_FEATURES",
    "FeatureParams",
    "LogMelExtractor",
    "LogMelState",
    "log_mel",
    "mel_filterbank",
]


@dataclass(frozen=True, slots=True)
class FeatureParams:
    """Log-mel parameters. Stored in the model's metadata and checked at load."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    n_mels: int = 40
    f_min: float = 60.0
    f_max: float = 7600.0
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft or self.win_length % 2:
            raise ValueError("win_length must be even and at most n_fft")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError("need 0 <= f_min < f_max <= sample_rate / 2")

    @property
    def frame_rate(self) -> float:
        """Feature frames per second (100 for the defaults)."""
        return self.sample_rate / self.hop_length

    @property
    def half_window(self) -> int:
        """Samples past a frame's centre needed to compute it."""
        return self.win_length // 2

    def as_dict(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


DEFAULT_FEATURES = FeatureParams()


def _hz_to_mel(f: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def _mel_to_hz(m: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


@cache
def mel_filterbank(params: FeatureParams = DEFAULT_FEATURES) -> npt.NDArray[np.float64]:
    """``[n_fft/2 + 1, n_mels]`` triangular filters (unit peak), HTK mel scale."""
    n_bins = params.n_fft // 2 + 1
    freqs = np.arange(n_bins) * params.sample_rate / params.n_fft
    edges = _mel_to_hz(np.linspace(_hz_to_mel(params.f_min), _hz_to_mel(params.f_max), params.n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / (mid - lo)
    down = (hi - freqs[None, :]) / (hi - mid)
    fb = np.clip(np.minimum(up, down), 0.0, None)
    fb.setflags(write=False)
    return np.ascontiguousarray(fb.T)


@cache
def _window(params: FeatureParams) -> npt.NDArray[np.float64]:
    # Periodic Hann, the usual STFT window; placed at the start of the n_fft buffer
    # (rfft zero-pads the rest), so only the window length sets time resolution.
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(params.win_length) / params.win_length)
    w.setflags(write=False)
    return w


@cache
def _interleaved_filterbank(params: FeatureParams) -> npt.NDArray[np.float64]:
    fb = np.repeat(mel_filterbank(params), 2, axis=0)
    fb.setflags(write=False)
    return fb


def _windows(padded: npt.NDArray[np.float64], n_frames: int, params: FeatureParams) -> npt.NDArray[np.float64]:
    """Read-only view ``[n_frames, win_length]`` of the windows starting at ``padded[k*hop]``."""
    if (n_frames - 1) * params.hop_length + params.win_length > padded.shape[0]:
        raise ValueError("not enough samples for the requested frames")
    # as_strided directly: sliding_window_view's checks cost more than a small FFT.
    step = padded.strides[0]
    return np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, params.win_length), strides=(params.hop_length * step, step), writeable=False
    )


def _log_mel_rows(windows: npt.NDArray[np.float64], params: FeatureParams) -> FloatArray:
    """Log-mel of each row of ``windows`` ``[n, win_length]`` (rows are independent)."""
    if windows.shape[0] == 0:
        return np.zeros((0, params.n_mels), np.float32)
    spec = np.fft.rfft(windows * _window(params), n=params.n_fft, axis=1)
    # |X|^2 through the interleaved (re, im) view: one multiply, then one matmul with
    # the filterbank duplicated per re/im row. Taking .real/.imag of a complex array
    # makes strided copies and costs more than the FFT itself.
    parts = spec.view(np.float64)
    return np.log((parts * parts) @ _interleaved_filterbank(params) + params.eps).astype(np.float32)


def _frames_from_padded(padded: npt.NDArray[np.float64], n_frames: int, params: FeatureParams) -> FloatArray:
    """Log-mel of frames whose windows start at ``padded[k*hop]``, k < n_frames."""
    if n_frames <= 0:
        return np.zeros((0, params.n_mels), np.float32)
    padded = np.ascontiguousarray(padded, dtype=np.float64)
    return _log_mel_rows(_windows(padded, n_frames, params), params)


def log_mel(audio: npt.ArrayLike, params: FeatureParams = DEFAULT_FEATURES) -> FloatArray:
    """``[ceil(N / hop), n_mels]`` log-mel frames of a whole mono signal (see module doc)."""
    x = np.asarray(audio, np.float64)
    if x.ndim != 1:
        raise ValueError(f"audio must be mono [n_samples], got shape {x.shape}")
    n_frames = -(-x.shape[0] // params.hop_length)
    half = params.half_window
    padded = np.concatenate([np.zeros(half), x, np.zeros(half + params.hop_length)])
    return _frames_from_padded(padded, n_frames, params)


@dataclass
class LogMelState:
    """Per-stream state: the samples not yet consumed and how many have been seen."""

    # Audio from the start of the next frame's window (zeros before the stream start).
    pending: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    n_samples: int = 0
    n_frames: int = 0
    lifecycle: StreamState = StreamState.OPEN


class LogMelExtractor:
    """Streaming :func:`log_mel`. Stateless itself; state lives in a :class:`LogMelState`.

    >>> ex = LogMelExtractor(); st = ex.new_state()
    >>> rows = [ex.push(st, chunk) for chunk in chunks] + [ex.finish(st)]
    """

    def __init__(self, params: FeatureParams = DEFAULT_FEATURES) -> None:
        self.params = params

    def new_state(self) -> LogMelState:
        return LogMelState(pending=np.zeros(self.params.half_window))

    def push(self, state: LogMelState, audio: npt.ArrayLike) -> FloatArray:
        """Add audio; return the frames whose whole window is now known."""
        return self.push_many([state], [audio])[0]

    def push_many(self, states: Sequence[LogMelState], audios: Sequence[npt.ArrayLike]) -> list[FloatArray]:
        """:meth:`push` for several streams at once, with one FFT and one filterbank
        product for all their new frames: for 40 ms pushes the cost of a push is mostly
        per-call overhead, so a server pays it once per batch instead of per stream.
        Rows are computed independently, so the result is what separate pushes give."""
        if len(states) != len(audios):
            raise ValueError(f"{len(states)} states but {len(audios)} audio chunks")
        p = self.params
        for state in states:  # before any state changes
            require_open(state.lifecycle, "push audio to a log-mel state")
        views, counts = [], []
        for state, audio in zip(states, audios, strict=True):
            x = np.asarray(audio, np.float64).reshape(-1)
            state.n_samples += x.shape[0]
            buf = np.concatenate([state.pending, x]) if x.shape[0] else state.pending
            n = 0 if buf.shape[0] < p.win_length else (buf.shape[0] - p.win_length) // p.hop_length + 1
            if n:
                views.append(_windows(buf, n, p))
            counts.append(n)
            state.pending = buf[n * p.hop_length :]
            state.n_frames += n
        if not views:
            return [np.zeros((0, p.n_mels), np.float32) for _ in counts]
        rows = _log_mel_rows(np.concatenate(views) if len(views) > 1 else views[0], p)
        return np.split(rows, np.cumsum(counts[:-1]))

    def finish(self, state: LogMelState) -> FloatArray:
        """Zero-pad the tail; return the remaining frames up to ``ceil(N / hop)``."""
        require_open(state.lifecycle, "finish a log-mel state")
        p = self.params
        total = -(-state.n_samples // p.hop_length)
        rest = max(0, total - state.n_frames)
        buf = np.concatenate([state.pending, np.zeros(p.win_length + rest * p.hop_length)])
        out = _frames_from_padded(buf, rest, p)
        state.n_frames += rest
        state.lifecycle = StreamState.FINISHED
        state.pending = np.zeros(0)
        return out
