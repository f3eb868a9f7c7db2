"""Bilabial labels against the audio (session 6, issue 12).

``training/audit_bilabials.py`` found that espeak-ng's phone event for a stop starts at its
release: the silent closure before /p b/ belonged to the previous phone, so targets closed
the lips ~27 ms late and on the burst, while festival / flite labels close them on the
silence. ``espeak_source.close_stop_onsets`` moves /p b/ back to the closure; these tests
check it on a synthetic clip, on real espeak-ng output, and check the audit's measure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from training.audit_bilabials import audit_clip, summarise
from training.data import espeak_source
from training.data.jobs import Item

from audio2face.engines.phonemes import espeak
from audio2face.engines.phonemes.phoneset import SILENCE

SR = 16000
needs_espeak = pytest.mark.skipif(not espeak.available(), reason="libespeak-ng not installed")


def _vowel(seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((150, 700, 1200, 2500, 3500), 1))
    return (0.2 * tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _apa() -> tuple[np.ndarray, float, float]:
    """vowel 0.25 s, closure (digital silence) 60 ms, burst 15 ms, vowel 0.25 s;
    returns audio, closure start and burst start."""
    rng = np.random.default_rng(0)
    burst = (0.3 * rng.standard_normal(round(0.015 * SR))).astype(np.float32)
    audio = np.concatenate([_vowel(0.25, rng), np.zeros(round(0.06 * SR), np.float32), burst, _vowel(0.25, rng)])
    return audio, 0.25, 0.31


def test_stop_label_moves_back_to_the_closure() -> None:
    audio, closure, burst = _apa()
    end = len(audio) / SR
    # espeak-ng style: the vowel runs through the closure, /p/ starts at the burst
    phones = [(0.0, burst, "AA"), (burst, burst + 0.04, "P"), (burst + 0.04, end, "AA")]
    fixed = espeak_source.close_stop_onsets(phones, audio, SR)
    assert fixed[1][2] == "P" and abs(fixed[1][0] - closure) <= 0.01, fixed
    assert fixed[0][1] == fixed[1][0] and fixed[1][1] == phones[1][1]  # still tiles; the end stays
    # /m/, a stop after silence and a label already on the closure are left alone
    for label in ("M",):
        same = [(0.0, burst, "AA"), (burst, burst + 0.04, label), (burst + 0.04, end, "AA")]
        assert espeak_source.close_stop_onsets(same, audio, SR) == same
    after_sil = [(0.0, burst, SILENCE), (burst, burst + 0.04, "P"), (burst + 0.04, end, "AA")]
    assert espeak_source.close_stop_onsets(after_sil, audio, SR) == after_sil
    good = [(0.0, closure, "AA"), (closure, burst + 0.04, "B"), (burst + 0.04, end, "AA")]
    assert espeak_source.close_stop_onsets(good, audio, SR) == good


def test_no_dip_no_move() -> None:
    audio = _vowel(0.6, np.random.default_rng(1))
    phones = [(0.0, 0.3, "AA"), (0.3, 0.35, "P"), (0.35, 0.6, "AA")]
    assert espeak_source.close_stop_onsets(phones, audio, SR) == phones


def test_audit_measures_offset_and_overlap() -> None:
    audio, closure, burst = _apa()
    end = len(audio) / SR
    on = [[0.0, closure, "AA"], [closure, burst + 0.015, "P"], [burst + 0.015, end, "AA"]]
    late = [[0.0, burst, "AA"], [burst, burst + 0.03, "P"], [burst + 0.03, end, "AA"]]
    rows_on, _ = audit_clip(audio, on, "c", "on")
    rows_late, _ = audit_clip(audio, late, "c", "late")
    table = summarise(rows_on + rows_late)
    assert abs(table["on"]["median_offset_ms"]) <= 12 and table["on"]["no_overlap"] == 0.0
    assert table["late"]["median_offset_ms"] >= 25 and table["late"]["no_overlap"] == 1.0
    assert 40 <= table["on"]["median_closure_ms"] <= 75  # 60 ms; the 20 ms window shortens a silent gap


@needs_espeak
def test_espeak_clip_closes_on_the_silence(tmp_path: Path) -> None:
    """Real espeak-ng speech: every /p b/ after a vowel now overlaps its acoustic closure
    (without ``close_stop_onsets`` most of them start at the burst and miss it)."""
    item = Item("t-apa", "train", "A happy puppy keeps a paper map.", "en", "test", "en-us", 0.2, 0.2, 0.8,
                (("rate", 170), ("pitch", 50), ("range", 50)))  # fmt: skip
    rec = espeak_source.render(item, tmp_path)
    audio, sr = sf.read(tmp_path / "train" / "t-apa.wav", dtype="float32")
    rows, _ = audit_clip(audio, rec["phones"], "t-apa", "espeak")  # type: ignore[arg-type]
    stops = [r for r in rows if r.phones in ("P", "B") and r.depth_db >= 10]
    assert len(stops) >= 5
    assert sum(r.no_overlap for r in stops) <= 1, [(r.label_start, r.closure_start, r.closure_end) for r in stops]
    assert abs(float(np.median([r.label_start - r.closure_start for r in stops]))) <= 0.01
