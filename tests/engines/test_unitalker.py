"""UniTalkerModel, the onnxruntime session helper and scheduler selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio2face.engines.onnx import CPU_PROVIDER, OrtOptions, create_session, resolve_providers
from audio2face.engines.scheduling import ScheduledEngine
from audio2face.engines.unitalker import (
    NORM_EPS,
    UNITALKER_SOURCE,
    UniTalkerModel,
    normalize_audio,
)
from audio2face.errors import ConfigError, ModelNotFoundError
from audio2face.streaming.segmenter import SegmentedStream, SilenceOptions
from audio2face.streaming.window import WindowedStream, WindowOptions
from audio2face.types import Engine, SegmentModel

SETTINGS = OrtOptions(providers="cpu", intra_op_threads=1, inter_op_threads=1)


@pytest.fixture(scope="module")
def model(tiny_unitalker_path: Path, unitalker_names: tuple[str, ...]) -> UniTalkerModel:
    return UniTalkerModel.load(tiny_unitalker_path, SETTINGS, output_names=unitalker_names)


def test_normalisation_matches_wav2vec2_formula() -> None:
    x = np.random.default_rng(1).normal(0.3, 0.05, 12345).astype(np.float32)
    expected = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    y = normalize_audio(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    assert abs(float(y.mean())) < 1e-5
    assert abs(float(y.std()) - 1.0) < 1e-3
    assert NORM_EPS == 1e-7


def test_normalisation_of_silence_is_finite() -> None:
    assert np.all(normalize_audio(np.zeros(100, dtype=np.float32)) == 0.0)
    assert normalize_audio(np.zeros(0, dtype=np.float32)).shape == (0,)


@pytest.mark.parametrize("kind", ["unset", "missing", "directory", "garbage"])
def test_missing_model_error_says_what_to_do(kind: str, tmp_path: Path) -> None:
    path: Path | None = {
        "unset": None,
        "missing": tmp_path / "nope.onnx",
        "directory": tmp_path,
        "garbage": tmp_path / "bad.onnx",
    }[kind]
    if kind == "garbage":
        (tmp_path / "bad.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ModelNotFoundError) as info:
        create_session(path, SETTINGS, UNITALKER_SOURCE)
    reason = info.value.reason
    assert "unitalker_v0.4.0_base.onnx" in reason
    assert "AUDIO2FACE_UNITALKER_MODEL" in reason
    assert "--unitalker-model" in reason
    assert "releases" in reason  # where to download it


def test_load_without_configured_model_raises() -> None:
    with pytest.raises(ModelNotFoundError, match="no UniTalker model configured"):
        UniTalkerModel.load(None, SETTINGS, output_names=("x",) * 51)


def test_providers() -> None:
    assert resolve_providers("cpu") == [CPU_PROVIDER]
    assert resolve_providers("auto")[-1] == CPU_PROVIDER


def test_wrong_signature_is_rejected(tmp_path: Path, unitalker_names: tuple[str, ...]) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"])],
    )
    path = tmp_path / "identity.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelNotFoundError, match="not a UniTalker model"):
        UniTalkerModel.load(path, SETTINGS, output_names=unitalker_names)


def test_infer_shape_and_dependence(model: UniTalkerModel) -> None:
    assert isinstance(model, SegmentModel)
    assert len(model.output_names) == 51 and model.output_names[19] == "JawOpen"
    assert not model.supports_batch
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, 16000).astype(np.float32)
    b = np.concatenate([np.zeros(8000), rng.normal(0, 0.1, 8000)]).astype(np.float32)
    for n in (29, 30, 31):  # time_steps is whatever the caller asks for
        assert model.infer(a, n).shape == (n, 51)
    fa, fb = model.infer(a, 30), model.infer(b, 30)
    assert fa.dtype == np.float32
    assert not np.allclose(fa, fb)
    # normalised per segment: loudness does not matter
    np.testing.assert_allclose(model.infer(a * 7.0, 30), fa, atol=1e-5)
    assert model.infer(a, 0).shape == (0, 51)
    assert model.infer(a[:10], 1).shape == (1, 51)  # short segments are padded


def test_emo_id_from_settings_and_mapping(
    tiny_unitalker_path: Path, unitalker_names: tuple[str, ...]
) -> None:
    audio = np.random.default_rng(2).normal(0, 0.1, 8000).astype(np.float32)
    neutral = UniTalkerModel.load(tiny_unitalker_path, SETTINGS, output_names=unitalker_names)
    other = UniTalkerModel.load(
        tiny_unitalker_path,
        OrtOptions(providers="cpu"),
        emo_id=3,
        output_names=unitalker_names,
        emotion_ids={"happiness": 10},
    )
    assert neutral.emo_id_for(None) == 10 and other.emo_id_for(None) == 3
    assert not np.allclose(neutral.infer(audio, 15), other.infer(audio, 15))
    np.testing.assert_allclose(
        other.infer(audio, 15, "happiness"), neutral.infer(audio, 15), atol=1e-6
    )
    assert other.emo_id_for("unknown") == 3


def test_infer_batch_matches_single(
    model: UniTalkerModel, tiny_unitalker_batch_path: Path, unitalker_names: tuple[str, ...]
) -> None:
    batched = UniTalkerModel.load(tiny_unitalker_batch_path, SETTINGS, output_names=unitalker_names)
    assert batched.supports_batch
    rng = np.random.default_rng(3)
    audios = [rng.normal(0, s, 9600).astype(np.float32) * np.linspace(0, 1, 9600, dtype=np.float32)
              for s in (0.01, 0.1, 0.5)]
    single = np.stack([model.infer(a, 18) for a in audios])
    np.testing.assert_allclose(model.infer_batch(audios, 18), single, atol=1e-6)
    np.testing.assert_allclose(batched.infer_batch(audios, 18), single, atol=1e-5)
    with pytest.raises(ValueError, match="equal length"):
        model.infer_batch([audios[0], audios[1][:100]], 18)


def test_scheduling_modes(model: UniTalkerModel) -> None:
    window = ScheduledEngine("unitalker", model, WindowOptions())
    assert isinstance(window.open_stream(), WindowedStream)
    assert window.capabilities.batched_push and not window.capabilities.any_fps
    with pytest.raises(ConfigError, match="30 fps only"):
        window.open_stream(fps=60.0)
    engine = ScheduledEngine("unitalker", model, SilenceOptions())
    assert isinstance(engine, Engine)
    assert not engine.capabilities.batched_push
    stream = engine.open_stream()
    assert isinstance(stream, SegmentedStream)
    audio = np.random.default_rng(4).normal(0, 0.1, 16000).astype(np.float32)
    frames = np.concatenate([stream.push(audio), stream.finish()])
    assert frames.shape == (30, 51)
