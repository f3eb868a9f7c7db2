"""Festival voices of issue 12: the voice table, the phone maps and (where installed) each voice live.

The data tests run anywhere. The live tests ask festival itself: one process lists
every installed voice's phone set, then one ``render_batch`` per voice renders a
short sentence (about 0.3 s each).
"""

from __future__ import annotations

import codecs
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from training.data import festival_source as fs
from training.data.corpus import SAMPLE_RATE, validate_phones
from training.data.jobs import Item

from audio2face.engines.phonemes.phoneset import BILABIALS, PHONES, SILENCE

RAW = json.loads(fs.PHONES_FILE.read_text("utf-8"))
META = {"_notes", "_inventory"}
LANGS = {"en", "it", "cs", "fi", "ru", "hi", "mr", "te"}
PAUSES = {"pau", "#", "##", "h#", "brth", "_"}

# One sentence per language, each with a lip closure in its spelling.
SENTENCES = {
    "en": "Put the map on the boot.",
    "it": "Il bambino mangia una mela.",
    "cs": "Maminka peče buchty.",
    "fi": "Äiti osti pullon maitoa.",
    "ru": "Мама мыла раму.",
    "hi": "मेरा नाम राम है।",
    "mr": "माझे नाव राम आहे.",
    "te": "నా పేరు రాము.",
}

# Labels that close the lips, per phone set (geminate / palatalised / aspirated forms included).
LIP_CLOSURES = {
    "radio": {"p", "b", "m", "em"},
    "italian": {"p", "b", "m"},
    "czech": {"p", "b", "m"},
    "finnish": {"p", "b", "m", "p:", "b:", "m:"},
    "msu_ru": {"p", "pp", "b", "bb", "m", "mm"},
    "hindi": {"p", "b", "bh", "m"},
    "marathi": {"p", "b", "bh", "m"},
    "telugu": {"p", "b", "bh", "m"},
}


def _phonesets() -> dict[str, dict[str, object]]:
    return {name: table for name, table in RAW.items() if name not in META}


# --- data only: no festival needed ---------------------------------------------------


def test_every_target_is_a_unified_phone() -> None:
    for name, table in _phonesets().items():
        for label, target in table.items():
            if label in META:
                continue
            targets = [target] if isinstance(target, str) else target
            assert isinstance(targets, list) and 1 <= len(targets) <= 2, (name, label, target)
            assert all(t in PHONES for t in targets), (name, label, target)
            assert SILENCE not in targets or targets == [SILENCE], (name, label)


def test_every_voice_has_a_complete_map() -> None:
    maps = fs.phone_maps()
    assert {v.phoneset for v in fs.VOICES.values()} <= set(maps)
    for name, table in _phonesets().items():
        inventory = table["_inventory"]
        assert isinstance(inventory, list) and len(inventory) == len(set(inventory)), name
        # the recorded inventory is mapped, and nothing else is
        assert set(inventory) == set(table) - META, name
        assert {fs.map_phone(label, name) for label in inventory}  # every label resolves


def test_mouth_shape_rules() -> None:
    for name, labels in LIP_CLOSURES.items():
        for label in labels:
            assert set(fs.map_phone(label, name)) <= BILABIALS, (name, label)
        table = _phonesets()[name]
        for label in set(table) - META - labels:
            # nothing else becomes a lip closure (a flap or nasal of another place must not close the lips)
            assert not set(fs.map_phone(label, name)) & BILABIALS, (name, label)
        for label in PAUSES & set(table):
            assert fs.map_phone(label, name) == (SILENCE,), (name, label)
    # labiodental nasal: lip to teeth, not a closure; front rounded / ö vowels keep their rounding
    assert fs.map_phone("nf", "italian") == ("V",)
    assert fs.map_phone("y", "finnish") == ("UW",) and fs.map_phone("7:", "finnish") == ("UH",)
    assert fs.map_phone("c", "czech") == ("T", "S") and fs.map_phone("ksh", "hindi") == ("K", "SH")
    # the same label of the shared NSK phone set is a different vowel per language
    assert fs.map_phone("ay", "hindi") == ("EH",) and fs.map_phone("ay", "telugu") == ("AY",)
    # schwa is AX (radio ax; msu_ru's second-level reduced ae), not the open AH; the NSK
    # short a is a low vowel in festival's own phone set (vheight 3), so it stays AH
    assert fs.map_phone("ax", "radio") == ("AX",) and fs.map_phone("ah", "radio") == ("AH",)
    assert fs.map_phone("ae", "msu_ru") == ("AX",) and fs.map_phone("a", "msu_ru") == ("AH",)
    assert fs.map_phone("a", "telugu") == ("AH",)
    with pytest.raises(KeyError, match="czech"):
        fs.map_phone("qq", "czech")


def test_voice_table() -> None:
    assert len(fs.VOICES) == 11
    for name, voice in fs.VOICES.items():
        assert voice.name == name and voice.select == f"(voice_{name})"
        assert voice.lang in LANGS and voice.family == f"festival-{voice.lang}"
        assert voice.package.startswith("festvox-") and voice.licence_id in voice.licence
        assert f"{name} = {voice.package}" in voice.licence
        assert f"/usr/share/doc/{voice.package}/copyright" in voice.licence
        codecs.lookup(voice.text_encoding)
        assert 50 < voice.f0_mean < 300
    assert {v.lang for v in fs.VOICES.values()} == LANGS
    # unit selection plays recorded units as they are: no prosody control
    assert [n for n, v in fs.VOICES.items() if not (v.stretch and v.f0)] == ["msu_ru_nsh_clunits"]
    nsk = {n for n, v in fs.VOICES.items() if v.speaker == "nsk"}
    assert nsk == {"hindi_NSK_diphone", "marathi_NSK_diphone", "telugu_NSK_diphone"}


# Words the package's copyright file must contain for the licence the table claims.
_LICENCE_EVIDENCE = {
    "GPL-2.0-or-later": ("GNU General Public License", "either version 2"),
    "GPL-3.0-or-later": ("GNU General Public License", "either version 3"),
    "LGPL-2.0-or-later": ("GNU Lesser General Public License", "either version 2"),
    "festvox-free": (
        "Permission is hereby granted, free of charge",
        "Any modifications must be clearly marked",
    ),
}


@pytest.mark.parametrize("name", sorted(fs.VOICES))
def test_licence_matches_the_package_copyright(name: str) -> None:
    voice = fs.VOICES[name]
    path = Path(f"/usr/share/doc/{voice.package}/copyright")
    if not path.exists():
        pytest.skip(f"{voice.package} not installed")
    text = " ".join(path.read_text("utf-8", errors="replace").split())
    for words in _LICENCE_EVIDENCE[voice.licence_id]:
        assert words in text, (name, voice.licence_id, words)
    assert voice.holder.split()[-1].strip("()") in text  # the named holder is the file's


def test_festival_text() -> None:
    czech, russian = fs.VOICES["czech_ph"], fs.VOICES["msu_ru_nsh_clunits"]
    # Scheme-safe, typographic quotes gone, characters outside ISO-8859-2 dropped
    assert fs.festival_text('„Žluťoučký“ kůň "x" \\ Вывод', czech) == "Žluťoučký kůň x"
    assert fs.festival_text("и т.д. (таблицу(ы)).", russian) == "и т. д. таблицу ы."
    assert fs.festival_text("ॲप", fs.VOICES["marathi_NSK_diphone"]) == "ऍप"


def test_batch_needs_one_known_voice(tmp_path: Path) -> None:
    def item(voice: str) -> Item:
        return Item("x", "train", "ok", "en", "t", voice, 0.1, 0.1, 0.8)

    with pytest.raises(ValueError, match="one voice"):
        fs.render_batch((item("kal_diphone"), item("pc_diphone")), tmp_path)
    with pytest.raises(ValueError, match="one voice"):
        fs.render_batch((item("cmu_us_slt_arctic_hts"),), tmp_path)
    assert fs.render_batch((), tmp_path) == []


# --- live: each installed voice --------------------------------------------------------

_LIST_SCRIPT = """
(define (a2f-dump name)
  (let ((d (PhoneSet.description)))
    (format t "PHONESET %s %s" name (cadr (assoc 'name d)))
    (mapcar (lambda (p) (format t " %s" (car p))) (cadr (assoc 'phones d)))
    (format t "\\n")))
"""


@pytest.fixture(scope="module")
def live_phonesets() -> dict[str, tuple[str, list[str]]]:
    """voice -> (phone-set name, phones) for every installed voice, from one festival process."""
    voices = fs.available_voices()
    if not voices:
        pytest.skip("festival or its voices not installed")
    script = _LIST_SCRIPT + "".join(f'{fs.VOICES[v].select}\n(a2f-dump "{v}")\n' for v in voices)
    out = subprocess.run(
        ["festival", "--pipe"], input=script, capture_output=True, text=True, timeout=120
    )
    found: dict[str, tuple[str, list[str]]] = {}
    for line in out.stdout.splitlines():
        if line.startswith("PHONESET "):
            _, voice, phoneset, *phones = line.split()
            found[voice] = (phoneset, phones)
    return found


def _installed(name: str) -> None:
    if shutil.which("festival") is None or name not in fs.available_voices():
        pytest.skip(f"festival voice {name} ({fs.VOICES[name].package}) not installed")


@pytest.mark.parametrize("name", sorted(fs.VOICES))
def test_live_phoneset_is_mapped(
    name: str, live_phonesets: dict[str, tuple[str, list[str]]]
) -> None:
    _installed(name)
    phoneset, phones = live_phonesets[name]
    assert phoneset == fs.VOICES[name].phoneset
    assert phones == RAW[phoneset]["_inventory"]  # the recorded inventory is what festival has


def _render(
    name: str, tmp_path: Path, params: list[tuple[tuple[str, float], ...]], text: str = ""
) -> list[dict[str, object]]:
    voice = fs.VOICES[name]
    items = tuple(
        Item(
            f"{name}-{k}",
            "train",
            text or SENTENCES[voice.lang],
            voice.lang,
            "test",
            name,
            0.2,
            0.3,
            0.8,
            p,
        )
        for k, p in enumerate(params)
    )
    return fs.render_batch(items, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(fs.VOICES))
def test_live_render(name: str, tmp_path: Path) -> None:
    _installed(name)
    voice = fs.VOICES[name]
    (rec,) = _render(name, tmp_path, [(("stretch", 1.0), ("f0", voice.f0_mean), ("f0_std", 12.0))])
    assert (rec["source"], rec["voice"], rec["lang"], rec["licence"]) == (
        "festival",
        name,
        voice.lang,
        voice.licence,
    )
    audio, sr = sf.read(tmp_path / "train" / f"{name}-0.wav")
    assert sr == SAMPLE_RATE and abs(len(audio) / sr - float(rec["duration"])) < 1e-3  # type: ignore[arg-type]
    phones = [tuple(p) for p in rec["phones"]]  # type: ignore[union-attr]
    validate_phones(phones, float(rec["duration"]))  # type: ignore[arg-type]
    labels = [p[2] for p in phones]
    assert labels[0] == labels[-1] == SILENCE and len(set(labels)) > 6
    assert set(labels) & BILABIALS, labels
    # speech where the phones say speech: the loudest labelled vowel is well above the padding
    start, end = phones[len(phones) // 2][:2]
    assert np.abs(audio[int(start * sr) : int(end * sr) + 1]).max() > 0.05


def _median_f0(audio: npt.NDArray[np.float64], sr: int) -> float:
    """Median autocorrelation pitch of the voiced frames (enough to tell 90 Hz from 180 Hz)."""
    frame, hop, found = int(0.04 * sr), int(0.01 * sr), []
    lo, hi = sr // 400, sr // 60
    for i in range(0, len(audio) - frame, hop):
        x = audio[i : i + frame] - audio[i : i + frame].mean()
        if np.sqrt(np.mean(x**2)) < 0.05 * np.abs(audio).max():
            continue
        corr = np.correlate(x, x, "full")[frame - 1 :]
        lag = lo + int(np.argmax(corr[lo:hi]))
        if corr[lag] > 0.5 * corr[0]:
            found.append(sr / lag)
    return float(np.median(found))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kal_diphone", "lp_diphone", "czech_ph"])
def test_live_prosody(name: str, tmp_path: Path) -> None:
    """Duration_Stretch lengthens; the F0 rewrite moves the pitch where asked, whatever the voice's own model."""
    _installed(name)
    low, high, slow = _render(
        name, tmp_path,
        [(("stretch", 1.0), ("f0", 90.0), ("f0_std", 5.0)), (("stretch", 1.0), ("f0", 180.0), ("f0_std", 5.0)),
         (("stretch", 1.4), ("f0", 90.0), ("f0_std", 5.0))],
    )  # fmt: skip
    pads = 0.5  # lead 0.2 s + trail 0.3 s
    assert float(slow["duration"]) - pads > 1.25 * (float(low["duration"]) - pads)  # type: ignore[arg-type]
    f_low, f_high = (
        _median_f0(sf.read(tmp_path / "train" / f"{name}-{k}.wav")[0], SAMPLE_RATE) for k in (0, 1)
    )
    assert 75 < f_low < 110 and 150 < f_high < 215, (f_low, f_high)


@pytest.mark.slow
def test_live_bad_text_skips_one_item(tmp_path: Path) -> None:
    """An utterance the front end rejects (or crashes on) costs that item, not the batch."""
    _installed("telugu_NSK_diphone")
    good = (("stretch", 1.0),)
    voice = fs.VOICES["telugu_NSK_diphone"]
    items = tuple(
        Item(f"te-{k}", "train", text, "te", "test", voice.name, 0.1, 0.1, 0.8, good)
        for k, text in enumerate([SENTENCES["te"], "' is not a valid character following the close element name '",
                                  SENTENCES["te"]])
    )  # fmt: skip
    assert [r["id"] for r in fs.render_batch(items, tmp_path)] == ["te-0", "te-2"]
