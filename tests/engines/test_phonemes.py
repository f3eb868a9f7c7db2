"""The phoneme synthesiser and the ``phonemes`` engine."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio2face.engines.phonemes import PhonemeEngine, default_synthesizer, synthesize
from audio2face.engines.phonemes.visemes import VisemeTablesModel
from audio2face.errors import UnknownNameError
from audio2face.rigs import ARKIT_52
from audio2face.types import Engine, EngineStream, frames_for_samples

COL = {n: i for i, n in enumerate(ARKIT_52)}


def aperture(f: np.ndarray) -> np.ndarray:
    jaw = np.clip(f[:, COL["jawOpen"]] - f[:, COL["mouthClose"]], 0, 1)
    lower = 0.5 * (f[:, COL["mouthLowerDownLeft"]] + f[:, COL["mouthLowerDownRight"]])
    upper = 0.5 * (f[:, COL["mouthUpperUpLeft"]] + f[:, COL["mouthUpperUpRight"]])
    return jaw + 0.5 * lower + 0.25 * upper


def pucker(f: np.ndarray) -> np.ndarray:
    return f[:, COL["mouthPucker"]]


def _table_doc() -> dict:
    text = resources.files("audio2face.engines.phonemes").joinpath("visemes.json").read_text("utf-8")
    return json.loads(text)


def test_tables_validate_and_reject_bad_data() -> None:
    VisemeTablesModel.model_validate(_table_doc())
    bad = _table_doc()
    bad["visemes"]["AA"]["pose"]["jawOpenn"] = 0.5
    with pytest.raises(ValueError, match="jawOpenn"):
        VisemeTablesModel.model_validate(bad)
    bad = _table_doc()
    del bad["phone_to_viseme"]["UW"]
    with pytest.raises(ValueError, match="UW"):
        VisemeTablesModel.model_validate(bad)


def test_schwa_is_its_own_phone_and_opens_less_than_ah() -> None:
    """AX (schwa, CMUdict's AH0) came last, so the other phones keep their ids; the
    mouth opens on it, but less than on /ʌ/ (AH), and less than on the spread EH."""
    from audio2face.engines.phonemes.phoneset import (
        OPEN_VOWELS,
        PHONE_ID,
        PHONES,
        REDUCED_VOWELS,
        VOWELS,
        normalize_phone,
    )

    assert PHONES[-1] == "AX" and PHONE_ID["AH"] == 3 and PHONE_ID["ZH"] == len(PHONES) - 2
    assert normalize_phone("AH0") == "AX" and normalize_phone("ah1") == "AH"
    assert normalize_phone("ax") == "AX" and normalize_phone("AH") == "AH"
    assert "AX" in VOWELS and {"AX"} == REDUCED_VOWELS and "AX" not in OPEN_VOWELS
    synth = default_synthesizer()

    def held(vowel: str) -> float:
        phones = [(0.0, 0.2, "SIL"), (0.2, 0.2 + 0.25, vowel), (0.45, 0.8, "SIL")]
        return float(aperture(synth.render(phones, [0.325]))[0])

    assert 0.1 < held("AX") < held("EH") < held("AH")


@pytest.mark.parametrize("fps", [30.0, 60.0, 100.0])
@pytest.mark.parametrize("bilabial", ["P", "B", "M"])
def test_short_bilabial_between_open_vowels_closes(fps: float, bilabial: str) -> None:
    phones = [(0.0, 0.2, "SIL"), (0.2, 0.4, "AA"), (0.4, 0.433, bilabial), (0.433, 0.65, "AA"), (0.65, 1.0, "SIL")]
    synth = default_synthesizer()
    centre = synth.render(phones, [0.4165])
    assert aperture(centre)[0] <= 0.01
    ap = aperture(synth.frames(phones, int(fps), fps))
    near = ap[int(np.ceil(0.4 * fps)) - 1 : int(np.floor(0.433 * fps)) + 2]
    assert near.min() <= 0.05 * ap.max()
    assert ap.max() > 0.5  # the vowels do open


def test_rounding_is_anticipated_through_consonants() -> None:
    rounded = [(0.0, 0.3, "SIL"), (0.3, 0.38, "S"), (0.38, 0.45, "T"), (0.45, 0.65, "UW"), (0.65, 1.0, "SIL")]
    spread = [(s, e, "IY" if p == "UW" else p) for s, e, p in rounded]
    fr, fs = synthesize(rounded, 1.0, 100.0), synthesize(spread, 1.0, 100.0)
    peak = pucker(fr).max()
    assert peak > 0.5
    assert pucker(fr)[40] > 0.25 * peak  # 50 ms before the vowel, during S/T
    assert pucker(fs)[40] < 0.02
    assert pucker(fr)[20] < 0.05 * peak  # but not from the start of the silence


def test_long_silence_relaxes_to_rest_and_jaw_is_smooth() -> None:
    phones = [(0.0, 0.15, "AA"), (0.15, 0.55, "SIL"), (0.55, 0.7, "AE"), (0.7, 1.1, "SIL")]
    ap = aperture(synthesize(phones, 1.1, 30.0))
    t = np.arange(ap.size) / 30.0
    interior = (t >= 0.25) & (t <= 0.45)
    assert ap[interior].max() <= 0.1
    assert ap[t > 1.0].max() <= 0.02
    chatter = [(i * 0.06, (i + 1) * 0.06, "AA" if i % 2 else "IY") for i in range(30)]
    jit = np.abs(np.diff(aperture(synthesize(chatter, 1.8, 30.0)), 2)).mean()
    assert jit < 0.06


def test_diphthong_glides() -> None:
    f = synthesize([(0.0, 0.1, "SIL"), (0.1, 0.5, "AY"), (0.5, 0.8, "SIL")], 0.8, 100.0)
    assert aperture(f)[20] > aperture(f)[45] + 0.2  # opens on AA, closes towards IY
    assert f[45, COL["mouthStretchLeft"]] > f[20, COL["mouthStretchLeft"]]


def test_engine_protocol_and_animate() -> None:
    eng = PhonemeEngine(fps=30)
    assert isinstance(eng, Engine)
    assert isinstance(eng.open_stream(), EngineStream)
    assert eng.output_names == ARKIT_52
    f = eng.animate([(0.0, 0.5, "AA")], 1.01)
    assert f.shape == (30, 52) and f.dtype == np.float32
    assert not f[:, COL["eyeBlinkLeft"]].any()


def test_stream_waits_for_phones() -> None:
    eng = PhonemeEngine(fps=30)
    s = eng.open_stream()
    assert s.push(np.zeros(16000, np.float32)).shape == (0, 52)  # audio but no phones
    s.push_phones([(0.0, 2.0, "AA")])
    assert len(s.push(np.zeros(0, np.float32))) == 30
    with pytest.raises(ValueError, match="time order"):
        s.push_phones([(1.0, 1.2, "B")])
    with pytest.raises(UnknownNameError, match="unknown phone 'XX'; known: "):
        s.push_phones([(2.0, 2.1, "XX")])


PHONES = [(0.0, 0.3, "SIL"), (0.3, 0.35, "M"), (0.35, 0.5, "AA"), (0.5, 0.55, "T"), (0.55, 0.8, "UW"),
          (0.8, 0.84, "B"), (0.84, 1.0, "IY"), (1.0, 1.45, "SIL"), (1.45, 1.6, "OW"), (1.6, 2.0, "SIL")]


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(0, 36000),
    fps=st.sampled_from([25.0, 30.0, 60.0, 29.97]),
    cuts=st.lists(st.floats(0, 1), max_size=8),
    phone_cuts=st.lists(st.integers(0, len(PHONES)), max_size=4),
    end_early=st.booleans(),
)
def test_stream_frame_clock_exact_under_any_split(total: int, fps: float, cuts: list[float],
                                                  phone_cuts: list[int], end_early: bool) -> None:
    eng = PhonemeEngine(fps=fps)
    s = eng.open_stream()
    bounds = sorted({0, total, *(int(c * total) for c in cuts)})
    pbounds = sorted({0, len(PHONES), *phone_cuts})
    pchunks = [PHONES[a:b] for a, b in zip(pbounds[:-1], pbounds[1:], strict=True)]
    out = []
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        if k < len(pchunks):
            s.push_phones(pchunks[k])
        out.append(s.push(np.zeros(b - a, np.float32)))
        assert sum(len(o) for o in out) <= frames_for_samples(b, 16000, fps)
    for chunk in pchunks[len(bounds) - 1 :]:
        s.push_phones(chunk)
    if end_early:
        s.end_phones()
    out.append(s.finish())
    frames = np.concatenate(out)
    n = frames_for_samples(total, 16000, fps)
    assert frames.shape == (n, 52)
    full = default_synthesizer().frames(PHONES, n, fps)
    np.testing.assert_allclose(frames, full, atol=1e-6)


def test_animate_text_optional() -> None:
    espeak = pytest.importorskip("audio2face.engines.phonemes.espeak")
    if not espeak.available():
        pytest.skip("libespeak-ng not installed")
    audio, sr, frames = PhonemeEngine(fps=30).animate_text("Bob made a map.")
    assert len(frames) == frames_for_samples(len(audio), sr, 30)
    assert aperture(frames).max() > 0.3
