"""The alive steps one by one: head, gaze, natural blinks, arousal, tongue."""

from __future__ import annotations

import numpy as np
import pytest
from alive_support import FPS, RATE, n_frames, phrases, syllables

from audio2face.audio.prosody import Prosody, ProsodyTracker
from audio2face.errors import ConfigError
from audio2face.postprocess import BindEnv, StepContext, StreamOptions, parse_step
from audio2face.rigs import ARKIT_52

DEFAULT_OPTIONS = StreamOptions()

COL = {n: i for i, n in enumerate(ARKIT_52)}


def prosody_of(audio: np.ndarray) -> Prosody:
    tr = ProsodyTracker(RATE, FPS)
    tr.push(audio)
    return tr.take(n_frames(audio.shape[0]), final=True)


def bind(spec: dict, names=ARKIT_52):
    cls, options = parse_step(spec)
    return cls(options, names, BindEnv(fps=FPS))


def run(step, x, prosody=None, *, seed=0, options=DEFAULT_OPTIONS, shared=None):
    before = x.copy()
    ctx = StepContext(0, None, step.new_state(np.random.default_rng(seed)), prosody, options,
                      {} if shared is None else shared)  # fmt: skip
    out = step(x, ctx)
    np.testing.assert_array_equal(x, before)  # never in place
    assert out.dtype == np.float32
    return out


SPEECH = phrases([(3.0, 1.5), (2.5, 1.5), (3.0, 2.0)] * 2, seed=5)
P = prosody_of(SPEECH)
N = len(P)
ZEROS = np.zeros((N, 52), np.float32)
OPEN = ZEROS.copy()
OPEN[:, COL["jawOpen"]] = 0.3  # lips well apart (the tongue's lip gate is open)


def _fit(frames: np.ndarray, n: int) -> np.ndarray:
    """``frames`` cut or padded (last row repeated) to ``n`` rows."""
    frames = np.asarray(frames, np.float32)[:n]
    return np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)]) if len(frames) < n else frames


# -- head -----------------------------------------------------------------------------
def test_head_appends_three_channels_in_degrees_scaled_by_amplitude() -> None:
    step = bind({"type": "head"})
    assert step.output_names == ARKIT_52 + ("headYaw", "headPitch", "headRoll")
    out = run(step, ZEROS, P)
    np.testing.assert_array_equal(out[:, :52], ZEROS)
    pose = out[:, 52:]
    assert 0.3 < np.abs(pose).max() < 15.0  # a few degrees
    double = run(bind({"type": "head", "amplitude": 2.0}), ZEROS, P)[:, 52:]
    np.testing.assert_allclose(double, 2.0 * pose, rtol=1e-5, atol=1e-5)


def test_head_moves_more_while_speaking_and_nods_on_stress() -> None:
    pose = run(bind({"type": "head"}), ZEROS, P)[:, 52:]
    speaking = P.speaking
    moving = np.abs(np.diff(pose, axis=0)).sum(axis=1)
    assert moving[speaking[1:]].mean() > 1.5 * moving[~speaking[1:]].mean()
    # Pitch dips (nods) follow stressed syllables: pitch velocity right after a
    # stressed nucleus is downwards on average.
    stressed = np.flatnonzero(P.nucleus > 0.5)
    stressed = stressed[stressed < N - 4]
    dv = pose[stressed + 3, 1] - pose[stressed, 1]
    assert dv.mean() < -0.3


def test_head_without_voice_is_calm_and_deterministic() -> None:
    step = bind({"type": "head"})
    a = run(step, ZEROS, None, seed=3)[:, 52:]
    b = run(step, ZEROS, None, seed=3)[:, 52:]
    np.testing.assert_array_equal(a, b)
    assert 0 < np.abs(a).max() < 5.0
    assert not np.array_equal(a, run(step, ZEROS, None, seed=4)[:, 52:])


def test_head_bypass_is_the_neutral_pose_and_partial_names_are_refused() -> None:
    step = bind({"type": "head"})
    ctx = StepContext(0, None, step.new_state(np.random.default_rng(0)), P)
    out = step.bypass(ZEROS, ctx)
    assert out.shape == (N, 55) and not out.any()
    with pytest.raises(ConfigError, match="only some of"):
        bind({"type": "head"}, ARKIT_52 + ("headYaw",))


# -- gaze -----------------------------------------------------------------------------
def gaze_angles(out: np.ndarray) -> np.ndarray:
    left = out[:, COL["eyeLookOutLeft"]] - out[:, COL["eyeLookInLeft"]]
    up = out[:, COL["eyeLookUpLeft"]] - out[:, COL["eyeLookDownLeft"]]
    return np.stack([left, up], axis=1)


def test_gaze_is_conjugate_and_in_range() -> None:
    out = run(bind({"type": "gaze"}), ZEROS, P)
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(out[:, COL["eyeLookOutLeft"]], out[:, COL["eyeLookInRight"]])
    np.testing.assert_array_equal(out[:, COL["eyeLookInLeft"]], out[:, COL["eyeLookOutRight"]])
    np.testing.assert_array_equal(out[:, COL["eyeLookUpLeft"]], out[:, COL["eyeLookUpRight"]])
    others = [c for n, c in COL.items() if not n.startswith("eyeLook")]
    assert not out[:, others].any()


def test_gaze_saccade_statistics_follow_the_cited_numbers() -> None:
    """Fixation mean ~0.33 s; aversion amplitudes exponential (most below 15 deg);
    saccades published per frame for the blink step."""
    step = bind({"type": "gaze"})
    long = np.zeros((30 * 600, 52), np.float32)  # 10 minutes, no voice: a listener
    shared: dict = {}
    run(step, long, None, shared=shared, seed=1)
    sacc = shared["saccade_deg"]
    assert sacc.shape == (long.shape[0],)
    rate = np.count_nonzero(sacc) / 600.0
    assert 2.0 < rate < 4.0  # a saccade per fixation (~0.35 s with the saccade itself)
    u = np.random.default_rng(1).random((4000, 3))
    assert 0.30 < step.fixations(u).mean() < 0.36
    amp = np.hypot(*step.aversions(u[:, :2]).T)
    assert np.mean(amp <= 15.0) > 0.8 and 7.0 < amp.mean() < 10.0


def test_gaze_looks_away_more_while_speaking() -> None:
    """Argyle & Cook: ~75 % at the viewer when listening, ~40 % when speaking."""
    step = bind({"type": "gaze"})
    talk = prosody_of(syllables(120.0, seed=2))

    def at_share(prosody: Prosody | None) -> float:
        state = step.new_state(np.random.default_rng(2))
        at = []
        for k in range(len(talk)):  # frame by frame, reading the model's state
            ctx = StepContext(k, None, state, None if prosody is None else prosody.slice(k, k + 1))
            step(np.zeros((1, 52), np.float32), ctx)
            state = ctx.state
            at.append(step.at_viewer(state))
        return float(np.mean(at))

    speaking, listening = at_share(talk), at_share(None)
    assert 0.65 < listening < 0.85 and 0.3 < speaking < 0.5, (listening, speaking)


def test_gaze_modes_and_the_per_stream_override() -> None:
    x = np.full((90, 52), 0.3, np.float32)
    off = run(bind({"type": "gaze", "mode": "off"}), x)
    np.testing.assert_array_equal(off, x)
    step = bind({"type": "gaze"})
    np.testing.assert_array_equal(run(step, x, options=StreamOptions(gaze="off")), x)
    idle = run(step, ZEROS, None, options=StreamOptions(gaze="idle"), seed=1)
    camera = run(step, ZEROS, None, seed=1)
    assert np.abs(gaze_angles(idle)).mean() > np.abs(gaze_angles(camera)).mean()


def test_gaze_vrm_layout() -> None:
    names = ("aa", "lookLeft", "lookRight", "lookUp", "lookDown", "blink")
    step = bind({"type": "gaze", "mode": "idle", "layout": "vrm"}, names)
    out = run(step, np.zeros((600, 6), np.float32))
    assert out[:, 1:5].any() and not out[:, [0, 5]].any()
    assert not (out[:, 1] * out[:, 2]).any()  # never left and right at once


# -- blinks ---------------------------------------------------------------------------
def blink_onsets(lid: np.ndarray) -> np.ndarray:
    return np.flatnonzero((lid[1:] > 0.05) & (lid[:-1] <= 0.05)) + 1


def test_natural_blink_rate_shape_and_clusters() -> None:
    talk = prosody_of(phrases([(4.0, 0.8)] * 30, seed=9))  # ~2.4 min of phrases
    x = np.zeros((len(talk), 52), np.float32)
    out = run(bind({"type": "natural_blink"}), x, talk, seed=4)
    lid = out[:, COL["eyeBlinkLeft"]]
    np.testing.assert_array_equal(lid, out[:, COL["eyeBlinkRight"]])
    minutes = len(talk) / FPS / 60
    onsets = blink_onsets(lid)
    assert 12 <= len(onsets) / minutes <= 24
    assert lid.max() <= 1.0 and lid.max() >= 0.85
    # Asymmetric: fewer frames rising to the peak than falling from it.
    rise, fall = [], []
    for o in onsets[:-1]:
        seg = lid[o - 1 : o + 15]
        peak = int(np.argmax(seg))
        rise.append(peak)
        fall.append(int(np.argmax(seg[peak:] < 0.05)))
    assert np.mean(fall) > 1.8 * np.mean(rise)
    # Clusters at phrase boundaries: more onsets within 0.4 s after one than chance.
    bounds = np.flatnonzero(talk.phrase_end | talk.phrase_start)
    near = np.zeros(len(talk), bool)
    for b in bounds:
        near[b : b + int(0.4 * FPS)] = True
    assert near[onsets].mean() > 2 * near.mean()


def test_blinks_follow_large_saccades() -> None:
    x = np.zeros((30 * 120, 52), np.float32)
    step = bind({"type": "natural_blink", "speaking_per_min": 0, "quiet_per_min": 0,
                 "saccade_p_per_deg": 1.0, "saccade_max_p": 1.0})  # fmt: skip
    amp = np.zeros(x.shape[0])
    amp[60:3600:90] = 20.0
    lid = run(step, x, None, shared={"saccade_deg": amp})[:, COL["eyeBlinkLeft"]]
    assert len(blink_onsets(lid)) == np.count_nonzero(amp)


def test_blink_replace_and_max() -> None:
    x = np.zeros((900, 52), np.float32)
    x[:, COL["eyeBlinkLeft"]] = 0.2
    rep = run(bind({"type": "natural_blink"}), x, None, seed=1)[:, COL["eyeBlinkLeft"]]
    mx = run(bind({"type": "natural_blink", "combine": "max"}), x, None, seed=1)
    assert rep.min() == 0.0 and mx[:, COL["eyeBlinkLeft"]].min() == pytest.approx(0.2)


# -- arousal --------------------------------------------------------------------------
def test_arousal_widens_excited_speech_only() -> None:
    calm = syllables(12.0, rate_hz=3.5, level=0.1, seed=1)
    excited = syllables(12.0, rate_hz=6.5, level=0.4, seed=1)
    t = np.arange(excited.shape[0]) / RATE
    excited = excited * (1 + 0.6 * np.sin(2 * np.pi * 0.4 * t)).astype(np.float32)
    audio = np.concatenate([calm, excited])
    p = prosody_of(audio)
    step = bind({"type": "arousal", "widen": 0.5})
    ctx = StepContext(0, None, step.new_state(np.random.default_rng(0)), p)
    a = step.estimate(ctx)
    half = len(p) // 2
    assert a[half + 60 :].mean() > a[60:half].mean() + 0.15
    x = np.full((len(p), 52), 0.4, np.float32)
    out = run(step, x, p)
    assert out[:, COL["jawOpen"]].max() > 0.45 and out[:, COL["mouthClose"]].max() == 0.4
    assert (out[:, COL["eyeBlinkLeft"]] == 0.4).all()
    np.testing.assert_array_equal(run(step, x, None), x)  # no voice: unchanged


# -- tongue ---------------------------------------------------------------------------
def test_tongue_is_silent_without_voice_or_at_8_khz() -> None:
    step = bind({"type": "tongue"})
    x = np.zeros((30, 52), np.float32)
    np.testing.assert_array_equal(run(step, x, None), x)
    tr = ProsodyTracker(8000, FPS)
    tr.push(np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32))
    np.testing.assert_array_equal(run(step, x, tr.take(30)), x)


def test_tongue_model_file_records_how_it_was_made() -> None:
    step = bind({"type": "tongue"})
    meta = step.model.meta
    assert "espeak-ng" in meta["about"] and step.model.classes == ("interdental", "alveolar")
    for name in step.model.classes:
        assert meta["held_out"][name]["recall"] > 0.6 and meta["held_out"][name]["precision"] > 0.8
        assert meta["held_out_unseen_voice"][name]["recall"] > 0.6


def test_tongue_on_th_a_little_on_t_d_n_l_and_not_on_s() -> None:
    from audio2face.engines.phonemes import espeak

    if not espeak.available():
        pytest.skip("libespeak-ng not installed")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import soxr

    from audio2face.engines.default import load_default_engine
    from audio2face.engines.onnx import OrtOptions

    engine = load_default_engine(ort_options=OrtOptions(providers="cpu"))
    step = bind({"type": "tongue"})
    texts = (
        "Think through those three thin things.",  # /θ ð/
        "Ten little dolls were not allowed to dine.",  # /t d n l/, no th
        "Sue sees six sacks of rice.",  # /s z/ only
        "Go, my baby, grow up by a warm bay.",  # none of them
    )
    # espeak-ng carries state (its pitch flutter) from one synthesis to the next, and
    # re-initialising it does not reset it: in this process the audio would depend on
    # what other tests spoke before. A fresh process speaks the same audio every time.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        spoken = list(pool.map(espeak.synthesize, texts, [espeak.SynthOptions(voice="en-us")] * len(texts)))
    shown = {}
    for text, s in zip(texts, spoken, strict=True):
        audio = soxr.resample(s.audio, s.sample_rate, RATE).astype(np.float32)
        p = prosody_of(audio)
        # The lips as the default engine moves them: the tongue hides behind closed lips.
        stream = engine.open_stream()
        lips = np.concatenate([stream.push(audio), stream.finish()])
        out = run(step, _fit(lips, len(p)), p)[:, COL["tongueOut"]]
        shown[text[:5]] = (float((out > 0.1).mean()), float(out.max()))
    th, alveolar, s_only, none = shown.values()
    assert th[0] > 0.15 and th[1] > 0.4, shown
    assert alveolar[0] > 0.1 and alveolar[1] < 0.5 * th[1], shown  # a glimpse only
    assert s_only[0] < 0.06 and none[0] < 0.03, shown


def test_the_tongue_hides_behind_closed_lips() -> None:
    """The same voice, the same classifier: lips apart show the tongue, lips closed
    (jaw shut, or jaw open with ``mouthClose`` pressing them) show none."""
    step = bind({"type": "tongue", "threshold": 0.0, "alveolar_threshold": 0.0})
    pressed = OPEN.copy()
    pressed[:, COL["mouthClose"]] = OPEN[:, COL["jawOpen"]]
    apart = run(step, OPEN, P)[:, COL["tongueOut"]]
    assert apart[P.speaking].max() > 0.2
    assert not run(bind({"type": "tongue", "threshold": 0.0, "alveolar_threshold": 0.0}), ZEROS, P)[:, COL["tongueOut"]].any()
    assert not run(bind({"type": "tongue", "threshold": 0.0, "alveolar_threshold": 0.0}), pressed, P)[:, COL["tongueOut"]].any()
    ungated = bind({"type": "tongue", "threshold": 0.0, "alveolar_threshold": 0.0, "lips_open": 0.0})
    np.testing.assert_allclose(run(ungated, ZEROS, P)[:, COL["tongueOut"]], apart, atol=1e-6)


def test_a_first_version_tongue_model_file_still_loads(tmp_path) -> None:
    """A logistic model of the interdental class alone (the first file format)."""
    import json

    n = 3 * 24 + 2
    doc = {"n_bands": 24, "mean": [0.0] * n, "std": [1.0] * n, "weights": [0.0] * n, "bias": 5.0}
    (tmp_path / "old.json").write_text(json.dumps(doc))
    cls, options = parse_step({"type": "tongue", "model": "old.json"})
    step = cls(options, ARKIT_52, BindEnv(fps=FPS, base_dir=tmp_path))
    assert step.model.classes == ("interdental",)
    out = run(step, OPEN, P)[:, COL["tongueOut"]]
    first = int(np.argmax(P.speaking))
    assert out[P.speaking].max() > 0.4 and first > 0 and not out[:first].any()


def test_tongue_network_matches_its_formula_row_by_row() -> None:
    """The classifier's compiled layers against the network written out in float64;
    and a frame's probabilities are the same bits whatever else is in the call (the
    kernels sum each frame's products in a fixed order, frames in the inner loop)."""
    from audio2face.postprocess.tongue import TongueModel, builtin_model

    m = builtin_model()
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((131, m.w1.shape[0])) * m.std + m.mean).astype(np.float32)
    h = np.tanh(((x - m.mean) / m.std).astype(np.float64) @ m.w1 + m.b1)
    logits = h @ m.w2 + m.b2
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    want = e[:, 1:] / e.sum(axis=1, keepdims=True)
    got = m.probabilities(x)
    assert got.shape == (131, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-6)
    for lo, hi in ((0, 1), (5, 12), (3, 67), (100, 131)):
        np.testing.assert_array_equal(m.probabilities(x[lo:hi]), got[lo:hi])
    # The first file format: one logistic unit.
    w = rng.standard_normal(m.w1.shape[0]).astype(np.float32)
    logistic = TongueModel(mean=m.mean, std=m.std, w1=w[:, None], b1=np.float32([0.3]),
                           w2=None, b2=None, classes=("interdental",), n_bands=m.n_bands)  # fmt: skip
    z = ((x - m.mean) / m.std).astype(np.float64) @ w + 0.3
    np.testing.assert_allclose(logistic.probabilities(x)[:, 0], 1 / (1 + np.exp(-z)), atol=2e-6)
