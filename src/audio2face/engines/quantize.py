"""Int8 weights for a user's UniTalker file: the CPU capacity option.

A UniTalker-sized graph is compute-bound on a CPU: on the 2-core benchmark machine
one fp32 window of 1.5 s costs about 0.15 s on both cores, so the machine carries
fewer than ten real-time streams whatever the scheduler does (docs/benchmarks.md).
Storing the weights of its matrix multiplications as int8 and quantizing activations
per run (onnxruntime's dynamic quantization) makes those products run on int8
instructions; convolutions stay float, because onnxruntime's integer convolution is
slower than its float one on CPUs.

This changes the numbers the model computes, so it is never done silently: an
operator runs ``audio2face quantize`` once, checks the reported deviation on speech of
their own, and points ``unitalker_model`` at the new file. The result has the same
inputs and outputs, so nothing else changes.

Needs the ``onnx`` package (``pip install 'audio2face[quantize]'``); serving the
quantized file does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio2face.errors import ConfigError, ModelNotFoundError
from audio2face.types import FloatArray

__all__ = ["QUANTIZED_OPS", "Deviation", "QuantizeResult", "compare_unitalker", "quantize_int8"]

QUANTIZED_OPS = ("MatMul", "Gemm")
"""Op types whose weights become int8. Conv is left out on purpose (see module doc)."""


@dataclass(frozen=True, slots=True)
class QuantizeResult:
    source: Path
    target: Path
    source_bytes: int
    target_bytes: int
    quantized_nodes: int
    """Nodes of the new graph that compute in int8 (``MatMulInteger`` and friends)."""


@dataclass(frozen=True, slots=True)
class Deviation:
    """How far the quantized model's frames are from the original's, on real audio."""

    frames: int
    max_abs: float
    mean_abs: float
    p99_abs: float


def quantize_int8(source: Path | str, target: Path | str) -> QuantizeResult:
    """Write ``target``: ``source`` with int8 weights in its matrix multiplications.

    Raises :class:`ModelNotFoundError` when ``source`` is missing or not ONNX, and
    :class:`ConfigError` when the ``onnx`` package is not installed.
    """
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ConfigError(
            f"quantizing needs the onnx package ({exc}); pip install 'audio2face[quantize]'"
        ) from exc
    src, dst = Path(source).expanduser(), Path(target).expanduser()
    if not src.is_file():
        raise ModelNotFoundError(f"model {str(src)!r} does not exist")
    if src.resolve() == dst.resolve():
        raise ConfigError("the quantized model must go to a new file, not over its source")
    try:
        onnx.checker.check_model(str(src))
    except Exception as exc:  # onnx raises several types for a bad file
        raise ModelNotFoundError(f"{str(src)!r} is not a valid ONNX model: {exc}") from exc
    dst.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=list(QUANTIZED_OPS)
    )
    graph = onnx.load(str(dst), load_external_data=False).graph
    integer_ops = {"MatMulInteger", "DynamicQuantizeMatMul", "QGemm", "ConvInteger"}
    quantized = sum(1 for node in graph.node if node.op_type in integer_ops)
    return QuantizeResult(src, dst, src.stat().st_size, dst.stat().st_size, quantized)


def compare_unitalker(
    reference: Path | str,
    candidate: Path | str,
    audio: FloatArray,
    *,
    segment_s: float = 1.5,
    threads: int | None = None,
) -> Deviation:
    """Run two UniTalker files on the same 16 kHz mono ``audio``, cut into segments of
    ``segment_s`` (the windows the service runs), and measure how their frames differ."""
    from audio2face.engines.onnx import create_session
    from audio2face.engines.unitalker import UNITALKER_SOURCE, UniTalkerModel
    from audio2face.settings import Settings

    x = np.asarray(audio, np.float32).reshape(-1)
    step = max(1, round(segment_s * 16000))
    if x.shape[0] < step:
        raise ValueError(
            f"need at least {segment_s:g} s of audio to compare, got {x.shape[0] / 16000:.2f} s"
        )
    overrides = {"intra_op_threads": threads, "inference_workers": 1} if threads else {}
    settings = Settings(providers="cpu", **overrides)  # type: ignore[arg-type]
    models = [
        UniTalkerModel(create_session(path, settings, UNITALKER_SOURCE))
        for path in (reference, candidate)
    ]
    diffs: list[FloatArray] = []
    for start in range(0, x.shape[0] - step + 1, step):
        segment = x[start : start + step]
        n = step * 30 // 16000
        a, b = (m.infer(segment, n) for m in models)
        diffs.append(np.abs(a - b).reshape(-1))
    d = np.concatenate(diffs)
    return Deviation(
        frames=sum(len(part) for part in diffs) // 51,
        max_abs=float(d.max()),
        mean_abs=float(d.mean()),
        p99_abs=float(np.percentile(d, 99)),
    )


def format_result(result: QuantizeResult, deviation: Deviation | None) -> Sequence[str]:
    """The lines ``audio2face quantize`` prints."""
    mb = 1 / 1e6
    lines = [
        f"{result.target}: {result.target_bytes * mb:.1f} MB (from {result.source_bytes * mb:.1f} MB), "
        f"{result.quantized_nodes} int8 nodes",
    ]
    if deviation is not None:
        lines.append(
            f"deviation from the original on {deviation.frames} frames: max {deviation.max_abs:.4f}, "
            f"p99 {deviation.p99_abs:.4f}, mean {deviation.mean_abs:.5f} (weights are 0..1)"
        )
    if not math.isfinite(deviation.max_abs if deviation else 0.0):
        lines.append("warning: the quantized model produced non-finite values; do not use it")
    return lines
