"""The bilabial closure hinge (``--closure-weight``) and its counterpart off the
bilabials (``--apart-weight``): they measure the mouth opening as the quality metric
does; the first costs only a mouth wider than the target on bilabial frames, the second
only a mouth narrower than the target on the other frames."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch: pip install -e '.[train]'")

from training.train import BILABIAL_WEIGHT, apart_loss, aperture, closure_loss  # noqa: E402

from audio2face.rigs import ARKIT_52  # noqa: E402 - after the importorskip

METRICS = Path(__file__).resolve().parents[2] / "benchmarks" / "quality" / "metrics.py"


def _metrics():  # noqa: ANN202 - a module loaded from a file
    key = "quality_bench_metrics"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, METRICS)
        assert spec is not None and spec.loader is not None
        sys.modules[key] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[key])
    return sys.modules[key]


def test_aperture_is_the_quality_metrics_aperture() -> None:
    frames = np.random.default_rng(0).random((40, len(ARKIT_52))).astype(np.float32)
    want = _metrics().aperture(frames)
    got = aperture(torch.from_numpy(frames)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def _face(opening: float) -> torch.Tensor:
    f = torch.zeros(len(ARKIT_52))
    f[ARKIT_52.index("jawOpen")] = opening
    return f


def test_only_a_wider_mouth_on_bilabial_frames_costs() -> None:
    target = torch.stack([_face(0.0), _face(0.0), _face(0.3), _face(0.0)])[None]
    weights = torch.tensor([[BILABIAL_WEIGHT, BILABIAL_WEIGHT, 1.0, BILABIAL_WEIGHT]])
    # Frame 0 too open by 0.2, frame 1 right, frame 2 (not bilabial) too open by 0.5,
    # frame 3 closed further than the target could be: only frame 0 costs.
    pred = torch.stack([_face(0.2), _face(0.0), _face(0.8), _face(0.0)])[None]
    assert closure_loss(pred, target, weights).item() == pytest.approx(0.2 / 3)
    assert closure_loss(target, target, weights).item() == 0.0
    # No bilabial frame in the batch: nothing to push, and no division by zero.
    assert closure_loss(pred, target, torch.ones(1, 4)).item() == 0.0


def test_the_hinge_gradient_closes_the_mouth() -> None:
    pred = torch.stack([_face(0.4)])[None].requires_grad_(True)
    closure_loss(pred, torch.stack([_face(0.0)])[None], torch.tensor([[BILABIAL_WEIGHT]])).backward()
    assert pred.grad is not None
    assert pred.grad[0, 0, ARKIT_52.index("jawOpen")] > 0  # a step against it lowers jawOpen
    assert pred.grad[0, 0, ARKIT_52.index("mouthClose")] < 0  # and raises mouthClose


def test_apart_costs_only_a_narrower_mouth_off_the_bilabials() -> None:
    target = torch.stack([_face(0.5), _face(0.5), _face(0.0), _face(0.4)])[None]
    weights = torch.tensor([[1.0, 1.0, BILABIAL_WEIGHT, 0.0]])
    # Frame 0 too closed by 0.3, frame 1 opened wider (free), frame 2 bilabial (not
    # this loss's), frame 3 padding (weight 0): only frame 0 costs, over 2 frames.
    pred = torch.stack([_face(0.2), _face(0.9), _face(0.0), _face(0.0)])[None]
    assert apart_loss(pred, target, weights).item() == pytest.approx(0.3 / 2)
    assert apart_loss(target, target, weights).item() == 0.0
    # A per-example gain scales that example's gaps (the trainer's noisy-render weight).
    assert apart_loss(pred, target, weights, torch.tensor([2.5])).item() == pytest.approx(2.5 * 0.3 / 2)


def test_noisiness_reads_the_additive_noise_snr_and_nothing_else() -> None:
    from training.train import noisiness

    assert noisiness(("clean",)) == 0.0
    # The floor under digital silence and the level are not noise conditions.
    assert noisiness(("pitch:+1.00st", "floor:-50dBFS", "gain:-12.0dB")) == 0.0
    assert noisiness(("reverb:0.30s/wet0.20", "noise.pink:25.0dB", "codec.gsm:q0.50")) == 0.0
    assert noisiness(("noise.babble:17.5dB",)) == pytest.approx(0.5)
    assert noisiness(("noise.white:10.0dB",)) == 1.0
    assert noisiness(("noise.music:5.2dB",)) == 1.0


def test_the_loss_weights_reach_the_options_from_the_command_line() -> None:
    from training.train import TrainOptions, build_parser, options_from_args

    default = options_from_args(build_parser().parse_args([]))
    assert default == TrainOptions()  # the flags' defaults are the recipe's
    # 2.1.0's recipe (issue 12, session 10).
    assert (default.velocity_weight, default.closure_weight, default.apart_weight) == (10.0, 0.3, 0.3)
    assert default.apart_noise_weight == 0.6
    # Values unlike the defaults, so a flag that did not reach the options would show.
    flags = ["--velocity-weight", "4", "--closure-weight", "0", "--apart-weight", "0.1",
             "--apart-noise-weight", "0.5"]  # fmt: skip
    opts = options_from_args(build_parser().parse_args(flags))
    assert (opts.velocity_weight, opts.closure_weight, opts.apart_weight) == (4.0, 0.0, 0.1)
    assert opts.apart_noise_weight == 0.5


def test_the_closure_gain_scales_each_examples_gaps() -> None:
    """``--real-closure-weight``: an example's gain multiplies its own gaps only."""
    target = torch.stack([_face(0.0), _face(0.0)])[None].repeat(2, 1, 1)
    weights = torch.full((2, 2), BILABIAL_WEIGHT)
    pred = torch.stack([_face(0.2), _face(0.4)])[None].repeat(2, 1, 1)
    base = closure_loss(pred, target, weights).item()
    assert base == pytest.approx(0.3)
    assert closure_loss(pred, target, weights, torch.ones(2)).item() == pytest.approx(base)
    # Example 1 off: its frames still count in the mean (the hinge's scale stays that of
    # the batch), but its gaps cost nothing.
    assert closure_loss(pred, target, weights, torch.tensor([1.0, 0.0])).item() == pytest.approx(0.15)
    assert closure_loss(pred, target, weights, torch.tensor([1.0, 3.0])).item() == pytest.approx(0.6)


def test_the_real_closure_weight_reaches_training() -> None:
    """The flag changes what train() fits when a real example is bilabial (this fails if
    it were parsed but not used), and refuses what it cannot mean."""
    from training.train import Example, build_parser, options_from_args, train

    assert options_from_args(build_parser().parse_args([])).real_closure_weight == 1.0
    rng = np.random.default_rng(0)
    w = np.where(np.arange(150) % 10 < 3, BILABIAL_WEIGHT, 1.0).astype(np.float32)
    examples = [Example(rng.normal(-5, 1, (150, 40)).astype(np.float32),
                        rng.random((150, 52)).astype(np.float32) * 0.2, w)
                for _ in range(4)]  # fmt: skip
    real = np.array([True, True, False, False])
    losses = {}
    for value in ("1", "0"):
        opts = options_from_args(build_parser().parse_args(
            ["--real-closure-weight", value, "--steps", "6", "--batch", "8", "--threads", "1",
             "--ema-decay", "0"]))  # fmt: skip
        _, info = train(examples, opts, real=real)
        assert info["real_speaker"]["closure_weight"] == float(value)
        losses[value] = [h["loss"] for h in info["history"]]
    assert losses["1"][0] != losses["0"][0]  # same seed, same draws: only the hinge differs
    for bad, why in (("-1", ">= 0"), ("0.5", "mask")):
        opts = options_from_args(build_parser().parse_args(["--real-closure-weight", bad, "--steps", "1"]))
        with pytest.raises(ValueError, match=why):
            train(examples, opts, real=None if bad == "0.5" else real)
