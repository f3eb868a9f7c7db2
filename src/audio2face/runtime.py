"""The runtime: loaded engines, profiles and pushers, shared by all streams.

It is the in-process API behind every transport, and the composition root that turns
:class:`~audio2face.settings.Settings` into the small option objects the layers below
take::

    runtime = Runtime.start(Settings())
    async with runtime.open_stream("arkit", input_rate=16000) as stream:
        await stream.push(audio)          # from a producer task
        await stream.finish()
        async for event in stream.events():
            ...                           # FramesEvent, Flushed, Interrupted, Ended

    frames = runtime.convert(audio, rate, "arkit")   # a whole clip, same path

The servers, the CLI's ``convert``, the HTTP upload route and ``live`` all use this.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
from tqdm import tqdm

from audio2face.audio.prosody import ProsodyTracker
from audio2face.errors import ConfigError, UnknownNameError
from audio2face.loading import UNITALKER_HINT, load_engines
from audio2face.metrics import Metrics
from audio2face.postprocess.base import DEFAULT_STREAM_OPTIONS, StreamOptions
from audio2face.postprocess.warmup import warm_up
from audio2face.profiles import Profile, ProfileRegistry
from audio2face.settings import Settings, cpu_count
from audio2face.streaming.pusher import BatchOptions, BatchPusher
from audio2face.streaming.runner import (
    FramesEvent,
    RunnerOptions,
    StreamObserver,
    StreamRunner,
    check_emotion,
)
from audio2face.streaming.session import Session
from audio2face.types import (
    BatchObserver,
    BatchReportingEngine,
    Engine,
    FloatArray,
    FrameBatch,
    Phone,
    frames_for_samples,
)

__all__ = ["Runtime", "batch_observer", "engine_hint", "probe_profile", "run_sync", "speak"]

if TYPE_CHECKING:
    from audio2face.engines.phonemes.espeak import Synthesis

logger = logging.getLogger("audio2face.runtime")

T = TypeVar("T")

MAX_FPS = 240.0
"""Highest output frame rate a stream may ask for."""


@dataclass
class Runtime:
    """Everything a stream needs that is shared between streams."""

    engines: Mapping[str, Engine]
    profiles: ProfileRegistry
    pushers: Mapping[str, BatchPusher]
    """One per engine: runs its streams' calls, batching pushes where it can."""
    metrics: Metrics
    runner_options: RunnerOptions
    _observers: dict[str, StreamObserver] = field(default_factory=dict, repr=False)

    @classmethod
    def start(
        cls,
        settings: Settings,
        *,
        engines: Mapping[str, Engine] | None = None,
        metrics: Metrics | None = None,
    ) -> Runtime:
        """Load engines (unless given) and profiles; blocking, run it off the event loop."""
        loaded = dict(engines) if engines is not None else load_engines(settings)
        profiles = ProfileRegistry(
            engines=loaded.keys(),
            profile_dir=settings.profile_dir,
            default_profile=settings.default_profile,
        )
        metrics = metrics or Metrics()
        for name, engine in loaded.items():
            if engine.capabilities.reports_batches:
                cast(BatchReportingEngine, engine).attach_batch_observer(
                    batch_observer(metrics, name)
                )
        if settings.intra_op_threads * settings.inference_workers > cpu_count():
            logger.warning(
                "intra_op_threads=%d x inference_workers=%d exceeds %d CPU cores: "
                "inference threads will compete for cores",
                settings.intra_op_threads, settings.inference_workers, cpu_count(),
            )  # fmt: skip
        batching = BatchOptions(
            threads=settings.inference_workers,
            max_batch=settings.max_batch_size,
            wait_s=settings.batch_wait_ms / 1000.0,
        )
        pushers = {name: BatchPusher(batching, name=f"a2f-{name}") for name in loaded}
        logger.info("engines loaded: %s", ", ".join(sorted(loaded)) or "none")
        # Compiled now rather than under the first stream that asks for head or gaze:
        # a second per kernel with an empty cache, milliseconds from numba's cache.
        logger.info("alive-feature kernels ready in %.2f s", warm_up())
        return cls(
            loaded, profiles, pushers, metrics, RunnerOptions(max_buffered_s=settings.max_buffered_s)
        )

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the pushers once their queued calls are done (waits up to ``timeout_s``)."""
        for pusher in self.pushers.values():
            pusher.close()
        for pusher in self.pushers.values():
            pusher.join(timeout_s)

    def profile(self, name: Profile | str | None) -> Profile:
        """The profile called ``name`` (empty: the default); unknown names and profiles
        whose engine is not loaded raise :class:`UnknownNameError` with the known ones."""
        return name if isinstance(name, Profile) else self.profiles.require(name)

    def open_session(
        self,
        profile: Profile | str | None,
        input_rate: int,
        *,
        seed: int | None = 0,
        engine: str | None = None,
        fps: float | None = None,
        features: StreamOptions | None = None,
    ) -> tuple[Session, Profile]:
        """A bare :class:`Session` (synchronous, no inbox or batching), for library code
        that drives one stream from one thread. Transports use :meth:`open_stream`.

        ``engine`` runs the profile's chain on another loaded engine with the same
        output names (``"phonemes"`` for known phone timings). ``fps`` replaces the
        profile's frame rate (engines that cannot run at it are resampled). ``features``
        switches the profile's alive features (head, gaze, blinks, tongue, arousal,
        emotion) off or on for this stream."""
        if fps is not None and not (0 < fps <= MAX_FPS):
            raise ValueError(f"fps must be in (0, {MAX_FPS:g}], got {fps:g}")
        profile = self.profile(profile)
        engine_def = self.engine_for(profile, engine)
        chain = profile.build_chain(engine_def.output_names)
        out_fps = fps or profile.fps
        # The voice's prosody is tracked only for chains with steps that use it (head,
        # gaze, blinks, tongue, arousal): it costs about as much as the model.
        tracker = ProsodyTracker(input_rate, out_fps) if chain.needs_prosody else None
        session = Session(
            engine_def,
            chain.new_stream(seed, features or DEFAULT_STREAM_OPTIONS),
            names=chain.output_names,
            fps=out_fps,
            input_rate=input_rate,
            prosody=tracker,
            runner=chain,
        )
        return session, profile

    def open_stream(
        self,
        profile: Profile | str | None,
        input_rate: int,
        *,
        seed: int | None = 0,
        chunk_frames: int | None = None,
        strict_emotions: bool = True,
        engine: str | None = None,
        fps: float | None = None,
        features: StreamOptions | None = None,
    ) -> StreamRunner:
        """A :class:`StreamRunner` for one stream of audio at ``input_rate``; use it as
        ``async with``. With ``strict_emotions`` (every interface but v1), an emotion
        the profile does not know is refused with the known ones. ``engine``: as in
        :meth:`open_session`."""
        session, profile = self.open_session(
            profile, input_rate, seed=seed, engine=engine, fps=fps, features=features
        )
        engine_def = self.engine_for(profile, engine)
        engine_name = engine or profile.engine
        options = self.runner_options
        if chunk_frames is not None:
            options = RunnerOptions(options.max_buffered_s, options.max_push_s, chunk_frames)
        chain = profile.build_chain(engine_def.output_names)
        return StreamRunner(
            session,
            self.pushers[engine_name],
            profile=profile.name,
            engine=engine_name,
            lookahead_s=engine_def.lookahead_s,
            options=options,
            known_emotions=chain.emotions if strict_emotions else None,
            observer=self._observer(engine_name, timed=engine_def.capabilities.reports_batches),
        )

    def _observer(self, engine: str, *, timed: bool) -> StreamObserver:
        """A runner's metrics: one observer per engine, shared by its streams."""
        found = self._observers.get(engine)
        if found is None:
            m = self.metrics
            inference = m.inference_seconds.labels(engine=engine)

            def frames_out(n: int, latency: float | None) -> None:
                m.frames_out.inc(n)
                if latency is not None:
                    m.frame_latency.observe(latency)

            def depth(delta: int) -> None:
                m.queue_depth.inc(delta)

            found = StreamObserver(
                audio_in=m.audio_seconds_in.inc,
                frames_out=frames_out,
                # Engines that time their own model runs report them (batch_observer).
                push_seconds=None if timed else inference.observe,
                queue_depth=depth,
            )
            self._observers[engine] = found
        return found

    def output_names(self, profile: Profile, engine: str | None = None) -> tuple[str, ...]:
        """The channel names a stream of ``profile`` will have."""
        return profile.build_chain(self.engine_for(profile, engine).output_names).output_names

    def check_emotion(self, profile: Profile, emotion: str) -> None:
        """Raise :class:`UnknownNameError` unless ``profile`` knows ``emotion``."""
        known = profile.build_chain(self.engine_for(profile).output_names).emotions
        check_emotion(emotion, known, profile.name)

    def engine_for(self, profile: Profile, engine: str | None = None) -> Engine:
        """The loaded engine of ``profile`` (or ``engine``, when given)."""
        name = engine or profile.engine
        found = self.engines.get(name)
        if found is None:
            raise UnknownNameError("engine", name, sorted(self.engines), hint=engine_hint(name))
        return found

    async def animate(
        self,
        audio: FloatArray,
        sample_rate: int,
        profile: Profile | str | None = None,
        *,
        seed: int | None = 0,
        emotion: str | None = None,
        phones: Sequence[Phone] | None = None,
        engine: str | None = None,
        fps: float | None = None,
        emotion_keys: Sequence[tuple[float, str, float]] = (),
        on_progress: Callable[[float], None] | None = None,
    ) -> FrameBatch:
        """Animate a whole clip through a stream runner, as a server would.

        ``emotion`` is the ``offset_name`` of the whole clip (``None``: neutral);
        ``emotion_keys`` are ``(time_s, name, intensity)`` keys, each eased in over
        0.3 s (profiles with emotion presets);
        ``phones`` feeds a ``phone_input`` engine (``engine="phonemes"``: then the audio
        only sets the clock); ``on_progress`` is told the seconds pushed so far."""
        audio = np.asarray(audio, dtype=np.float32)
        opened = self.open_stream(profile, sample_rate, seed=seed, engine=engine, fps=fps)
        async with opened as stream:
            if emotion:
                stream.check_emotion(emotion)

            async def feed() -> None:
                try:
                    for time_s, name, intensity in emotion_keys:
                        await stream.key_emotion(time_s, name, intensity)
                    if phones is not None:
                        await stream.push_phones(phones, end=True)
                    step = sample_rate  # a second per push keeps progress moving, memory flat
                    for start in range(0, audio.shape[0], step):
                        await stream.push(audio[start : start + step], emotion)
                        if on_progress is not None:
                            on_progress(min(audio.shape[0], start + step) / sample_rate)
                    await stream.finish()
                except BaseException:
                    await stream.abort()  # the consumer below stops; the error surfaces after
                    raise

            feeder = asyncio.create_task(feed(), name="a2f-animate-feed")
            parts: list[FloatArray] = []
            try:
                async for event in stream.events():
                    if isinstance(event, FramesEvent):
                        parts.append(event.batch.values)
            finally:
                if not feeder.done():
                    feeder.cancel()
                await asyncio.gather(feeder, return_exceptions=True)
            feeder.result()  # a refused push (unknown emotion) surfaces here
            values = np.concatenate(parts) if parts else np.zeros((0, len(stream.names)), np.float32)
            return FrameBatch(first_frame=0, names=stream.names, values=values, fps=stream.fps)

    def convert(
        self,
        audio: FloatArray,
        sample_rate: int,
        profile: Profile | str | None = None,
        *,
        seed: int | None = 0,
        emotion: str | None = None,
        phones: Sequence[Phone] | None = None,
        engine: str | None = None,
        fps: float | None = None,
        emotion_keys: Sequence[tuple[float, str, float]] = (),
        progress: bool = False,
    ) -> FrameBatch:
        """:meth:`animate` for synchronous callers, optionally with a progress bar."""
        total = round(audio.shape[0] / sample_rate, 1)
        with tqdm(total=total, unit="s", disable=not progress, desc="animating") as bar:

            def advance(seconds: float) -> None:
                bar.update(round(seconds, 3) - bar.n)

            return run_sync(
                self.animate(
                    audio, sample_rate, profile, seed=seed, emotion=emotion, phones=phones,
                    engine=engine, fps=fps, emotion_keys=emotion_keys, on_progress=advance,
                )  # fmt: skip
            )


    def animate_phones(
        self,
        profile: Profile | str | None,
        phones: Sequence[Phone],
        duration_s: float,
        *,
        emotion: str | None = None,
        seed: int | None = 0,
    ) -> FrameBatch:
        """Animate known phone timings (TTS) with the ``phonemes`` engine, shaped by
        ``profile``'s chain (any profile whose input is ARKit 52); ``duration_s`` of
        (silent) audio drives the clock."""
        rate = 16000
        silence = np.zeros(round(duration_s * rate), np.float32)
        return self.convert(
            silence, rate, profile, seed=seed, emotion=emotion, phones=phones, engine="phonemes"
        )


def speak(text: str, voice: str = "en-us", *, hint: str = "") -> Synthesis:
    """Speak ``text`` with espeak-ng: audio, its rate and the phone timings (for
    :meth:`Runtime.animate_phones` or as speech to animate). Needs the system library;
    raises :class:`ConfigError` saying how to install it otherwise (and ``hint``)."""
    from audio2face.engines.phonemes.espeak import (
        EspeakUnavailableError,
        SynthOptions,
        synthesize,
    )

    try:
        return synthesize(text, SynthOptions(voice=voice))
    except EspeakUnavailableError as exc:
        extra = f", {hint}" if hint else ""
        raise ConfigError(f"speaking text needs espeak-ng ({exc}); apt-get install espeak-ng{extra}") from exc


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, also when the calling thread
    already runs an event loop (a notebook): then on a helper thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="a2f-sync") as pool:
        return pool.submit(asyncio.run, coro).result()


def batch_observer(metrics: Metrics, engine: str) -> BatchObserver:
    """Record each inference batch of ``engine``: streams in it and seconds it took."""
    seconds_hist = metrics.inference_seconds.labels(engine=engine)

    def observe(size: int, seconds: float) -> None:
        metrics.batch_size.observe(size)
        seconds_hist.observe(seconds)

    return observe


def engine_hint(engine: str) -> str:
    """What a user should do to get ``engine`` loaded."""
    if engine == "unitalker":
        return UNITALKER_HINT
    return "check the server log for why it failed to load"


PROBE_SECONDS = 0.2


def probe_profile(
    profile: Profile, engines: Mapping[str, Engine], errors: Mapping[str, str] | None = None
) -> str | None:
    """Why ``profile`` cannot run with ``engines``, or ``None``: its engine must be
    loaded, its chain must bind to the engine's outputs, and a short stream of silence
    must give the frame count of the profile's fps. ``errors`` says why engines failed
    to load (:func:`~audio2face.loading.try_load_engines`)."""
    engine = engines.get(profile.engine)
    if engine is None:
        why = (errors or {}).get(profile.engine, "unknown engine")
        return f"engine {profile.engine!r} not loaded: {why}"
    try:
        chain = profile.build_chain(engine.output_names)
        session = Session(
            engine, chain.new_stream(0), names=chain.output_names, fps=profile.fps,
            input_rate=engine.sample_rate,
        )  # fmt: skip
        n = round(PROBE_SECONDS * engine.sample_rate)
        frames = len(session.push(np.zeros(n, np.float32))) + len(session.finish())
    except Exception as exc:  # any failure here is what a stream would meet
        return " ".join((str(exc) or type(exc).__name__).split())
    expected = frames_for_samples(n, engine.sample_rate, profile.fps)
    if frames != expected:
        return (
            f"{profile.fps:g} fps: {frames} frames for {PROBE_SECONDS:g} s instead of "
            f"{expected}; engine {profile.engine!r} runs at {engine.fps:g} fps"
        )
    return None
