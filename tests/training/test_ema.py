"""The exponential moving average of the weights (``--ema-decay``): the averaged value
follows the closed form, training itself is not changed by it, and the checkpoint and
the exporter hand out the averaged weights (the raw ones on request)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch: pip install -e '.[train]'")

from training.model import ModelConfig  # noqa: E402 - after the importorskip
from training.train import (  # noqa: E402
    Example,
    TrainOptions,
    averaged_module,
    make_ema,
    save_checkpoint,
    train,
    update_ema,
)

TINY = ModelConfig(channels=8, dilations=(1, 2))


class _Net(torch.nn.Module):
    """One weight and one batch norm (float running stats and an integer counter)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))
        self.norm = torch.nn.BatchNorm1d(3)


def test_ema_follows_the_closed_form() -> None:
    net, decay = _Net(), 0.9
    ema = make_ema(net, decay)
    values = [1.0, 5.0, -2.0, 4.0]
    for k, v in enumerate(values):
        with torch.no_grad():
            net.w.fill_(v)
            net.norm.running_mean.fill_(10 * v)
            net.norm.num_batches_tracked.fill_(k + 1)
        update_ema(ema, net)
    # first update copies, then avg = decay * avg + (1 - decay) * value
    expect = values[0]
    for v in values[1:]:
        expect = decay * expect + (1 - decay) * v
    avg = averaged_module(ema, net)
    assert avg is not net
    np.testing.assert_allclose(avg.w.detach().numpy(), expect, rtol=1e-6)
    np.testing.assert_allclose(avg.norm.running_mean.numpy(), 10 * expect, rtol=1e-6)  # buffers averaged too
    assert int(avg.norm.num_batches_tracked) == len(values)  # integer buffers copied, not averaged
    np.testing.assert_allclose(net.w.detach().numpy(), values[-1])  # the raw model is untouched
    assert not avg.training


def test_decay_zero_is_off_and_bad_decays_are_refused() -> None:
    net = _Net()
    assert make_ema(net, 0.0) is None
    update_ema(None, net)  # a no-op
    assert averaged_module(None, net) is net
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="ema decay"):
            make_ema(net, bad)
    assert TrainOptions().ema_decay == 0.999


def _examples(n: int = 6, frames: int = 180) -> list[Example]:
    rng = np.random.default_rng(0)
    return [
        Example(
            feats=(rng.standard_normal((frames, TINY.n_mels)) * 2 - 6).astype(np.float32),
            targets=rng.uniform(0, 1, (frames, TINY.n_out)).astype(np.float32),
            weights=np.ones(frames, np.float32),
        )
        for _ in range(n)
    ]


def _train(decay: float):  # noqa: ANN202 - torch module and dict
    opts = TrainOptions(steps=6, batch=3, crop_s=0.5, seed=3, threads=1, ema_decay=decay)
    return train(_examples(), opts, TINY)


def test_training_returns_the_average_and_is_not_changed_by_it() -> None:
    plain, plain_info = _train(0.0)
    avg, info = _train(0.5)
    assert "raw_state_dict" not in plain_info
    raw = info["raw_state_dict"]
    # same seed: the raw weights are exactly those of a run without the EMA
    for k, v in plain.state_dict().items():
        torch.testing.assert_close(raw[k], v, rtol=0, atol=0)
    # the returned model is the average, which differs from the last step's weights
    ema_state = avg.state_dict()
    assert set(ema_state) == set(raw)
    assert any(not torch.equal(ema_state[k], raw[k]) for k in raw if raw[k].is_floating_point())
    torch.testing.assert_close(ema_state["mean"], raw["mean"])  # constant buffers stay put
    assert not avg.training


def test_checkpoint_and_export_carry_the_averaged_weights(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import onnxruntime as ort
    from training.export import export

    avg, info = _train(0.5)
    raw = info["raw_state_dict"]
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, avg, info)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert "raw_state_dict" not in state["info"]  # the weights are not in the JSON log
    for k, v in avg.state_dict().items():
        torch.testing.assert_close(state["state_dict"][k], v)
        torch.testing.assert_close(state["raw_state_dict"][k], raw[k])

    x = (np.random.default_rng(1).standard_normal((1, TINY.receptive_field + 20, TINY.n_mels)) * 2 - 6)
    x = x.astype(np.float32)
    raw_model = type(avg)(TINY)
    raw_model.load_state_dict(raw)
    raw_model.eval()
    with torch.no_grad():
        want = {"ema": avg(torch.from_numpy(x)).numpy(), "raw": raw_model(torch.from_numpy(x)).numpy()}
    assert np.abs(want["ema"] - want["raw"]).max() > 1e-5
    for weights in ("ema", "raw"):
        out = tmp_path / weights / "audio2face_default.onnx"
        sidecar = export(ckpt, out, weights)
        assert sidecar["weights"] == weights and sidecar["ema_decay"] == 0.5
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, want[weights], atol=1e-4)
    with pytest.raises(ValueError, match="raw_state_dict"):
        plain, plain_info = _train(0.0)
        save_checkpoint(tmp_path / "plain.pt", plain, plain_info)
        export(tmp_path / "plain.pt", tmp_path / "plain" / "m.onnx", "raw")
    # The ONNX sidecar must not overwrite the training log next to the checkpoint.
    log_before = ckpt.with_suffix(".json").read_bytes()
    with pytest.raises(ValueError, match="training log"):
        export(ckpt, ckpt.with_suffix(".onnx"))
    assert ckpt.with_suffix(".json").read_bytes() == log_before
