"""``python -m training.train --channels C``: the width reaches the model and its checkpoint,
and the exporter builds the same width back from the checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch: pip install -e '.[train]'")

from training.model import ModelConfig  # noqa: E402
from training.train import (  # noqa: E402
    Example,
    build_parser,
    model_config,
    options_from_args,
    save_checkpoint,
    train,
)


def test_the_default_is_the_shipped_width() -> None:
    assert model_config(build_parser().parse_args([])) == ModelConfig()
    assert ModelConfig().channels == 96


def test_a_width_out_of_range_is_refused_with_the_range() -> None:
    with pytest.raises(SystemExit, match=r"--channels must be in 8\.\.1024, got 4"):
        model_config(build_parser().parse_args(["--channels", "4"]))


def test_the_width_reaches_the_network_and_the_checkpoint(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["--channels", "24", "--steps", "3", "--batch", "4", "--threads", "1", "--ema-decay", "0"]
    )
    rng = np.random.default_rng(0)
    examples = [Example(rng.normal(-5, 1, (120, 40)).astype(np.float32),
                        rng.random((120, 52)).astype(np.float32), np.ones(120, np.float32))
                for _ in range(3)]  # fmt: skip
    model, _ = train(examples, options_from_args(args), config=model_config(args))
    assert model.config.channels == 24
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in type(model)(ModelConfig()).parameters()
    )
    save_checkpoint(tmp_path / "m.pt", model, {})
    ckpt = torch.load(tmp_path / "m.pt", weights_only=False)
    assert ckpt["config"]["channels"] == 24
    # What the exporter does with it: the same width back, the weights loading strictly.
    again = type(model)(ModelConfig(**ckpt["config"]))
    again.load_state_dict(ckpt["state_dict"])
