"""The lip-sync quality metrics of benchmarks/quality on hand-made cases."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from audio2face.engines.phonemes.phoneset import VOWELS
from audio2face.rigs import ARKIT_52
from audio2face.types import frames_for_samples

QUALITY = Path(__file__).resolve().parents[2] / "benchmarks" / "quality"


def _load(name: str) -> ModuleType:
    # Unique module names: the benchmark folder is not a package, and other benchmark
    # folders may also have a metrics.py.
    key = f"quality_bench_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, QUALITY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[key] = mod
    spec.loader.exec_module(mod)
    return mod


qm = _load("metrics")
systems = _load("systems")
corpus = _load("synth_corpus")
FPS = 30.0
SR = 16000


@pytest.fixture(scope="module")
def clips() -> list[tuple[np.ndarray, list]]:
    rng = np.random.default_rng(7)
    return [corpus.make_clip(rng, n_words=8) for _ in range(6)]


def _score(system, clips) -> dict[str, float]:
    res = []
    for i, (audio, phones) in enumerate(clips):
        frames = system(audio, SR, FPS, phones=phones)
        assert frames.shape == (frames_for_samples(len(audio), SR, FPS), 52)
        res.append(qm.evaluate_clip(str(i), frames, FPS, phones, audio, SR))
    return qm.aggregate(res)


def test_curves_follow_the_formula() -> None:
    f = np.zeros((2, 52), np.float32)
    c = {n: i for i, n in enumerate(ARKIT_52)}
    f[0, c["jawOpen"]], f[0, c["mouthClose"]] = 0.5, 0.2
    f[0, c["mouthLowerDownLeft"]], f[0, c["mouthUpperUpRight"]] = 0.4, 0.8
    f[1, c["jawOpen"]], f[1, c["mouthClose"]] = 0.1, 0.3  # clipped at 0
    f[1, c["mouthPucker"]], f[1, c["mouthFunnel"]] = 0.6, 0.2
    np.testing.assert_allclose(qm.aperture(f), [0.3 + 0.1 + 0.1, 0.0], atol=1e-6)
    np.testing.assert_allclose(qm.rounding(f), [0.0, 0.4], atol=1e-6)


def test_auc() -> None:
    assert qm.auc([2, 3], [0, 1]) == 1.0
    assert qm.auc([0, 1], [2, 3]) == 0.0
    assert qm.auc([1, 1], [1, 1]) == 0.5
    assert math.isnan(qm.auc([], [1.0]))


def _raw_clips(n: int, seed: int) -> list:
    """Per-clip raw quantities with ties, empty sides and a missing lag among them."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.append(qm.ClipResult(
            str(i), bilabial=(int(rng.integers(0, 6)), 5), nasal=(int(rng.integers(0, 3)), 2),
            lips_shut=(int(rng.integers(0, 2)), 3), silence=(int(rng.integers(1, 3)), 2),
            open_pos=list(np.round(rng.normal(1, 1, int(rng.integers(0, 5))), 1)),
            open_neg=list(np.round(rng.normal(0, 1, 4), 1)),
            round_pos=list(np.round(rng.normal(1, 1, 3), 1)), round_neg=list(np.round(rng.normal(0, 1, 3), 1)),
            lag_ms=math.nan if i == 3 else float(rng.integers(-40, 40)),
        ))  # fmt: skip
    return out


def test_weighted_metrics_are_aggregate_of_the_clips_repeated() -> None:
    """A bootstrap resample is the clip list with some clips repeated and others left
    out: the vectorised metrics must be exactly what ``aggregate`` gives that list."""
    clips = _raw_clips(15, seed=3)
    rng = np.random.default_rng(0)
    w = rng.multinomial(15, np.full(15, 1 / 15), size=20)
    w[0] = 1  # the sample itself
    got = qm.weighted_metrics(clips, w)
    for r in range(w.shape[0]):
        expanded = [c for c, k in zip(clips, w[r], strict=True) for _ in range(k)]
        want = qm.aggregate(expanded)
        for m in qm.INTERVAL_METRICS:
            np.testing.assert_allclose(got[m][r], want[m], rtol=0, atol=1e-12, err_msg=m)


def test_intervals_hold_the_estimate_and_narrow_with_more_clips() -> None:
    few, many = _raw_clips(10, seed=5), _raw_clips(400, seed=5)
    small, large = qm.intervals(few, 500), qm.intervals(many, 500)
    for m in ("bilabial_closure", "open_auc", "round_auc", "silence_rest"):
        lo, hi = large[m]
        assert lo <= qm.aggregate(many)[m] <= hi
        assert hi - lo < small[m][1] - small[m][0]
    assert qm.intervals(many, 500) == large  # seeded
    nothing = [qm.ClipResult(str(i), open_neg=[0.1]) for i in range(qm.MIN_INTERVAL_CLIPS)]
    got = qm.intervals(nothing, 100)
    assert got["bilabial_closure"] is None and got["open_auc"] is None
    assert set(qm.intervals(many[: qm.MIN_INTERVAL_CLIPS - 1], 100).values()) == {None}
    from training.evaluate import MIN_INTERVAL_CLIPS

    assert MIN_INTERVAL_CLIPS == qm.MIN_INTERVAL_CLIPS  # the report's twin of this bound


def test_open_auc_leaves_schwa_out() -> None:
    """Schwa (AX) is neither an open nor a spread vowel: a face that barely opens on it
    loses nothing, and one that opens wide on it gains nothing."""
    fps = 30.0
    phones = [(0.0, 0.3, "SIL"), (0.3, 0.6, "AA"), (0.6, 0.9, "IY"), (0.9, 1.2, "AX"), (1.2, 1.5, "SIL")]
    jaw = ARKIT_52.index("jawOpen")
    for schwa in (0.05, 0.9):
        f = np.zeros((45, 52), np.float32)
        f[9:18, jaw], f[18:27, jaw], f[27:36, jaw] = 0.6, 0.2, schwa
        res = qm.evaluate_clip("c", f, fps, phones, np.zeros(24000, np.float32), 16000)
        assert qm.aggregate([res])["open_auc"] == 1.0, schwa
        assert len(res.open_pos) == len(res.open_neg) == 1


def test_face_that_never_opens_scores_zero_closure(clips) -> None:
    def frozen(audio, sr, fps, phones=None):
        return np.zeros((frames_for_samples(len(audio), sr, fps), 52), np.float32)

    m = _score(frozen, clips)
    assert m["bilabial_closure"] == 0.0
    assert m["bilabial_nasal"] == 0.0
    assert m["silence_rest"] == 1.0  # but it does rest
    assert m["jitter"] == 0.0


def test_oracle_scores_high_on_its_own_phones(clips) -> None:
    m = _score(systems.oracle, clips)
    assert m["bilabial_closure"] >= 0.95
    assert m["open_auc"] >= 0.9
    assert m["round_auc"] >= 0.95
    assert m["silence_rest"] >= 0.95
    assert m["sync_lag_ms"] == 0.0


def test_lips_shut_counts_tongue_tip_consonants_closed_at_their_centre() -> None:
    # 1 s at 30 fps, mouth open (0.5) except where a case closes it.
    phones = [(0.0, 0.2, "AA"), (0.2, 0.3, "N"), (0.3, 0.5, "AA"), (0.5, 0.6, "T"),
              (0.6, 0.8, "AA"), (0.8, 0.83, "D"), (0.83, 1.0, "AA")]  # fmt: skip
    ap = np.full(30, 0.5)
    assert qm.lips_shut_counts(ap, phones, FPS) == (0, 2)  # /d/ is under 60 ms
    ap[round(0.25 * FPS)] = 0.1  # the /n/ shut at its centre (<= 0.25 x P90 = 0.125)
    ap[round(0.55 * FPS) + 1] = 0.0  # the /t/ shut, but off its centre frame
    assert qm.lips_shut_counts(ap, phones, FPS) == (1, 2)
    assert qm.lips_shut_counts(np.full(30, 0.01), phones, FPS) == (0, 0)  # never opens


def test_a_face_closing_on_every_consonant_is_caught(clips) -> None:
    """The oracle keeps its lips apart on /t d n l s z/; a face shut on every consonant
    gets full bilabial closure but is caught by lips_shut."""

    def shut_on_consonants(audio, sr, fps, phones=None):
        frames = systems.oracle(audio, sr, fps, phones=phones)
        t = np.arange(frames.shape[0]) / fps
        opening = [ARKIT_52.index(n) for n in ("jawOpen", "mouthLowerDownLeft",
                   "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight")]  # fmt: skip
        for s, e, p in qm.normalize_phones(phones):
            if p not in VOWELS and p != "SIL":
                frames[np.ix_((t >= s) & (t < e), opening)] = 0.0
        return frames

    oracle = _score(systems.oracle, clips)
    shut = _score(shut_on_consonants, clips)
    assert shut["bilabial_closure"] == 1.0
    assert shut["lips_shut"] > 0.9 > 0.5 > oracle["lips_shut"]


def test_energy_baseline_cannot_round(clips) -> None:
    m = _score(systems.energy, clips)
    assert m["round_auc"] == pytest.approx(0.5)
    assert m["jitter"] > _score(systems.oracle, clips)["jitter"]


def test_sync_lag_detects_delay(clips) -> None:
    audio, phones = clips[0]
    frames = systems.oracle(audio, SR, FPS, phones=phones)
    late = np.concatenate([np.repeat(frames[:1], 3, axis=0), frames[:-3]])
    res = qm.evaluate_clip("late", late, FPS, phones, audio, SR)
    assert res.lag_ms == pytest.approx(100.0)


def test_open_mouth_in_silence_fails_rest(clips) -> None:
    audio, phones = clips[0]
    frames = systems.oracle(audio, SR, FPS, phones=phones).copy()
    frames[:, ARKIT_52.index("jawOpen")] = np.maximum(frames[:, ARKIT_52.index("jawOpen")], 0.3)
    assert qm.evaluate_clip("open", frames, FPS, phones, audio, SR).silence == (0, qm.silence_counts(
        qm.aperture(frames), qm.normalize_phones(phones), FPS)[1])


def test_loudness_corr_only_without_phones(clips) -> None:
    audio, phones = clips[0]
    frames = systems.energy(audio, SR, FPS)
    assert math.isnan(qm.evaluate_clip("a", frames, FPS, phones, audio, SR).loudness_corr)
    assert qm.evaluate_clip("b", frames, FPS, None, audio, SR).loudness_corr > 0.5


def test_run_script_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "res.json"
    proc = subprocess.run(
        [sys.executable, str(QUALITY / "run.py"), "--corpus", str(tmp_path / "c"), "--make-synthetic", "7",
         "--systems", "energy,oracle,default", "--md", "--out", str(out), "--group-by", "source",
         "--intervals", "50"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert "| oracle |" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["systems"]["oracle"]["clips"] == 5  # two of the synthetic clips have no phones
    assert doc["systems"]["energy"]["clips"] == 7
    assert "default" in doc["systems"]
    oracle = doc["systems"]["oracle"]
    lo, hi = oracle["ci"]["open_auc"]
    assert lo <= oracle["open_auc"] <= hi
    assert all("ci" in row for row in oracle["groups"]["source"].values())


def test_default_system_loads_the_model_the_environment_names(monkeypatch, tmp_path) -> None:
    """The recipe compares a previous release through ``AUDIO2FACE_DEFAULT_MODEL``: the
    benchmark must load that file, not the packaged one (it once scored the packaged
    model twice and reported it as both releases)."""
    monkeypatch.setenv("AUDIO2FACE_DEFAULT_MODEL", str(tmp_path / "missing.onnx"))
    with pytest.raises(systems.SystemUnavailableError, match="missing.onnx"):
        systems.default_model()
    monkeypatch.delenv("AUDIO2FACE_DEFAULT_MODEL")
    assert callable(systems.default_model())


def test_gate_repeats_measures_the_rms_gate_as_the_test_does() -> None:
    gate = _load("gate_repeats")
    n = 90  # 3 s at 30 fps, 0.3 s of padding on each side
    ap = np.full(n, 0.6)
    phones = [(1.0, 1.1, "M"), (1.5, 1.6, "M"), (2.0, 2.1, "M"), (2.4, 2.42, "M")]  # last: < 30 ms
    assert gate.closure(ap, phones) == 0.0  # never closed
    ap[30:34] = 0.05  # the first /m/ shut (frames 30-33)
    ap[45:49] = 0.2  # the second nearly: 0.2 > 0.25 x 0.6
    assert gate.closure(ap, phones) == pytest.approx(1 / 3)
    ap[60:64] = 0.1
    assert gate.closure(ap, phones) == pytest.approx(2 / 3)
