"""The stream runner: one per stream, below every transport.

A transport decodes and validates what its client sends, then talks to a
:class:`StreamRunner`; the runner owns everything between that and the frames::

    transport ── push(audio) / flush() / interrupt() / finish() ──> inbox (bounded in seconds)
                                                                      │ joined into runs,
                                                                      │ cut into pieces
    transport <── events(): FramesEvent | Flushed | Interrupted | Ended ── pusher (batched
                                                                      with other streams)

* **Inbox**: audio waits in an :class:`~audio2face.streaming.inbox.AudioInbox` bounded
  by seconds; a producer over the bound waits (TCP backpressure on a socket).
* **Joining and cutting**: bodies queued behind each other (same emotion, up to
  ``max_push_s``) are pushed as one, so a stream that fell behind catches up with fewer
  calls; a long body is pushed in ``max_push_s`` pieces, so its first frames leave
  while the rest is inferred.
* **Execution**: every call of the stream's :class:`Session` runs on its engine's
  :class:`~audio2face.streaming.pusher.BatchPusher` thread: batched with other
  streams' pushes where the engine declares ``batched_push``, one by one otherwise.
* **Re-chunking**: with ``chunk_frames``, the frames of one run leave in multiples of
  it (the rest waits for the next piece), so the bodies a client sees do not depend on
  how the runner cut the audio.
* **Lag bound** (live transports, :meth:`StreamRunner.bound_lag`): audio still not
  animated ``max_lag_s`` after it was due in real time (its arrival, or its place on
  the stream's clock for a client that sends ahead) means the engine cannot keep up:
  the stream ends with :class:`~audio2face.errors.LimitExceededError` 1013 instead of
  falling further behind. The bound is watched while a push waits for the engine (a
  timer at the oldest audio's deadline), not only when a run is taken: one long batch
  would otherwise deliver frames a whole batch past it. ``lag_s`` tells a server how
  far behind each stream is, so it can shed its newest stream first
  (:meth:`StreamRunner.shed`, ``LoadShedder`` in ``server/admission.py``). A frame
  seconds late is worse than none for a live face, and the backlog of one stream
  delays every other.
* **Metrics**: audio in, frames out, latency from a body's arrival to its frames, and
  the time of pushes of engines that do not time their own model runs, reported to a
  :class:`StreamObserver` (the runtime connects it to Prometheus).

The frames are consumed by iterating :meth:`StreamRunner.events`; that iteration is
what drives the work, so a consumer that stops reading also stops inference (and,
through the inbox bound, its producer).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from audio2face.errors import LimitExceededError, StreamClosedError, UnknownNameError
from audio2face.streaming.inbox import AudioInbox
from audio2face.streaming.pusher import BatchPusher
from audio2face.streaming.session import Session
from audio2face.types import FloatArray, FrameBatch, Phone, StreamState

__all__ = [
    "DEFAULT_RUNNER",
    "Ended",
    "Flushed",
    "FramesEvent",
    "Interrupted",
    "RunnerOptions",
    "StreamEvent",
    "StreamObserver",
    "StreamRunner",
    "check_emotion",
    "emotion_names",
]


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """Per-stream limits and cuts (``max_buffered_s`` is a setting)."""

    max_buffered_s: float = 30.0
    """Audio queued per stream before ``push`` waits."""
    max_push_s: float = 0.2
    """Longest audio handed to one push: bounds the wait for a body's first frames."""
    chunk_frames: int | None = None
    """Frames of one run leave in multiples of this (``None``: as they come)."""
    max_lag_s: float | None = None
    """Longest lag behind real time before the stream is closed (``None``: no bound,
    for files, where only throughput matters)."""

    def __post_init__(self) -> None:
        if self.max_buffered_s <= 0 or self.max_push_s <= 0:
            raise ValueError("max_buffered_s and max_push_s must be > 0")
        if self.max_lag_s is not None and self.max_lag_s <= 0:
            raise ValueError(f"max_lag_s must be > 0, got {self.max_lag_s}")
        if self.chunk_frames is not None and self.chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {self.chunk_frames}")


DEFAULT_RUNNER = RunnerOptions()


@dataclass(frozen=True, slots=True)
class StreamObserver:
    """Where a runner reports what it did (all optional)."""

    audio_in: Callable[[float], None] | None = None
    """Seconds of audio accepted."""
    frames_out: Callable[[int, float | None], None] | None = None
    """Frames delivered, and the latency from their audio's arrival (``None``: flushed)."""
    push_seconds: Callable[[float], None] | None = None
    """Wall time of one push, for engines that do not time their own model runs."""
    queue_depth: Callable[[int], None] | None = None
    """Change in the number of queued items."""


NO_OBSERVER = StreamObserver()


# --- events (what the transport receives) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class FramesEvent:
    """New frames. ``latency_s``: from the arrival of the audio that completed them
    (``None`` for frames of a flush, interrupt or finish)."""

    batch: FrameBatch
    latency_s: float | None = None


@dataclass(frozen=True, slots=True)
class Flushed:
    """Every frame of the audio before the flush has been delivered; ``frames`` counts
    all frames of the stream so far."""

    frames: int


@dataclass(frozen=True, slots=True)
class Interrupted:
    """Audio not yet animated was dropped; ``frame`` is the next frame's index (the
    first of the release to rest that follows)."""

    frame: int


@dataclass(frozen=True, slots=True)
class Ended:
    """The stream finished; ``frames`` is its total (the frame clock's count)."""

    frames: int


StreamEvent = FramesEvent | Flushed | Interrupted | Ended


# --- inbox items -------------------------------------------------------------------------


@dataclass(slots=True)
class _Audio:
    audio: FloatArray
    emotion: str | None
    arrived: float
    due: float = 0.0
    """When real time reaches this audio: its arrival, or later for audio sent ahead."""


@dataclass(slots=True)
class _Key:
    time_s: float
    name: str
    intensity: float
    ramp_s: float


@dataclass(slots=True)
class _Phones:
    phones: Sequence[Phone]
    end: bool


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_FLUSH = _Marker("flush")
_INTERRUPT = _Marker("interrupt")
_FINISH = _Marker("finish")
_ABORT = _Marker("abort")
_SHED = _Marker("shed")

REARM_MIN_S = 0.01
"""Shortest wait before the lag watchdog looks again (no busy loop at the deadline)."""


def emotion_names(labels: frozenset[str] | set[str]) -> tuple[str, ...]:
    """Emotion labels with intensity steps folded into their base name, sorted."""
    return tuple(sorted({n.rsplit("_", 1)[0] if n[-1:].isdigit() else n for n in labels}))


def check_emotion(emotion: str, known: frozenset[str], profile: str) -> None:
    """Raise :class:`UnknownNameError` unless ``known`` (a profile's emotion labels)
    has ``emotion`` as a preset (``happiness_2``) or a base name (``happiness``)."""
    if emotion not in known and emotion not in emotion_names(known):
        raise UnknownNameError(
            "emotion", emotion, sorted(known) or "(none)", where=f"profile {profile!r}"
        )


def _joinable(first: object, item: object) -> bool:
    """Queued bodies of one emotion can be pushed together; markers cannot."""
    return isinstance(first, _Audio) and isinstance(item, _Audio) and item.emotion == first.emotion


class StreamRunner:
    """One stream's inbox, execution, re-chunking and metrics; see the module doc.

    Use it as an async context manager (``Runtime.open_stream``); leaving the block
    before :class:`Ended` fails the session and drops what is queued.
    """

    def __init__(
        self,
        session: Session,
        pusher: BatchPusher,
        *,
        profile: str,
        engine: str,
        lookahead_s: float,
        options: RunnerOptions = DEFAULT_RUNNER,
        known_emotions: frozenset[str] | None = None,
        observer: StreamObserver = NO_OBSERVER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.profile = profile
        self.engine = engine
        self.lookahead_s = lookahead_s
        self.options = options
        self._pusher = pusher
        self._known_emotions = known_emotions
        self._observer = observer
        self._inbox = AudioInbox(options.max_buffered_s, depth=observer.queue_depth)
        self._input_ended = False
        self._done = False
        self._clock = clock
        """Seconds, monotonic: when audio arrives and how late it is (tests inject one)."""
        self._clock_start: float | None = None
        self._pushed_s = 0.0
        self._queued_due: collections.deque[float] = collections.deque()
        """When each queued audio item is due, oldest first (in step with the inbox)."""
        self._waiting: asyncio.Future[FrameBatch] | None = None
        """The engine's answer being awaited (a push or call in flight), if any."""
        self._waiting_due: float | None = None
        """When the audio of the push in flight was due (``None``: a call, or nothing)."""
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_lag = 0.0
        self._shed: LimitExceededError | None = None
        self._wake: asyncio.Task[None] | None = None

    # -- what the stream is -------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return self.session.names

    @property
    def fps(self) -> float:
        return self.session.fps

    @property
    def frames_out(self) -> int:
        return self.session.frames_out

    @property
    def seconds_in(self) -> float:
        return self.session.seconds_in

    @property
    def buffered_seconds(self) -> float:
        """Audio queued and not yet pushed."""
        return self._inbox.seconds

    @property
    def lag_s(self) -> float:
        """How far behind real time the engine has left this stream: while the stream
        waits for its engine, the age of its oldest audio not yet animated (in the push
        in flight, or queued behind a call); otherwise that age when it last waited or
        took audio (0 once its inbox is empty). Time spent waiting for the *client*
        (sending frames to a slow reader) does not count: that is not the engine's load."""
        due = self._oldest_due()
        return self._last_lag if due is None else max(0.0, self._clock() - due)

    @property
    def ending(self) -> bool:
        """The stream is over or on its way out (ended, failed, or :meth:`shed`)."""
        return self._done or self._shed is not None

    def bound_lag(self, max_lag_s: float | None) -> None:
        """Hold this stream to ``max_lag_s`` behind real time (``None``: no bound)."""
        self.options = dataclasses.replace(self.options, max_lag_s=max_lag_s)

    def shed(self, why: str) -> None:
        """End this stream now, with :class:`LimitExceededError` 1013 from :meth:`events`
        (the server sheds load): a wait for the engine ends at once, its frames are
        dropped; otherwise the next item ends it. ``why`` goes in the reason."""
        if self._done or self._shed is not None:
            return
        self._shed = LimitExceededError(
            f"the server is overloaded: {why}; try again later",
            limit="max_lag_s", value=self.options.max_lag_s or 0.0, code=1013,
        )  # fmt: skip
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_exception(self._shed)
        else:  # idle on the inbox or handing frames to the transport: jump the queue
            self._wake = asyncio.get_running_loop().create_task(self._inbox.put_front(_SHED))

    # -- the producer side ---------------------------------------------------------------
    async def push(self, audio: FloatArray, emotion: str | None = None) -> None:
        """Queue mono float32 audio at the stream's input rate; waits while the inbox
        holds ``max_buffered_s``. ``emotion`` (``None``: neutral) holds for this audio."""
        self._check_input("push audio")
        if emotion and self._known_emotions is not None:
            self.check_emotion(emotion)
        seconds = audio.shape[0] / self.session.input_rate
        if self._observer.audio_in is not None:
            self._observer.audio_in(seconds)
        now = self._clock()
        if self._clock_start is None:
            self._clock_start = now
        # A client may send ahead of real time (a file): its audio is not late until
        # its own place on the stream's clock has passed.
        due = max(now, self._clock_start + self._pushed_s)
        self._pushed_s += seconds
        await self._inbox.put(_Audio(audio, emotion or None, now, due), seconds)
        self._queued_due.append(due)  # no await since the put: in step with the inbox

    async def push_phones(self, phones: Sequence[Phone], *, end: bool = False) -> None:
        """Queue phone timings (engines with ``phone_input``), in order with the audio."""
        self._check_input("push phones")
        if not self.session.capabilities.phone_input:
            raise ValueError(f"the {self.engine!r} engine takes audio only, not phone timings")
        await self._inbox.put(_Phones(tuple(phones), end), 0.0)

    async def key_emotion(
        self, time_s: float, name: str, intensity: float = 1.0, ramp_s: float = 0.3
    ) -> None:
        """From stream time ``time_s`` (seconds of this stream's audio), ease over
        ``ramp_s`` to emotion ``name`` at ``intensity`` (0..1), in order with the audio.
        Unknown names are refused now, with the known ones."""
        self._check_input("key an emotion")
        self.check_emotion_spec(name or None)
        if not (0.0 <= intensity <= 1.0) or ramp_s < 0 or time_s < 0:
            raise ValueError("intensity must be in [0, 1], ramp_s and time_s >= 0")
        await self._inbox.put(_Key(time_s, name, intensity, ramp_s), 0.0)

    async def flush(self) -> None:
        """End of an utterance: :class:`Flushed` follows its frames; the stream stays open."""
        self._check_input("flush")
        await self._inbox.put(_FLUSH, 0.0)

    async def interrupt(self) -> None:
        """Barge-in: drop the queued audio now; :class:`Interrupted` and a short release
        to rest follow the frames already being made."""
        self._check_input("interrupt")
        await self._inbox.drop(lambda item: isinstance(item, _Audio | _Phones))
        self._queued_due.clear()
        await self._inbox.put_front(_INTERRUPT)

    async def finish(self) -> None:
        """End of audio: the remaining frames, then :class:`Ended`."""
        self._check_input("finish")
        self._input_ended = True
        await self._inbox.put(_FINISH, 0.0)

    async def abort(self) -> None:
        """Stop now (the client left): the events iterator ends, queued audio is dropped."""
        self._input_ended = True
        self._inbox.clear()
        self._queued_due.clear()
        await self._inbox.put_front(_ABORT)

    @property
    def emotion_names(self) -> tuple[str, ...]:
        """The emotions a client may name: presets with their intensity steps folded
        into the base name (``happiness`` for ``happiness_1`` .. ``happiness_4``)."""
        return emotion_names(self._known_emotions or frozenset())

    def check_emotion(self, emotion: str) -> None:
        """Raise :class:`UnknownNameError` unless the profile knows ``emotion`` (a preset
        such as ``happiness_2`` or a base name such as ``happiness``)."""
        check_emotion(emotion, self._known_emotions or frozenset(), self.profile)

    def check_emotion_spec(self, name: str | None) -> None:
        """:meth:`check_emotion` for a client's emotion name (``None``/``neutral``: fine),
        listing the names a client may send."""
        if name is None or name == "neutral":
            return
        if name not in (self._known_emotions or frozenset()) and name not in self.emotion_names:
            known = list(self.emotion_names) or "(none: this profile has no emotion presets)"
            raise UnknownNameError("emotion", name, known, where=f"profile {self.profile!r}")

    # -- the consumer side ---------------------------------------------------------------
    async def events(self) -> AsyncIterator[StreamEvent]:
        """The stream's events in order; ends after :class:`Ended` (or an abort).

        Engine errors are raised from here (after every earlier event), and fail the
        stream."""
        session = self.session
        try:
            while not self._done:
                if self._shed is not None:
                    raise self._shed
                if not len(self._inbox):
                    self._last_lag = 0.0  # caught up: nothing of this stream is late
                run = await self._inbox.get_run(_joinable, self.options.max_push_s)
                item = run[0]
                if item is _ABORT:
                    return
                if item is _SHED:
                    continue  # raised at the top of the loop
                if isinstance(item, _Audio):
                    for _ in run:
                        self._queued_due.popleft()
                    self._check_lag(item)
                    async for event in self._push_run(run):
                        self._count(event)
                        yield event
                elif isinstance(item, _Phones):
                    await self._engine(session, call=functools.partial(self._phones, item))
                elif isinstance(item, _Key):
                    await self._engine(session, call=functools.partial(self._key, item))
                elif item is _FLUSH:
                    yield self._count(FramesEvent(await self._engine(session, call=session.flush)))
                    yield Flushed(session.frames_out)
                elif item is _INTERRUPT:
                    yield Interrupted(session.frames_out)
                    yield self._count(
                        FramesEvent(await self._engine(session, call=session.interrupt))
                    )
                elif item is _FINISH:
                    yield self._count(FramesEvent(await self._engine(session, finishing=True)))
                    self._done = True
                    yield Ended(session.frames_out)
        except BaseException:
            self._done = True
            if session.state is StreamState.OPEN:
                session.fail()
            raise

    async def _push_run(self, run: list[_Audio]) -> AsyncIterator[FramesEvent]:
        """Push one run's audio in pieces of ``max_push_s``; yield its frames, re-chunked."""
        audio = np.concatenate([b.audio for b in run]) if len(run) > 1 else run[0].audio
        emotion, arrived = run[0].emotion, run[-1].arrived
        rate = self.session.input_rate
        step = max(1, int(self.options.max_push_s * rate))
        chunk = self.options.chunk_frames
        carry: FrameBatch | None = None
        body, body_start = 0, 0  # the body holding the piece's first sample
        for start in range(0, max(1, audio.shape[0]), step):
            piece = audio[start : start + step]
            while body < len(run) - 1 and start >= body_start + run[body].audio.shape[0]:
                body_start += run[body].audio.shape[0]
                body += 1
            # Due: the piece's first sample on its body's clock (the end of a long body
            # sent at once is not late before real time reaches it).
            due = run[body].due + (start - body_start) / rate
            began = time.perf_counter()
            pushed = await self._engine(self.session, piece, emotion, due=due)
            if self._observer.push_seconds is not None:
                self._observer.push_seconds(time.perf_counter() - began)
            batch = carry.then(pushed) if carry is not None else pushed
            last = start + step >= audio.shape[0]
            keep = len(batch) % chunk if chunk is not None and not last else 0
            batch, carry = batch.split_at(len(batch) - keep)
            if len(batch):
                yield FramesEvent(batch, time.monotonic() - arrived)

    def _check_lag(self, item: _Audio) -> None:
        """At a run's turn: its audio may have waited too long already (a consumer that
        was busy, a long call before it)."""
        self._last_lag = lag = self._clock() - item.due
        bound = self.options.max_lag_s
        if bound is not None and lag > bound:
            raise self._lag_error(lag, bound)

    @staticmethod
    def _lag_error(lag: float, bound: float) -> LimitExceededError:
        return LimitExceededError(
            f"the server is overloaded: this stream fell {lag:.1f} s behind real time "
            f"(max_lag_s={bound:g}); try again later",
            limit="max_lag_s", value=bound, code=1013,
        )  # fmt: skip

    # -- waiting for the engine, watched ----------------------------------------------------
    def _oldest_due(self) -> float | None:
        """While the stream waits for its engine: when its oldest audio not yet animated
        was due (``None``: not waiting, or no audio waits)."""
        if self._waiting is None:
            return None
        if self._waiting_due is not None:
            return self._waiting_due
        return self._queued_due[0] if self._queued_due else None

    async def _engine(
        self,
        session: Session,
        audio: FloatArray | None = None,
        emotion: str | None = None,
        *,
        due: float | None = None,
        call: Callable[[], FrameBatch] | None = None,
        finishing: bool = False,
    ) -> FrameBatch:
        """One call on the pusher (a push of audio ``due`` then, a ``call`` or the
        finish), awaited under the lag bound: a watchdog fails the wait with 1013 as
        soon as the oldest audio not yet animated is over ``max_lag_s`` (one long batch
        must not deliver its frames a whole batch late), and :meth:`shed` ends it."""
        if self._shed is not None:
            raise self._shed
        future = self._pusher.submit(session, audio, emotion, call=call, finishing=finishing)
        self._waiting, self._waiting_due = future, due
        self._arm()
        try:
            return await future
        finally:
            self._last_lag = self.lag_s
            self._waiting = self._waiting_due = None
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None

    def _arm(self, at_least_s: float = 0.0) -> None:
        """Wake the watchdog when the oldest waiting audio reaches the lag bound."""
        bound, due = self.options.max_lag_s, self._oldest_due()
        if bound is None or due is None:
            return
        delay = max(at_least_s, due + bound - self._clock())
        self._watchdog = asyncio.get_running_loop().call_later(delay, self.check_lag)

    def check_lag(self) -> None:
        """Fail the wait for the engine (1013) if the stream is now over its lag bound;
        called by the watchdog (and by tests with an injected clock)."""
        if self._watchdog is not None:  # called early by hand: one watchdog at a time
            self._watchdog.cancel()
            self._watchdog = None
        waiting, bound = self._waiting, self.options.max_lag_s
        if waiting is None or waiting.done() or bound is None:
            return
        lag = self.lag_s
        if lag > bound:
            waiting.set_exception(self._lag_error(lag, bound))
        else:  # early (a clock that drifts from the loop's): look again
            self._arm(REARM_MIN_S)

    def _count(self, event: FramesEvent) -> FramesEvent:
        if self._observer.frames_out is not None and len(event.batch):
            self._observer.frames_out(len(event.batch), event.latency_s)
        return event

    def _key(self, item: _Key) -> FrameBatch:
        self.session.key_emotion(item.time_s, item.name, item.intensity, item.ramp_s)
        return self._no_frames()

    def _no_frames(self) -> FrameBatch:
        return FrameBatch(
            self.session.frames_out,
            self.names,
            np.zeros((0, len(self.names)), np.float32),
            self.fps,
        )

    def _phones(self, item: _Phones) -> FrameBatch:
        if item.phones:
            self.session.push_phones(item.phones)
        if item.end:
            self.session.end_phones()
        return FrameBatch(
            self.session.frames_out,
            self.names,
            np.zeros((0, len(self.names)), np.float32),
            self.fps,
        )

    # -- lifecycle ------------------------------------------------------------------------
    def _check_input(self, action: str) -> None:
        if self._input_ended or self.session.state is not StreamState.OPEN:
            state = "finished" if self._input_ended else self.session.state.value
            raise StreamClosedError(f"cannot {action}: the stream's input is {state}", state=state)

    async def __aenter__(self) -> StreamRunner:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the stream: queued audio is dropped; an unfinished session fails."""
        self._done = True
        self._input_ended = True
        self._inbox.clear()
        self._queued_due.clear()
        if self.session.state is StreamState.OPEN:
            self.session.fail()
