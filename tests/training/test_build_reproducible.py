"""Two builds of one plan give the same audio, whatever the worker count.

libespeak-ng carries its wave generator's state from one synthesis to the next, and
flite's clustergen voices draw excitation noise from libc's ``rand()``: before each job
got its own process and each flite clip its own seed, a clip's samples depended on
which jobs its worker had run before (machine-to-machine corpus differences).

Each voice reads sentences of its own language, as in the real corpus. (libespeak-ng
1.51 reading Latin-script text with digits in its Arabic voice is not deterministic
between processes: it depends on address-space randomisation; training/README.md,
Reproducibility.)"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_data import SAMPLES, small_corpus

from audio2face.engines.phonemes import espeak

pytestmark = pytest.mark.skipif(not espeak.available(), reason="libespeak-ng not installed")


def _digests(root: Path) -> dict[str, str]:
    """Each clip's samples and phones (not the file's bytes: libsndfile stamps float
    WAVs' PEAK chunk with the time of writing)."""
    out = {}
    for wav in sorted(root.glob("*/*.wav")):
        audio, _ = sf.read(wav, dtype="float32")
        phones = json.loads(wav.with_suffix(".json").read_text("utf-8"))["phones"]
        out[str(wav.relative_to(root))] = hashlib.sha256(
            audio.tobytes() + json.dumps(phones).encode()
        ).hexdigest()
    return out


def test_build_is_the_same_with_one_or_two_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from training.data import flite_source
    from training.data import plan as plan_module
    from training.data.build import BuildOptions, build
    from training.data.plan import PlanOptions

    small_corpus(monkeypatch)  # the plan runs here; workers only render its items

    def native(lang: str, files: object) -> list:
        words = SAMPLES[lang].rstrip(".!?").split()
        rng = np.random.default_rng(len(words))
        return [plan_module.Sentence(" ".join(rng.choice(words, size=6)) + ".", lang, "test-native")
                for _ in range(200)]  # fmt: skip

    monkeypatch.setattr(plan_module, "corpus_sentences", native)
    plan = PlanOptions(hours=0.02, small=True, heldout_fraction=0.2, use_asterisk=False,
                       use_festival=False, heldout_voice_minutes=0.02, validation_voice_minutes=0.02)  # fmt: skip
    one = build(BuildOptions(out=tmp_path / "one", plan=plan, workers=1))
    two = build(BuildOptions(out=tmp_path / "two", plan=plan, workers=2))
    a, b = _digests(tmp_path / "one"), _digests(tmp_path / "two")
    assert not any(one["failures"].values()) and not any(two["failures"].values())
    assert len(a) >= 8 and a.keys() == b.keys()
    differ = sorted(k for k in a if a[k] != b[k])
    assert not differ, f"{len(differ)} of {len(a)} clips differ, e.g. {differ[:3]}"
    manifest = [json.loads(line) for line in (tmp_path / "one/manifest.jsonl").open()]
    sources = {r["source"] for r in manifest}
    assert "espeak-ng" in sources
    if flite_source.available_voices():
        assert "flite" in sources
