"""Issue 12's per-voice targets and the model card's per-voice tables."""

from __future__ import annotations

import math

from training.evaluate import check_voice_targets, target_lines, unseen_voices
from training.recipe import conditions_table, per_voice_table, spread_section

GOOD = {"bilabial_closure": 0.95, "bilabial_nasal": 0.9, "open_auc": 0.9, "round_auc": 0.9,
        "silence_rest": 0.99, "sync_lag_ms": 10.0, "clips": 4}  # fmt: skip


def doc(voices: dict[str, dict], langs: dict[str, dict], noisy_rest: float = 0.99) -> dict:
    noisy = {"voice": {v: {**r, "silence_rest": noisy_rest} for v, r in voices.items()},
             "lang": {v: {**r, "silence_rest": noisy_rest} for v, r in langs.items()}}  # fmt: skip
    return {
        "systems": {"default": {**GOOD, "groups": {"voice": voices, "lang": langs}}, "energy": GOOD},
        "conditions": {"noise10": {"default": {**GOOD, "groups": noisy}}},
    }


def test_every_unseen_voice_and_language_is_checked_on_its_own() -> None:
    assert {"lp_diphone", "flite-rms", "ko", "vi"} <= unseen_voices()
    bad = {**GOOD, "bilabial_closure": 0.7}
    report = check_voice_targets(doc({"lp_diphone": GOOD, "flite-rms": bad, "en-us": bad}, {"it": GOOD, "en": bad}))
    # seen voices are not per-voice targets (only languages and unseen voices are)
    assert set(report) == {"voice:lp_diphone", "voice:flite-rms", "lang:it", "lang:en"}
    assert report["voice:lp_diphone"]["met"] and report["lang:it"]["met"]
    assert not report["voice:flite-rms"]["met"] and not report["lang:en"]["met"]
    assert report["voice:flite-rms"]["clean"]["bilabial_closure"] == {
        "value": 0.7, "op": ">=", "goal": 0.9, "met": False}  # fmt: skip


def test_rest_at_10_db_and_lag_count_and_unlabelled_groups_are_skipped() -> None:
    report = check_voice_targets(doc({"ko": GOOD}, {"ko": GOOD}, noisy_rest=0.9))
    assert not report["voice:ko"]["met"] and report["voice:ko"]["noise10"]["silence_rest"]["met"] is False
    late = {**GOOD, "sync_lag_ms": -40.0}
    assert not check_voice_targets(doc({"vi": late}, {}))["voice:vi"]["met"]
    unlabelled = {k: (math.nan if k != "clips" else 3) for k in GOOD}
    no_bilabials = {**GOOD, "bilabial_closure": math.nan, "bilabial_nasal": math.nan}
    report = check_voice_targets(doc({}, {"es": unlabelled, "ko": no_bilabials}))
    assert "lang:es" not in report  # asterisk-es carries no phones
    assert report["lang:ko"]["met"]  # nothing to measure is not a miss


def test_intervals_say_which_misses_the_sample_can_tell_from_the_goal() -> None:
    near = {**GOOD, "bilabial_closure": 0.88, "ci": {"bilabial_closure": [0.8, 0.95]}}
    far = {**GOOD, "bilabial_nasal": 0.6, "sync_lag_ms": -30.0,
           "ci": {"bilabial_nasal": [0.5, 0.7], "sync_lag_ms": [-45.0, 5.0]}}  # fmt: skip
    shaky = {**GOOD, "open_auc": 0.9, "ci": {"open_auc": [0.86, 0.94]}}
    report = check_voice_targets(doc({"lp_diphone": near, "flite-rms": far, "ko": shaky}, {}))
    lp, rms, ko = (report[f"voice:{v}"]["clean"] for v in ("lp_diphone", "flite-rms", "ko"))
    assert lp["bilabial_closure"]["sure"] is False and not lp["bilabial_closure"]["met"]
    assert rms["bilabial_nasal"]["sure"] is True and not rms["bilabial_nasal"]["met"]
    # |lag| of an interval crossing 0 runs from 0 to its larger end
    assert rms["abs_sync_lag_ms"]["ci"] == [0.0, 45.0] and rms["abs_sync_lag_ms"]["sure"] is False
    assert ko["open_auc"]["met"] and ko["open_auc"]["sure"] is False
    assert "sure" not in lp["open_auc"]  # no interval measured: no verdict on the spread
    lines = target_lines(report)
    assert "voice:lp_diphone bilabial_closure 0.880 [0.800, 0.950] vs >= 0.9: missed, the interval reaches the goal" in lines
    assert "voice:flite-rms bilabial_nasal 0.600 [0.500, 0.700] vs >= 0.85: missed" in lines
    assert "voice:ko open_auc 0.900 [0.860, 0.940] vs >= 0.88: met, the interval reaches past the goal" in lines
    assert not any("voice:ko bilabial" in line for line in lines)  # met, no interval: not listed
    assert len(lines) == 4
    tiny = {**GOOD, "round_auc": 0.5, "clips": 1}
    assert target_lines(check_voice_targets(doc({}, {"da": tiny}))) == [
        "lang:da round_auc 0.500 vs >= 0.85: missed on 1 clip(s), too few for an interval"]
    section = spread_section(report)
    assert section.count("\n- ") == 4 and "1000 resamples" in section
    assert spread_section(check_voice_targets(doc({"lp_diphone": {**GOOD, "bilabial_closure": 0.5}}, {}))) == ""


def test_tables_show_new_beside_old() -> None:
    new = doc({"lp_diphone": GOOD}, {"it": GOOD})
    old = doc({"lp_diphone": {**GOOD, "bilabial_closure": 0.5}}, {"it": GOOD})
    table = per_voice_table(new, old, check_voice_targets(new))
    assert "| voice lp_diphone | 0.950 / 0.500 |" in table and table.count("\n") == 3
    cond = conditions_table(new, old)
    assert "| noise10 | new |" in cond and "| clean | v1.0.0 |" in cond and "| clean | energy |" in cond


def test_a_missing_model_file_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    from training.evaluate import main

    assert main(["--model", str(tmp_path / "nope.onnx"), "--corpus", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.onnx" in err[0] and "training.export" in err[0]
