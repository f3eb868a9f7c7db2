"""A chain of bound steps, and its per-stream runner.

``Chain`` is immutable and shared by all streams of a profile; ``Chain.new_stream()``
gives a :class:`ChainStream` that owns the stream's frame counter, random generators
and step states. Feeding a stream 100 frames at once or in ten chunks of ten gives the
same output for the same seed.

Emotions: a chunk's emotion (``offset_name``) is kept when some step knows it (or its
base emotion, ``anger`` for ``anger_3``). An unknown one is logged once per chain and
treated as neutral (``None``); an empty string is neutral. Timed emotion keys
(:meth:`ChainStream.add_emotion_key`) are refused when no step knows their name.

Voice features: ``stream(values, emotion, prosody)`` hands each step the
:class:`~audio2face.audio.prosody.Prosody` of exactly these frames (``None`` when the
caller has no audio). Steps of a switchable feature (head, gaze, blinks, tongue,
arousal, emotion) are bypassed for a stream whose :class:`StreamOptions` turn it off.

Many streams: :meth:`Chain.run_many` runs the new frames of several streams of the
chain together. The alive steps then work on all their rows at once
(:mod:`~audio2face.postprocess.batch`), row-wise steps (clip, scale, threshold) run
once, and the others stream by stream. A stream's output is the same whether it runs
alone or in any batch (a single stream's call is a batch of one).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from audio2face.errors import UnknownNameError
from audio2face.postprocess.base import (
    DEFAULT_STREAM_OPTIONS,
    FeatureStep,
    Step,
    StepContext,
    StreamOptions,
    base_emotion,
)
from audio2face.postprocess.batch import Batch
from audio2face.postprocess.emotion_keys import DEFAULT_RAMP_S, EmotionKey, EmotionTrack
from audio2face.types import FloatArray

if TYPE_CHECKING:
    from audio2face.audio.prosody import Prosody

logger = logging.getLogger(__name__)

__all__ = ["Chain", "ChainStream"]

ROWWISE_STEPS = frozenset({"blendshape_clip", "scale", "blendshape_threshold", "unitalker_clip"})
"""Step types whose output row depends only on the input row (elementwise, no state,
no emotion): a batch runs them once over every stream's rows."""

MAX_WARNED_EMOTIONS = 256
"""Distinct unknown emotion names warned about per chain; later ones go unlogged."""


class Chain:
    """Bound steps in order, from ``input_names`` to ``output_names``."""

    def __init__(
        self, steps: Sequence[Step], input_names: Sequence[str], fps: float = 30.0
    ) -> None:
        self.steps: tuple[Step, ...] = tuple(steps)
        self.fps = float(fps)
        self.input_names: tuple[str, ...] = tuple(input_names)
        self.output_names: tuple[str, ...] = (
            self.steps[-1].output_names if self.steps else self.input_names
        )
        known: set[str] = set()
        for step in self.steps:
            known |= step.emotions
        self.emotions: frozenset[str] = frozenset(known)
        keyed: set[str] = set()
        for step in self.steps:
            keyed |= step.keyed_emotions
        self.keyed_emotions: frozenset[str] = frozenset(keyed)
        """Names a timed emotion key may use (base names and preset names)."""
        self.features: frozenset[str] = frozenset(s.feature for s in self.steps if s.feature)
        """The switchable features this chain's steps provide."""
        self.needs_prosody: bool = any(s.uses_prosody for s in self.steps)
        """Whether any step reads voice features (a caller without audio may skip them)."""
        self._kinds = [
            "batch" if isinstance(s, FeatureStep)
            else "rowwise" if s.type_name in ROWWISE_STEPS
            else "stream"
            for s in self.steps
        ]  # fmt: skip
        # Every alive step's state of a stream lives in one float64 row, step after
        # step, so a batch gathers and scatters the streams' states once.
        self._slices: list[slice | None] = []
        width = 0
        for step in self.steps:
            if isinstance(step, FeatureStep):
                self._slices.append(slice(width, width + step.state_size))
                width += step.state_size
            else:
                self._slices.append(None)
        self._rowwise_ctx = StepContext(0, None, None)
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def new_stream(
        self, seed: int | None = None, options: StreamOptions = DEFAULT_STREAM_OPTIONS
    ) -> ChainStream:
        """Per-stream runner; ``seed`` fixes its random choices (``None``: fresh entropy);
        ``options`` switch features off for this stream."""
        return ChainStream(self, seed, options)

    def resolve_emotion(self, emotion: str | None) -> str | None:
        """The emotion the steps will see: itself if known, else ``None`` (warned once)."""
        if not emotion:
            return None
        if emotion in self.emotions or base_emotion(emotion) in self.emotions:
            return emotion
        with self._lock:
            # Names come from clients: remember a bounded number, so a client sending
            # endless distinct names cannot grow the server's memory.
            first = emotion not in self._warned and len(self._warned) < MAX_WARNED_EMOTIONS
            if first:
                self._warned.add(emotion)
        if first:
            logger.warning(
                "unknown emotion %r treated as neutral; known: %s",
                emotion[:80],
                ", ".join(sorted(self.emotions)) or "(none)",
            )
        return None

    def run_many(
        self,
        streams: Sequence[ChainStream],
        values: FloatArray,
        counts: Sequence[int],
        emotions: Sequence[str | None],
        prosody: Prosody | None = None,
    ) -> FloatArray:
        """The next ``counts[i]`` frames of each of ``streams`` (streams of this chain,
        each at most once), whose rows are ``values`` stream after stream; returns the
        output rows in the same order. ``emotions[i]`` applies to stream ``i``'s frames;
        ``prosody``, when given, covers exactly these rows (as
        :meth:`~audio2face.audio.prosody.ProsodyTracker.take_rows` gives them)."""
        x = np.asarray(values, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.input_names):
            raise ValueError(
                f"expected frames of shape [n, {len(self.input_names)}], got {x.shape}"
            )
        if x.shape[0] != sum(counts) or (prosody is not None and len(prosody) != x.shape[0]):
            raise ValueError("the frame counts, the frames and the prosody do not match")
        firsts = [s._frame for s in streams]
        batch: Batch | None = None
        alive: FloatArray | None = None
        starts: list[int] = []
        for j, step in enumerate(self.steps):
            kind = self._kinds[j]
            if kind == "rowwise":
                x = step(x, self._rowwise_ctx)
                continue
            if kind == "batch":
                if batch is None or alive is None:
                    batch = Batch.of(
                        counts, firsts, self.fps, prosody, [s.options for s in streams]
                    )
                    alive = np.array([s._alive for s in streams])
                    all_on = all(s._all_active for s in streams)
                x = self._run_feature(
                    j, cast(FeatureStep, step), streams, x, batch, alive, all_on
                )
                continue
            if not starts:
                starts = [0, *itertools.accumulate(counts)]
            pieces = []
            for i, stream in enumerate(streams):
                run, ctx = stream._runs[j]
                ctx.frame_index = firsts[i]
                ctx.emotion = self.resolve_emotion(emotions[i])
                ctx.emotion_track = stream._track
                pieces.append(run(x[starts[i] : starts[i + 1]], ctx))
            x = np.concatenate(pieces) if len(pieces) != 1 else pieces[0]
        if alive is not None:
            for stream, row in zip(streams, alive, strict=True):
                stream._alive = row
        for stream, n in zip(streams, counts, strict=True):
            stream._frame += n
            if stream._track is not None:
                stream._track.forget_before(stream._frame / self.fps)
        if batch is not None and len(streams) == 1:
            streams[0].events = batch.shared
        return x

    def _run_feature(
        self,
        j: int,
        step: FeatureStep,
        streams: Sequence[ChainStream],
        x: FloatArray,
        b: Batch,
        alive: FloatArray,
        all_on: bool,
    ) -> FloatArray:
        """Step ``j`` (a vectorised feature step) over the batch, on its columns of the
        streams' states (``alive``, updated in place); streams that switched its
        feature off get its bypass (``all_on``: none did, for any step)."""
        cols = self._slices[j]
        if all_on or all(s._active[j] for s in streams):
            # A contiguous copy, written back: the step's kernel is compiled for one
            # array layout (a column slice of ``alive`` would be a second one).
            states = np.ascontiguousarray(alive[:, cols])
            y = step.run_batch(x, b, states)
            alive[:, cols] = states
            return y
        active = [s._active[j] for s in streams]
        if not any(active):
            return step.bypass_rows(x)
        on = np.flatnonzero(active)
        sub, rows = b.subset(on)
        states = alive[on, cols]
        y_on = step.run_batch(x[rows], sub, states)
        alive[on, cols] = states
        y = np.empty((x.shape[0], len(step.output_names)), np.float32)
        y[rows] = y_on
        off_rows = np.setdiff1d(np.arange(x.shape[0]), rows, assume_unique=True)
        y[off_rows] = step.bypass_rows(x[off_rows])
        return y

    def __repr__(self) -> str:
        kinds = ", ".join(type(s).__name__ for s in self.steps)
        return f"Chain([{kinds}], {len(self.input_names)} -> {len(self.output_names)} channels)"


class ChainStream:
    """Runs a :class:`Chain` over the successive chunks of one stream."""

    def __init__(
        self, chain: Chain, seed: int | None = None, options: StreamOptions = DEFAULT_STREAM_OPTIONS
    ) -> None:
        self.chain = chain
        self.seed = seed
        self.options = options
        self.reset()

    @property
    def frame_index(self) -> int:
        """Stream frame number of the next frame to be processed."""
        return self._frame

    def reset(self) -> None:
        """Back to frame 0 with the same seed (a fresh stream)."""
        # The classic steps draw their seeds first, in order, so adding "alive" steps
        # to a profile leaves the others' random choices (blink schedules) unchanged:
        # with those features off the output is what it was before.
        root = np.random.SeedSequence(self.seed)
        alive = [isinstance(step, FeatureStep) for step in self.chain.steps]
        classic = iter(root.spawn(alive.count(False)))
        extra = iter(root.spawn(alive.count(True)))
        # An alive step's randomness is a counter-based hash of its key: the key comes
        # straight from the seed sequence (a generator per step would cost more than
        # the rest of a stream's set-up).
        self._states: list[Any] = [
            step.state_from_key(int(next(extra).generate_state(1, np.uint64)[0]) >> 1)
            if isinstance(step, FeatureStep)
            else step.new_state(np.random.default_rng(next(classic)))
            for step in self.chain.steps
        ]
        rows = [st for st, is_alive in zip(self._states, alive, strict=True) if is_alive]
        self._alive: npt.NDArray[np.float64] = np.concatenate(rows) if rows else np.zeros(0)
        """The alive steps' states, one after the other (see ``Chain._slices``)."""
        self._frame = 0
        self._track: EmotionTrack | None = None
        self.events: dict[str, Any] = {}
        """What the steps passed on in the last single-stream call (the gaze step's
        saccade amplitudes per frame: ``events["saccade_deg"]``), for benchmarks."""
        # Per step, once: whether this stream runs it (a switched-off feature is
        # bypassed), and for the per-stream steps the callable and a context.
        off = self.options.off
        self._active = [
            step.active(self.options) if isinstance(step, FeatureStep) else True
            for step in self.chain.steps
        ]
        self._all_active = all(self._active)
        self._runs: list[tuple[Any, StepContext]] = []
        for step, state in zip(self.chain.steps, self._states, strict=True):
            switched_off = bool(step.feature) and step.feature in off
            ctx = StepContext(0, None, state, None, self.options, {}, None)
            self._runs.append((step.bypass if switched_off else step, ctx))

    @property
    def emotion_track(self) -> EmotionTrack | None:
        """The stream's timed emotion keys (``None`` until the first key)."""
        return self._track

    def add_emotion_key(
        self, time_s: float, name: str, intensity: float = 1.0, ramp_s: float = DEFAULT_RAMP_S
    ) -> None:
        """From stream time ``time_s``, ramp over ``ramp_s`` to emotion ``name`` at
        ``intensity`` (0..1). ``name`` is a base emotion (``happiness``), a preset
        (``happiness_2``) or ``neutral``; other names raise :class:`UnknownNameError`."""
        known = self.chain.keyed_emotions
        if name not in ("", "neutral") and name not in known:
            raise UnknownNameError("emotion", name, sorted(known) or "(no emotion presets)")
        key = EmotionKey(float(time_s), name, float(intensity), float(ramp_s))
        if self._track is None:
            self._track = EmotionTrack(self.chain.fps)
        self._track.add(key)

    def __call__(
        self,
        values: FloatArray,
        emotion: str | None = None,
        prosody: Prosody | None = None,
    ) -> FloatArray:
        """Process the next ``[n, len(input_names)]`` frames; return ``[n, len(output_names)]``.

        ``values`` is not modified. ``emotion`` applies to all frames of this chunk;
        ``prosody``, when given, must cover exactly these frames.
        """
        x = np.asarray(values, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.chain.input_names):
            raise ValueError(
                f"expected frames of shape [n, {len(self.chain.input_names)}], got {x.shape}"
            )
        n = int(x.shape[0])
        if prosody is not None and (len(prosody) != n or prosody.first_frame != self._frame):
            raise ValueError(
                f"prosody covers frames {prosody.first_frame}..+{len(prosody)}, but these "
                f"frames are {self._frame}..+{n}; take the tracker's frames in step with the chain"
            )
        return self.chain.run_many([self], x, [n], [emotion], prosody)
