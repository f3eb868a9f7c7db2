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

:func:`quantize_unitalker` is the whole command: it checks that the input has
UniTalker's inputs and outputs before writing anything, writes to a temporary file
next to the target, runs the optional check on speech, and only then moves the file
into place, so a failed run never leaves a file that looks usable.

Needs the ``onnx`` package (``pip install 'audio2face[quantize]'``); serving the
quantized file does not.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audio2face.errors import ConfigError, ModelNotFoundError
from audio2face.types import FloatArray

__all__ = [
    "QUANTIZED_OPS",
    "Deviation",
    "QuantizeResult",
    "check_unitalker_graph",
    "compare_unitalker",
    "quantize_int8",
    "quantize_unitalker",
]

UNITALKER_INPUTS = {"audio": ("float", 2), "emo_id": ("int32", 1), "time_steps": ("int32", 1)}
"""UniTalker's graph inputs: name -> (element type, rank)."""
UNITALKER_OUTPUT_CHANNELS = 51
DEFAULT_SEGMENT_S = 1.5
"""Audio per compared run (about one of the service's windows)."""

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


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise ConfigError(
            f"quantizing needs the onnx package ({exc}); pip install 'audio2face[quantize]'"
        ) from exc
    return onnx


def check_unitalker_graph(source: Path | str) -> None:
    """Raise :class:`ModelNotFoundError` unless ``source`` is an ONNX file with
    UniTalker's inputs (``audio`` float [B, N], ``emo_id`` and ``time_steps`` int32
    [1]) and output (float [B, T, 51]). Reads the graph only, not external weights."""
    onnx = _import_onnx()
    src = Path(source).expanduser()
    if not src.is_file():
        what = "is a directory" if src.is_dir() else "does not exist"
        raise ModelNotFoundError(f"model {str(src)!r} {what}; give the fp32 UniTalker .onnx file")
    try:
        model = onnx.load(str(src), load_external_data=False)
    except Exception as exc:  # onnx raises several types (DecodeError, OSError) for a bad file
        raise ModelNotFoundError(
            f"{str(src)!r} is not a valid ONNX model ({type(exc).__name__}); "
            "give the fp32 unitalker_v0.4.0_base.onnx"
        ) from exc
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    inputs = {i.name: i for i in graph.input if i.name not in weights}

    def describe(value: Any) -> tuple[str, int, list[int | str]]:
        tensor = value.type.tensor_type
        elem = (
            onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "?"
        )
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                for d in tensor.shape.dim]  # fmt: skip
        return elem.replace("float32", "float"), len(dims), dims

    def refuse(what: str) -> ModelNotFoundError:
        return ModelNotFoundError(
            f"{str(src)!r} is not a UniTalker model: {what}; `quantize` takes "
            "unitalker_v0.4.0_base.onnx (inputs audio, emo_id, time_steps; output [1, T, 51])"
        )

    if set(inputs) != set(UNITALKER_INPUTS):
        raise refuse(f"its inputs are {sorted(inputs)}, expected {sorted(UNITALKER_INPUTS)}")
    for name, (elem, rank) in UNITALKER_INPUTS.items():
        got_elem, got_rank, dims = describe(inputs[name])
        if (got_elem, got_rank) != (elem, rank):
            raise refuse(f"input {name!r} is {got_elem} {dims}, expected {elem} of rank {rank}")
    if len(graph.output) != 1:
        raise refuse(f"it has {len(graph.output)} outputs, expected 1")
    got_elem, got_rank, dims = describe(graph.output[0])
    channels = dims[-1] if dims else None
    if (
        got_elem != "float"
        or got_rank != 3
        or (isinstance(channels, int) and channels not in (0, UNITALKER_OUTPUT_CHANNELS))
    ):
        raise refuse(f"its output is {got_elem} {dims}, expected float [1, T, 51]")


@contextlib.contextmanager
def _without_preprocessing_hint() -> Iterator[None]:
    """onnxruntime logs "Please consider to run pre-processing before quantization" on
    every run (root logger). Its pre-processing (shape inference, graph optimisation)
    is for static quantization; for weight-only MatMul/Gemm it changes nothing the
    --check deviation would not show, and the user cannot act on it here."""

    def drop(record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def quantize_int8(source: Path | str, target: Path | str) -> QuantizeResult:
    """Write ``target``: ``source`` with int8 weights in its matrix multiplications.

    Raises :class:`ModelNotFoundError` when ``source`` is missing or not UniTalker-shaped
    (checked before anything is written), and :class:`ConfigError` when the ``onnx``
    package is not installed or ``target`` is ``source``.
    """
    onnx = _import_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(source).expanduser(), Path(target).expanduser()
    check_unitalker_graph(src)
    if src.resolve() == dst.resolve():
        raise ConfigError("the quantized model must go to a new file, not over its source")
    try:
        onnx.checker.check_model(str(src))
    except Exception as exc:  # onnx raises several types for a bad file
        raise ModelNotFoundError(f"{str(src)!r} is not a valid ONNX model: {exc}") from exc
    dst.parent.mkdir(parents=True, exist_ok=True)
    with _without_preprocessing_hint():
        quantize_dynamic(
            src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=list(QUANTIZED_OPS)
        )
    graph = onnx.load(str(dst), load_external_data=False).graph
    integer_ops = {"MatMulInteger", "DynamicQuantizeMatMul", "QGemm", "ConvInteger"}
    quantized = sum(1 for node in graph.node if node.op_type in integer_ops)
    if quantized == 0:
        dst.unlink(missing_ok=True)
        raise ModelNotFoundError(
            f"{str(src)!r} has no MatMul/Gemm with constant weights to quantize (0 int8 "
            "nodes); nothing would be gained"
        )
    return QuantizeResult(src, dst, src.stat().st_size, dst.stat().st_size, quantized)


def quantize_unitalker(
    source: Path | str, target: Path | str, *, check: Path | str | None = None
) -> tuple[QuantizeResult, Deviation | None]:
    """``audio2face quantize``: :func:`quantize_int8`, then, with ``check`` (a speech
    file), :func:`compare_unitalker` on it. ``target`` appears only when everything
    passed; a copy whose frames are not finite is refused with :class:`EngineError`."""
    from audio2face.errors import EngineError

    dst = Path(target).expanduser()
    audio = None
    if check is not None:  # read it first: a typo should not cost a quantization run
        from audio2face.audio.resample import resample
        from audio2face.audio.wav import read_audio

        samples, rate = read_audio(check)
        audio = resample(samples, rate, 16000)
        _check_length(audio, DEFAULT_SEGMENT_S)
    check_unitalker_graph(source)
    staging = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    try:
        result = quantize_int8(source, staging)
        deviation = None
        if audio is not None:
            deviation = compare_unitalker(source, staging, audio)
            if not math.isfinite(deviation.max_abs):
                raise EngineError(
                    "the quantized model produced non-finite values on the --check audio; "
                    "nothing was written (keep using the fp32 file)"
                )
        os.replace(staging, dst)
    finally:
        staging.unlink(missing_ok=True)
    final = QuantizeResult(result.source, dst, result.source_bytes, dst.stat().st_size,
                           result.quantized_nodes)  # fmt: skip
    return final, deviation


def compare_unitalker(
    reference: Path | str,
    candidate: Path | str,
    audio: FloatArray,
    *,
    segment_s: float = DEFAULT_SEGMENT_S,
    threads: int | None = None,
) -> Deviation:
    """Run two UniTalker files on the same 16 kHz mono ``audio``, cut into segments of
    ``segment_s`` (the windows the service runs), and measure how their frames differ."""
    from audio2face.engines.onnx import OrtOptions
    from audio2face.engines.unitalker import UniTalkerModel

    x = np.asarray(audio, np.float32).reshape(-1)
    step = _check_length(x, segment_s)
    from audio2face.cores import default_intra_op_threads

    options = OrtOptions(providers="cpu", intra_op_threads=threads or default_intra_op_threads())
    models = [UniTalkerModel.load(path, options) for path in (reference, candidate)]
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


def _check_length(audio: FloatArray, segment_s: float) -> int:
    """Samples per compared segment; ``ValueError`` when ``audio`` is shorter than one."""
    step = max(1, round(segment_s * 16000))
    if audio.shape[0] < step:
        raise ValueError(
            f"--check audio is {audio.shape[0] / 16000:.2f} s long; comparing needs at least "
            f"{segment_s:g} s of speech"
        )
    return step


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
