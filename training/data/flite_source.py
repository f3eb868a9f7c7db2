"""CMU Flite voices ``awb``, ``rms`` and ``kal`` through libflite (ctypes), with phone timings.

``flite -ps`` prints phones without times, so the library is driven directly:
``register_cmu_us_<voice>`` gives a ``cst_voice``, ``flite_synth_text`` an
utterance whose ``Segment`` relation holds every phone with its ``end`` time
(seconds) and whose wave is the audio. No compiler, no temp files.

Only these three voices are allowed as training or model-selection speech
(``cmu_us_slt`` and ``kal16`` are installed by the same package and stay out).
libflite keeps global state, so calls take a module lock; the builder's worker
processes each load their own copy.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from audio2face.engines.phonemes.espeak_phones import tile_phones
from audio2face.engines.phonemes.phoneset import SILENCE, normalize_phone
from training.data.corpus import (
    SAMPLE_RATE,
    finish_clip,
    resample,
    seed_libc_rand,
)
from training.data.jobs import Item

__all__ = [
    "LICENCE",
    "LICENCE_FILE",
    "VOICES",
    "FliteVoice",
    "available_voices",
    "map_phone",
    "phone_names",
    "render",
    "synthesize",
]

LICENCE_FILE = Path("/usr/share/doc/libflite1/copyright")
LICENCE = (
    "CMU Flite licence (libflite1; voices awb, rms, kal are built into it): free of charge to use, copy, modify, "
    "merge, publish, distribute, sublicense and sell, provided the copyright notice is retained, modifications "
    "are marked, authors' names kept and not used for endorsement; (c) 1999-2001 Language Technologies "
    "Institute, Carnegie Mellon University (/usr/share/doc/libflite1/copyright); generated audio"
)


@dataclass(frozen=True)
class FliteVoice:
    """One allowed flite voice: the shared library that holds it and what it sounds like."""

    library: str
    register: str
    description: str
    lang: str = "en"
    family: str = "flite"


VOICES: dict[str, FliteVoice] = {
    "awb": FliteVoice("libflite_cmu_us_awb.so.1", "register_cmu_us_awb",
                      "Scottish English male (CMU ARCTIC awb), statistical parametric (clustergen), 16 kHz"),
    "rms": FliteVoice("libflite_cmu_us_rms.so.1", "register_cmu_us_rms",
                      "US English male (CMU ARCTIC rms), clustergen, 16 kHz; ignores F0 targets"),
    "kal": FliteVoice("libflite_cmu_us_kal.so.1", "register_cmu_us_kal",
                      "US English male (kal), diphone, 8 kHz"),
}  # fmt: skip

# flite's US phone set (radio/ARPAbet-like) -> unified set, for labels outside plain ARPAbet.
# Syllabic consonants keep their consonant's mouth shape (em is a lip closure).
# hv is voiced /h/; brth (breath) has no articulation. ax (schwa) is the unified AX.
_FLITE_EXTRA = {"ax": "AX", "axr": "ER", "ix": "IH", "dx": "D", "nx": "N", "el": "L", "em": "M", "en": "N",
                "hv": "HH", "pau": SILENCE, "h#": SILENCE, "#": SILENCE, "brth": SILENCE}  # fmt: skip

# Item.params key -> flite voice feature. Absent keys restore the voice's own value.
_PARAMS = {
    "stretch": b"duration_stretch",
    "f0": b"int_f0_target_mean",
    "f0_std": b"int_f0_target_stddev",
}


def map_phone(label: str) -> str:
    """flite phone name -> unified phone (raises ``UnknownNameError`` for a label outside both tables)."""
    return _FLITE_EXTRA.get(label.lower()) or normalize_phone(label)


class _Phoneset(ctypes.Structure):
    # Leading fields of cst_phoneset.
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("featnames", ctypes.c_void_p),
        ("featvals", ctypes.c_void_p),
        ("phonenames", ctypes.POINTER(ctypes.c_char_p)),
        ("silence", ctypes.c_char_p),
        ("num_phones", ctypes.c_int),
    ]


def phone_names() -> list[str]:
    """Every phone of flite's US English phone set (shared by awb, rms and kal), from the library itself."""
    ps = _Phoneset.in_dll(ctypes.CDLL("libflite_usenglish.so.1"), "us_phoneset")
    return [ps.phonenames[i].decode() for i in range(ps.num_phones)]


class _Wave(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_char_p),
        ("sample_rate", ctypes.c_int),
        ("num_samples", ctypes.c_int),
        ("num_channels", ctypes.c_int),
        ("samples", ctypes.POINTER(ctypes.c_short)),
    ]


class _Voice(ctypes.Structure):
    # Leading fields of cst_voice; only ``features`` is read (to set prosody).
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("features", ctypes.c_void_p),
        ("ffunctions", ctypes.c_void_p),
    ]


_VOID = ctypes.c_void_p
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "flite_synth_text": (_VOID, [ctypes.c_char_p, _VOID]),
    "utt_wave": (ctypes.POINTER(_Wave), [_VOID]),
    "utt_relation": (_VOID, [_VOID, ctypes.c_char_p]),
    "relation_head": (_VOID, [_VOID]),
    "item_next": (_VOID, [_VOID]),
    "item_feat_float": (ctypes.c_float, [_VOID, ctypes.c_char_p]),
    "item_feat_string": (ctypes.c_char_p, [_VOID, ctypes.c_char_p]),
    "delete_utterance": (None, [_VOID]),
    "flite_feat_set_float": (None, [_VOID, ctypes.c_char_p, ctypes.c_float]),
    "flite_feat_remove": (ctypes.c_int, [_VOID, ctypes.c_char_p]),
    "get_param_float": (ctypes.c_float, [_VOID, ctypes.c_char_p, ctypes.c_float]),
}


class _Flite:
    """libflite plus the voices registered so far (each once per process)."""

    def __init__(self) -> None:
        lib = ctypes.CDLL("libflite.so.1")
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        lib.flite_init()
        self.lib = lib
        self._voices: dict[str, tuple[ctypes._Pointer[_Voice], dict[bytes, float | None]]] = {}
        self._keep: list[ctypes.CDLL] = []  # voice libraries must stay loaded while their voice is used

    def voice(self, name: str) -> tuple[ctypes._Pointer[_Voice], dict[bytes, float | None]]:
        if name not in self._voices:
            spec = VOICES[name]
            vlib = ctypes.CDLL(spec.library)
            register = getattr(vlib, spec.register)
            register.restype, register.argtypes = ctypes.POINTER(_Voice), [ctypes.c_char_p]
            vox = register(None)
            if not vox:
                raise RuntimeError(f"{spec.register} returned no voice")
            # The voice's own prosody settings, restored when an item does not override them.
            missing = -1e9
            defaults: dict[bytes, float | None] = {}
            for feat in _PARAMS.values():
                value = self.lib.get_param_float(vox.contents.features, feat, missing)
                defaults[feat] = None if value == missing else float(value)
            self._keep.append(vlib)
            self._voices[name] = (vox, defaults)
        return self._voices[name]

    def synth(
        self, text: str, name: str, params: dict[str, float]
    ) -> tuple[npt.NDArray[np.float32], int, list[tuple[float, str]]]:
        lib = self.lib
        vox, defaults = self.voice(name)
        feats = vox.contents.features
        for key, feat in _PARAMS.items():
            base = defaults[feat]
            if key in params:
                # Stretch is relative to the voice's own pace (kal's default is 1.1).
                value = params[key] * (base or 1.0) if key == "stretch" else params[key]
                lib.flite_feat_set_float(feats, feat, float(value))
            elif base is None:
                lib.flite_feat_remove(feats, feat)
            else:
                lib.flite_feat_set_float(feats, feat, base)
        utt = lib.flite_synth_text(text.encode("utf-8"), ctypes.cast(vox, _VOID))
        if not utt:
            raise RuntimeError(f"flite could not synthesise {text!r}")
        try:
            wave = lib.utt_wave(utt).contents
            n, channels = int(wave.num_samples), max(int(wave.num_channels), 1)
            pcm = np.ctypeslib.as_array(wave.samples, shape=(n * channels,)) if n > 0 else np.zeros(0, np.int16)
            audio = (pcm[::channels].astype(np.float32) / 32768.0).astype(np.float32)
            ends: list[tuple[float, str]] = []
            item = lib.relation_head(lib.utt_relation(utt, b"Segment"))
            while item:
                ends.append(
                    (
                        float(lib.item_feat_float(item, b"end")),
                        lib.item_feat_string(item, b"name").decode(),
                    )
                )
                item = lib.item_next(item)
            return audio, int(wave.sample_rate), ends
        finally:
            lib.delete_utterance(utt)


_lock = threading.Lock()
_flite: _Flite | None = None


def _engine() -> _Flite:
    global _flite
    if _flite is None:
        _flite = _Flite()
    return _flite


def available_voices() -> list[str]:
    """The allowed voices whose libraries load here (empty when libflite is missing)."""
    found = []
    with _lock:
        try:
            _engine()
        except OSError:
            return []
        for name, spec in VOICES.items():
            try:
                ctypes.CDLL(spec.library)
            except OSError:
                continue
            found.append(name)
    return found


def synthesize(
    text: str, voice: str, params: dict[str, float] | None = None, *, seed: str | None = None
) -> tuple[npt.NDArray[np.float32], int, list[tuple[float, str]]]:
    """Speak ``text``: (audio in [-1, 1], sample rate, flite segments as (end_s, raw label)).

    ``seed`` fixes the take: ``awb`` and ``rms`` draw their excitation noise from libc's
    ``rand()``, so without it each call continues the process's sequence and sounds a
    little different (``kal``, a diphone voice, is the same either way)."""
    if voice not in VOICES:
        raise ValueError(f"flite voice {voice!r} is not allowed (allowed: {sorted(VOICES)})")
    if not text.strip():
        raise ValueError("text must contain something to speak")
    with _lock:
        if seed is not None:
            seed_libc_rand(seed)
        return _engine().synth(text, voice, params or {})


def segments_to_phones(ends: list[tuple[float, str]], duration: float) -> list[tuple[float, float, str]]:
    """Segment end times -> unified phones tiling ``[0, duration]``.

    Zero-length segments are dropped before tiling, so an equal start time never
    lets the wrong label win. kal's last pause ends after its wave (the diphone
    wave stops short, by about 0.1 s); tiling clamps it to the audio.
    """
    starts: list[tuple[float, tuple[str, ...]]] = []
    prev = 0.0
    for end, label in ends:
        if end > prev:
            starts.append((prev, (map_phone(label),)))
            prev = end
    return tile_phones(starts, duration)


def render(item: Item, root: Path) -> dict[str, object]:
    """One corpus clip for ``item`` (``item.voice`` is a key of :data:`VOICES`).

    ``item.params`` may set ``stretch`` (duration, relative to the voice's pace),
    ``f0`` and ``f0_std`` (Hz; awb and kal follow them, rms ignores them).
    """
    # Seeded by the clip's id: the same plan gives the same audio on any machine, in any order.
    raw, sr, ends = synthesize(item.text, item.voice, dict(item.params), seed=item.id)
    audio = resample(raw, sr)
    phones = segments_to_phones(ends, len(audio) / SAMPLE_RATE)
    return finish_clip(root, item, audio, phones, source="flite", voice=f"flite-{item.voice}",
                       lang=VOICES[item.voice].lang, licence=LICENCE)  # fmt: skip
