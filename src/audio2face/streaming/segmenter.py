"""Streaming energy silence splitter and the segment scheduler built on it.

The original service split each received body on its own: 10 ms windows every 5 ms,
a window is silent when its mean square on the int16 scale is under 1e4, and a silent
run of at least 0.5 s separates two segments. That missed silences straddling two
bodies, broke on bodies shorter than a window, and never cut continuous speech.

:class:`SilenceSplitter` keeps the same rule but is stateful: windows span pushes, a
partial window waits for more audio, and a segment is cut at its quietest point once
it reaches ``max_segment_s``. Where a silent run reaches the minimum interval, the
cut goes ``min_interval / 2`` into it, so each side keeps some silence as context and
the speech before it is emitted one interval after it ended. Long silence is emitted in
pieces of one interval, so frames keep flowing while nobody speaks.

:class:`SegmentedStream` infers each segment with a :class:`~audio2face.types.SegmentModel`;
frame counts come from the frame clock on absolute positions, so the frames of a stream
add up exactly whatever the segmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio2face.streaming.buffer import SampleBuffer
from audio2face.types import (
    FloatArray,
    SegmentModel,
    StreamState,
    empty_frames,
    frames_for_samples,
    require_open,
)

__all__ = ["INT16_SCALE", "SegmentedStream", "SilenceOptions", "SilenceParams", "SilenceSplitter"]

INT16_SCALE = 32768.0
"""Float audio times this is the int16 scale the original's threshold was set on."""


@dataclass(frozen=True, slots=True)
class SilenceOptions:
    """The silence splitter, in seconds (the ``silence_*`` and ``max_segment_s`` settings).

    Defaults are the original service's rule plus a 4 s cap on a segment."""

    window_s: float = 0.010
    hop_s: float = 0.005
    threshold: float = 1e4
    """Mean square on the int16 scale below which a window is silent."""
    min_interval_s: float = 0.5
    max_segment_s: float = 4.0

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.hop_s <= 0 or self.max_segment_s <= 0:
            raise ValueError("window_s, hop_s and max_segment_s must be > 0")
        if self.threshold < 0 or self.min_interval_s < 0:
            raise ValueError("threshold and min_interval_s must be >= 0")


DEFAULT_SILENCE = SilenceOptions()


@dataclass(frozen=True, slots=True)
class SilenceParams:
    """:class:`SilenceOptions` converted once to samples at one rate."""

    window: int
    hop: int
    threshold: float
    """Mean square of float audio in [-1, 1) below which a window is silent."""
    min_silence: int
    max_segment: int
    min_segment: int
    """A cut that would leave a shorter segment is skipped: it folds into the next."""

    @classmethod
    def from_options(cls, options: SilenceOptions, sample_rate: int, fps: float) -> SilenceParams:
        def samples(seconds: float) -> int:
            return round(seconds * sample_rate)

        return cls(
            window=max(1, samples(options.window_s)),
            hop=max(1, samples(options.hop_s)),
            threshold=options.threshold / INT16_SCALE**2,
            min_silence=samples(options.min_interval_s),
            max_segment=max(1, samples(options.max_segment_s)),
            min_segment=max(1, int(np.ceil(sample_rate / fps))),
        )


class SilenceSplitter:
    """Finds cut points in a stream of audio; positions are absolute sample indices."""

    def __init__(self, params: SilenceParams) -> None:
        self.params = params
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)  # samples from _next_win on
        self._next_win = 0  # absolute start of the next window to analyse
        self.segment_start = 0
        self._run_start: int | None = None  # first sample of the current silent run
        self._run_end = 0  # one past the last silent window of that run
        # (centre, energy) of analysed windows centred inside the current segment,
        # to cut continuous speech at its quietest point.
        self._centres: list[int] = []
        self._energies: list[float] = []

    def push(self, audio: FloatArray) -> list[int]:
        """Add audio; return the new cut points, increasing, each > the previous one."""
        p = self.params
        self._pending = np.concatenate([self._pending, np.asarray(audio, dtype=np.float32)])
        n = self._pending.shape[0]
        if n < p.window:
            return []
        n_win = (n - p.window) // p.hop + 1
        # Mean square of every window from one cumulative sum, float64 so long
        # buffers do not lose the small values the threshold is about.
        sq = np.concatenate([[0.0], np.cumsum(self._pending.astype(np.float64) ** 2)])
        starts = np.arange(n_win) * p.hop
        energy = (sq[starts + p.window] - sq[starts]) / p.window
        cuts: list[int] = []
        for k in range(n_win):
            pos = self._next_win + int(starts[k])
            cut = self._step(pos, float(energy[k]))
            if cut is not None:
                cuts.append(cut)
        consumed = n_win * p.hop
        self._pending = self._pending[consumed:]
        self._next_win += consumed
        return cuts

    def _step(self, pos: int, energy: float) -> int | None:
        """Account for the window at ``pos``; return a cut point if one is due."""
        p = self.params
        end = pos + p.window
        if energy < p.threshold:
            if self._run_start is None:
                self._run_start = pos
            self._run_end = end
        else:
            self._run_start = None
        self._centres.append(pos + p.window // 2)
        self._energies.append(energy)

        s = self.segment_start
        half = p.min_silence // 2
        cut: int | None = None
        if self._run_start is not None:
            if self._run_start > s and self._run_end - self._run_start >= p.min_silence:
                cut = self._run_start + half  # speech then a long enough silence
            elif self._run_start <= s and self._run_end >= s + p.min_silence + half:
                cut = s + p.min_silence  # silence only: emit it one interval at a time
        if cut is None and end - s >= p.max_segment:
            cut = self._quietest_cut()
        if cut is None or cut - s < p.min_segment:
            return None
        self.segment_start = cut
        keep = [i for i, c in enumerate(self._centres) if c >= cut]
        self._centres = [self._centres[i] for i in keep]
        self._energies = [self._energies[i] for i in keep]
        return cut

    def _quietest_cut(self) -> int:
        """Cut point for a segment at its length cap: the quietest window centre in the
        second half of the segment (speech has pauses; cutting there hurts least)."""
        p = self.params
        s = self.segment_start
        lo, hi = s + p.max_segment // 2, s + p.max_segment
        best: int | None = None
        best_energy = np.inf
        for c, e in zip(self._centres, self._energies, strict=True):
            if lo <= c <= hi and e < best_energy:
                best, best_energy = c, e
        return best if best is not None else hi


class SegmentedStream:
    """An :class:`~audio2face.types.EngineStream` that infers silence-delimited segments.

    Latency is one silence interval after speech ends, at most ``max_segment_s`` in
    continuous speech. A segment takes the emotion of the latest push before its cut.
    """

    def __init__(self, model: SegmentModel, options: SilenceOptions = DEFAULT_SILENCE) -> None:
        self.model = model
        self.params = SilenceParams.from_options(options, model.sample_rate, model.fps)
        self._splitter = SilenceSplitter(self.params)
        self._buffer = SampleBuffer()
        self._n_channels = len(model.output_names)
        self._emotion: str | None = None
        self.state = StreamState.OPEN

    def reset(self) -> None:
        """Forget all audio and start a new stream."""
        self._splitter.reset()
        self._buffer.clear()
        self._emotion = None
        self.state = StreamState.OPEN

    def push(self, audio: FloatArray, emotion: str | None = None) -> FloatArray:
        require_open(self.state, "push audio")
        self._emotion = emotion
        self._buffer.append(audio)
        start = self._splitter.segment_start
        parts = []
        for cut in self._splitter.push(audio):
            parts.append(self._infer(start, cut))
            start = cut
        self._buffer.drop_before(start)
        return self._concat(parts)

    def finish(self) -> FloatArray:
        require_open(self.state, "finish")
        frames = self._infer(self._splitter.segment_start, self._buffer.end)
        self.state = StreamState.FINISHED
        return frames

    def _infer(self, a: int, b: int) -> FloatArray:
        sr, fps = self.model.sample_rate, self.model.fps
        n = frames_for_samples(b, sr, fps) - frames_for_samples(a, sr, fps)
        if n <= 0:
            return empty_frames(self._n_channels)
        out = np.asarray(self.model.infer(self._buffer.slice(a, b), n, self._emotion))
        return out.astype(np.float32, copy=False)

    def _concat(self, parts: list[FloatArray]) -> FloatArray:
        if not parts:
            return empty_frames(self._n_channels)
        return np.concatenate(parts, axis=0)
