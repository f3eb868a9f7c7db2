"""Export a trained checkpoint to the packaged ONNX file plus its sha256 sidecar.

``python -m training.export --ckpt training/work/model.pt``

* ``torch.onnx.export`` (classic TorchScript exporter, opset 17: a plain chain of
  Conv/Relu/Add/Sigmoid that every onnxruntime runs), dynamic batch and time axes;
* metadata_props: everything :class:`audio2face.engines.default.ModelInfo` reads,
  plus the normalisation statistics and a training summary;
* the onnxruntime output is checked against torch (max abs diff <= 1e-4) on random
  and on silence features before the file is written;
* the sidecar ``audio2face_default.json`` carries the sha256 the runtime verifies.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from audio2face.audio.features import DEFAULT_FEATURES
from audio2face.engines.default.model import INPUT_NAME, OUTPUT_NAME, packaged_model_path, sha256_of
from audio2face.rigs import ARKIT_52

VERSION = "1.0.0"
TOLERANCE = 1e-4


def lookahead_s(right_context: int, stride: int) -> float:
    """Network right context + half the STFT window + one model step (interpolation)."""
    f = DEFAULT_FEATURES
    return (right_context * f.hop_length + f.half_window + stride * f.hop_length) / f.sample_rate


def _training_summary(info: dict[str, object]) -> str:
    """Training summary as JSON; the loss history is dropped if the whole would be large."""
    text = json.dumps(info, default=str)
    if len(text) > 20000:
        text = json.dumps({k: v for k, v in info.items() if k != "history"}, default=str)
    return text


def metadata(model, info: dict[str, object]) -> dict[str, str]:  # noqa: ANN001 - torch module
    c = model.config
    return {
        "version": VERSION,
        "output_names": json.dumps(list(ARKIT_52)),
        "features": json.dumps(DEFAULT_FEATURES.as_dict()),
        "model_rate": str(DEFAULT_FEATURES.frame_rate / c.stride),
        "stride": str(c.stride),
        "receptive_field": str(c.receptive_field),
        "left_context": str(c.left_context),
        "right_context": str(c.right_context),
        "lookahead_s": str(lookahead_s(c.right_context, c.stride)),
        "fps": "30",
        "norm_mean": json.dumps([round(float(v), 6) for v in model.mean]),
        "norm_std": json.dumps([round(float(v), 6) for v in model.std]),
        "architecture": json.dumps(c.as_dict()),
        "training": _training_summary(info),
        "licence": "MIT (model weights); training data licences in docs/model-card.md",
    }


def export(ckpt: Path, out: Path) -> dict[str, object]:
    """Write ``out`` (.onnx) and its sidecar; return the sidecar contents."""
    import onnx
    import onnxruntime as ort
    import torch

    from training.model import ModelConfig, SpeechToFace

    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    cfg = dict(state["config"])
    cfg["dilations"] = tuple(cfg["dilations"])
    model = SpeechToFace(ModelConfig(**cfg))
    model.load_state_dict(state["state_dict"])
    model.eval()
    rf = model.config.receptive_field
    example = torch.full((1, rf + 40, model.config.n_mels), float(np.log(DEFAULT_FEATURES.eps)))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model, (example,), str(raw), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 1: "frames"}, OUTPUT_NAME: {0: "batch", 1: "outputs"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
        proto = onnx.load(str(raw))
    proto.doc_string = "audio2face default model: log-mel [B, T, 40] -> ARKit-52 weights [B, T', 52]"
    del proto.metadata_props[:]
    for k, v in metadata(model, state.get("info", {})).items():
        proto.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(proto)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    # Verify onnxruntime == torch before anyone ships the file.
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch, frames in ((1, rf), (3, rf + 101), (2, 700)):
        x = (rng.standard_normal((batch, frames, model.config.n_mels)) * 3 - 8).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    if worst > TOLERANCE:
        out.unlink()
        raise RuntimeError(f"onnxruntime differs from torch by {worst:.2e} > {TOLERANCE}")
    n_params = sum(p.numel() for p in model.parameters())
    sidecar = {
        "file": out.name,
        "sha256": sha256_of(out),
        "bytes": out.stat().st_size,
        "version": VERSION,
        "parameters": n_params,
        "macs_per_second_of_audio": macs_per_second(model),
        "max_abs_diff_onnxruntime_vs_torch": worst,
        "lookahead_s": lookahead_s(model.config.right_context, model.config.stride),
        "architecture": model.config.as_dict(),
    }
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=1) + "\n", "utf-8")
    return sidecar


def macs_per_second(model) -> int:  # noqa: ANN001 - torch module
    """Multiply-adds per second of audio (steady state, ignoring window overlap)."""
    c = model.config
    per_feature_frame = c.n_mels * c.channels * 3  # conv_in at 100 Hz
    per_output = c.channels * c.channels * 4 + len(c.dilations) * (c.channels * c.channels * 4) \
        + c.channels * c.n_out  # down (k4) + blocks (k3 + 1x1) + head, at 50 Hz
    rate = DEFAULT_FEATURES.frame_rate
    return int(per_feature_frame * rate + per_output * rate / c.stride)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, default=Path("training/work/model.pt"))
    parser.add_argument("--out", type=Path, default=packaged_model_path())
    args = parser.parse_args(argv)
    print(json.dumps(export(args.ckpt, args.out), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
