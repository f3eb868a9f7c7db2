"""Profile loading, name resolution, fallback and the built-in profiles."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from audio2face.errors import ConfigError, UnknownNameError
from audio2face.profiles import ProfileRegistry, load_profile_file, validate_profile_name
from audio2face.rigs import ARKIT_52, load_rig

ALL_ENGINES = ("default", "phonemes", "unitalker")

AVATARS = ["KQ-default", "Ani-default", "HT-default", "FNN-default", "KL-default", "NXD-default"]
EMOTIONS = ["anger", "disgust", "fear", "happiness", "sadness", "shyness", "surprise"]


@pytest.fixture(scope="module")
def registry() -> ProfileRegistry:
    return ProfileRegistry(engines=ALL_ENGINES)


@pytest.mark.parametrize("name", ["arkit", "mmd", "unitalker", "vrm"])
def test_every_builtin_loads_and_runs(registry: ProfileRegistry, name: str) -> None:
    profile = registry.get(name)
    chain = profile.build_chain()
    assert chain is profile.build_chain()  # built once, shared by streams
    assert chain.output_names == profile.declared_output_names
    x = np.random.default_rng(0).random((120, len(chain.input_names)), dtype=np.float32)
    out = chain.new_stream(seed=0)(x, profile.emotions[0] if profile.emotions else None)
    assert out.shape == (120, len(chain.output_names)) and np.isfinite(out).all()
    assert profile.fps == 30 and profile.dtype in ("float16", "float32")


def test_arkit_is_the_default_and_blinks(registry: ProfileRegistry) -> None:
    profile = registry.require("")
    assert profile.name == "arkit" and profile.engine == "default"
    chain = profile.build_chain(ARKIT_52)
    assert chain.output_names == ARKIT_52
    out = chain.new_stream(seed=1)(np.zeros((300, 52), dtype=np.float32))
    blink = out[:, ARKIT_52.index("eyeBlinkLeft")]
    assert blink.max() == 1.0 and blink.min() == 0.0
    others = np.delete(out, [ARKIT_52.index("eyeBlinkLeft"), ARKIT_52.index("eyeBlinkRight")], 1)
    assert not others.any()


def test_unitalker_maps_51_onto_arkit_52(registry: ProfileRegistry) -> None:
    chain = registry.get("unitalker").build_chain()
    assert chain.input_names == load_rig("unitalker51") and chain.output_names == ARKIT_52
    x = np.full((10, 51), 0.5, dtype=np.float32)
    out = chain.new_stream(seed=0)(x)
    assert out[0, ARKIT_52.index("tongueOut")] == 0.0
    assert out[0, ARKIT_52.index("jawOpen")] == 0.5
    assert out[0, ARKIT_52.index("eyeWideLeft")] == np.float32(0.4)  # the 0.8 eye damping


def test_a_profile_whose_engine_is_not_loaded_is_refused_everywhere() -> None:
    """The registry knows the loaded engines: a profile of a missing engine is never
    available, not even through v1's avatar-name fallback."""
    registry = ProfileRegistry(engines=("default", "phonemes"))
    assert "unitalker" not in registry.usable()
    for resolve in (registry.require, registry.resolve_v1):
        with pytest.raises(UnknownNameError, match="'unitalker' engine, which is not loaded"):
            resolve("unitalker")


@pytest.mark.parametrize("avatar", AVATARS)
def test_avatar_names_resolve_to_mmd(registry: ProfileRegistry, avatar: str) -> None:
    res = registry.resolve_v1(avatar)
    assert res.profile.name == "mmd" and not res.fell_back
    assert registry.require(avatar).name == "mmd"


def test_mmd_covers_7_emotions_by_4_intensities(registry: ProfileRegistry) -> None:
    profile = registry.get("mmd")
    presets = {f"{e}_{i}" for e in EMOTIONS for i in range(1, 5)}
    assert presets <= set(profile.emotions)
    chain = profile.build_chain()
    for m in ("あ", "い", "う", "え", "お", "ワ", "ん", "まばたき"):
        assert m in chain.output_names
    x = np.zeros((5, 52), dtype=np.float32)
    smile = chain.output_names.index("笑い")
    levels = [chain.new_stream(0)(x, f"happiness_{i}")[0, smile] for i in range(1, 5)]
    assert levels[0] > 0 and np.all(np.diff(levels) > 0)  # stronger with intensity
    trouble = chain.output_names.index("困る")
    assert chain.new_stream(0)(x, "sadness_2")[0, trouble] > 0


def test_mmd_presets_are_our_own(registry: ProfileRegistry, seed_configs: Path) -> None:
    ours = json.loads((registry.get("mmd").base_dir / "mmd" / "offsets.json").read_text("utf-8"))
    theirs = json.loads(
        (seed_configs / "blendshapes_offset" / "happiness_2.json").read_text("utf-8")
    )
    assert ours["happiness_2"] != {k: v for k, v in theirs.items() if v}


def test_unknown_avatar_names_fall_back_on_v1_only(
    registry: ProfileRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="audio2face.profiles"):
        res = registry.resolve_v1("Zed-default")
    assert res.fell_back and res.profile.name == "arkit"
    assert "Zed-default" in caplog.text and "falling back" in caplog.text
    with pytest.raises(ConfigError, match="unknown profile"):
        registry.get("Zed-default")
    with pytest.raises(UnknownNameError, match=r"unknown profile 'Zed-default'; known: \['arkit'"):
        registry.require("Zed-default")


@pytest.mark.parametrize("name", ["bogus", "arkit2", "no such", "-x", "a-"])
def test_unknown_names_that_are_not_avatar_names_are_refused_on_v1_too(
    registry: ProfileRegistry, name: str
) -> None:
    with pytest.raises(UnknownNameError, match="known: "):
        registry.resolve_v1(name)


@pytest.mark.parametrize(
    "bad", ["../arkit", "a/b", "a\\b", "..", ".hidden", "x\x00y", "a..b", "", "x" * 65, "名前"]
)
def test_path_like_names_are_refused(registry: ProfileRegistry, bad: str) -> None:
    with pytest.raises(ValueError):
        validate_profile_name(bad)
    if not bad:
        assert registry.require(bad).name == "arkit"  # empty: the default
        return
    for resolve in (registry.require, registry.resolve_v1):
        with pytest.raises(UnknownNameError):
            resolve(bad)


def test_user_profile_dir_overrides_and_aliases(tmp_path: Path) -> None:
    (tmp_path / "clips.json").write_text(
        json.dumps({"neutral": {"blendshape_names": ["b"], "blendshape_values": [[1.0]]}}), "utf-8"
    )
    (tmp_path / "mine.toml").write_text(
        'output_names = ["a", "b"]\naliases = ["KQ-default"]\n'
        '[[steps]]\ntype = "rename"\nmap = { a = "jawOpen", b = "eyeBlinkLeft" }\n'
        '[[steps]]\ntype = "custom_blink"\nclips = "clips.json"\n',
        "utf-8",
    )
    registry = ProfileRegistry(engines=ALL_ENGINES, profile_dir=tmp_path)
    profile = registry.require("KQ-default")  # the user's alias wins
    assert profile.name == "mine" and profile.build_chain().output_names == ("a", "b")
    assert registry.require("Ani-default").name == "mmd"


def test_bad_profiles_fail_at_load(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('engine = "default"\n[[steps]]\ntype = "scale"\nscales = 3\n', "utf-8")
    with pytest.raises(ConfigError, match="scale"):
        load_profile_file(path)
    path.write_text('name = "../up"\n', "utf-8")
    with pytest.raises(ConfigError, match="invalid profile name"):
        load_profile_file(path)
    path.write_text('engine = "quantum"\n', "utf-8")
    with pytest.raises(ConfigError):
        load_profile_file(path)
    with pytest.raises(ConfigError, match="default_profile"):
        ProfileRegistry(engines=ALL_ENGINES, default_profile="nope")


def test_declared_order_fills_missing_names_with_zero(tmp_path: Path) -> None:
    path = tmp_path / "subset.toml"
    path.write_text('output_names = ["mouthClose", "jawOpen", "notInRig"]\n', "utf-8")
    chain = load_profile_file(path).build_chain(ARKIT_52)
    x = np.random.default_rng(0).random((3, 52), dtype=np.float32)
    out = chain.new_stream()(x)
    np.testing.assert_array_equal(out[:, 1], x[:, ARKIT_52.index("jawOpen")])
    assert not out[:, 2].any()
