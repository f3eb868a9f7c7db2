"""Export a trained checkpoint to the packaged ONNX file plus its sha256 sidecar.

``python -m training.export --ckpt training/work/model.pt``

* ``torch.onnx.export`` (classic TorchScript exporter, opset 17: a plain chain of
  Conv/Relu/Add/Sigmoid that every onnxruntime runs), dynamic batch and time axes;
* metadata_props: everything :class:`audio2face.engines.default.ModelInfo` reads,
  plus the normalisation statistics and a training summary;
* the onnxruntime output is checked against torch (max abs diff <= 1e-4) on random
  and on silence features before the file is written;
* a second, stateful streaming graph ``audio2face_default_stream.onnx`` from the same
  weights (:class:`StreamingSpeechToFace` has the why and the cache layout), checked
  against the full-window graph on random chunkings before it is written;
* the sidecar ``audio2face_default.json`` carries the sha256 of both files, which the
  runtime verifies.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from audio2face.audio.features import DEFAULT_FEATURES
from audio2face.engines.default.model import (
    INPUT_NAME,
    NEW_CACHE_PREFIX,
    OUTPUT_NAME,
    STREAM_SUFFIX,
    packaged_model_path,
    sha256_of,
    silence_caches,
)
from audio2face.rigs import ARKIT_52

VERSION = "2.2.0"
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
        "data_build": json.dumps(info.get("data_build", {})),
        "train_commit": str(info.get("train_commit", "unknown")),
        "licence": "MIT (model weights); training data licences in docs/model-card.md",
    }


def export(ckpt: Path, out: Path, weights: str = "ema") -> dict[str, object]:
    """Write ``out`` (.onnx) and its sidecar; return the sidecar contents.

    ``weights="ema"`` exports the checkpoint's ``state_dict`` (the averaged weights when
    training ran with an EMA, else the only weights there are); ``"raw"`` exports the last
    step's raw weights (``raw_state_dict``), for comparing the two."""
    if out.with_suffix(".json").resolve() == ckpt.with_suffix(".json").resolve():
        # training.train logs the run as CKPT.json; the sidecar would overwrite it, and the
        # recipe's model card reads it (session 10 lost one that way).
        raise ValueError(
            f"--out {out} would write its sidecar over the training log {ckpt.with_suffix('.json')}; "
            "give the ONNX file another name or folder"
        )
    import onnx
    import onnxruntime as ort
    import torch

    from training.model import load_checkpoint

    model, info = load_checkpoint(ckpt, weights)
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
    for k, v in metadata(model, info).items():
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
    stream_out = out.with_name(out.stem + STREAM_SUFFIX)
    stream = export_stream(model, info, stream_out, out)
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
        "data_build": info.get("data_build", {}),
        "train_commit": info.get("train_commit", "unknown"),
        "weights": weights,
        "ema_decay": info.get("ema_decay", 0.0),  # 0.0: trained before the EMA existed
        "stream": stream,
    }
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=1) + "\n", "utf-8")
    return sidecar


def streaming_module(model):  # noqa: ANN001, ANN201 - torch types, torch imported lazily
    """The same trained ``SpeechToFace`` as a stateful step: new frames + caches -> outputs + caches.

    Why: the full-window graph recomputes the whole 660 ms receptive field on every
    call, which for 20 ms pushes is 15-30x redundant work. Each valid convolution only
    needs the last ``(k - 1) * d`` frames of its input besides the new ones, so a
    stream keeps those as caches (``[B, C, frames]``, batch axis first so a
    cross-stream batcher concatenates them like any other input):

    * ``cache_in``    normalised features before ``conv_in`` (k3): 2 frames;
    * ``cache_down``  ``conv_in`` activations before ``down`` (k4, stride 2): 2 frames,
      i.e. ``k - stride``; feeding an even number of new frames per step keeps the
      stride phase, so the next window starts right after this step's last one;
    * ``cache_b{i}``  each residual block's input: ``2 * dilation`` frames.

    A step of ``n`` (even) feature frames gives ``n / 2`` outputs; the residual adds
    the block input's centre frames (``d`` behind the newest), exactly as the valid
    offline block's centre crop does. Weights, batch norms and op order are the
    full-window module's own, so the results match it to float rounding.
    """
    import torch
    from torch import nn

    class StreamingSpeechToFace(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, feats: torch.Tensor, cache_in: torch.Tensor, cache_down: torch.Tensor,
                    *block_caches: torch.Tensor) -> tuple[torch.Tensor, ...]:  # fmt: skip
            m = self.inner
            x = torch.cat([cache_in, ((feats - m.mean) / m.std).transpose(1, 2)], dim=2)
            caches = [x[:, :, -2:]]
            h = torch.cat([cache_down, torch.relu(m.norm_in(m.conv_in(x)))], dim=2)
            caches.append(h[:, :, -2:])
            h = torch.relu(m.norm_down(m.down(h)))
            for block, cache in zip(m.blocks, block_caches, strict=True):
                d = block.dilation
                z = torch.cat([cache, h], dim=2)
                caches.append(z[:, :, -2 * d :])
                h = z[:, :, d:-d] + block.mix(torch.relu(block.norm(block.conv(z))))
            return (torch.sigmoid(m.head(h)).transpose(1, 2), *caches)

    return StreamingSpeechToFace(model).eval()


def cache_layout(config) -> list[tuple[str, int, int]]:  # noqa: ANN001 - ModelConfig
    """``(input name, channels, frames)`` of every cache, in graph input order."""
    c = config.channels
    return [("cache_in", config.n_mels, 2), ("cache_down", c, 4 - config.stride)] + [
        (f"cache_b{i + 1}", c, 2 * d) for i, d in enumerate(config.dilations)
    ]


def stream_phase(config) -> tuple[int, int]:  # noqa: ANN001 - ModelConfig
    """``(lead, preroll)``: silence frames a stream starts its feature buffer with, and
    outputs its first step gives before output 0.

    Output ``j`` needs features up to ``2 j + right_context``; steps of even length
    must end on those frames, so a stream starts one silence frame early when
    ``right_context`` is even. The caches start as "everything before was silence",
    so the first ``preroll`` outputs are faces before time 0 and are dropped.
    """
    lead = (config.right_context + 1) % config.stride
    return lead, (config.right_context + lead - 1) // config.stride


def export_stream(model, info: dict[str, object], out: Path, full: Path) -> dict[str, object]:  # noqa: ANN001
    """Write the streaming graph to ``out``, verified against the full-window ``full``."""
    import onnx
    import onnxruntime as ort
    import torch

    c = model.config
    if c.stride != 2:
        raise ValueError("the streaming export assumes stride 2 (cache_down = k - stride frames)")
    step = streaming_module(model)
    layout = cache_layout(c)
    lead, preroll = stream_phase(c)
    example = (torch.zeros(1, 4, c.n_mels), *(torch.zeros(1, ch, t) for _, ch, t in layout))
    names_in = [INPUT_NAME] + [n for n, _, _ in layout]
    names_out = [OUTPUT_NAME] + [NEW_CACHE_PREFIX + n for n, _, _ in layout]
    axes = {INPUT_NAME: {0: "batch", 1: "frames"}, OUTPUT_NAME: {0: "batch", 1: "outputs"}}
    axes |= {n: {0: "batch"} for n in names_in[1:] + names_out[1:]}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "stream.onnx"
        torch.onnx.export(step, example, str(raw), input_names=names_in, output_names=names_out,
                          dynamic_axes=axes, opset_version=17, dynamo=False)  # fmt: skip
        proto = onnx.load(str(raw))
    proto.doc_string = ("audio2face default model, streaming step: log-mel [B, n, 40] (n even) + "
                        "per-layer caches -> ARKit-52 weights [B, n/2, 52] + new caches")  # fmt: skip
    del proto.metadata_props[:]
    meta = metadata(model, info) | {
        "stream_lead_frames": str(lead),
        "stream_preroll_outputs": str(preroll),
        "stream_caches": json.dumps(layout),
    }
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    worst = verify_stream(ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]),
                          ort.InferenceSession(str(full), providers=["CPUExecutionProvider"]),
                          c.left_context, lead, preroll)  # fmt: skip
    if worst > TOLERANCE:
        out.unlink()
        raise RuntimeError(f"streaming graph differs from the full-window graph by {worst:.2e}")
    return {"file": out.name, "sha256": sha256_of(out), "bytes": out.stat().st_size,
            "max_abs_diff_vs_full_window": worst, "lead_frames": lead, "preroll_outputs": preroll,
            "caches": {n: [ch, t] for n, ch, t in layout}}  # fmt: skip


def verify_stream(stream, full, left: int, lead: int, preroll: int) -> float:  # noqa: ANN001 - sessions
    """Worst |stream - full| over random batched streams cut into random even steps."""
    rng = np.random.default_rng(1)
    silence = np.float32(np.log(DEFAULT_FEATURES.eps))
    worst = 0.0
    for batch, frames in ((1, 301), (3, 240)):
        x = (rng.standard_normal((batch, frames, DEFAULT_FEATURES.n_mels)) * 3 - 8).astype(np.float32)
        x[:, :30] = silence  # a silent start, as most streams have

        def pad(n: int, batch: int = batch) -> np.ndarray:
            return np.full((batch, n, DEFAULT_FEATURES.n_mels), silence, np.float32)

        ref = full.run([OUTPUT_NAME], {INPUT_NAME: np.concatenate([pad(left), x, pad(8)], 1)})[0]
        caches = [np.repeat(cache, batch, 0) for cache in silence_caches(stream)]
        feed = np.concatenate([pad(lead), x, pad(8)], 1)
        feed = feed[:, : feed.shape[1] // 2 * 2]
        outs, i = [], 0
        while i < feed.shape[1]:
            n = min(int(rng.choice([2, 4, 6, 10, 64])), feed.shape[1] - i)
            y, *caches = stream.run(None, {INPUT_NAME: feed[:, i : i + n], **dict(
                zip([a.name for a in stream.get_inputs()[1:]], caches, strict=True))})  # fmt: skip
            outs.append(y)
            i += n
        got = np.concatenate(outs, 1)[:, preroll:]
        k = min(got.shape[1], ref.shape[1])
        if k < ref.shape[1] - 4:
            raise RuntimeError(f"streaming graph gave {k} outputs, the full window {ref.shape[1]}")
        worst = max(worst, float(np.abs(got[:, :k] - ref[:, :k]).max()))
    return worst


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
    parser.add_argument("--weights", choices=("ema", "raw"), default="ema",
                        help="ema: the checkpoint's state_dict (averaged when trained with an EMA); "
                        "raw: the last step's weights")
    args = parser.parse_args(argv)
    try:
        sidecar = export(args.ckpt, args.out, args.weights)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(sidecar, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
