"""flite voices awb, rms and kal: rendering, phone timings, phone mapping, prosody parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from training.data import flite_source
from training.data.corpus import SAMPLE_RATE, validate_phones
from training.data.jobs import Item

from audio2face.engines.phonemes.phoneset import BILABIALS, PHONE_ID, SILENCE, VOWELS

_FOUND = flite_source.available_voices()
needs_flite = pytest.mark.skipif(not _FOUND, reason="libflite1 (flite voices awb, rms, kal) not installed")

# Every English phone class, several bilabials and an interior pause.
PANGRAM = "The quick brown fox jumps over the lazy dog; a wizard's job is to vex chumps quickly in fog."
BILABIAL_TEXT = "Bob may move the big blue map, then stop."


def _item(voice: str, text: str, params: tuple[tuple[str, float], ...] = ()) -> Item:
    return Item(f"flite-{voice}", "train", text, "en", "test", voice, 0.3, 0.4, 0.8, params)


def test_only_the_allowed_voices() -> None:
    assert set(flite_source.VOICES) == {"awb", "rms", "kal"}
    assert all(v.lang == "en" and v.family == "flite" for v in flite_source.VOICES.values())
    assert set(_FOUND) <= set(flite_source.VOICES)
    with pytest.raises(ValueError, match="not allowed"):
        flite_source.synthesize("hello", "slt")


def test_segments_to_phones_drops_zero_length_and_clamps() -> None:
    # "b" has zero length (same end as "pau"), so it must not take "aa"'s span; the last
    # pause ends after the wave (as kal's does) and is clamped to it.
    ends = [(0.2, "pau"), (0.2, "b"), (0.35, "aa"), (0.4, "em"), (0.7, "pau")]
    phones = flite_source.segments_to_phones(ends, 0.6)
    assert phones == [(0.0, 0.2, SILENCE), (0.2, 0.35, "AA"), (0.35, 0.4, "M"), (0.4, 0.6, SILENCE)]


def test_map_covers_the_whole_flite_phoneset() -> None:
    try:
        names = flite_source.phone_names()
    except OSError:
        pytest.skip("libflite_usenglish not installed")
    assert len(names) >= 40 and "pau" in names
    for name in names:
        assert flite_source.map_phone(name) in PHONE_ID, name
    assert flite_source.map_phone("em") == "M" and flite_source.map_phone("pau") == SILENCE
    assert flite_source.map_phone("ax") == "AX" and flite_source.map_phone("ah") == "AH"


@needs_flite
@pytest.mark.parametrize("voice", sorted(flite_source.VOICES))
def test_every_phone_flite_emits_is_mapped(voice: str) -> None:
    if voice not in _FOUND:
        pytest.skip(f"flite voice {voice} not installed")
    _, _, ends = flite_source.synthesize(PANGRAM, voice)
    labels = {label for _, label in ends}
    assert len(labels) > 25
    for label in labels:
        assert flite_source.map_phone(label) in PHONE_ID, label


@needs_flite
@pytest.mark.parametrize("voice", sorted(flite_source.VOICES))
def test_render_tiles_audio_with_timed_bilabials(voice: str, tmp_path: Path) -> None:
    if voice not in _FOUND:
        pytest.skip(f"flite voice {voice} not installed")
    rec = flite_source.render(_item(voice, BILABIAL_TEXT), tmp_path)
    assert rec["source"] == "flite" and rec["voice"] == f"flite-{voice}" and rec["lang"] == "en"
    assert "Carnegie Mellon" in str(rec["licence"])
    audio, sr = sf.read(tmp_path / "train" / f"flite-{voice}.wav", dtype="float32")
    assert sr == SAMPLE_RATE
    assert json.loads((tmp_path / "train" / f"flite-{voice}.json").read_text("utf-8"))["id"] == f"flite-{voice}"
    phones = [tuple(p) for p in rec["phones"]]  # type: ignore[union-attr]
    validate_phones(phones, len(audio) / sr)  # type: ignore[arg-type]
    labels = [p for _, _, p in phones]
    assert sum(p in BILABIALS for p in labels) >= 6  # B, M, M, B, B, M, P, P in the text

    # Timings are right, not just tiling: pauses are quiet, vowels loud, and lips close
    # (bilabials are quieter than the vowels around them).
    def rms(label_set: frozenset[str] | set[str]) -> float:
        spans = [audio[int(s * sr) : int(e * sr)] for s, e, p in phones if p in label_set and e - s > 0.02]
        return float(np.sqrt(np.mean(np.concatenate(spans) ** 2)))

    vowels = rms(VOWELS)
    assert rms({SILENCE}) < 0.03 * vowels  # 50 ms late labels fail this or the next check
    assert rms(BILABIALS) < 0.7 * vowels


@needs_flite
def test_params_change_prosody_and_reset() -> None:
    voice = "awb" if "awb" in _FOUND else _FOUND[0]
    base, sr, _ = flite_source.synthesize(BILABIAL_TEXT, voice)
    slow, _, _ = flite_source.synthesize(BILABIAL_TEXT, voice, {"stretch": 1.3, "f0": 140.0, "f0_std": 20.0})
    again, _, _ = flite_source.synthesize(BILABIAL_TEXT, voice)
    assert len(slow) > 1.15 * len(base)
    assert len(again) == len(base)  # an item without params gets the voice's own prosody back
    assert sr in (8000, 16000)


def test_licence_is_the_installed_one() -> None:
    if not flite_source.LICENCE_FILE.exists():
        pytest.skip("libflite1 not installed")
    text = flite_source.LICENCE_FILE.read_text("utf-8", errors="ignore")
    assert "Permission is hereby granted, free of charge, to use and distribute" in text
    assert "Carnegie Mellon University" in text


@needs_flite
def test_a_seed_fixes_the_take() -> None:
    """rms draws its excitation noise from libc's rand(): unseeded, each call sounds a
    little different; seeded (as the corpus seeds each clip by its id), the same."""
    if "rms" not in _FOUND:
        pytest.skip("flite voice rms not installed")
    text = "The man made a map of the moon."
    free = [flite_source.synthesize(text, "rms")[0] for _ in range(2)]
    assert not np.array_equal(free[0], free[1])  # why the seed exists
    first = flite_source.synthesize(text, "rms", seed="clip-7")[0]
    flite_source.synthesize("Something else in between.", "rms")
    again = flite_source.synthesize(text, "rms", seed="clip-7")[0]
    other = flite_source.synthesize(text, "rms", seed="clip-8")[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
