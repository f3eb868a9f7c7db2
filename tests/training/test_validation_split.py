"""The validation split (session 6): training-family voices and sentences kept out of
training *and* out of the held-out split, so a model is chosen without the held-out data."""

from __future__ import annotations

import math

import pytest
from test_data import small_corpus
from test_evaluate import GOOD, doc
from training.data.split import SplitPolicy
from training.evaluate import (
    check_voice_targets,
    compare_table,
    validation_summary,
    validation_voices,
)


def test_policy_buckets_are_disjoint_and_deterministic() -> None:
    policy = SplitPolicy(seed=7)
    sentences = [f"sentence number {i} about maps and boots" for i in range(4000)]
    held = {s for s in sentences if policy.sentence_heldout(s)}
    val = {s for s in sentences if policy.sentence_validation(s)}
    assert held.isdisjoint(val)
    assert 0.02 < len(val) / len(sentences) < 0.07
    assert val == {s for s in sentences if SplitPolicy(seed=7).sentence_validation(s)}
    files = [f"prompt {i}" for i in range(4000)]
    assert not {f for f in files if policy.file_heldout(f)} & {f for f in files if policy.file_validation(f)}
    assert any(policy.file_validation(f) for f in files)
    # whole voices: held out beats validation beats train
    assert policy.voice_split("czech_krb") == "validation" and policy.voice_split("id+m3") == "validation"
    assert policy.voice_split("id+f4") == "heldout"  # a held-out variant stays held out
    assert policy.voice_split("lp_diphone") == "heldout" and policy.voice_split("czech_ph") == "train"
    with pytest.raises(ValueError):
        SplitPolicy(validation_voices=frozenset({"lp_diphone"}))


def test_plan_keeps_validation_out_of_train_and_heldout(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.data import festival_source, flite_source
    from training.data.plan import PlanOptions, make_plan

    small_corpus(monkeypatch)
    opts = PlanOptions(hours=0.2, heldout_fraction=0.1, validation_fraction=0.1, heldout_voice_minutes=0.5,
                       validation_voice_minutes=0.5, use_asterisk=False,
                       festival_voices=tuple(festival_source.VOICES), flite_voices=tuple(flite_source.VOICES))  # fmt: skip
    items = [i for j in make_plan(opts) for i in j.items]
    policy = opts.split
    by_split = {name: [i for i in items if i.split == name] for name in ("train", "heldout", "validation")}
    assert all(by_split.values())
    base = {name: {i.voice.partition("+")[0] for i in got} for name, got in by_split.items()}
    # whole validation voices: only in validation, with their own minutes
    for voice in ("czech_krb", "id"):
        assert voice in base["validation"] and voice not in base["train"] | base["heldout"], voice
    # training voices read validation sentences; no validation sentence is trained on or held out
    assert {"pc_diphone", "czech_ph", "awb"} <= base["validation"]
    for i in by_split["train"] + by_split["heldout"]:
        assert not any(policy.sentence_validation(s) for s in i.text.split(". ")), i
    for i in by_split["validation"]:
        if policy.voice_split(i.voice) == "train":
            assert all(policy.sentence_validation(s + ("" if s.endswith(".") else "."))
                       for s in i.text.split(". ")), i  # fmt: skip
    assert not any(policy.voice_split(i.voice) == "heldout" for i in by_split["validation"])


def test_asterisk_prompts_get_three_way_split() -> None:
    from training.data.plan import _asterisk_split

    policy = SplitPolicy()
    got = {_asterisk_split(policy, "", f"Please say the number {i} now") for i in range(400)}
    assert got == {"train", "heldout", "validation"}


def test_validation_report_uses_validation_voices_and_the_worst_group() -> None:
    assert validation_voices() == {"czech_krb", "id"}
    bad = {**GOOD, "bilabial_closure": 0.6, "clips": 10}
    d = doc({"czech_krb": bad, "lp_diphone": GOOD, "en-us": GOOD}, {"cs": {**bad, "bilabial_closure": 0.7}, "en": GOOD})
    report = check_voice_targets(d, voices=validation_voices())
    assert set(report) == {"voice:czech_krb", "lang:cs", "lang:en"}
    assert not report["voice:czech_krb"]["met"]
    summary = validation_summary(d)
    assert summary["worst_group"]["bilabial_closure"] == {"value": 0.6, "group": "voice:czech_krb"}
    assert summary["pooled"]["bilabial_closure"] == GOOD["bilabial_closure"]
    nan_row = {**GOOD, "round_auc": math.nan, "clips": 10}
    few = {**GOOD, "round_auc": 0.1, "clips": 2}  # too few clips to be the worst
    worst = validation_summary(doc({"x": nan_row, "y": {**GOOD, "clips": 10}, "z": few}, {}))["worst_group"]
    assert worst["round_auc"] == {"value": 0.9, "group": "voice:y"}  # NaN (nothing to measure) is skipped
    table = compare_table(d, doc({"czech_krb": GOOD}, {}))
    assert "| czech_krb | 10 | 0.60 / 0.95 |" in table and "| en-us | 4 | 0.95 / - |" in table
