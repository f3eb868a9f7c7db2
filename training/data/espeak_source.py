"""espeak-ng speech in many languages and voices, with phone events as labels.

Labels are rebuilt here from espeak-ng's raw phone events rather than taken
from :func:`~audio2face.engines.phonemes.espeak.synthesize`'s tiling, because
three things in the raw events need the audio or the language to read right:

* espeak-ng emits empty-label events: real pauses (between Chinese syllables,
  at commas), but also zero-length markers at the same instant as the next
  phone and a few inside running speech. A pause is ``SIL`` only where the
  audio is quiet; otherwise the next phone starts there.
* a zero-length event must not take the span of the phone that starts with it.
* a few labels mean different sounds in different languages (Vietnamese ``y``
  is unrounded ư, Mandarin ``o-`` is unrounded [ɤ]): ``_by_language`` in
  ``espeak_phones.json`` overrides them for that language.
* a stop's phone event starts at its *release*: the silent closure before it is
  reported as the end of the previous phone (measured by ``training/audit_bilabials.py``
  on 2300 bilabials in 24 languages: /p b/ labels sit a median 27 ms after the acoustic
  closure and 66 % do not overlap it at all, where festival, flite and the aligned
  Asterisk speaker are within a few ms). For the lips that is the wrong way round,
  so :func:`close_stop_onsets` moves the start of every /p b/ back to the onset of the
  closure measured in the audio.
* the other end is late too (session 7): an /m/ runs a median ~20 ms into the next vowel
  and a /p b/ keeps the burst and aspiration (~31 ms past the release, where festival and
  flite end them ~10 ms after it); :func:`trim_bilabial_ends` moves those ends back to the
  release measured in the audio (plus 10 ms of burst for /p b/).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from audio2face.engines.phonemes import espeak_phones
from audio2face.engines.phonemes.espeak import SynthOptions, synthesize
from audio2face.engines.phonemes.espeak_phones import (
    Phone,
    normalize_ipa,
    tile_phones,
)
from audio2face.engines.phonemes.phoneset import SILENCE
from training.data.corpus import (
    SAMPLE_RATE,
    finish_clip,
    resample,
)
from training.data.jobs import Item

__all__ = ["LICENCE", "VARIANTS", "VOICES", "clip_lang", "close_stop_onsets", "map_label", "phones_from_events",
           "render", "trim_bilabial_ends"]

LICENCE = "espeak-ng output (program GPL-3.0-or-later; generated audio is not restricted by it)"

# espeak-ng voice -> gettext locale used for its text ("en" means the English sources).
# espeak's SetVoiceByName wants "en" for British English and "fr" for France.
VOICES: dict[str, str] = {
    "en-us": "en", "en": "en", "en-gb-x-rp": "en", "en-029": "en", "en-us-nyc": "en",
    "en-gb-scotland": "en", "es": "es", "es-419": "es", "fr": "fr", "de": "de", "it": "it",
    "pt": "pt", "pt-br": "pt_BR", "nl": "nl", "pl": "pl", "sv": "sv", "cs": "cs", "ru": "ru",
    "tr": "tr", "id": "id", "ro": "ro", "hu": "hu", "da": "da", "fi": "fi",
    # cmn-latn-pinyin reads Hanzi (plain "cmn" reads them as English "Chinese letter"); ja reads kana only.
    "cmn-latn-pinyin": "zh", "yue": "yue", "ja": "ja", "ko": "ko", "hi": "hi", "ar": "ar", "vi": "vi",
}  # fmt: skip

VARIANTS: tuple[str, ...] = ("", "f1", "f2", "f3", "f4", "f5", "m1", "m2", "m3", "m4", "m5", "m6", "m7")

# Seconds of speech per character at 175 wpm, measured on English; for planning only.
SECONDS_PER_CHAR = 0.064


def estimate_seconds(text: str, rate: int) -> float:
    return len(text) * SECONDS_PER_CHAR * 175.0 / rate


# An empty-label event whose span is quieter than this share of the clip's RMS is a pause.
_QUIET = 0.1


def clip_lang(voice: str) -> str:
    """The clip's ``lang``: the voice's language subtag (``en-us+f3`` -> ``en``, ``cmn-latn-pinyin`` -> ``cmn``)."""
    return espeak_phones.voice_language(voice)


def map_label(label: str, lang: str, *, strict: bool = True) -> tuple[str, ...]:
    """Unified phones for one raw espeak-ng label spoken in ``lang`` (see ``_by_language``);
    the engine's own lookup, strict by default here so a new label fails the build."""
    return espeak_phones.map_label(label, lang, strict=strict)


def phones_from_events(
    raw: list[tuple[float, str]], audio: npt.NDArray[np.float32], sample_rate: int, lang: str
) -> list[Phone]:
    """Unified phones tiling the audio, from espeak-ng's (start_s, raw label) events."""
    duration = len(audio) / sample_rate
    level = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    starts: list[tuple[float, tuple[str, ...]]] = []
    pending: float | None = None  # start of an empty event inside speech: the next phone begins there
    for i, (start, label) in enumerate(raw):
        end = raw[i + 1][0] if i + 1 < len(raw) else duration
        if end <= start:
            continue  # zero length: it must not steal the span of the phone that starts with it
        if normalize_ipa(label):
            starts.append((start if pending is None else pending, map_label(label, lang, strict=False)))
            pending = None
            continue
        span = audio[int(start * sample_rate) : int(end * sample_rate)]
        rms = float(np.sqrt(np.mean(np.square(span, dtype=np.float64)))) if span.size else 0.0
        if rms < _QUIET * level:
            starts.append((start, (SILENCE,)))
            pending = None
        elif pending is None:
            pending = start
    # Speech after the last phone (pending left over) simply extends that phone: tile_phones runs it to the end.
    return tile_phones(starts, duration)


# Stops whose closure espeak-ng counts in the previous phone; only the lip closures are moved.
CLOSURE_STOPS = frozenset({"P", "B"})
# Phones that begin with a silent closure: after one, the next rise of the energy is that stop's
# release, not the end of the bilabial before it, so no end is trimmed there.
_STOPS = frozenset({"P", "B", "T", "D", "K", "G", "CH", "JH"})
_MAX_CLOSURE_S = 0.15  # look no further back than this for the closure onset (or ahead for a release)
_MIN_PREV_S = 0.02  # the previous phone keeps at least this much
_MIN_KEEP_S = 0.02  # a trimmed /m p b/ and the phone after it keep at least this much
_MIN_DEPTH_DB = 10.0  # a dip shallower than this (against the neighbouring phone) is no closure
# An /m/ murmur dips less (espeak-ng's a median 11 dB); the audit's own floor for a clear closure.
_MIN_NASAL_DEPTH_DB = 6.0
# festival, flite and Allison's aligned /p b/ end a median 8-15 ms after the release measured by
# the audit (the burst belongs to the stop): a trimmed espeak-ng /p b/ keeps this much after it.
_BURST_S = 0.01


def _dip_edge(energy: npt.NDArray[np.float64], lo: int, hi: int, side: int, dip_hi: int | None = None,
              min_depth: float = _MIN_DEPTH_DB) -> float | None:  # fmt: skip
    """Time (s) of one edge of the energy dip in frames ``lo..hi``, or None when the dip is
    shallower than ``min_depth`` dB.

    The dip's floor is the quietest frame of ``lo..dip_hi`` (default ``hi``); ``side`` -1 gives
    the falling edge before it (a closure onset), +1 the rising edge after it (a release): where
    the energy crosses halfway, in dB, between the floor and the loudest frame on that side."""
    from training.audit_bilabials import HOP_S

    if hi - lo < 3:
        return None
    seg = energy[lo : hi + 1]
    m = int(np.argmin(seg[: (hi if dip_hi is None else dip_hi) - lo + 1]))
    peak = int(np.argmax(seg[: m + 1])) if side < 0 else m + int(np.argmax(seg[m:]))
    depth = float(seg[peak] - seg[m])
    if depth < min_depth or m == peak:
        return None
    thr = float(seg[m]) + depth / 2
    e = m
    while e + side != peak and seg[e + side] < thr:
        e += side
    return (lo + e + side * 0.5) * HOP_S  # frame e is centred at (lo + e) hops, its edges half a hop away


def close_stop_onsets(phones: list[Phone], audio: npt.NDArray[np.float32], sample_rate: int) -> list[Phone]:
    """``phones`` with every /p b/ that follows a non-silent phone starting at its acoustic closure.

    The closure is where the 800-7000 Hz band energy (``training.audit_bilabials.high_band_db``)
    falls below halfway, in dB, between the lowest frame before the stop's labelled start
    (plus 10 ms; at most 150 ms back and not before the previous phone) and the loudest frame
    before that minimum (:func:`_dip_edge`). Only starts move, and
    only earlier; the previous phone keeps at least 20 ms and its loud part. A dip shallower
    than 10 dB leaves the phone as it was."""
    from training.audit_bilabials import HOP_S, high_band_db

    energy = high_band_db(audio, sample_rate)
    out = [tuple(p) for p in phones]
    for k in range(1, len(out)):
        start, end, label = out[k]
        p_start, _, p_label = out[k - 1]
        if label not in CLOSURE_STOPS or p_label == SILENCE or len(energy) == 0:
            continue
        lo = max(int(np.ceil(max(p_start, start - _MAX_CLOSURE_S) / HOP_S)), 0)
        hi = min(int(np.floor((start + 0.01) / HOP_S)), len(energy) - 1)
        onset = _dip_edge(energy, lo, hi, side=-1)
        if onset is None:
            continue
        onset = max(onset, p_start + _MIN_PREV_S)
        if onset < start:
            out[k - 1] = (p_start, onset, p_label)
            out[k] = (onset, end, label)
    return [(float(s), float(e), str(p)) for s, e, p in out]


def trim_bilabial_ends(phones: list[Phone], audio: npt.NDArray[np.float32], sample_rate: int) -> list[Phone]:
    """``phones`` with the end of every /m/ (and /p b/) that precedes a non-silent phone moved back
    to the acoustic release.

    espeak-ng's /m/ runs a median 20-26 ms into the next vowel (``training/audit_bilabials.py
    --by-phone --between-vowels``) and its /p b/ take the burst and the aspiration, 31 ms past the
    release. The release is where the 800-7000 Hz band energy rises back above halfway, in dB,
    from the lowest frame of the labelled phone (the murmur or the closure) towards the loudest
    frame after it, within the next phone and at most 150 ms (:func:`_dip_edge`); /p b/ then
    keep ``_BURST_S`` of burst, as festival and flite label them. Ends only move earlier; the
    phone and the next one keep at least 20 ms. Nothing moves before a stop or affricate (its
    silent closure, not the release, is the dip's far side), before silence, or when the dip is
    shallower than 10 dB (6 dB for the /m/ murmur). Run it after :func:`close_stop_onsets`, so
    a /p b/ span holds its closure."""
    from training.audit_bilabials import HOP_S, high_band_db

    energy = high_band_db(audio, sample_rate)
    out = [tuple(p) for p in phones]
    for k in range(len(out) - 1):
        start, end, label = out[k]
        _, n_end, n_label = out[k + 1]
        if label not in CLOSURE_STOPS | {"M"} or n_label == SILENCE or n_label in _STOPS or len(energy) == 0:
            continue
        lo = max(int(np.ceil(start / HOP_S)), 0)
        dip_hi = min(int(np.floor(end / HOP_S)), len(energy) - 1)
        hi = min(int(np.floor(min(n_end, end + _MAX_CLOSURE_S) / HOP_S)), len(energy) - 1)
        stop = label in CLOSURE_STOPS
        release = _dip_edge(energy, lo, hi, side=+1, dip_hi=dip_hi,
                            min_depth=_MIN_DEPTH_DB if stop else _MIN_NASAL_DEPTH_DB)  # fmt: skip
        if release is None:
            continue
        if stop:
            release += _BURST_S
        release = max(release, start + _MIN_KEEP_S)
        if release < end and n_end - release >= _MIN_KEEP_S:
            out[k] = (start, release, label)
            out[k + 1] = (release, n_end, n_label)
    return [(float(s), float(e), str(p)) for s, e, p in out]


def render(item: Item, root: Path) -> dict[str, object]:
    params = dict(item.params)
    options = SynthOptions(
        voice=item.voice, rate=int(params["rate"]), pitch=int(params["pitch"]), pitch_range=int(params["range"])
    )
    syn = synthesize(item.text, options)
    lang = clip_lang(item.voice)
    audio = resample(syn.audio, syn.sample_rate)
    # Phones were timed at espeak's rate; rescale the last end to the resampled length.
    duration = len(audio) / SAMPLE_RATE
    scale = duration / syn.duration if syn.duration > 0 else 1.0
    events = phones_from_events(syn.raw_phones, syn.audio, syn.sample_rate, lang)
    phones = close_stop_onsets([(s * scale, e * scale, p) for s, e, p in events], audio, SAMPLE_RATE)
    phones = trim_bilabial_ends(phones, audio, SAMPLE_RATE)
    return finish_clip(root, item, audio, phones, source="espeak-ng", voice=item.voice, lang=lang,
                       licence=LICENCE)  # fmt: skip
