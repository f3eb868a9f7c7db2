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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audio2face.errors import UnknownNameError
from audio2face.postprocess.base import (
    DEFAULT_STREAM_OPTIONS,
    FeatureStep,
    Step,
    StepContext,
    StreamOptions,
    base_emotion,
)
from audio2face.postprocess.emotion_keys import DEFAULT_RAMP_S, EmotionKey, EmotionTrack
from audio2face.types import FloatArray

if TYPE_CHECKING:
    from audio2face.audio.prosody import Prosody

logger = logging.getLogger(__name__)

__all__ = ["Chain", "ChainStream"]

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
            keyed |= getattr(step, "keyed_emotions", frozenset())
        self.keyed_emotions: frozenset[str] = frozenset(keyed)
        """Names a timed emotion key may use (base names and preset names)."""
        self.features: frozenset[str] = frozenset(
            f for f in (getattr(s, "feature", None) for s in self.steps) if f
        )
        """The switchable features this chain's steps provide."""
        self.needs_prosody: bool = any(getattr(s, "uses_prosody", False) for s in self.steps)
        """Whether any step reads voice features (a caller without audio may skip them)."""
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
        self._states = [
            step.new_state(np.random.default_rng(next(extra) if is_alive else next(classic)))
            for step, is_alive in zip(self.chain.steps, alive, strict=True)
        ]
        self._frame = 0
        self._shared: dict[str, Any] = {}
        self._track: EmotionTrack | None = None
        # Per step, once: the callable this stream runs (the step, or its bypass when
        # the stream switched the step's feature off) and a context updated per call.
        off = self.options.off
        self._runs: list[tuple[Any, StepContext]] = []
        for step, state in zip(self.chain.steps, self._states, strict=True):
            feature = getattr(step, "feature", None)
            bypass = getattr(step, "bypass", None) if feature and feature in off else None
            ctx = StepContext(0, None, state, None, self.options, self._shared, None)
            self._runs.append((bypass if bypass is not None else step, ctx))

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
        emo = self.chain.resolve_emotion(emotion)
        for run, ctx in self._runs:
            ctx.frame_index = self._frame
            ctx.emotion = emo
            ctx.prosody = prosody
            ctx.emotion_track = self._track
            x = run(x, ctx)
        self._frame += n
        if self._track is not None:
            self._track.forget_before(self._frame / self.chain.fps)
        return x
