"""Festival voices (the eleven allowed by issue 12) with segment timings.

One festival process renders a batch of items that share a voice: a generated
Scheme script selects the voice once, then synthesises each utterance and saves
its wave and ``utt.save.segs`` (segment *end* times, the voice's own phone
labels) to a temp folder. Labels are mapped to the unified phone set by
``festival_phones.json`` (one map per festival phone set).

Prosody per item (``Item.params``):

* ``stretch``: festival's ``Duration_Stretch``; every diphone voice honours it.
* ``f0`` / ``f0_std``: mean and standard deviation (Hz) of the F0 contour. Voices
  predict F0 in very different ways (linear regression, hand-written Italian rules,
  Czech contour tables), so instead of each model's own parameters a hook in
  ``after_analysis_hooks`` (run after ``Int_Targets``, before the waveform is made)
  rescales the utterance's ``Target`` points to that mean and deviation.

The Russian voice is a cluster-unit (unit selection) voice: it plays recorded
units at their own duration and pitch, so neither parameter changes it (measured);
both are skipped for it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from audio2face.engines.phonemes.espeak_phones import tile_phones
from audio2face.engines.phonemes.phoneset import PHONE_ID
from training.data.corpus import (
    SAMPLE_RATE,
    finish_clip,
    resample,
)
from training.data.jobs import Item

__all__ = [
    "PHONES_FILE",
    "VOICES",
    "VOICES_DIR",
    "FestivalVoice",
    "available",
    "available_voices",
    "festival_text",
    "map_phone",
    "phone_maps",
    "read_segs",
    "render_batch",
]

log = logging.getLogger(__name__)

VOICES_DIR = Path("/usr/share/festival/voices")
PHONES_FILE = Path(__file__).with_name("festival_phones.json")
_META_KEYS = frozenset({"_notes", "_inventory"})

_FREE_TERMS = (
    "free of charge to use, copy, modify, merge, publish, distribute, sublicense and sell, provided the notice is "
    "kept, modifications are marked, authors' names are kept and not used for endorsement"
)
# What each licence_id means, as the licence strings say it.
_LICENCE_TEXT = {
    "festvox-free": f"festvox-free, the CMU/CSTR-style licence ({_FREE_TERMS})",
    "GPL-2.0-or-later": "GPL-2.0-or-later",
    "GPL-3.0-or-later": "GPL-3.0-or-later",
    "LGPL-2.0-or-later": "LGPL-2.0-or-later",
}
_GPL_NOTE = (
    "the GPL covers the voice data; the audio is made of pieces of those recordings, "
    "so it is recorded here and only model weights, not audio, leave the build"
)


@dataclass(frozen=True)
class FestivalVoice:
    """One allowed festival voice: how to select it, what it speaks and under which licence."""

    name: str
    """festival voice name; also the corpus ``voice`` and the ``Item.voice`` key."""
    select: str
    """Scheme call that selects the voice."""
    lang: str
    """ISO 639-1 code of the text it reads."""
    family: str
    """Language family of festival voices (``festival-<lang>``); the split holds voices out by name."""
    speaker: str
    """Recording the voice is built from. The hindi/marathi/telugu NSK voices share one
    (byte-identical diphone database), so none of them is an unheard speaker while another trains."""
    package: str
    folder: str
    """Installed voice folder under ``VOICES_DIR``."""
    phoneset: str
    """festival phone-set name; its map is ``festival_phones.json[phoneset]``."""
    text_encoding: str
    """Byte encoding festival's front end for this voice expects its text in."""
    licence_id: str
    """Licence of the voice package, from /usr/share/doc/<package>/copyright (a ``_LICENCE_TEXT`` key)."""
    holder: str
    front_end: str = ""
    """Package holding the language's lexicon / rules, when separate, and its licence."""
    stretch: bool = True
    """Honours ``Duration_Stretch``."""
    f0: bool = True
    """Honours the F0 rewrite of the ``Target`` relation."""
    f0_mean: float = 120.0
    """The voice's own mean target F0 in Hz (measured on 11 sentences), to centre ``f0`` on."""

    @property
    def licence(self) -> str:
        """The clip record's licence string."""
        front = f"; front end {self.front_end}" if self.front_end else ""
        note = f" ({_GPL_NOTE})" if "GPL" in self.licence_id else ""
        return (
            f"festival {self.name} = {self.package}: {_LICENCE_TEXT[self.licence_id]}, (c) {self.holder} "
            f"(/usr/share/doc/{self.package}/copyright){front}; generated audio{note}"
        )


_IFM = "2008 IFM Development Team (ISTC-SPFD CNR, ITC-irst)"
_BRAILCOM = "2005, 2010, 2011 Brailcom o.p.s."
_CZECH = "festival-czech, GPL-2.0-or-later"
_NSK = "2006 Priti Patil, Janabhaaratii, C-DAC Mumbai; 2005 Chaitanya Kamisetty"

VOICES: dict[str, FestivalVoice] = {
    v.name: v
    for v in (
        FestivalVoice("kal_diphone", "(voice_kal_diphone)", "en", "festival-en", "kal", "festvox-kallpc16k",
                      "english/kal_diphone", "radio", "latin-1", "festvox-free",
                      "1998 Alan W Black and Kevin Lenzo (CMU)", "festlex-cmu, festlex-poslex, same terms",
                      f0_mean=104.0),
        FestivalVoice("pc_diphone", "(voice_pc_diphone)", "it", "festival-it", "pc", "festvox-itapc16k",
                      "italian/pc_diphone", "italian", "latin-1", "GPL-2.0-or-later", _IFM,
                      "festlex-ifd, GPL-2.0-or-later", f0_mean=115.0),
        FestivalVoice("lp_diphone", "(voice_lp_diphone)", "it", "festival-it", "lp", "festvox-italp16k",
                      "italian/lp_diphone", "italian", "latin-1", "GPL-2.0-or-later", _IFM,
                      "festlex-ifd, GPL-2.0-or-later", f0_mean=205.0),
        FestivalVoice("czech_krb", "(voice_czech_krb)", "cs", "festival-cs", "krb", "festvox-czech-krb",
                      "czech/czech_krb", "czech", "iso-8859-2", "GPL-3.0-or-later", _BRAILCOM, _CZECH,
                      f0_mean=256.0),
        FestivalVoice("czech_machac", "(voice_czech_machac)", "cs", "festival-cs", "machac", "festvox-czech-machac",
                      "czech/czech_machac", "czech", "iso-8859-2", "GPL-3.0-or-later", _BRAILCOM, _CZECH,
                      f0_mean=75.0),
        FestivalVoice("czech_ph", "(voice_czech_ph)", "cs", "festival-cs", "ph", "festvox-czech-ph",
                      "czech/czech_ph", "czech", "iso-8859-2", "GPL-2.0-or-later", "2005 Brailcom o.p.s.", _CZECH,
                      f0_mean=135.0),
        FestivalVoice("hy_fi_mv_diphone", "(voice_hy_fi_mv_diphone)", "fi", "festival-fi", "mv",
                      "festvox-suopuhe-mv", "finnish/hy_fi_mv_diphone", "finnish", "latin-1", "LGPL-2.0-or-later",
                      "2000-2003 University of Helsinki and University of Joensuu",
                      "festvox-suopuhe-common, LGPL-2.0-or-later", f0_mean=72.0),
        FestivalVoice("msu_ru_nsh_clunits", "(voice_msu_ru_nsh_clunits)", "ru", "festival-ru", "nsh", "festvox-ru",
                      "russian/msu_ru_nsh_clunits", "msu_ru", "utf-8", "festvox-free", "2005 Nickolay V. Shmyrev",
                      stretch=False, f0=False),
        FestivalVoice("hindi_NSK_diphone", "(voice_hindi_NSK_diphone)", "hi", "festival-hi", "nsk",
                      "festvox-hi-nsk", "hindi/hindi_NSK_diphone", "hindi", "utf-8", "GPL-2.0-or-later", _NSK,
                      "festival-hi, GPL-2.0-or-later"),
        FestivalVoice("marathi_NSK_diphone", "(voice_marathi_NSK_diphone)", "mr", "festival-mr", "nsk",
                      "festvox-mr-nsk", "marathi/marathi_NSK_diphone", "marathi", "utf-8", "GPL-2.0-or-later", _NSK,
                      "festival-mr, GPL-2.0-or-later"),
        FestivalVoice("telugu_NSK_diphone", "(voice_telugu_NSK_diphone)", "te", "festival-te", "nsk",
                      "festvox-te-nsk", "telugu/telugu_NSK_diphone", "telugu", "utf-8", "GPL-2.0-or-later",
                      "2006 Chaithanya Kamishetty, DONLab, Dept of CS&E, IIT Madras", "festival-te, GPL-2.0-or-later"),
    )
}  # fmt: skip


def available_voices() -> list[str]:
    """Names of the ``VOICES`` installed here (festival on PATH and the voice folder present)."""
    if shutil.which("festival") is None:
        return []
    return [name for name, v in VOICES.items() if (VOICES_DIR / v.folder).is_dir()]


def available() -> bool:
    return bool(available_voices())


@functools.cache
def phone_maps() -> dict[str, dict[str, tuple[str, ...]]]:
    """``festival_phones.json`` as {phone set: {label: unified phones}}; one label may give two phones."""
    raw = json.loads(PHONES_FILE.read_text("utf-8"))
    maps: dict[str, dict[str, tuple[str, ...]]] = {}
    for phoneset, table in raw.items():
        if phoneset in _META_KEYS:
            continue
        maps[phoneset] = {
            label: (target,) if isinstance(target, str) else tuple(target)
            for label, target in table.items()
            if label not in _META_KEYS
        }
    return maps


def map_phone(label: str, phoneset: str = "radio") -> tuple[str, ...]:
    """A festival phone label of ``phoneset`` -> its unified phone(s); ``KeyError`` names unknown labels."""
    try:
        phones = phone_maps()[phoneset][label]
    except KeyError:
        raise KeyError(
            f"festival phone {label!r} of phone set {phoneset!r} has no entry in {PHONES_FILE.name}"
        ) from None
    if not phones or any(p not in PHONE_ID for p in phones):
        raise ValueError(
            f"{PHONES_FILE.name}: {phoneset}/{label} maps to {phones}, not unified phones"
        )
    return phones


# Typographic characters that single-byte front ends cannot take, spelt the way they read.
_PUNCT = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "–": "-", "—": "-", "―": "-", "‐": "-",
                        "‑": "-", "…": "...", "«": " ", "»": " ", "“": " ", "”": " ", "„": " ", "‟": " ", "″": " ",
                        "\u00a0": " ", '"': " ", "\\": " ", "(": " ", ")": " ", "[": " ", "]": " ", "{": " ",
                        "}": " ",
                        # Marathi candra A (ॲ, [æ]) has no letter-to-sound rule; candra E (ऍ) is the same vowel.
                        "\u0972": "\u090d"})  # fmt: skip


def festival_text(text: str, voice: FestivalVoice) -> str:
    """``text`` as the voice's front end can read it.

    Quotes and backslashes would end the Scheme string; brackets and characters the
    voice's byte encoding lacks (e.g. Cyrillic for the Czech voice) become spaces, since
    an unknown byte makes some letter-to-sound rules (Italian, Russian) abort the utterance.
    """
    text = unicodedata.normalize("NFC", text).translate(_PUNCT)
    # A full stop inside a token ("т.д.", "e.g.") stops the Russian and Italian letter-to-sound rules.
    text = re.sub(r"(?<=[^\W\d_])\.(?=[^\W\d_])", ". ", text)
    out = []
    for ch in text:
        try:
            ch.encode(voice.text_encoding)
        except UnicodeEncodeError:
            ch = " "
        out.append(ch)
    # Punctuation standing alone (" ." once a bracket is gone) is a word to the Russian front end.
    return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", "".join(out))).strip()


# Rescales the Target relation (segments whose daughters carry f0 / pos) to a2f-f0-mean,
# a2f-f0-std; a no-op while a2f-f0-mean is nil. SIOD has no let*, hence the set! chain.
_F0_HOOK = """
(defvar a2f-f0-mean nil)
(defvar a2f-f0-std 0)
(define (a2f-target-points utt)
  (let ((out nil) (seg (utt.relation.first utt 'Target)))
    (while seg
      (set! out (append out (item.daughters seg)))
      (set! seg (item.next seg)))
    out))
(define (a2f-f0-hook utt)
  (if a2f-f0-mean
    (let ((pts (a2f-target-points utt)) (n 0) (s 0) (ss 0) (m 0) (sd 0))
      (mapcar (lambda (p) (let ((f (item.feat p 'f0))) (set! n (+ n 1)) (set! s (+ s f)) (set! ss (+ ss (* f f)))))
              pts)
      (if (> n 0)
        (begin
          (set! m (/ s n))
          (set! sd (- (/ ss n) (* m m)))
          (set! sd (if (> sd 1) (sqrt sd) 0))
          (mapcar (lambda (p)
                    (item.set_feat p 'f0 (+ a2f-f0-mean (if (> sd 0) (* (- (item.feat p 'f0) m) (/ a2f-f0-std sd)) 0))))
                  pts)))))
  utt)
(set! after_analysis_hooks
  (append (if (consp after_analysis_hooks) after_analysis_hooks (if after_analysis_hooks (list after_analysis_hooks)))
          (list a2f-f0-hook)))
"""


def _script(
    voice: FestivalVoice,
    items: tuple[Item, ...],
    tmp: Path,
    start: int = 0,
    nudge: frozenset[int] = frozenset(),
) -> str:
    """Scheme that renders ``items[start:]`` to ``<tmp>/<k>.wav`` and ``<tmp>/<k>.segs``.

    Items in ``nudge`` get 1 % more stretch and 1 Hz more F0: festival's diphone
    synthesiser segfaults on a few exact duration / pitch combinations (seen with
    the Telugu voice), and a hair's difference avoids them."""
    lines = [voice.select]
    if voice.f0:
        lines.append(_F0_HOOK)
    lines.append('(format stderr "a2f: voice ready\\n")')
    for k, item in enumerate(items):
        if k < start:
            continue
        params = dict(item.params)
        if k in nudge:
            params["stretch"] = params.get("stretch", 1.0) * 1.01
            if "f0" in params:
                params["f0"] += 1.0
        lines.append(f'(format stderr "a2f: start {k}\\n")')
        if voice.stretch:
            lines.append(f"(Parameter.set 'Duration_Stretch {params.get('stretch', 1.0):.3f})")
        if voice.f0:
            mean = f"{params['f0']:.1f}" if "f0" in params else "nil"
            lines.append(
                f"(set! a2f-f0-mean {mean}) (set! a2f-f0-std {params.get('f0_std', 0.0):.1f})"
            )
        # unwind-protect: an utterance the front end rejects is skipped, not the rest of the batch.
        lines += [
            f'(set! u (Utterance Text "{festival_text(item.text, voice)}"))',
            f'(unwind-protect (begin (utt.synth u) (utt.save.wave u "{tmp}/{k}.wav" \'riff)'
            f' (utt.save.segs u "{tmp}/{k}.segs")) (format stderr "a2f: item {k} failed\\n"))',
        ]
    return "\n".join(lines) + "\n"


def read_segs(path: Path) -> list[tuple[float, str]]:
    """``utt.save.segs`` lines are ``<end_time> <int> <phone>`` after a ``#`` header line."""
    ends: list[tuple[float, str]] = []
    in_body = False
    for line in path.read_text("utf-8", errors="replace").splitlines():
        if not in_body:
            in_body = line.strip() == "#"
            continue
        parts = line.split()
        if len(parts) == 3:
            ends.append((float(parts[0]), parts[2]))
    return ends


def render_batch(items: tuple[Item, ...], root: Path) -> list[dict[str, object]]:
    """Render items that share one ``Item.voice`` (a ``VOICES`` key); return the records written.

    Items festival could not synthesise are left out (and logged)."""
    if not items:
        return []
    names = {item.voice for item in items}
    if len(names) != 1 or next(iter(names)) not in VOICES:
        raise ValueError(
            f"a festival batch needs one voice of {sorted(VOICES)}, got {sorted(names)}"
        )
    voice = VOICES[items[0].voice]
    with tempfile.TemporaryDirectory(prefix="a2f_fest_") as tmp_s:
        tmp = Path(tmp_s)
        done = _run(voice, items, tmp)
        records = []
        for k, item in enumerate(items):
            if k not in done:
                continue
            audio, sr = sf.read(tmp / f"{k}.wav", dtype="float32")
            ends = read_segs(tmp / f"{k}.segs")
            if len(audio) == 0 or not ends:  # nothing readable was left of the text
                log.warning("festival %s: %s gave no speech", voice.name, item.id)
                continue
            try:
                audio = resample(np.asarray(audio, np.float32), sr)
                records.append(_finish(item, voice, audio, ends, root))
            except (KeyError, ValueError) as exc:
                # an unmapped label or a bad tiling loses this clip, not the batch
                log.warning("festival %s: %s: %s", voice.name, item.id, exc)
        return records


def _run(voice: FestivalVoice, items: tuple[Item, ...], tmp: Path) -> set[int]:
    """Run festival over ``items``; return the indices whose wave and segs were saved.

    Some front ends crash outright on text they cannot read (the Telugu voice segfaults
    on an all-Latin sentence, and on a few exact prosody settings): festival then restarts
    at the item it died on, nudged, once, and after it if it dies there again."""
    done: set[int] = set()
    retried: set[int] = set()
    start = 0
    errors: list[str] = []
    while start < len(items):
        script = tmp / f"batch{start}.scm"
        # All non-text parts are ASCII; the text is already limited to the voice's encoding.
        script.write_bytes(
            _script(voice, items, tmp, start, frozenset(retried)).encode(voice.text_encoding)
        )
        proc = subprocess.run(
            ["festival", "-b", str(script)], capture_output=True, timeout=600, check=False
        )
        done |= {
            k
            for k in range(start, len(items))
            if (tmp / f"{k}.wav").exists() and (tmp / f"{k}.segs").exists()
        }
        stderr = proc.stderr.decode(errors="replace")
        if "a2f: item" in stderr:
            errors.append(stderr[-300:])
        if proc.returncode == 0:
            break
        if "a2f: voice ready" not in stderr:  # the voice itself does not load: no item can work
            raise RuntimeError(f"festival ({voice.name}) exited {proc.returncode}: {stderr[-500:]}")
        # The item it died on is the last one it started.
        crashed = max((int(k) for k in re.findall(r"a2f: start (\d+)", stderr)), default=start)
        errors.append(f"festival exited {proc.returncode} on item {crashed}: {stderr[-200:]}")
        # The item gets one more try in a fresh process, nudged (see _script), before it is given up.
        start = crashed + 1 if crashed in retried else crashed
        retried.add(crashed)
    if len(done) < len(items):
        log.warning("festival %s: %d of %d items failed: %s", voice.name, len(items) - len(done), len(items),
                    " | ".join(errors)[-600:])  # fmt: skip
    return done


def _finish(
    item: Item,
    voice: FestivalVoice,
    audio: npt.NDArray[np.float32],
    ends: list[tuple[float, str]],
    root: Path,
) -> dict[str, object]:
    duration = len(audio) / SAMPLE_RATE
    starts: list[tuple[float, tuple[str, ...]]] = []
    prev = 0.0
    for end, label in ends:
        starts.append((prev, map_phone(label, voice.phoneset)))
        prev = end
    return finish_clip(root, item, audio, tile_phones(starts, duration), source="festival", voice=voice.name,
                       lang=voice.lang, licence=voice.licence)  # fmt: skip
