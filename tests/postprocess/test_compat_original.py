"""The original service's default chain, run from the original's own data files via a
user profile, checked against a plain numpy re-implementation of the documented
formulas (see the seed configs' README.md). The data files are read in place, from the
folder $AUDIO2FACE_SEED_CONFIGS names (.ci/run points it at ../shared/seed-configs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audio2face.profiles import ProfileRegistry
from conftest import seed_configs_dir, seed_configs_skip_reason

SEED = seed_configs_dir() or Path("/nonexistent")
pytestmark = pytest.mark.skipif(seed_configs_dir() is None, reason=seed_configs_skip_reason())

PROFILE = """
name = "original-mmd"
engine = "unitalker"
input_rig = "unitalker51"
aliases = ["KQ-original"]

[[steps]]
type = "unitalker_clip"

[[steps]]
type = "rename"
map = {mapping}

[[steps]]
type = "linear_exp_blend"
names = ["ワ"]
offset = -0.106
normalize_reference = 0.75
exponential_strength = 8
blend_weight = 0.4

[[steps]]
type = "scale"
scales = {{ "あ" = 0.2, "お" = 0.2, "あ２" = 0.25, "ワ" = 0.33 }}

[[steps]]
type = "offset"
presets = {offsets}

[[steps]]
type = "custom_blink"
clips = {blinks}
"""
N_FRAMES = 900


def _json(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("profiles")
    text = PROFILE.format(
        mapping=json.dumps(str(SEED / "mmd_arkit_mapping.json")),
        offsets=json.dumps(str(SEED / "blendshapes_offset")),
        blinks=json.dumps(str(SEED / "blink_anim")),
    )
    (folder / "original-mmd.toml").write_text(text, encoding="utf-8")
    registry = ProfileRegistry(engines=("default", "unitalker"), profile_dir=folder)
    resolution = registry.resolve_v1("KQ-original")
    assert not resolution.fell_back
    return resolution.profile.build_chain()


def reference(x: np.ndarray, emotion: str | None) -> np.ndarray:
    """The documented formulas, step by step, without blinks."""
    names51 = _json(SEED / "unitalker_output_names.json")
    mapping = _json(SEED / "mmd_arkit_mapping.json")
    u = x.copy()
    u[:, 2:14] = np.clip(u[:, 2:14], 0.0, 1.0) * 0.8
    for c in (0, 1, 45):
        u[:, c] = np.clip(u[:, c], 0.0, 0.01)
    keys = list(mapping)
    m = np.zeros((x.shape[0], len(keys)), dtype=np.float32)
    for j, src in enumerate(mapping.values()):
        if src is not None:
            m[:, j] = u[:, names51.index(src)]
    wa = keys.index("ワ")
    y = np.clip(m[:, wa] + -0.106, 0.0, 1.0) / 0.75
    m[:, wa] = np.clip((1 - 0.4) * y + 0.4 * (1 - np.exp(-8 * y)), 0.0, 1.0)
    for name, gain in {"あ": 0.2, "お": 0.2, "あ２": 0.25, "ワ": 0.33}.items():
        m[:, keys.index(name)] *= gain
    if emotion is not None:
        preset = _json(SEED / "blendshapes_offset" / f"{emotion}.json")
        m = m + np.array([preset[k] for k in keys], dtype=np.float32)
    return m


def blink_starts(out: np.ndarray, ref: np.ndarray, col: int) -> list[int]:
    """Frames where a blink clip begins (clip frame 0 is 0, frame 1 is not)."""
    changed = np.flatnonzero(out[:, col] != ref[:, col])
    starts: list[int] = []
    for t in changed:
        if not starts or t - 1 >= starts[-1] + 13:
            starts.append(int(t) - 1)
    return starts


def _input() -> np.ndarray:
    rng = np.random.default_rng(1234)
    return (rng.random((N_FRAMES, 51), dtype=np.float32) * 1.4 - 0.2).astype(np.float32)


def test_output_names_are_the_original_keys_verbatim(chain) -> None:
    keys = list(_json(SEED / "mmd_arkit_mapping.json"))
    assert list(chain.output_names) == keys
    assert " なごみ左" in chain.output_names  # the leading space survives


@pytest.mark.parametrize("emotion", [None, "happiness_2", "disgust_3"])
def test_deterministic_steps_match_exactly_outside_blinks(chain, emotion: str | None) -> None:
    x = _input()
    before = x.copy()
    out = chain.new_stream(seed=7)(x, emotion)
    np.testing.assert_array_equal(x, before)  # input untouched
    ref = reference(x, emotion)
    blink_cols = [chain.output_names.index(n) for n in ("まばたき", "下")]
    other = np.setdiff1d(np.arange(len(chain.output_names)), blink_cols)
    np.testing.assert_array_equal(out[:, other], ref[:, other])
    assert out.dtype == np.float32


@pytest.mark.parametrize("emotion", [None, "disgust_3"])
def test_blinks_every_30_to_90_frames_and_overwrite(chain, emotion: str | None) -> None:
    x = _input()
    out = chain.new_stream(seed=3)(x, emotion)
    ref = reference(x, emotion)
    clip_file = "neutral.json" if emotion is None else f"{emotion}.json"
    clip = _json(SEED / "blink_anim" / clip_file)
    cols = [chain.output_names.index(n) for n in clip["blendshape_names"]]
    values = np.array(clip["blendshape_values"], dtype=np.float32)
    starts = blink_starts(out, ref, cols[0])
    assert len(starts) >= N_FRAMES // 90 - 1
    assert 0 <= starts[0] <= 90
    gaps = np.diff(starts)
    assert gaps.min() >= 30 and gaps.max() <= 90, gaps
    covered = np.zeros(N_FRAMES, dtype=bool)
    for s in starts:
        stop = min(s + len(values), N_FRAMES)
        # Overwrite, not add: the clip replaces the offset on 下 (0.19 for disgust_3).
        np.testing.assert_array_equal(out[s:stop][:, cols], values[: stop - s])
        covered[s:stop] = True
    np.testing.assert_array_equal(out[~covered][:, cols], ref[~covered][:, cols])


def test_unknown_offset_name_is_neutral(chain, caplog: pytest.LogCaptureFixture) -> None:
    x = _input()[:60]
    a = chain.new_stream(seed=1)(x, "joy_9")
    b = chain.new_stream(seed=1)(x, None)
    np.testing.assert_array_equal(a, b)
    assert "joy_9" in caplog.text
