"""``audio2face quantize``: int8 weights for a UniTalker file, same interface, small deviation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio2face.cli import main
from audio2face.engines.onnx import OrtOptions
from audio2face.engines.quantize import compare_unitalker, quantize_int8
from audio2face.engines.unitalker import UniTalkerModel
from audio2face.errors import ConfigError, ModelNotFoundError

pytest.importorskip("onnx")

SETTINGS = OrtOptions(providers="cpu", intra_op_threads=1, inter_op_threads=1)


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced bursts with pauses: enough structure that frames vary over time."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    envelope = np.clip(np.sin(2 * np.pi * 2.3 * t), 0, None) ** 2
    voice = np.sin(2 * np.pi * 140 * t) + 0.3 * rng.standard_normal(t.shape)
    return (0.3 * envelope * voice).astype(np.float32)


@pytest.fixture(scope="module")
def quantized(tiny_unitalker_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("quantized") / "tiny_int8.onnx"
    result = quantize_int8(tiny_unitalker_path, target)
    assert result.target == target and target.is_file()
    assert result.quantized_nodes >= 1  # the 3->51 projection now runs in int8
    return target


def test_quantized_model_keeps_the_unitalker_interface(
    quantized: Path, tiny_unitalker_path: Path, unitalker_names: tuple[str, ...]
) -> None:
    fp32 = UniTalkerModel.load(tiny_unitalker_path, SETTINGS, output_names=unitalker_names)
    int8 = UniTalkerModel.load(quantized, SETTINGS, output_names=unitalker_names)
    audio = speech_like(1.5)
    a, b = fp32.infer(audio, 45), int8.infer(audio, 45)
    assert b.shape == a.shape == (45, 51)
    assert np.isfinite(b).all()
    # Close, but not the same numbers: the graph really changed.
    assert 0 < float(np.abs(a - b).max()) < 0.05


def test_deviation_is_small_for_the_quantized_copy_and_large_for_another_model(
    quantized: Path, tiny_unitalker_path: Path, tmp_path: Path
) -> None:
    from conftest import build_tiny_unitalker

    audio = speech_like(4.0)
    close = compare_unitalker(tiny_unitalker_path, quantized, audio, threads=1)
    assert close.frames == 2 * 45  # two whole 1.5 s segments of 4 s
    assert close.max_abs < 0.05 and close.mean_abs < close.p99_abs <= close.max_abs
    other = tmp_path / "other.onnx"
    other.write_bytes(build_tiny_unitalker(seed=1))
    far = compare_unitalker(tiny_unitalker_path, other, audio, threads=1)
    assert far.mean_abs > 10 * close.mean_abs


def test_refusals(tiny_unitalker_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        quantize_int8(tmp_path / "missing.onnx", tmp_path / "out.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not onnx")
    with pytest.raises(ModelNotFoundError, match="not a valid ONNX model"):
        quantize_int8(garbage, tmp_path / "out.onnx")
    with pytest.raises(ConfigError, match="new file"):
        quantize_int8(tiny_unitalker_path, tiny_unitalker_path)
    with pytest.raises(ValueError, match="at least"):
        compare_unitalker(tiny_unitalker_path, tiny_unitalker_path, speech_like(0.5))


def test_cli_quantizes_and_reports_the_deviation(
    tiny_unitalker_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech_like(3.2), 16000)  # any rate works; the check resamples
    out = tmp_path / "int8.onnx"
    assert main(["quantize", str(tiny_unitalker_path), "-o", str(out), "--check", str(wav)]) == 0
    printed = capsys.readouterr().out
    assert out.is_file()
    assert "int8 nodes" in printed and "deviation from the original on 90 frames" in printed
    assert main(["quantize", str(tmp_path / "nope.onnx"), "-o", str(out)]) == 2
