"""Each postprocess step on hand-made inputs, and the chain's per-stream behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio2face.errors import ConfigError
from audio2face.postprocess import BindEnv, StepContext, build_chain, parse_step
from audio2face.rigs import load_rig

F = np.float32


def run(spec: dict, names: list[str], x: np.ndarray, emotion: str | None = None) -> np.ndarray:
    cls, options = parse_step(spec)
    step = cls(options, names, BindEnv(fps=30.0))
    before = x.copy()
    out = step(x, StepContext(0, emotion, step.new_state(np.random.default_rng(0))))
    np.testing.assert_array_equal(x, before)  # never in place
    assert out.dtype == np.float32
    return out


def arr(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


def test_unitalker_clip() -> None:
    names = list(load_rig("unitalker51"))
    x = np.full((2, 51), 2.0, dtype=np.float32)
    x[1] = -1.0
    out = run({"type": "unitalker_clip"}, names, x)
    eye = [names.index(n) for n in ("EyeSquintLeft", "EyeLookUpRight", "EyeWideLeft")]
    sup = [names.index(n) for n in ("EyeBlinkLeft", "EyeBlinkRight", "MouthShrugUpper")]
    assert (out[0, eye] == F(0.8)).all() and (out[1, eye] == 0).all()
    assert (out[0, sup] == F(0.01)).all() and (out[1, sup] == 0).all()
    assert out[0, names.index("JawOpen")] == 2.0 and out[1, names.index("JawOpen")] == -1.0
    assert list(np.flatnonzero(out[0] == F(0.8))) == list(range(2, 14))  # columns 2..13


def test_rename_copies_zeroes_and_mixes() -> None:
    spec = {"type": "rename", "map": {"b": "A", " c": None, "m": {"a": 0.5, "b2": 2.0}}}
    out = run(spec, ["A", "b2"], arr([[0.2, 0.3], [1.0, -1.0]]))
    np.testing.assert_array_equal(out[:, :2], arr([[0.2, 0.0], [1.0, 0.0]]))
    np.testing.assert_allclose(out[:, 2], [0.2 * 0.5 + 0.3 * 2.0, 0.5 - 2.0], rtol=1e-6)


def test_rename_unknown_source_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="typo"):
        run({"type": "rename", "map": {"x": "typo"}}, ["a"], arr([[0.0]]))


def test_linear_exp_blend() -> None:
    spec = {"type": "linear_exp_blend", "names": ["w"], "offset": -0.1,
            "normalize_reference": 0.5, "exponential_strength": 4.0, "blend_weight": 0.25}
    out = run(spec, ["w", "o"], arr([[0.0, 0.7], [0.2, 0.7], [0.9, 0.7]]))
    y = 0.1 / 0.5
    expected = 0.75 * y + 0.25 * (1 - math.exp(-4 * y))
    assert out[0, 0] == 0.0
    assert out[1, 0] == pytest.approx(expected, abs=1e-6)
    assert out[2, 0] == 1.0  # (0.8 / 0.5) blends past 1, clipped
    assert (out[:, 1] == F(0.7)).all()


def test_scale() -> None:
    out = run({"type": "scale", "scales": {"b": 0.5}}, ["a", "b"], arr([[0.4, 0.4]]))
    np.testing.assert_array_equal(out, arr([[0.4, 0.2]]))


def test_blendshape_clip_default_and_per_channel() -> None:
    spec = {"type": "blendshape_clip", "default": [0.0, 1.0], "bounds": {"b": [0.1, 0.2]}}
    out = run(spec, ["a", "b"], arr([[-1.0, -1.0], [2.0, 2.0], [0.5, 0.15]]))
    np.testing.assert_array_equal(out, arr([[0.0, 0.1], [1.0, 0.2], [0.5, 0.15]]))


def test_threshold_at_or_below_is_zero() -> None:
    spec = {"type": "blendshape_threshold", "thresholds": {"a": 0.25}}
    out = run(spec, ["a", "b"], arr([[0.25, 0.1], [0.26, -5.0], [-1.0, 0.0]]))
    np.testing.assert_array_equal(out, arr([[0.0, 0.1], [0.26, -5.0], [0.0, 0.0]]))


def test_offset_per_emotion_without_clipping() -> None:
    spec = {"type": "offset", "presets": {"joy_1": {"a": 0.5, "absent": 1.0}}}
    x = arr([[0.8, 0.1]])
    np.testing.assert_array_equal(run(spec, ["a", "b"], x, "joy_1"), arr([[0.8 + 0.5, 0.1]]))
    np.testing.assert_array_equal(run(spec, ["a", "b"], x, None), x)
    np.testing.assert_array_equal(run(spec, ["a", "b"], x, "other"), x)


CLIPS = {
    "neutral": {"blendshape_names": ["blink"], "blendshape_values": [[0.5], [1.0], [-0.1]]},
    "sad": {"names": ["blink", "brow"], "values": [[0.2, 0.3], [0.4, 0.3], [0.0, 0.3]]},
}


def _blink_stream(gap: int, emotion: str | None) -> np.ndarray:
    spec = {"type": "custom_blink", "clips": CLIPS, "min_gap": gap, "max_gap": gap}
    chain = build_chain([spec], ["blink", "brow", "mouth"])
    return chain.new_stream(seed=0)(np.full((12, 3), 0.05, dtype=np.float32), emotion)


def test_custom_blink_places_and_overwrites() -> None:
    out = _blink_stream(5, None)  # blinks start at frames 5 and 10
    np.testing.assert_array_equal(
        out[:, 0], F([0.05] * 5 + [0.5, 1.0, -0.1, 0.05, 0.05, 0.5, 1.0])
    )
    assert (out[:, 1:] == F(0.05)).all()
    sad = _blink_stream(5, "sad_3")  # falls back from sad_3 to the base emotion's clip
    np.testing.assert_array_equal(sad[5:8], arr([[0.2, 0.3, 0.05], [0.4, 0.3, 0.05], [0.0, 0.3, 0.05]]))


def test_custom_blink_needs_its_default_clip() -> None:
    spec = {"type": "custom_blink", "clips": {"sad": CLIPS["sad"]}}
    with pytest.raises(ConfigError, match="neutral"):
        build_chain([spec], ["blink", "brow"])


def test_unitalker_random_blink_ramp_every_3_to_4_s() -> None:
    names = list(load_rig("unitalker51"))
    chain = build_chain([{"type": "unitalker_random_blink"}], names, BindEnv(fps=30.0))
    out = chain.new_stream(seed=5)(np.zeros((30 * 20, 51), dtype=np.float32))
    left, right = out[:, 0], out[:, 1]
    np.testing.assert_array_equal(left, right)
    peaks = np.flatnonzero(left == 1.0)
    assert len(peaks) >= 4
    assert 90 <= peaks[0] <= 120 and np.all((np.diff(peaks) >= 90) & (np.diff(peaks) <= 120))
    for p in peaks:
        np.testing.assert_array_equal(left[p - 2 : p + 2], F([0.4, 0.6, 1.0, 0.6]))
    assert np.count_nonzero(left) == 4 * len(peaks)
    assert not out[:, 2:].any()


def test_smoothing_one_pole() -> None:
    chain = build_chain([{"type": "smoothing", "cutoff_hz": 5.0, "names": ["a"]}], ["a", "b"])
    x = arr([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    out = chain.new_stream()(x)
    a = 1 - math.exp(-2 * math.pi * 5.0 / 30.0)
    np.testing.assert_allclose(out[:, 0], [0.0, a, a + a * (1 - a)], rtol=1e-6)
    np.testing.assert_array_equal(out[:, 1], x[:, 1])


def test_unknown_step_type_and_options_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown step type"):
        parse_step({"type": "explode"})
    with pytest.raises(ConfigError, match="scale"):
        parse_step({"type": "scale", "scales": {"a": 1.0}, "typo": 1})


def test_shape_mismatch_is_a_value_error() -> None:
    chain = build_chain([{"type": "scale", "scales": {"a": 2.0}}], ["a", "b"])
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        chain.new_stream()(np.zeros((3, 5), dtype=np.float32))


STATEFUL = [
    {"type": "smoothing", "cutoff_hz": 6.0},
    {"type": "offset", "presets": {"sad_1": {"brow": 0.3}}},
    {"type": "custom_blink", "clips": CLIPS, "min_gap": 3, "max_gap": 9},
    {"type": "unitalker_random_blink", "names": ["blink"], "min_interval_s": 0.2,
     "max_interval_s": 0.5},
]


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 100), max_size=12),
    seed=st.integers(0, 2**32 - 1),
    emotion=st.sampled_from([None, "sad_1", "sad_4", "nope"]),
)
def test_chunking_does_not_change_output(cuts: list[int], seed: int, emotion: str | None) -> None:
    chain = build_chain(STATEFUL, ["blink", "brow", "mouth"], BindEnv(fps=30.0))
    x = np.random.default_rng(seed).random((100, 3), dtype=np.float32)
    whole = chain.new_stream(seed)(x, emotion)
    stream = chain.new_stream(seed)
    bounds = [0, *sorted(cuts), 100]
    parts = [stream(x[a:b], emotion) for a, b in zip(bounds, bounds[1:], strict=False)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert stream.frame_index == 100


def test_ten_chunks_of_ten_equal_one_of_hundred() -> None:
    chain = build_chain(STATEFUL, ["blink", "brow", "mouth"])
    x = np.random.default_rng(0).random((100, 3), dtype=np.float32)
    stream = chain.new_stream(42)
    chunks = np.concatenate([stream(x[i : i + 10], "sad_1") for i in range(0, 100, 10)])
    np.testing.assert_array_equal(chunks, chain.new_stream(42)(x, "sad_1"))
    stream.reset()
    np.testing.assert_array_equal(stream(x, "sad_1"), chunks)


def test_streams_are_independent() -> None:
    chain = build_chain(STATEFUL, ["blink", "brow", "mouth"])
    x = np.random.default_rng(0).random((60, 3), dtype=np.float32)
    a, b = chain.new_stream(1), chain.new_stream(1)
    first = a(x)
    b(x[:30])  # interleaving another stream must not disturb the first
    np.testing.assert_array_equal(first, chain.new_stream(1)(x))
    assert not np.array_equal(chain.new_stream(1)(x), chain.new_stream(2)(x))


def test_unknown_emotion_names_from_clients_do_not_grow_memory() -> None:
    from audio2face.postprocess.chain import MAX_WARNED_EMOTIONS, Chain

    chain = Chain([], ["a"])
    for i in range(MAX_WARNED_EMOTIONS * 3):
        assert chain.resolve_emotion(f"nonsense_{i}") is None
    assert len(chain._warned) == MAX_WARNED_EMOTIONS
