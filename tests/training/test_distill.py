"""Distilling seeds into one network (``--teacher``, ``--distill``): the teachers' targets
are their outputs frame by frame, and the share moves what the student learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch: pip install -e '.[train]'")

from training.model import ModelConfig, SpeechToFace, load_checkpoint  # noqa: E402
from training.train import (  # noqa: E402
    SILENCE_FEATURE,
    Example,
    TrainOptions,
    main,
    save_checkpoint,
    teacher_targets,
    train,
)


def _examples(n: int, frames: int, target: float, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    return [Example(rng.normal(-5, 1, (frames + k, 40)).astype(np.float32),
                    np.full((frames + k, 52), target, np.float32), np.ones(frames + k, np.float32))
            for k in range(n)]  # fmt: skip


def _teacher(tmp_path: Path, name: str, seed: int) -> Path:
    torch.manual_seed(seed)
    model = SpeechToFace(ModelConfig(channels=16)).eval()
    path = tmp_path / f"{name}.pt"
    save_checkpoint(path, model, {})
    return path


def test_every_frame_is_the_teachers_output_on_its_own_window(tmp_path: Path) -> None:
    """Frame k (even or odd) is what the network shows at feature frame k with the clip
    padded by silence, as the engine streams it; two teachers give their mean."""
    a, b = _teacher(tmp_path, "a", 0), _teacher(tmp_path, "b", 1)
    examples = _examples(2, 41, 0.0)  # an odd and an even length
    got = teacher_targets(examples, [a, b])
    for ex, t in zip(examples, got, strict=True):
        assert t.shape == ex.targets.shape
        for k in (0, 1, 2, 17, len(ex.feats) - 2, len(ex.feats) - 1):
            want = []
            for path in (a, b):
                m, _ = load_checkpoint(path)
                c = m.config
                f = np.pad(
                    ex.feats,
                    ((c.left_context, c.right_context), (0, 0)),
                    constant_values=SILENCE_FEATURE,
                )
                with torch.no_grad():
                    want.append(
                        m(torch.from_numpy(f[k : k + c.receptive_field])[None])[0, 0].numpy()
                    )
            np.testing.assert_allclose(t[k], np.mean(want, axis=0), atol=1e-5)


def test_the_share_moves_the_student_towards_the_teachers() -> None:
    examples = _examples(4, 160, 0.1)
    teacher = [np.full_like(e.targets, 0.9) for e in examples]
    means = {}
    for share in (0.0, 1.0):
        opts = TrainOptions(steps=40, batch=4, threads=1, ema_decay=0.0, closure_weight=0.0, apart_weight=0.0,
                            apart_noise_weight=0.0, distill=share)  # fmt: skip
        model, info = train(
            examples, opts, ModelConfig(channels=16), teacher=teacher if share else None
        )
        with torch.no_grad():
            means[share] = float(model(torch.from_numpy(examples[0].feats)[None]).mean())
        assert ("distill" in info) == bool(share)
    assert means[0.0] < 0.4 < 0.6 < means[1.0]


def test_teachers_and_share_go_together() -> None:
    examples = _examples(1, 120, 0.1)
    with pytest.raises(ValueError, match="distilling needs teacher targets"):
        train(examples, TrainOptions(steps=1, batch=1, threads=1, distill=0.5))
    with pytest.raises(ValueError, match="distilling needs teacher targets"):
        train(examples, TrainOptions(steps=1, batch=1, threads=1), teacher=[examples[0].targets])
    with pytest.raises(SystemExit, match="--teacher and --distill go together"):
        main(["--corpus", "nowhere", "--distill", "0.5"])
