"""The per-stream object: frame clock, emotion timeline, engine and postprocess state.

A :class:`Session` is created for each utterance (one v1 connection, one file) and
dropped with it. It is not thread-safe: one stream's calls are made one at a time,
though from any thread.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol

import numpy as np

from audio2face.audio.resample import StreamResampler
from audio2face.errors import EngineError, ProtocolError
from audio2face.types import EngineStream, FloatArray, FrameBatch, frames_for_samples


class ChainStream(Protocol):
    """Per-stream postprocessing: ``values [n, C_in] -> values [n, C_out]``."""

    def __call__(self, values: FloatArray, emotion: str | None) -> FloatArray: ...


class SessionState(enum.Enum):
    OPEN = "open"
    FINISHED = "finished"
    FAILED = "failed"


class EmotionTimeline:
    """Which emotion label holds at each input sample.

    Emotion arrives per body, but frames leave later (look-ahead, segmenting); frame
    ``i`` takes the emotion of the audio it shows, not of the body being received.
    """

    def __init__(self) -> None:
        self._starts: list[int] = [0]
        self._labels: list[str | None] = [None]

    def set(self, start_sample: int, emotion: str | None) -> None:
        if emotion == self._labels[-1]:
            return
        if start_sample == self._starts[-1]:
            self._labels[-1] = emotion
        else:
            self._starts.append(start_sample)
            self._labels.append(emotion)

    def at(self, sample: int) -> str | None:
        return self._labels[bisect.bisect_right(self._starts, sample) - 1]

    def forget_before(self, sample: int) -> None:
        """Drop labels no future frame can ask for, so long streams stay small."""
        keep = bisect.bisect_right(self._starts, sample) - 1
        if keep > 0:
            del self._starts[:keep]
            del self._labels[:keep]


class Session:
    """One stream: audio in (any accepted rate), postprocessed frames out.

    Over a whole stream the number of frames is exactly
    ``frames_for_samples(samples_in, input_rate, fps)``, however the audio is split.
    """

    def __init__(
        self,
        engine_stream: EngineStream,
        chain_stream: ChainStream,
        *,
        names: tuple[str, ...],
        fps: float,
        input_rate: int,
        engine_rate: int,
    ) -> None:
        self.names = names
        self.fps = fps
        self.input_rate = input_rate
        self._engine = engine_stream
        self._chain = chain_stream
        self._resampler = StreamResampler(input_rate, engine_rate)
        self._emotions = EmotionTimeline()
        self.samples_in = 0
        self.frames_out = 0
        self.state = SessionState.OPEN

    @property
    def seconds_in(self) -> float:
        return self.samples_in / self.input_rate

    def push(self, audio: FloatArray, emotion: str | None = None) -> FrameBatch:
        """Feed mono float32 audio at ``input_rate``; return the frames now ready."""
        resampled = self._begin_push(audio, emotion)
        return self._emit(self._run(lambda: self._engine.push(resampled, emotion)))

    @property
    def batch_key(self) -> Hashable | None:
        """Sessions with equal keys can be pushed together by :func:`push_sessions` (their
        engine streams share a model and offer ``push_many``); ``None``: one at a time."""
        if not callable(getattr(self._engine, "push_many", None)):
            return None
        return getattr(self._engine, "batch_key", None)

    def finish(self) -> FrameBatch:
        """End of audio: return every remaining frame; the frame clock is then exact."""
        self._require_open("finish")
        tail = self._resampler.finish()
        last_emotion = self._emotions.at(max(self.samples_in - 1, 0))
        parts = []
        if tail.size:
            parts.append(self._run(lambda: self._engine.push(tail, last_emotion)))
        parts.append(self._run(self._engine.finish))
        raw = np.concatenate(parts, axis=0)
        # Resampling can leave the engine one frame off the input clock; the input
        # clock is the one clients count, so trim or hold the last frame to match it.
        target = frames_for_samples(self.samples_in, self.input_rate, self.fps)
        want = target - self.frames_out
        if raw.shape[0] > want:
            raw = raw[: max(want, 0)]
        elif raw.shape[0] < want:
            pad_from = raw[-1:] if raw.shape[0] else None
            if pad_from is None:
                pad_from = np.zeros((1, raw.shape[1]), dtype=np.float32)
            raw = np.concatenate([raw, np.repeat(pad_from, want - raw.shape[0], axis=0)])
        batch = self._emit(raw)
        self.state = SessionState.FINISHED
        return batch

    def fail(self) -> None:
        """Mark the stream dead (client gone, error); later calls raise."""
        self.state = SessionState.FAILED

    # -- internals -------------------------------------------------------------------

    def _require_open(self, action: str) -> None:
        if self.state is not SessionState.OPEN:
            raise ProtocolError(f"cannot {action}: the stream is {self.state.value}")

    def _begin_push(self, audio: FloatArray, emotion: str | None) -> FloatArray:
        """Account for a push's input; return it at the engine's rate."""
        self._require_open("push audio")
        self._emotions.set(self.samples_in, emotion)
        self.samples_in += int(audio.shape[0])
        return self._resampler.push(audio)

    def _run(self, call: Callable[[], object]) -> FloatArray:
        try:
            out = call()
        except Exception as exc:
            raise self._engine_failed(exc) from exc
        return self._checked(out)

    def _engine_failed(self, exc: Exception) -> EngineError:
        """Mark the stream failed; the error to raise for ``exc``. Engines are plug-ins,
        so any failure surfaces as an :class:`EngineError`."""
        self.state = SessionState.FAILED
        if isinstance(exc, EngineError):
            return exc
        return EngineError(f"inference failed: {type(exc).__name__}: {exc}")

    def _checked(self, out: object) -> FloatArray:
        """The engine's frames as float32 ``[n, channels]``; fail the stream otherwise."""
        values = np.asarray(out, dtype=np.float32)
        if values.ndim != 2:
            self.state = SessionState.FAILED
            raise EngineError(f"engine returned an array of shape {values.shape}, not [n, channels]")
        if not np.isfinite(values).all():
            self.state = SessionState.FAILED
            raise EngineError("engine produced non-finite values (NaN or infinity)")
        return values

    def _emit(self, raw: FloatArray) -> FrameBatch:
        first = self.frames_out
        n = int(raw.shape[0])
        pieces = []
        start = 0
        # Postprocess in runs of constant emotion, each frame taking the emotion of
        # the audio it shows.
        while start < n:
            label = self._emotion_of_frame(first + start)
            stop = start + 1
            while stop < n and self._emotion_of_frame(first + stop) == label:
                stop += 1
            pieces.append(self._chain(raw[start:stop], label))
            start = stop
        self.frames_out += n
        self._emotions.forget_before(self._sample_of_frame(self.frames_out))
        values = (
            np.concatenate(pieces, axis=0).astype(np.float32, copy=False)
            if pieces
            else np.zeros((0, len(self.names)), dtype=np.float32)
        )
        return FrameBatch(first_frame=first, names=self.names, values=values, fps=self.fps)

    def _sample_of_frame(self, frame: int) -> int:
        return int(frame * self.input_rate / self.fps)

    def _emotion_of_frame(self, frame: int) -> str | None:
        return self._emotions.at(self._sample_of_frame(frame))


PushResult = FrameBatch | Exception
"""A session's frames, or the exception its own :meth:`Session.push` would have raised."""


def push_sessions(items: Sequence[tuple[Session, FloatArray, str | None]]) -> list[PushResult]:
    """:meth:`Session.push` for many sessions; results in the order of ``items``.

    Sessions with the same :attr:`Session.batch_key` are pushed through one
    ``push_many`` call of their engine (one model run for all of them); the others one
    by one. A session appears at most once. An error stays with its session, except
    that a failed shared model run fails every session in it.
    """
    results: list[PushResult | None] = [None] * len(items)
    groups: dict[Hashable, list[int]] = {}
    for i, (session, audio, emotion) in enumerate(items):
        key = session.batch_key
        if key is None:
            results[i] = _push_one(session, audio, emotion)
        else:
            groups.setdefault(key, []).append(i)
    for indices in groups.values():
        ready: list[tuple[int, FloatArray]] = []
        for i in indices:
            session, audio, emotion = items[i]
            try:
                ready.append((i, session._begin_push(audio, emotion)))
            except Exception as exc:
                results[i] = exc
        if not ready:
            continue
        sessions = [items[i][0] for i, _ in ready]
        engines = [s._engine for s in sessions]
        try:
            outs = type(engines[0]).push_many(  # type: ignore[attr-defined]
                engines, [a for _, a in ready], [items[i][2] for i, _ in ready]
            )
        except Exception as exc:
            for (i, _), session in zip(ready, sessions, strict=True):
                results[i] = session._engine_failed(exc)
            continue
        for (i, _), session, out in zip(ready, sessions, outs, strict=True):
            try:
                results[i] = session._emit(session._checked(out))
            except Exception as exc:  # a postprocess bug: this session's, not the batch's
                results[i] = exc
    done = [r for r in results if r is not None]
    assert len(done) == len(items), "every item gets a result"
    return done


def _push_one(session: Session, audio: FloatArray, emotion: str | None) -> PushResult:
    try:
        return session.push(audio, emotion)
    except Exception as exc:
        return exc
