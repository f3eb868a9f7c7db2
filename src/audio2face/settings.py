"""Service settings: one validated object, read from ``AUDIO2FACE_*`` environment
variables, an optional TOML file, and CLI flags (highest precedence last).

Every limit the service enforces is a field here, with a sane default.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from audio2face.cores import cpu_count, default_intra_op_threads
from audio2face.types import Providers

DEFAULT_PORT = 18083
DEFAULT_CHUNK_FRAMES = 10
NEUTRAL_EMO_ID = 10

StreamMode = Literal["auto", "window", "segment"]


def _default_threads() -> tuple[int, int]:
    """(inference_workers, intra_op_threads) filling the cores without oversubscribing.

    On 2 cores one run on 2 threads carried 1.4x the UniTalker-sized throughput of two
    1-thread runs (which stream the weights from memory twice) and the same for the
    small default model, so threads go inside a run first, up to 4 per run; more
    cores add runs. See docs/benchmarks.md (Threads).
    """
    cores = cpu_count()
    intra = default_intra_op_threads()
    return max(1, cores // intra), intra


class Settings(BaseSettings):
    """All knobs of the service. See ``docs/configuration.md``."""

    model_config = SettingsConfigDict(
        env_prefix="AUDIO2FACE_", extra="forbid", frozen=True, validate_default=True
    )

    # --- network -----------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Bind address; 0.0.0.0 to expose the service.")
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="TCP port.")
    workers: int = Field(
        1, ge=1, le=64,
        description="Server processes sharing the port (SO_REUSEPORT), each with its own "
        "model and limits; /metrics sums all of them; threads are split between them.",
    )  # fmt: skip

    # --- profiles and models -----------------------------------------------------
    default_profile: str = Field(
        "arkit",
        description="Profile for requests with an empty profile_name (and, on protocol v1, "
        "unknown avatar names such as KQ-default).",
    )
    profile_dir: Path | None = Field(
        None, description="Directory of user profile TOML files (override built-ins)."
    )
    unitalker_model: Path | None = Field(
        None, description="Path to unitalker_v0.4.0_base.onnx; enables the unitalker engine."
    )
    unitalker_emo_id: int = Field(
        NEUTRAL_EMO_ID, ge=0, description="UniTalker emo_id input (10 = neutral)."
    )
    default_model: Path | None = Field(
        None, description="Use this ONNX file instead of the embedded default model."
    )
    weights_dir: Path = Field(
        Path("weights"),
        description="Folder searched for unitalker_v0.4.0_base.onnx when unitalker_model "
        "is unset (the original's `-v $PWD/weights:/workspace/audio2face/weights` mount); "
        "relative to the working directory.",
    )

    # --- inference ---------------------------------------------------------------
    providers: Providers = Field(
        "auto", description="onnxruntime providers: cpu, cuda, or auto (CUDA when present)."
    )
    intra_op_threads: int = Field(
        default_factory=lambda: _default_threads()[1], ge=1,
        description="onnxruntime threads inside one op, per inference worker (default: "
        "CPU count up to 4). intra_op_threads * inference_workers should not exceed the "
        "cores; measured in docs/benchmarks.md (Threads).",
    )  # fmt: skip
    default_model_threads: int = Field(
        1, ge=1,
        description="onnxruntime intra-op threads for the embedded default model. Its "
        "convolutions are too small to split: 2 threads were slower than 1 at every batch "
        "size measured (docs/benchmarks.md, Threads), so one core does the model's work "
        "and the others the rest of the server.",
    )  # fmt: skip
    inter_op_threads: int = Field(
        1, ge=1, description="onnxruntime threads across ops (graphs here are one chain: 1)."
    )
    inference_workers: int = Field(
        default_factory=lambda: _default_threads()[0], ge=1,
        description="Inference runs (batches) in flight at once, per model (default: CPU "
        "count / intra_op_threads).",
    )  # fmt: skip
    batch_wait_ms: float = Field(
        2.0, ge=0.0, le=100.0,
        description="How long an idle pusher waits for other streams' pushes before it "
        "runs a batch (0: no wait; batches still form while the pusher is busy).",
    )  # fmt: skip
    max_batch_size: int = Field(
        64, ge=1, description="Most streams' pushes in one batch (1 turns batching off)."
    )

    # --- scheduling of non-streaming engines (UniTalker) -------------------------
    unitalker_mode: StreamMode = Field(
        "auto", description="window (fixed latency), segment (original), or auto (window)."
    )
    window_left_context_s: float = Field(
        1.0, ge=0.0, le=30.0, description="Window mode: past audio given to each window."
    )
    window_hop_s: float = Field(
        0.4, gt=0.0, le=30.0, description="Window mode: new frames per window."
    )
    window_lookahead_s: float = Field(
        0.3, ge=0.0, le=30.0, description="Window mode: future audio each frame waits for."
    )
    window_crossfade_s: float = Field(
        0.1, ge=0.0, le=5.0, description="Window mode: overlap blended at joins."
    )

    # --- silence segmenter (the original's energy split) -------------------------
    silence_window_s: float = Field(0.010, gt=0.0, description="Segment mode: energy window.")
    silence_hop_s: float = Field(0.005, gt=0.0, description="Segment mode: energy hop.")
    silence_threshold: float = Field(
        1e4,
        ge=0.0,
        description="Segment mode: mean square on the int16 scale below which is silence.",
    )
    silence_min_interval_s: float = Field(
        0.5, ge=0.0, description="Segment mode: shortest silence that splits."
    )
    max_segment_s: float = Field(
        4.0, gt=0.0, le=60.0, description="Segment mode: longest segment before a forced cut."
    )

    # --- protocol ----------------------------------------------------------------
    default_chunk_frames: int = Field(
        DEFAULT_CHUNK_FRAMES, ge=1, le=10_000,
        description="Frames per response body when the client sends 0.",
    )  # fmt: skip
    accepted_sample_rates: tuple[int, ...] = Field(
        (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000),
        description="Input rates accepted (resampled to the engine's rate); others are refused.",
    )

    # --- limits ------------------------------------------------------------------
    max_streams: int = Field(256, ge=1, description="Concurrent streams; more are refused (1013).")
    max_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest WebSocket message (1009 beyond)."
    )
    max_buffered_s: float = Field(
        30.0, gt=0.0, description="Audio queued per stream before its reads pause."
    )
    max_upload_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest file POSTed to /api/v1/animate (413 beyond).",
    )
    max_utterance_s: float = Field(900.0, gt=0.0, description="Longest utterance (1008 beyond).")
    idle_timeout_s: float = Field(60.0, gt=0.0, description="Longest wait for a client message.")
    send_timeout_s: float = Field(30.0, gt=0.0, description="Longest wait for a client to read.")
    shutdown_drain_s: float = Field(
        10.0, ge=0.0, description="On SIGTERM, how long in-flight streams may finish."
    )
    max_name_chars: int = Field(
        128, ge=8, le=4096,
        description="Longest name a client may send (profile, emotion); longer ones are "
        "refused (1008). Client text in logs and close reasons is cut to this length.",
    )  # fmt: skip
    max_messages_per_s: float = Field(
        1000.0, gt=0.0,
        description="Messages per second one WebSocket may send (bursts of as many); "
        "more are refused (1008).",
    )  # fmt: skip
    min_body_s: float = Field(
        0.02, ge=0.0, le=1.0,
        description="Bodies carrying less audio than this are joined before they reach the "
        "engine (0: each body is pushed as it comes).",
    )  # fmt: skip
    min_audio_rate: float = Field(
        0.05, ge=0.0, le=1.0,
        description="Seconds of audio per second a stream must send to keep its slot: each "
        "second of audio keeps it open 1/min_audio_rate s, at most idle_timeout_s (0: only "
        "idle_timeout_s).",
    )  # fmt: skip
    handshake_timeout_s: float = Field(
        10.0, gt=0.0,
        description="Longest wait for a request's headers and for a WebSocket's first "
        "message (ChunkStart, start).",
    )  # fmt: skip
    max_write_buffer_bytes: int = Field(
        1024 * 1024, ge=64 * 1024,
        description="Unsent bytes (frames, pongs) one connection may hold; a client past it "
        "does not read and is disconnected.",
    )  # fmt: skip
    close_linger_s: float = Field(
        2.0, ge=0.0,
        description="After refusing an oversized message (1009), how long a connection "
        "keeps reading and dropping what the client still sends, so that the close frame "
        "reaches the client instead of a TCP reset (0: close at once).",
    )  # fmt: skip
    max_connections: int = Field(
        0, ge=0,
        description="Open TCP connections, all kinds; more are dropped at once (0: 90% of "
        "the descriptor limit, raised to its hard limit at start).",
    )  # fmt: skip
    connection_reserve: int = Field(
        16, ge=0,
        description="The last connections below max_connections serve only /health, "
        "/ready and /metrics (others get 503).",
    )  # fmt: skip
    max_lag_s: float = Field(
        2.0, gt=0.0,
        description="A live stream more than this behind real time (overload) is closed "
        "with 1013 instead of falling further behind.",
    )  # fmt: skip
    capacity_target: float = Field(
        0.8, ge=0.0, le=1.0,
        description="Share of the inference compute (measured) that streams may keep busy; "
        "past it new streams are refused with 1013 (0: no capacity check, only max_streams).",
    )  # fmt: skip
    max_uploads: int = Field(
        2, ge=1, description="Uploads (POST /api/v1/animate) animated at once."
    )
    max_upload_queue: int = Field(8, ge=0, description="Uploads waiting for a turn; more get 503.")
    max_upload_samples: int = Field(
        28_800_000, ge=16_000,
        description="Largest upload, in samples before mixing to mono (channels x rate x "
        "seconds), checked before decoding (413 beyond).",
    )  # fmt: skip
    upload_channels: tuple[int, ...] = Field(
        (1, 2), description="Channel counts an upload may have (mixed to mono); others get 400."
    )
    upload_formats: tuple[str, ...] = Field(
        ("WAV", "FLAC", "OGG"),
        description="Container formats an upload may use (libsndfile names: WAV, FLAC, OGG, "
        "MP3, AIFF, ...); others get 415.",
    )  # fmt: skip

    # --- security ----------------------------------------------------------------
    auth_token: SecretStr | None = Field(
        None, description="If set, clients must send it as a bearer token or API key."
    )
    cors_origins: tuple[str, ...] = Field((), description="Origins allowed by CORS (off if empty).")
    allowed_origins: tuple[str, ...] = Field(
        (),
        description="Browser origins (scheme://host:port) allowed to open WebSockets, or "
        '"*" for any; the service\'s own origin (the demo page) is always allowed, and '
        "clients that send no Origin header (not browsers) are not affected.",
    )
    web_ui: bool = Field(True, description="Serve the demo page and the JS client at /.")

    # --- logging -----------------------------------------------------------------
    log_level: str = Field("INFO", description="Log level.")
    log_json: bool = Field(False, description="JSON log lines.")
    cloudwatch_log_group: str | None = Field(
        None, description="Ship logs to this AWS CloudWatch group (extra: cloudwatch)."
    )
    cloudwatch_log_stream: str | None = Field(None, description="CloudWatch stream name.")

    @field_validator("accepted_sample_rates")
    @classmethod
    def _rates_positive(cls, rates: tuple[int, ...]) -> tuple[int, ...]:
        if not rates or any(r <= 0 for r in rates):
            raise ValueError("accepted_sample_rates must be a non-empty list of positive rates")
        return tuple(sorted(set(rates)))

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Environment, then the TOML ``config_file`` (or ``$AUDIO2FACE_CONFIG``), then
        ``overrides`` whose value is not ``None``."""
        path = config_file or (Path(p) if (p := os.environ.get("AUDIO2FACE_CONFIG")) else None)
        data: dict[str, Any] = {}
        if path is not None:
            with open(path, "rb") as f:
                data.update(tomllib.load(f))
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)
