"""The composition root of the engines: the original's weights/ mount is picked up, and
one failing engine does not hide the others."""

from __future__ import annotations

import shutil
from pathlib import Path

from audio2face.loading import (
    WEIGHTS_FILE,
    load_engines,
    try_load_engines,
    unitalker_model_path,
)
from audio2face.runtime import Runtime
from audio2face.settings import Settings


def test_the_originals_weights_folder_enables_unitalker(tmp_path: Path, tiny_unitalker_path) -> None:
    weights = tmp_path / "weights"
    settings = Settings(weights_dir=weights, providers="cpu")
    assert unitalker_model_path(settings) is None  # nothing mounted: no UniTalker
    assert "unitalker" not in load_engines(settings)
    weights.mkdir()
    shutil.copy(tiny_unitalker_path, weights / WEIGHTS_FILE.name)
    assert unitalker_model_path(settings) == weights / WEIGHTS_FILE.name
    runtime = Runtime.start(settings)
    try:
        assert {"default", "phonemes", "unitalker"} <= set(runtime.engines)
        assert "unitalker" in runtime.profiles.usable()  # the original's profile names work
    finally:
        runtime.close()
    # An explicit model path wins over the mount.
    explicit = Settings(weights_dir=weights, unitalker_model=tiny_unitalker_path)
    assert unitalker_model_path(explicit) == tiny_unitalker_path


def test_try_load_engines_reports_each_failure_beside_what_loaded(tmp_path: Path) -> None:
    broken = tmp_path / "unitalker_v0.4.0_base.onnx"
    broken.write_bytes(b"not an onnx file")
    engines, errors = try_load_engines(Settings(unitalker_model=broken, providers="cpu"))
    assert {"default", "phonemes"} <= set(engines) and "unitalker" not in engines
    assert "cannot be loaded" in errors["unitalker"]
    engines, errors = try_load_engines(Settings(weights_dir=tmp_path / "none", providers="cpu"))
    assert errors["unitalker"].startswith("no model configured; download unitalker_v0.4.0_base.onnx")
