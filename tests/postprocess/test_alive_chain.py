"""The alive steps in a chain: prosody through the chain, any chunking, seeds,
per-stream switches, the old output with everything off, and timed emotion keys."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from alive_support import FPS, RATE, n_frames, phrases
from hypothesis import given, settings
from hypothesis import strategies as st

from audio2face.audio.prosody import ProsodyTracker
from audio2face.errors import UnknownNameError
from audio2face.postprocess import FEATURES, StreamOptions
from audio2face.profiles import BUILTIN_DIR, ProfileRegistry
from audio2face.profiles.model import parse_profile
from audio2face.rigs import ARKIT_52

DEFAULT_OPTIONS = StreamOptions()

AUDIO = phrases([(2.0, 0.7), (1.5, 0.4)], seed=11)
N = n_frames(AUDIO.shape[0])
RAW = np.random.default_rng(0).random((N, 52), dtype=np.float32) * 0.6


@pytest.fixture(scope="module")
def registry() -> ProfileRegistry:
    return ProfileRegistry(engines=("default", "phonemes", "unitalker"))


def stream_out(chain, cuts: list[int], seed: int, options=DEFAULT_OPTIONS, emotion=None):
    """Push the audio and frames in pieces, as a session does, and collect the output."""
    tracker = ProsodyTracker(RATE, FPS)
    stream = chain.new_stream(seed, options)
    bounds = sorted({0, N, *(c % N for c in cuts)})
    outs = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        tracker.push(AUDIO[int(a * RATE / FPS) : int(b * RATE / FPS)])
        if b == N:
            tracker.push(AUDIO[int(b * RATE / FPS) :])
        outs.append(stream(RAW[a:b], emotion, tracker.take(b - a, final=b == N)))
    return np.concatenate(outs)


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(0, 10_000), max_size=25), seed=st.integers(0, 2**31 - 1))
def test_any_chunking_gives_the_same_frames(registry, cuts: list[int], seed: int) -> None:
    chain = registry.get("arkit-head").build_chain()
    np.testing.assert_array_equal(stream_out(chain, cuts, seed), stream_out(chain, [], seed))


def test_seeds_fix_the_random_parts(registry) -> None:
    chain = registry.get("arkit-head").build_chain()
    a, b, c = (stream_out(chain, [7, 40], s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", ["arkit-alive", "arkit-head", "mmd", "vrm"])
def test_everything_off_is_the_profile_as_it_was(registry, name: str) -> None:
    """Switching every alive feature off gives, byte for byte, the profile without the
    new steps (the classic steps keep their seeds)."""
    profile = registry.get(name)
    data = tomllib.loads((BUILTIN_DIR / f"{name.replace('-', '_')}.toml").read_text("utf-8"))
    new = {"arousal", "tongue", "gaze", "natural_blink", "head"}
    data["steps"] = [s for s in data["steps"] if s["type"] not in new]
    old = parse_profile(data, base_dir=BUILTIN_DIR, source="test").build_chain()
    chain = profile.build_chain()
    emotion = "happiness_2" if "happiness_2" in profile.emotions else None
    # "emotion" (the offset presets) is an old feature: kept on, as the old profile has it.
    off = StreamOptions(off=frozenset(FEATURES) - {"emotion"})
    got = stream_out(chain, [13, 50], 5, off, emotion)
    want = stream_out(old, [13, 50], 5, StreamOptions(), emotion)
    np.testing.assert_array_equal(got, want)
    everything = stream_out(chain, [13, 50], 5, StreamOptions.all_off(), emotion)
    if name == "mmd":
        assert not np.array_equal(everything, want)  # and "emotion" off drops the preset


def test_alive_features_change_the_face_but_not_the_lips(registry) -> None:
    chain = registry.get("arkit-alive").build_chain()
    alive = stream_out(chain, [], 3)
    off = stream_out(chain, [], 3, StreamOptions(off=frozenset(FEATURES) - {"arousal"}))
    lips = [i for i, n in enumerate(ARKIT_52) if n.startswith(("jaw", "mouth"))]
    np.testing.assert_array_equal(alive[:, lips], off[:, lips])
    eyes = [i for i, n in enumerate(ARKIT_52) if n.startswith("eye")]
    assert not np.array_equal(alive[:, eyes], off[:, eyes])


def test_head_channels_only_where_the_profile_asks(registry) -> None:
    assert registry.get("arkit").build_chain().output_names == ARKIT_52
    assert registry.get("arkit-alive").build_chain().output_names == ARKIT_52
    head = registry.get("arkit-head").build_chain()
    assert head.output_names == ARKIT_52 + ("headYaw", "headPitch", "headRoll")
    out = stream_out(head, [], 0, StreamOptions(off=frozenset({"head"})))
    assert not out[:, 52:].any()


def test_without_prosody_the_chain_still_runs_deterministically(registry) -> None:
    chain = registry.get("arkit-head").build_chain()
    assert chain.needs_prosody and {"head", "gaze", "blinks", "tongue", "arousal"} <= chain.features
    a = chain.new_stream(4)(RAW)
    b = np.concatenate([chain.new_stream(4)(RAW[:10]), chain.new_stream(4)(RAW[:0])])
    np.testing.assert_array_equal(a[:10], b[:10])
    s1, s2 = chain.new_stream(4), chain.new_stream(4)
    np.testing.assert_array_equal(s1(RAW), np.concatenate([s2(RAW[:33]), s2(RAW[33:])]))


def test_the_default_profiles_stay_lips_only(registry) -> None:
    """The alive steps cost about as much as the model (docs/benchmarks.md), so the
    default profiles leave them out; arkit-alive and arkit-head have them."""
    for name in ("arkit", "mmd", "vrm", "unitalker"):
        assert not registry.get(name).build_chain().needs_prosody, name
    for name in ("arkit-alive", "arkit-head"):
        assert registry.get(name).build_chain().needs_prosody, name


def test_prosody_must_match_the_frames(registry) -> None:
    chain = registry.get("arkit-alive").build_chain()
    tracker = ProsodyTracker(RATE, FPS)
    tracker.push(AUDIO)
    stream = chain.new_stream(0)
    with pytest.raises(ValueError, match="prosody covers frames 0..\\+5, but these frames are"):
        stream(RAW[:4], None, tracker.take(5))


def test_stream_options_refuse_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown features \\['lips'\\]; features are"):
        StreamOptions(off=frozenset({"lips"}))
    with pytest.raises(ValueError, match="unknown gaze mode 'sideways'"):
        StreamOptions(gaze="sideways")  # type: ignore[arg-type]


# -- emotion keys ---------------------------------------------------------------------
def smile(out: np.ndarray, chain) -> np.ndarray:
    return out[:, chain.output_names.index("笑い")]


def test_emotion_keys_ramp_between_intensity_levels(registry) -> None:
    chain = registry.get("mmd").build_chain()
    x = np.zeros((120, 52), np.float32)
    off = StreamOptions(off=frozenset(FEATURES) - {"emotion"})  # no blinks in the way
    levels = [smile(chain.new_stream(0, off)(x[:1], f"happiness_{i}"), chain)[0] for i in (1, 2)]
    stream = chain.new_stream(0, off)
    stream.add_emotion_key(1.0, "happiness", 0.5, ramp_s=1.0)  # level 2 of 4, reached at 2 s
    out = smile(stream(x), chain)
    assert (out[:30] == 0).all()
    assert out[60:].min() == pytest.approx(levels[1], abs=1e-6)
    # Half way up the ramp the intensity is 0.25: level 1 of 4.
    np.testing.assert_allclose(out[45], levels[0], atol=1e-6)
    assert 0 < out[40] < levels[0] < out[50] < levels[1]
    s2 = chain.new_stream(0, off)
    s2.add_emotion_key(0.0, "happiness", 0.375, ramp_s=0.0)  # between levels 1 and 2
    np.testing.assert_allclose(smile(s2(x[:2]), chain), (levels[0] + levels[1]) / 2, atol=1e-6)


def test_emotion_keys_cross_fade_and_survive_any_chunking(registry) -> None:
    chain = registry.get("mmd").build_chain()
    x = np.zeros((150, 52), np.float32)

    def run(cuts: list[int]) -> np.ndarray:
        stream = chain.new_stream(2)
        stream.add_emotion_key(0.5, "happiness", 1.0, ramp_s=0.5)
        stream.add_emotion_key(2.0, "sadness_2", 0.8, ramp_s=1.0)
        bounds = [0, *cuts, 150]
        return np.concatenate([stream(x[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)])

    whole = run([])
    np.testing.assert_array_equal(whole, run([7, 8, 61, 100]))
    trouble = chain.output_names.index("困る")
    assert whole[120, trouble] > whole[55, trouble]  # sadness fades in
    assert smile(whole, chain)[140] < smile(whole, chain)[55]  # happiness fades out


def test_emotion_key_names_are_checked(registry) -> None:
    stream = registry.get("mmd").build_chain().new_stream(0)
    with pytest.raises(UnknownNameError, match="unknown emotion 'glee'; known: \\['anger'"):
        stream.add_emotion_key(0.0, "glee")
    with pytest.raises(ValueError, match="intensity must be in \\[0, 1\\]"):
        stream.add_emotion_key(0.0, "anger", 2.0)
    stream.add_emotion_key(0.0, "neutral")
    with pytest.raises(UnknownNameError, match="no emotion presets"):
        registry.get("arkit").build_chain().new_stream(0).add_emotion_key(0.0, "anger")
