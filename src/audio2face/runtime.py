"""The runtime: loaded engines, profiles and worker threads, shared by all streams.

It is the in-process API behind every transport::

    runtime = Runtime.start(Settings())
    session, profile = runtime.open_session("arkit", input_rate=16000)
    batch = session.push(audio)

The CLI's ``convert`` and the servers use exactly this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from audio2face.engines.loading import load_engines
from audio2face.engines.phonemes import PhonemeEngine
from audio2face.errors import ConfigError
from audio2face.metrics import Metrics
from audio2face.profiles import Profile, ProfileRegistry
from audio2face.settings import Settings, cpu_count
from audio2face.streaming.pusher import BatchPusher
from audio2face.streaming.session import Session
from audio2face.types import Engine, FloatArray, FrameBatch

logger = logging.getLogger("audio2face.runtime")


@dataclass
class Runtime:
    """Everything a stream needs that is shared between streams."""

    settings: Settings
    engines: Mapping[str, Engine]
    profiles: ProfileRegistry
    executor: ThreadPoolExecutor
    metrics: Metrics
    batch_timed_engines: frozenset[str] = frozenset()
    """Engines whose inference runs are timed by their batcher (``a2f_inference_seconds``)."""
    pusher: BatchPusher | None = None
    """Runs the pushes of sessions that can batch (see :attr:`Session.batch_key`)."""
    _fps_engines: dict[tuple[str, float], Engine] = field(default_factory=dict, repr=False)
    _fps_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
        profiles = ProfileRegistry(settings, available_engines=loaded.keys())
        # Stream threads do per-stream work and mostly wait on a batch; at most
        # inference_workers of them run a model at once (engines/batching.py).
        executor = ThreadPoolExecutor(
            max_workers=max(settings.stream_workers, settings.inference_workers),
            thread_name_prefix="a2f-stream",
        )
        metrics = metrics or Metrics()
        timed = set()
        for name, engine in loaded.items():
            attach = getattr(engine, "attach_batch_observer", None)
            if callable(attach):
                attach(batch_observer(metrics, name))
                timed.add(name)
        if settings.intra_op_threads * settings.inference_workers > cpu_count():
            logger.warning(
                "intra_op_threads=%d x inference_workers=%d exceeds %d CPU cores: "
                "inference threads will compete for cores",
                settings.intra_op_threads, settings.inference_workers, cpu_count(),
            )  # fmt: skip
        pusher = BatchPusher(
            threads=settings.inference_workers,
            max_batch=settings.max_batch_size,
            wait_s=settings.batch_wait_ms / 1000.0,
        )
        logger.info("engines loaded: %s", ", ".join(sorted(loaded)) or "none")
        return cls(settings, loaded, profiles, executor, metrics, frozenset(timed), pusher)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.pusher is not None:
            self.pusher.close()

    def resolve_profile(self, name: str | None) -> Profile:
        """The profile called ``name``; unknown names fall back to the default (logged)."""
        return self.profiles.resolve(name).profile

    def open_session(
        self, profile: Profile | str | None, input_rate: int, *, seed: int | None = None
    ) -> tuple[Session, Profile]:
        """A new :class:`Session` for one utterance of audio at ``input_rate``."""
        if not isinstance(profile, Profile):
            profile = self.resolve_profile(profile)
        engine = self.engine_for(profile)
        chain = profile.build_chain(engine.output_names)
        session = Session(
            engine.open_stream(),
            chain.new_stream(seed),
            names=chain.output_names,
            fps=engine.fps,
            input_rate=input_rate,
            engine_rate=engine.sample_rate,
        )
        return session, profile

    def engine_for(self, profile: Profile) -> Engine:
        """The loaded engine of ``profile``, at the profile's frame rate.

        Engines that can run at any rate offer ``at_fps(fps)``; one per rate is made on
        first use and kept, so the model itself is still loaded once.
        """
        engine = self.engines.get(profile.engine)
        if engine is None:
            raise ConfigError(
                f"profile {profile.name!r} needs the {profile.engine!r} engine, which is not "
                f"loaded; {engine_hint(profile.engine)}"
            )
        if abs(engine.fps - profile.fps) < 1e-9:
            return engine
        key = (profile.engine, float(profile.fps))
        with self._fps_lock:
            if key not in self._fps_engines:
                at_fps = getattr(engine, "at_fps", None)
                if not callable(at_fps):
                    raise ConfigError(
                        f"profile {profile.name!r} asks for {profile.fps:g} fps but the "
                        f"{profile.engine!r} engine runs at {engine.fps:g} fps only"
                    )
                self._fps_engines[key] = at_fps(profile.fps)
            return self._fps_engines[key]

    def convert(
        self,
        audio: FloatArray,
        sample_rate: int,
        profile: Profile | str | None = None,
        *,
        seed: int | None = 0,
        emotion: str | None = None,
        progress: bool = False,
    ) -> FrameBatch:
        """Animate a whole clip in-process (no server), optionally with a progress bar.

        ``emotion`` is the ``offset_name`` of the whole clip (``None``: neutral)."""
        session, _ = self.open_session(profile, sample_rate, seed=seed)
        audio = np.asarray(audio, dtype=np.float32)
        step = sample_rate  # one second per push keeps the bar moving and memory flat
        parts = []
        with tqdm(
            total=round(audio.shape[0] / sample_rate, 1), unit="s", disable=not progress,
            desc="animating",
        ) as bar:  # fmt: skip
            for start in range(0, audio.shape[0], step):
                chunk = audio[start : start + step]
                parts.append(session.push(chunk, emotion).values)
                bar.update(round(chunk.shape[0] / sample_rate, 3))
        parts.append(session.finish().values)
        return FrameBatch(
            first_frame=0, names=session.names, values=np.concatenate(parts), fps=session.fps
        )


def animate_phones(
    profile: Profile,
    phones: Sequence[tuple[float, float, str]],
    duration_s: float,
    *,
    emotion: str | None = None,
    seed: int | None = 0,
) -> FrameBatch:
    """Animate known phone timings (TTS) with the ``phonemes`` engine, shaped by
    ``profile``'s postprocess chain (any profile whose input is ARKit 52)."""
    engine = PhonemeEngine(fps=profile.fps)
    frames = engine.animate(phones, duration_s)
    chain = profile.build_chain(engine.output_names)
    values = chain.new_stream(seed)(frames, emotion)
    return FrameBatch(first_frame=0, names=chain.output_names, values=values, fps=profile.fps)


def batch_observer(metrics: Metrics, engine: str) -> Callable[[int, float], None]:
    """Record each inference batch of ``engine``: streams in it and seconds it took."""
    seconds_hist = metrics.inference_seconds.labels(engine=engine)

    def observe(size: int, seconds: float) -> None:
        metrics.batch_size.observe(size)
        seconds_hist.observe(seconds)

    return observe


def engine_hint(engine: str) -> str:
    """What a user should do to get ``engine`` loaded."""
    if engine == "unitalker":
        return (
            "download unitalker_v0.4.0_base.onnx and point AUDIO2FACE_UNITALKER_MODEL "
            "(or `audio2face serve --unitalker-model PATH`) at it"
        )
    return "check the server log for why it failed to load"
