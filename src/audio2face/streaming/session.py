"""The per-stream object: frame clock, emotion timeline, engine and postprocess state.

A :class:`Session` is created for each stream (one v1 connection, one v2 stream, one
file) and dropped with it. It is not thread-safe: one stream's calls are made one at a
time, though from any thread (the stream runner makes them on a pusher thread).

Over a whole stream the number of frames is exactly
``frames_for_samples(samples_in, input_rate, fps)``, however the audio is split, and
across :meth:`Session.flush` and :meth:`Session.interrupt` too: the clock runs on.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from audio2face.audio.prosody import Prosody, ProsodyTracker
from audio2face.audio.resample import StreamResampler
from audio2face.errors import EngineError, StreamClosedError
from audio2face.types import (
    BatchedEngineStream,
    Engine,
    EngineStream,
    FloatArray,
    FrameBatch,
    Phone,
    PhoneInputStream,
    StreamState,
    frames_for_samples,
    require_open,
)

__all__ = [
    "INTERRUPT_RELEASE_S",
    "ChainStream",
    "EmotionTimeline",
    "FrameRateConverter",
    "PushResult",
    "Session",
    "finish_sessions",
    "push_sessions",
]

INTERRUPT_RELEASE_S = 0.1
"""After an interrupt the face eases to rest over this much stream time."""


class ChainStream(Protocol):
    """Per-stream postprocessing: ``values [n, C_in] -> values [n, C_out]``; ``prosody``
    (the voice's features of exactly these frames) only when the session tracks it."""

    def __call__(
        self, values: FloatArray, emotion: str | None, prosody: Prosody | None = None
    ) -> FloatArray: ...


class ManyChain(Protocol):
    """A chain that postprocesses several of its streams' frames in one call
    (``postprocess.chain.Chain``). ``streams`` are streams it made itself (their
    type is the chain's own, hence ``Any`` here)."""

    def run_many(
        self,
        streams: Sequence[Any],
        values: FloatArray,
        counts: Sequence[int],
        emotions: Sequence[str | None],
        prosody: Prosody | None = None,
    ) -> FloatArray: ...


@runtime_checkable
class KeyedChainStream(ChainStream, Protocol):
    """A chain that takes timed emotion keys (``postprocess.chain.ChainStream``)."""

    def add_emotion_key(
        self, time_s: float, name: str, intensity: float = 1.0, ramp_s: float = 0.3
    ) -> None: ...


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

    @property
    def single(self) -> bool:
        """Whether one label holds at every sample still asked about."""
        return len(self._labels) == 1

    def at(self, sample: int) -> str | None:
        return self._labels[bisect.bisect_right(self._starts, sample) - 1]

    def cut_after(self, sample: int) -> None:
        """Forget labels set after ``sample`` (their audio was dropped by an interrupt)."""
        keep = max(1, bisect.bisect_right(self._starts, sample))
        del self._starts[keep:]
        del self._labels[keep:]

    def forget_before(self, sample: int) -> None:
        """Drop labels no future frame can ask for, so long streams stay small."""
        keep = bisect.bisect_right(self._starts, sample) - 1
        if keep > 0:
            del self._starts[:keep]
            del self._labels[:keep]


class FrameRateConverter:
    """Streaming linear resampling of frames from ``src_fps`` to ``dst_fps``, for
    engines that run at one rate only (UniTalker at 30 fps) under a profile at another.

    Output frame ``k`` (time ``k / dst_fps``) interpolates the two source frames
    around it, so it waits for at most one more source frame."""

    def __init__(self, src_fps: float, dst_fps: float, n_channels: int) -> None:
        self.src_fps, self.dst_fps = float(src_fps), float(dst_fps)
        self._frames = np.zeros((0, n_channels), np.float32)
        self._first = 0  # source index of self._frames[0]
        self._next = 0  # next output frame

    def push(self, frames: FloatArray) -> FloatArray:
        """Take source frames; return the output frames both neighbours now allow."""
        if frames.shape[0]:
            self._frames = np.concatenate([self._frames, frames])
        have = self._first + self._frames.shape[0]
        # Frame k needs source floor(u) + 1 < have, u = k * src / dst (or u whole).
        end = math.floor((have - 1) * self.dst_fps / self.src_fps + 1e-9) + 1 if have else 0
        return self._take(end)

    def finish(self, total: int) -> FloatArray:
        """Every output frame up to ``total``, holding the last source frame at the end."""
        return self._take(total, final=True)

    def _take(self, end: int, *, final: bool = False) -> FloatArray:
        n_ch = self._frames.shape[1]
        if end <= self._next or self._frames.shape[0] == 0:
            if final and end > self._next:  # nothing ever came: rest
                out = np.zeros((end - self._next, n_ch), np.float32)
                self._next = end
                return out
            return np.zeros((0, n_ch), np.float32)
        u = np.arange(self._next, end, dtype=np.float64) * (self.src_fps / self.dst_fps)
        last = self._first + self._frames.shape[0] - 1
        j0 = np.minimum(np.floor(u + 1e-9).astype(np.int64), last)
        j1 = np.minimum(j0 + 1, last)
        a = np.clip(u - j0, 0.0, 1.0)[:, None]
        out = (1 - a) * self._frames[j0 - self._first] + a * self._frames[j1 - self._first]
        self._next = end
        drop = min(int(j0[-1]) - self._first, self._frames.shape[0] - 1)
        if drop > 0:
            self._frames = self._frames[drop:]
            self._first += drop
        return out.astype(np.float32)


class Session:
    """One stream: audio in (any accepted rate), postprocessed frames out.

    ``engine`` is the shared, loaded engine; the session opens its own engine streams
    (a new one after each flush or interrupt). Frames come at ``fps``: natively when
    the engine declares ``any_fps``, else resampled from the engine's rate.
    ``prosody`` tracks the voice for chains with steps that read it; ``runner`` is
    ``chain_stream``'s chain when it can postprocess many streams in one call
    (``Chain.run_many``), so that sessions of one chain pushed together share it.
    """

    def __init__(
        self,
        engine: Engine,
        chain_stream: ChainStream,
        *,
        names: tuple[str, ...],
        fps: float,
        input_rate: int,
        prosody: ProsodyTracker | None = None,
        runner: ManyChain | None = None,
    ) -> None:
        self.names = names
        self.fps = float(fps)
        self.input_rate = int(input_rate)
        self.capabilities = engine.capabilities
        native = self.capabilities.any_fps or abs(engine.fps - self.fps) < 1e-9
        self._engine_def = engine
        self._engine_fps = self.fps if native else engine.fps
        self._open_engine: Callable[[], EngineStream] = (
            (lambda: engine.open_stream(self.fps))
            if self.capabilities.any_fps
            else engine.open_stream
        )
        self._chain = chain_stream
        self._prosody = prosody
        # ``runner``: the chain ``chain_stream`` belongs to, when it can postprocess
        # several of its streams at once; sessions with the same group key are
        # postprocessed together (see ``_emit_many``).
        self._runner = runner
        self._group_key: Hashable = (
            id(self._runner) if self._runner is not None else id(self),
            None if prosody is None else (prosody.sample_rate, prosody.fps, prosody.options),
        )
        self._emotions = EmotionTimeline()
        self.samples_in = 0
        self.frames_out = 0
        self._last_raw: FloatArray | None = None
        self.state = StreamState.OPEN
        self._start_segment(0)

    # -- what the session is -----------------------------------------------------------
    @property
    def seconds_in(self) -> float:
        return self.samples_in / self.input_rate

    @property
    def batch_key(self) -> Hashable | None:
        """Sessions with equal keys can be pushed together by :func:`push_sessions`
        (their engine declares ``batched_push``); ``None``: one at a time."""
        if not self.capabilities.batched_push:
            return None
        return cast(BatchedEngineStream, self._engine).batch_key

    # -- the stream ----------------------------------------------------------------------
    def push(self, audio: FloatArray, emotion: str | None = None) -> FrameBatch:
        """Feed mono float32 audio at ``input_rate``; return the frames now ready."""
        resampled = self._begin_push(audio, emotion)
        return self._emit(
            self._after_engine(self._run(lambda: self._engine.push(resampled, emotion)))
        )

    def push_phones(self, phones: Sequence[Phone]) -> None:
        """Phone timings (seconds from the start of the current segment, i.e. since the
        last flush), for engines with ``phone_input``; raises ``ValueError`` otherwise."""
        require_open(self.state, "push phones")
        if not self.capabilities.phone_input:
            raise ValueError("this stream's engine takes audio only, not phone timings")
        shift = self._lead_s  # the engine's time 0 is the segment's lead, not its start
        cast(PhoneInputStream, self._engine).push_phones(
            [(a + shift, b + shift, p) for a, b, p in phones]
        )

    def end_phones(self) -> None:
        """No more phones in this segment (``phone_input`` engines)."""
        require_open(self.state, "end phones")
        if not self.capabilities.phone_input:
            raise ValueError("this stream's engine takes audio only, not phone timings")
        cast(PhoneInputStream, self._engine).end_phones()

    def key_emotion(
        self, time_s: float, name: str, intensity: float = 1.0, ramp_s: float = 0.3
    ) -> None:
        """From stream time ``time_s``, ease over ``ramp_s`` to emotion ``name`` at
        ``intensity`` (0..1); raises :class:`UnknownNameError` for names the profile
        does not know, ``ValueError`` for a chain without timed keys."""
        require_open(self.state, "key an emotion")
        if not isinstance(self._chain, KeyedChainStream):
            raise ValueError("this stream's postprocessing takes no timed emotion keys")
        self._chain.add_emotion_key(time_s, name, intensity, ramp_s)

    def finish(self) -> FrameBatch:
        """End of audio: return every remaining frame; the frame clock is then exact."""
        batch = self._drain("finish")
        self.state = StreamState.FINISHED
        return batch

    def flush(self) -> FrameBatch:
        """End of an utterance: every frame the audio so far is worth (its look-ahead
        padded with silence). The stream stays open; the next audio continues the clock."""
        batch = self._drain("flush")
        self._start_segment(self.samples_in)
        return batch

    def interrupt(self) -> FrameBatch:
        """Barge-in: drop the audio not yet animated and ease the face to rest over
        ``INTERRUPT_RELEASE_S`` of stream time. Returns the release frames; the clock
        counts them as that much (virtual) silence, so it stays exact."""
        require_open(self.state, "interrupt")
        n_release = max(1, round(INTERRUPT_RELEASE_S * self.fps))
        target = self.frames_out + n_release
        # The first sample count whose clock reads ``target``: audio the engine held
        # for look-ahead is forgotten, the release stands in for it.
        self.samples_in = math.ceil((target - 0.5) * self.input_rate / self.fps)
        self._emotions.cut_after(self.samples_in)
        if self._prosody is not None:
            self._prosody.interrupt(self.samples_in)  # the release sees silence
        last = self._last_raw
        if last is None:
            raw = np.zeros((n_release, self._n_raw), np.float32)
        else:
            fade = (1.0 - np.arange(1, n_release + 1, dtype=np.float32) / n_release)[:, None]
            raw = (fade * last[None, :]).astype(np.float32)
        batch = self._emit(raw)
        self._start_segment(self.samples_in)
        return batch

    def fail(self) -> None:
        """Mark the stream dead (client gone, error); later calls raise."""
        self.state = StreamState.FAILED

    # -- internals -----------------------------------------------------------------------
    def _start_segment(self, start_sample: int) -> None:
        """A fresh engine stream whose frame grid lines up with the session's clock.

        The engine's frame 0 sits at its first sample. The next frame the session will
        emit, ``F``, shows time ``F / fps``, which may be up to half a frame from the
        segment's first sample; so the segment starts one frame early, at
        ``(F - 1) / fps``, with silence (the ``lead``) up to its first real sample, and
        that one frame is skipped."""
        self._engine = self._open_engine()
        self._n_raw = len(self._engine_def.output_names)
        self._resampler = StreamResampler(self.input_rate, self._engine_def.sample_rate)
        self._converter = (
            None
            if abs(self._engine_fps - self.fps) < 1e-9
            else FrameRateConverter(self._engine_fps, self.fps, self._n_raw)
        )
        self._segment_frames = self.frames_out  # session frame of the engine's frame 0
        self._skip = 0
        self._lead = np.zeros(0, np.float32)
        self._lead_s = 0.0
        if start_sample == 0:
            return
        lead = start_sample - (self.frames_out - 1) * self.input_rate / self.fps
        pad = int(round(lead * self._engine_def.sample_rate / self.input_rate))
        if pad > 0:
            self._skip = 1
            self._segment_frames -= 1
            self._lead = np.zeros(pad, np.float32)
        self._lead_s = self._lead.shape[0] / self._engine_def.sample_rate

    def _with_lead(self, audio: FloatArray) -> FloatArray:
        """Audio at the engine's rate, after the segment's silent lead if still pending."""
        if self._lead.shape[0] == 0:
            return audio
        audio = np.concatenate([self._lead, audio])
        self._lead = np.zeros(0, np.float32)
        return audio

    def _skip_frames(self, raw: FloatArray) -> FloatArray:
        n = min(self._skip, raw.shape[0])
        self._skip -= n
        return raw[n:]

    def _drain(self, action: str) -> FrameBatch:
        tail, emotion = self._begin_drain(action)
        parts = []
        if tail.size:
            parts.append(self._run(lambda: self._engine.push(tail, emotion)))
        parts.append(self._run(self._engine.finish))
        return self._end_drain(np.concatenate(parts, axis=0))

    def _begin_drain(self, action: str) -> tuple[FloatArray, str | None]:
        """The audio still inside the resampler (and a pending lead), at the engine's
        rate, and the emotion it carries."""
        require_open(self.state, action)
        tail = self._with_lead(self._resampler.finish())
        return tail, self._emotions.at(max(self.samples_in - 1, 0))

    def _end_drain(self, raw: FloatArray) -> FrameBatch:
        """The engine's last frames to the session's: rate, lead, the exact clock."""
        target = frames_for_samples(self.samples_in, self.input_rate, self.fps)
        if self._converter is not None:
            head = self._converter.push(raw)
            raw = np.concatenate([head, self._converter.finish(target - self._segment_frames)])
        raw = self._skip_frames(raw)
        # Resampling can leave the engine one frame off the input clock; the input
        # clock is the one clients count, so trim or hold the last frame to match it.
        want = target - self.frames_out
        if raw.shape[0] > want:
            raw = raw[: max(want, 0)]
        elif raw.shape[0] < want:
            pad_from = raw[-1:] if raw.shape[0] else self._last_raw_or_zeros()
            raw = np.concatenate([raw, np.repeat(pad_from, want - raw.shape[0], axis=0)])
        return self._emit(raw)

    def _last_raw_or_zeros(self) -> FloatArray:
        if self._last_raw is not None:
            return self._last_raw[None, :]
        return np.zeros((1, self._n_raw), np.float32)

    def _begin_push(self, audio: FloatArray, emotion: str | None) -> FloatArray:
        """Account for a push's input; return it at the engine's rate."""
        require_open(self.state, "push audio")
        self._emotions.set(self.samples_in, emotion)
        self.samples_in += int(audio.shape[0])
        if self._prosody is not None:
            self._prosody.push(audio)
        return self._with_lead(self._resampler.push(audio))

    def _after_engine(self, raw: FloatArray) -> FloatArray:
        """Engine frames to session frames: rate conversion, the skipped lead frame."""
        if self._converter is not None:
            raw = self._converter.push(raw)
        return self._skip_frames(raw) if self._skip else raw

    def _run(self, call: Callable[[], object]) -> FloatArray:
        try:
            out = call()
        except Exception as exc:
            raise self._engine_failed(exc) from exc
        return self._checked(out)

    def _engine_failed(self, exc: Exception) -> EngineError | StreamClosedError:
        """Mark the stream failed; the error to raise for ``exc``. Engines are plug-ins,
        so any failure surfaces as an :class:`EngineError`."""
        self.state = StreamState.FAILED
        if isinstance(exc, EngineError | StreamClosedError):
            return exc
        return EngineError(f"inference failed: {type(exc).__name__}: {exc}")

    def _checked(self, out: object) -> FloatArray:
        """The engine's frames as float32 ``[n, channels]``; fail the stream otherwise."""
        values = np.asarray(out, dtype=np.float32)
        if values.ndim != 2:
            self.state = StreamState.FAILED
            raise EngineError(
                f"engine returned an array of shape {values.shape}, not [n, channels]"
            )
        if not np.isfinite(values).all():
            self.state = StreamState.FAILED
            raise EngineError("engine produced non-finite values (NaN or infinity)")
        return values

    def _emit(self, raw: FloatArray) -> FrameBatch:
        result = _emit_many([self], [raw])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def _runs_of(self, first: int, n: int) -> list[tuple[int, int, str | None]]:
        """Frames ``first .. first + n`` as runs ``(start, stop, emotion)`` of constant
        emotion, each frame taking the emotion of the audio it shows."""
        if self._emotions.single:
            return [(0, n, self._emotions.at(0))] if n else []
        runs: list[tuple[int, int, str | None]] = []
        start = 0
        while start < n:
            label = self._emotion_of_frame(first + start)
            stop = start + 1
            while stop < n and self._emotion_of_frame(first + stop) == label:
                stop += 1
            runs.append((start, stop, label))
            start = stop
        return runs

    def _postprocess(self, raw: FloatArray, first: int, prosody: Prosody | None) -> FloatArray:
        """This session's frames through its chain alone, run by run of emotion."""
        pieces = []
        for start, stop, label in self._runs_of(first, raw.shape[0]):
            if prosody is None:
                pieces.append(self._chain(raw[start:stop], label))
            else:
                pieces.append(self._chain(raw[start:stop], label, prosody.slice(start, stop)))
        return (
            np.concatenate(pieces, axis=0) if pieces else np.zeros((0, len(self.names)), np.float32)
        )

    def _emitted(self, first: int, values: FloatArray) -> FrameBatch:
        """Account for frames leaving; their batch."""
        self.frames_out += int(values.shape[0])
        self._emotions.forget_before(self._sample_of_frame(self.frames_out))
        values = values.astype(np.float32, copy=False)
        return FrameBatch(first_frame=first, names=self.names, values=values, fps=self.fps)

    def _sample_of_frame(self, frame: int) -> int:
        return int(frame * self.input_rate / self.fps)

    def _emotion_of_frame(self, frame: int) -> str | None:
        return self._emotions.at(self._sample_of_frame(frame))


PushResult = FrameBatch | Exception
"""A session's frames, or the exception its own :meth:`Session.push` would have raised."""


def _emit_many(sessions: Sequence[Session], raws: Sequence[FloatArray]) -> list[PushResult]:
    """Postprocess each session's new raw frames and count them out.

    Sessions of one chain (and one kind of prosody tracker) go through it together:
    their voices' features in one :meth:`ProsodyTracker.take_rows` and their frames
    in one :meth:`Chain.run_many`, so the alive steps cost per batch, not per stream.
    A session whose frames change emotion part-way runs alone, run by run. Results
    are the same either way; a postprocess error fails the sessions it ran with."""
    results: list[PushResult] = [_PENDING] * len(sessions)
    groups: dict[Hashable, list[int]] = {}
    for i, (session, raw) in enumerate(zip(sessions, raws, strict=True)):
        if raw.shape[0]:
            session._last_raw = raw[-1].copy()
            groups.setdefault(session._group_key, []).append(i)
        else:
            results[i] = session._emitted(
                session.frames_out, np.zeros((0, len(session.names)), np.float32)
            )
    for indices in groups.values():
        members = [sessions[i] for i in indices]
        counts = [raws[i].shape[0] for i in indices]
        firsts = [m.frames_out for m in members]
        try:
            trackers = [m._prosody for m in members]
            prosody = None
            if trackers[0] is not None:
                prosody = ProsodyTracker.take_rows(cast(list[ProsodyTracker], trackers), counts)
            runs = [m._runs_of(f, n) for m, f, n in zip(members, firsts, counts, strict=True)]
            runner = members[0]._runner
            outs: list[FloatArray] = []
            if runner is not None and all(len(r) == 1 for r in runs):
                values = (
                    np.concatenate([raws[i] for i in indices])
                    if len(indices) > 1
                    else raws[indices[0]]
                )
                out = runner.run_many(
                    [m._chain for m in members], values, counts, [r[0][2] for r in runs], prosody
                )
                bounds = [0, *itertools.accumulate(counts)]
                outs = [out[a:b] for a, b in itertools.pairwise(bounds)]
            else:
                lo = 0
                for m, i, f, n in zip(members, indices, firsts, counts, strict=True):
                    rows = None if prosody is None else prosody.rows(lo, lo + n, f)
                    outs.append(m._postprocess(raws[i], f, rows))
                    lo += n
        except Exception as exc:  # a postprocess bug: these sessions', not the whole batch's
            for i in indices:
                results[i] = exc
            continue
        for i, m, f, values in zip(indices, members, firsts, outs, strict=True):
            results[i] = m._emitted(f, values)
    return results


def push_sessions(items: Sequence[tuple[Session, FloatArray, str | None]]) -> list[PushResult]:
    """:meth:`Session.push` for many sessions; results in the order of ``items``.

    Sessions with the same :attr:`Session.batch_key` are pushed through one
    ``push_many`` call of their engine (one model run for all of them); the others one
    by one. A session appears at most once. An error stays with its session, except
    that a failed shared model run fails every session in it.
    """
    results: list[PushResult] = [_PENDING] * len(items)
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
        engines = [cast(BatchedEngineStream, s._engine) for s in sessions]
        try:
            outs = type(engines[0]).push_many(
                engines, [a for _, a in ready], [items[i][2] for i, _ in ready]
            )
        except Exception as exc:
            for (i, _), session in zip(ready, sessions, strict=True):
                results[i] = session._engine_failed(exc)
            continue
        done: list[tuple[int, Session, FloatArray]] = []
        for (i, _), session, out in zip(ready, sessions, outs, strict=True):
            try:
                done.append((i, session, session._after_engine(session._checked(out))))
            except Exception as exc:  # this session's frames are bad, not the batch's
                results[i] = exc
        emitted = _emit_many([s for _, s, _ in done], [raw for _, _, raw in done])
        for (i, _, _), result in zip(done, emitted, strict=True):
            results[i] = result
    return results


_PENDING = RuntimeError("no result")  # placeholder: every slot is overwritten above


def finish_sessions(sessions: Sequence[Session]) -> list[PushResult]:
    """:meth:`Session.finish` for many sessions; results in order. Sessions with the
    same :attr:`Session.batch_key` end through one ``finish_many`` of their engine (one
    model run for all of their last steps); the others one by one."""
    results: list[PushResult] = [_PENDING] * len(sessions)
    groups: dict[Hashable, list[int]] = {}
    for i, session in enumerate(sessions):
        key = session.batch_key
        if key is None:
            results[i] = _finish_one(session)
        else:
            groups.setdefault(key, []).append(i)
    for indices in groups.values():
        ready: list[tuple[int, FloatArray]] = []
        for i in indices:
            try:
                tail, _ = sessions[i]._begin_drain("finish")
                ready.append((i, tail))
            except Exception as exc:
                results[i] = exc
        if not ready:
            continue
        members = [sessions[i] for i, _ in ready]
        engines = [cast(BatchedEngineStream, s._engine) for s in members]
        try:
            outs = type(engines[0]).finish_many(engines, [t for _, t in ready])
        except Exception as exc:
            for (i, _), session in zip(ready, members, strict=True):
                results[i] = session._engine_failed(exc)
            continue
        for (i, _), session, out in zip(ready, members, outs, strict=True):
            try:
                results[i] = session._end_drain(session._checked(out))
                session.state = StreamState.FINISHED
            except Exception as exc:  # a postprocess bug: this session's, not the batch's
                results[i] = exc
    return results


def _finish_one(session: Session) -> PushResult:
    try:
        return session.finish()
    except Exception as exc:
        return exc


def _push_one(session: Session, audio: FloatArray, emotion: str | None) -> PushResult:
    try:
        return session.push(audio, emotion)
    except Exception as exc:
        return exc
