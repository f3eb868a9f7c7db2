"""``quantize`` checks its input before writing and leaves no file when it fails
(issue 9, part 2, item 8)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cli_support import run_cli, write_speech

pytest.importorskip("onnx")


def relu_model(path: Path) -> Path:
    """A valid ONNX file that is not UniTalker."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".onnx" or ".partial" in p.name)


def test_a_model_that_is_not_unitalker_is_refused_before_writing(capsys, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run = run_cli(
        capsys, "quantize", str(relu_model(tmp_path / "relu.onnx")), "-o", str(out_dir / "q.onnx")
    )
    line = run.error_line()
    assert run.rc == 2 and "not a UniTalker model" in line and "['x']" in line
    assert leftovers(out_dir) == []


@pytest.mark.parametrize("problem", ["missing", "too short", "not audio"])
def test_a_failed_check_leaves_no_output(
    capsys, tmp_path: Path, tiny_unitalker_path: Path, problem: str
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    check = tmp_path / "check.wav"
    if problem == "too short":
        write_speech(check, 0.5)
    elif problem == "not audio":
        check.write_text("hello")
    run = run_cli(
        capsys, "quantize", str(tiny_unitalker_path), "-o", str(out_dir / "q.onnx"),
        "--check", str(check),
    )  # fmt: skip
    line = run.error_line()
    assert "check.wav" in line or "--check" in line
    assert leftovers(out_dir) == []


def test_a_good_run_writes_the_file_and_no_preprocessing_warning(
    capsys, caplog, tmp_path: Path, tiny_unitalker_path: Path
) -> None:
    caplog.set_level(logging.WARNING)
    out = tmp_path / "q.onnx"
    check = write_speech(tmp_path / "speech.wav", 3.2, rate=22050)
    run = run_cli(
        capsys, "quantize", str(tiny_unitalker_path), "-o", str(out), "--check", str(check)
    )
    assert run.rc == 0, run.err
    assert "int8 nodes" in run.out and "deviation from the original" in run.out
    assert leftovers(tmp_path) == ["q.onnx"]
    # onnxruntime logs "Please consider to run pre-processing" on the root logger
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]
    assert "pre-processing" not in run.err
