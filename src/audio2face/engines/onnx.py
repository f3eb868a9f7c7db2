"""Create onnxruntime sessions the same way for every engine.

One helper, :func:`create_session`, turns a model path and :class:`OrtOptions` (built
from the service settings at the composition root) into an ``InferenceSession`` with explicit
providers and ``SessionOptions`` (threads, execution mode, memory arena), and turns
every way a model file can be unusable into a :class:`ModelNotFoundError` whose reason
says what to download and where to put it.

Sessions are meant to be created once per model and shared by all streams:
``InferenceSession.run`` is thread-safe, so callers need no lock around it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from audio2face.errors import ConfigError, ModelNotFoundError
from audio2face.types import Providers

__all__ = [
    "CPU_PROVIDER",
    "CUDA_PROVIDER",
    "ModelSource",
    "OrtOptions",
    "create_session",
    "resolve_providers",
]


logger = logging.getLogger("audio2face.engines.onnx")

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


@dataclass(frozen=True, slots=True)
class OrtOptions:
    """How to run one ONNX model: providers and thread counts (see ``docs/configuration.md``)."""

    providers: Providers = "auto"
    intra_op_threads: int = 1
    inter_op_threads: int = 1

    def __post_init__(self) -> None:
        if self.intra_op_threads < 1 or self.inter_op_threads < 1:
            raise ValueError(
                f"thread counts must be >= 1, got intra={self.intra_op_threads} "
                f"inter={self.inter_op_threads}"
            )


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where a model comes from, for error messages that tell the user what to do.

    ``setting`` is the ``Settings`` field, ``env_var`` and ``cli_flag`` the two ways to
    set it, ``url`` where the file can be downloaded.
    """

    display_name: str
    file_name: str
    url: str | None = None
    setting: str | None = None
    env_var: str | None = None
    cli_flag: str | None = None

    def hint(self) -> str:
        """One sentence: download what, from where, and how to point the service at it."""
        where = f" from {self.url}" if self.url else ""
        ways = [w for w in (self.env_var and f"set {self.env_var}=PATH",
                            self.cli_flag and f"pass `{self.cli_flag} PATH`") if w]
        how = f", then {' or '.join(ways)}" if ways else ""
        return f"download {self.file_name}{where}{how}"


def resolve_providers(setting: Providers) -> list[str]:
    """The onnxruntime provider list for the ``providers`` setting.

    ``"cpu"`` is CPU only. ``"cuda"`` needs an onnxruntime build with CUDA (the
    ``onnxruntime-gpu`` wheel) and raises :class:`ConfigError` otherwise. ``"auto"``
    asks for CUDA when the build has it, with CPU as fallback; whether a GPU is really
    usable is only known once a session exists (see :func:`create_session`).
    """
    available = ort.get_available_providers()
    if setting == "cpu":
        return [CPU_PROVIDER]
    if setting == "cuda":
        if CUDA_PROVIDER not in available:
            raise ConfigError(
                "providers='cuda' but this onnxruntime build has no CUDA provider "
                f"(available: {available}); install onnxruntime-gpu or use providers='cpu'"
            )
        return [CUDA_PROVIDER, CPU_PROVIDER]
    if setting == "auto":
        return [CUDA_PROVIDER, CPU_PROVIDER] if CUDA_PROVIDER in available else [CPU_PROVIDER]
    raise ConfigError(f"unknown providers setting {setting!r}; allowed: 'auto', 'cpu', 'cuda'")


def session_options(options: OrtOptions) -> ort.SessionOptions:
    """Explicit ``SessionOptions``, never onnxruntime's defaults.

    onnxruntime's default thread pool takes every core; with one session per model
    shared by ``inference_workers`` threads that oversubscribes the machine, so the
    thread counts are always explicit.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = options.intra_op_threads
    opts.inter_op_num_threads = options.inter_op_threads
    # Our graphs are a single chain of ops: parallel execution adds scheduling cost only.
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The arena reuses buffers between runs of varying length instead of malloc per run.
    opts.enable_cpu_mem_arena = True
    opts.enable_mem_pattern = True
    # Idle intra-op threads spin by default; with several workers sharing few cores the
    # spinning steals CPU from the threads doing real work.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: provider fallback is logged by us
    return opts


def create_session(
    path: Path | str | None, options: OrtOptions, source: ModelSource
) -> ort.InferenceSession:
    """Load the ONNX model at ``path`` with ``options``' providers and threads.

    Raises :class:`ModelNotFoundError` when ``path`` is unset, missing, not a file or
    not a loadable ONNX model, and :class:`ConfigError` when ``providers='cuda'`` was
    asked for but no GPU can be used.
    """
    if path is None:
        raise ModelNotFoundError(
            f"no {source.display_name} model configured; {source.hint()}"
        )
    model_path = Path(path).expanduser()
    if not model_path.is_file():
        what = "is a directory, not a file" if model_path.is_dir() else "does not exist"
        raise ModelNotFoundError(
            f"{source.display_name} model {str(model_path)!r} {what}; {source.hint()}"
        )
    providers = resolve_providers(options.providers)
    try:
        session = ort.InferenceSession(
            str(model_path), sess_options=session_options(options), providers=providers
        )
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        raise ModelNotFoundError(
            f"{source.display_name} model {str(model_path)!r} cannot be loaded "
            f"({type(exc).__name__}: {exc}); is it a complete {source.file_name}? "
            f"{source.hint()}"
        ) from exc
    used = session.get_providers()
    if options.providers == "cuda" and CUDA_PROVIDER not in used:
        raise ConfigError(
            f"providers='cuda' but {source.display_name} fell back to {used}: "
            "no usable GPU or CUDA libraries; use providers='auto' or 'cpu'"
        )
    logger.info("loaded %s from %s on %s", source.display_name, model_path, ", ".join(used))
    return session
