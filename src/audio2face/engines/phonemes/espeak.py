"""Text-driven speech and phone timings from libespeak-ng, through ctypes.

This is a runtime-optional feature (text-driven lip sync) and the source of most
synthetic training data. libespeak-ng is loaded lazily on first use; if it is
absent, :class:`EspeakUnavailableError` says how to install it.

libespeak-ng keeps global state (one voice, one callback, one set of parameters),
so every call takes a module lock. Separate *processes* may each use their own
copy freely, which is how the training-data builder parallelises.

Timing comes from ``espeakEVENT_PHONEME`` events whose ``audio_position`` (ms)
marks where each phone starts in the synthesised audio. Phones are reported in
IPA (``espeakINITIALIZE_PHONEME_IPA``) because one IPA table maps every language
onto the unified set; see :mod:`audio2face.engines.phonemes.espeak_phones`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audio2face.engines.phonemes.espeak_phones import Phone, map_label, tile_phones, voice_language

__all__ = [
    "DEFAULT_OPTIONS",
    "EspeakError",
    "EspeakUnavailableError",
    "SynthOptions",
    "Synthesis",
    "available",
    "synthesize",
    "text_to_phones",
]

_LIB_NAMES = ("libespeak-ng.so.1", "libespeak-ng.so", "/usr/lib/x86_64-linux-gnu/libespeak-ng.so.1")

# speak_lib.h constants (the header is not installed, only the library).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_EE_OK = 0


class EspeakError(RuntimeError):
    """Base error of this module.

    EspeakError
    └── EspeakUnavailableError   (library missing or failed to initialise)
    """


class EspeakUnavailableError(EspeakError):
    """libespeak-ng could not be loaded or initialised."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class SynthOptions:
    """Voice and prosody for one synthesis.

    ``voice`` is an espeak-ng voice name, optionally with a variant
    (``"en-us+f3"``). ``rate`` is words per minute (espeak accepts 80..450),
    ``pitch`` and ``pitch_range`` are 0..100 (espeak's defaults are 50).
    """

    voice: str = "en-us"
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 100

    def __post_init__(self) -> None:
        if not 80 <= self.rate <= 450:
            raise ValueError(f"rate must be in 80..450 words per minute, got {self.rate}")
        for name in ("pitch", "pitch_range"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ValueError(f"{name} must be in 0..100, got {value}")
        if not 0 <= self.volume <= 200:
            raise ValueError(f"volume must be in 0..200, got {self.volume}")


DEFAULT_OPTIONS = SynthOptions()


@dataclass(frozen=True)
class Synthesis:
    """Result of :func:`synthesize`: mono float32 audio and phones tiling it."""

    audio: npt.NDArray[np.float32]
    sample_rate: int
    phones: list[Phone]
    raw_phones: list[tuple[float, str]]
    """Unmapped espeak IPA phones as (start_s, label); for diagnostics and tests."""

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


class _Engine:
    """The loaded library plus the state its callback writes into."""

    def __init__(self) -> None:
        lib = _load_library()
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]  # fmt: skip
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA)
        if rate <= 0:
            raise EspeakUnavailableError("espeak_Initialize failed (is espeak-ng-data installed?)")
        self.lib = lib
        self.sample_rate = int(rate)
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._events: list[tuple[int, str]] = []
        # Keep a reference: ctypes would otherwise free the trampoline under libespeak.
        self._callback = _CALLBACK(self._on_synth)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav: ctypes._Pointer[ctypes.c_short], n: int, events: ctypes._Pointer[_Event]) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                label = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self._events.append((ev.audio_position, label))
            i += 1
        return 0  # 0 = continue synthesis

    def run(self, text: str, options: SynthOptions) -> tuple[npt.NDArray[np.int16], list[tuple[int, str]]]:
        lib = self.lib
        if lib.espeak_SetVoiceByName(options.voice.encode()) != _EE_OK:
            raise ValueError(f"unknown espeak-ng voice {options.voice!r} (see `espeak-ng --voices`)")
        lib.espeak_SetParameter(_PARAM_RATE, options.rate, 0)
        lib.espeak_SetParameter(_PARAM_PITCH, options.pitch, 0)
        lib.espeak_SetParameter(_PARAM_RANGE, options.pitch_range, 0)
        lib.espeak_SetParameter(_PARAM_VOLUME, options.volume, 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data)
        lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, self._events


def _load_library() -> ctypes.CDLL:
    found = ctypes.util.find_library("espeak-ng")
    for name in ((found,) if found else ()) + _LIB_NAMES:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise EspeakUnavailableError(
        "libespeak-ng is not installed; text-driven lip sync needs it "
        "(Debian/Ubuntu: `apt-get install espeak-ng`, macOS: `brew install espeak-ng`)"
    )


_lock = threading.Lock()
_engine: _Engine | None = None


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def available() -> bool:
    """True when libespeak-ng can be loaded and initialised."""
    with _lock:
        try:
            _get_engine()
        except EspeakUnavailableError:
            return False
        return True


def synthesize(text: str, options: SynthOptions = DEFAULT_OPTIONS) -> Synthesis:
    """Speak ``text``; return float32 audio in [-1, 1] and unified phones tiling it.

    Phones are ``(start_s, end_s, label)`` in the unified set of
    :mod:`audio2face.engines.phonemes.phoneset`; gaps and pauses are ``SIL``.
    """
    if not text.strip():
        raise ValueError("text must contain something to speak")
    with _lock:
        engine = _get_engine()
        pcm, events = engine.run(text, options)
        sample_rate = engine.sample_rate
    audio = (pcm.astype(np.float32) / 32768.0).astype(np.float32)
    duration = len(audio) / sample_rate
    raw = [(ms / 1000.0, label) for ms, label in events]
    # The voice's language picks its own entries (English ɐ is a schwa, Korean ɐ is not),
    # as the training corpus maps them.
    lang = voice_language(options.voice)
    mapped = [(start, map_label(label, lang)) for start, label in raw]
    return Synthesis(audio, sample_rate, tile_phones(mapped, duration), raw)


def text_to_phones(text: str, options: SynthOptions = DEFAULT_OPTIONS) -> list[Phone]:
    """Timed unified phones for ``text`` as espeak-ng would speak it (audio discarded)."""
    return synthesize(text, options).phones
