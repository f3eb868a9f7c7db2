"""The ``phonemes`` engine: animation from phone timings the caller already knows (TTS).

The :class:`~audio2face.types.Engine` protocol feeds audio, but this engine's input
is the phone list. The audio only drives the *clock*:

* :meth:`PhonemeStream.push_phones` appends timed phones (seconds from the stream's
  first sample, in order);
* :meth:`PhonemeStream.push` advances the audio clock and returns every new frame
  that both the clock has reached and the known phones fully determine (a frame at
  ``t`` needs phones up to ``t + lookahead_s``);
* :meth:`PhonemeStream.end_phones` says no more phones will come (frames past the
  last phone are rest and need not wait);
* :meth:`PhonemeStream.finish` returns the rest, so the stream produced exactly
  ``frames_for_samples(total_samples, sample_rate, fps)`` frames.

Frames equal those of :meth:`PhonemeEngine.animate` on the whole phone list, however
audio and phones were split, because the synthesiser only looks ``lookahead_s`` away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from audio2face.engines.phonemes.synth import Phone, Synthesizer, default_synthesizer
from audio2face.types import (
    EngineCapabilities,
    FloatArray,
    StreamState,
    empty_frames,
    frames_for_samples,
    require_open,
)

__all__ = ["PhonemeEngine", "PhonemeStream"]

DEFAULT_SAMPLE_RATE = 16000
DEFAULT_FPS = 30.0
_EPS = 1e-9


class PhonemeStream:
    """Per-stream state: pushed phones, the audio clock and frames emitted so far.

    A :class:`~audio2face.types.PhoneInputStream`."""

    def __init__(self, synth: Synthesizer, sample_rate: int, fps: float) -> None:
        self._synth = synth
        self._sr = sample_rate
        self._fps = fps
        self.reset()

    def reset(self) -> None:
        """Forget all phones and audio; the stream starts again at frame 0."""
        self._phones: list[Phone] = []
        self._known_until = 0.0
        self._samples = 0
        self._emitted = 0
        self.phones_ended = False
        self.state = StreamState.OPEN

    def push_phones(self, phones: Sequence[Phone]) -> None:
        """Append timed phones ``(start_s, end_s, label)``, seconds from the first sample.

        Phones must come in time order and must not start before the end of phones
        already pushed (a TTS streams them that way); raises ``ValueError`` otherwise.
        """
        require_open(self.state, "push phones")
        if self.phones_ended:
            raise ValueError("push_phones() after end_phones(): no more phones were to come")
        new = sorted((float(s), float(e), str(p)) for s, e, p in phones)
        for s, e, p in new:
            if e < s or not (math.isfinite(s) and math.isfinite(e)):
                raise ValueError(f"bad phone span ({s}, {e}, {p!r}): need start <= end")
            if s < self._known_until - 1e-6:
                raise ValueError(
                    f"phone ({s}, {e}, {p!r}) starts before already pushed phones end "
                    f"({self._known_until:.3f} s); push phones in time order"
                )
            self._known_until = max(self._known_until, e)
        self._synth.prepare(new)  # validate labels now, not at render time
        self._phones.extend(new)

    def end_phones(self) -> None:
        """No more phones: frames after the last phone are rest and are emitted freely."""
        require_open(self.state, "end phones")
        self.phones_ended = True

    def push(self, audio: FloatArray, emotion: str | None = None) -> FloatArray:
        """Advance the audio clock by ``len(audio)`` samples; return the frames now ready.

        The audio content is not analysed (``emotion`` is ignored): phones drive the face.
        """
        require_open(self.state, "push audio")
        self._samples += int(np.asarray(audio).shape[0])
        return self._emit(self._ready_frames())

    def finish(self) -> FloatArray:
        """End of audio: every remaining frame, so the frame clock is exact."""
        require_open(self.state, "finish")
        self.state = StreamState.FINISHED
        return self._emit(frames_for_samples(self._samples, self._sr, self._fps))

    def _ready_frames(self) -> int:
        clock = frames_for_samples(self._samples, self._sr, self._fps)
        if self.phones_ended:
            return clock
        # Frame i is determined once phones are known up to i/fps + reach.
        horizon = self._known_until - self._synth.reach_s
        known = math.floor(horizon * self._fps + _EPS) + 1 if horizon >= 0 else 0
        return min(clock, known)

    def _emit(self, upto: int) -> FloatArray:
        n = upto - self._emitted
        if n <= 0:
            return empty_frames(len(self._synth.names))
        out = self._synth.frames(self._phones, n, self._fps, first_frame=self._emitted)
        self._emitted = upto
        # Phones that ended more than reach_s before the next frame no longer matter.
        cutoff = self._emitted / self._fps - self._synth.reach_s
        if self._phones and self._phones[0][1] < cutoff:
            self._phones = [p for p in self._phones if p[1] >= cutoff]
        return out


class PhonemeEngine:
    """Phone-driven ARKit-52 animation; implements :class:`~audio2face.types.Engine`.

    ``lookahead_s`` is how far past a frame's time the phones must be known. Its
    streams take phones (``capabilities.phone_input``); the runtime feeds them through
    ``Session.push_phones`` like any other stream.
    """

    capabilities = EngineCapabilities(any_fps=True, phone_input=True)

    def __init__(self, *, fps: float = DEFAULT_FPS, sample_rate: int = DEFAULT_SAMPLE_RATE,
                 synthesizer: Synthesizer | None = None) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self._fps = float(fps)
        self._sr = int(sample_rate)
        self._synth = synthesizer if synthesizer is not None else default_synthesizer()

    @property
    def name(self) -> str:
        return "phonemes"

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._synth.names

    @property
    def sample_rate(self) -> int:
        return self._sr

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def lookahead_s(self) -> float:
        return self._synth.reach_s

    def open_stream(self, fps: float | None = None) -> PhonemeStream:
        """A new stream; feed it with ``push_phones`` and drive it with ``push``."""
        return PhonemeStream(self._synth, self._sr, self._fps if fps is None else float(fps))

    def animate(self, phones: Sequence[Phone], duration_s: float,
                fps: float | None = None) -> FloatArray:
        """Frames for a whole utterance: ``round(duration_s * fps)`` rows, frame i at i/fps."""
        f = self._fps if fps is None else float(fps)
        n = frames_for_samples(round(duration_s * self._sr), self._sr, f)
        return self._synth.frames(phones, n, f)

    def animate_text(self, text: str, voice: str = "en-us",
                     fps: float | None = None) -> tuple[FloatArray, int, FloatArray]:
        """Speak ``text`` with espeak-ng; return ``(audio, sample_rate, frames)``.

        Optional: needs libespeak-ng (``apt-get install libespeak-ng1``); raises the
        espeak module's ``EspeakUnavailableError`` (or ``ImportError``) otherwise.
        """
        from audio2face.engines.phonemes.espeak import SynthOptions, synthesize

        syn = synthesize(text, SynthOptions(voice=voice))
        f = self._fps if fps is None else float(fps)
        n = frames_for_samples(len(syn.audio), syn.sample_rate, f)
        return syn.audio, syn.sample_rate, self._synth.frames(syn.phones, n, f)
