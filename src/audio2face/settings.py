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

DEFAULT_PORT = 18083
DEFAULT_CHUNK_FRAMES = 10
NEUTRAL_EMO_ID = 10

Providers = Literal["auto", "cpu", "cuda"]
StreamMode = Literal["auto", "window", "segment", "streaming"]


def _cpu_count() -> int:
    return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """All knobs of the service. See ``docs/configuration.md``."""

    model_config = SettingsConfigDict(
        env_prefix="AUDIO2FACE_", extra="forbid", frozen=True, validate_default=True
    )

    # --- network -----------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)

    # --- profiles and models -----------------------------------------------------
    default_profile: str = "arkit"
    profile_dir: Path | None = None
    unitalker_model: Path | None = None
    unitalker_emo_id: int = Field(NEUTRAL_EMO_ID, ge=0)
    default_model: Path | None = Field(
        None, description="Override the embedded default model with another ONNX file."
    )

    # --- inference ---------------------------------------------------------------
    providers: Providers = "auto"
    intra_op_threads: int = Field(default_factory=lambda: 1, ge=1)
    inter_op_threads: int = Field(1, ge=1)
    inference_workers: int = Field(default_factory=_cpu_count, ge=1)
    batch_wait_ms: float = Field(2.0, ge=0.0, le=100.0)
    max_batch_size: int = Field(64, ge=1)

    # --- scheduling of non-streaming engines (UniTalker) -------------------------
    unitalker_mode: StreamMode = "auto"
    window_left_context_s: float = Field(1.0, ge=0.0, le=30.0)
    window_hop_s: float = Field(0.4, gt=0.0, le=30.0)
    window_lookahead_s: float = Field(0.3, ge=0.0, le=30.0)
    window_crossfade_s: float = Field(0.1, ge=0.0, le=5.0)

    # --- silence segmenter (the original's energy split) -------------------------
    silence_window_s: float = Field(0.010, gt=0.0)
    silence_hop_s: float = Field(0.005, gt=0.0)
    silence_threshold: float = Field(1e4, ge=0.0, description="Mean square on the int16 scale.")
    silence_min_interval_s: float = Field(0.5, ge=0.0)
    max_segment_s: float = Field(4.0, gt=0.0, le=60.0)

    # --- protocol ----------------------------------------------------------------
    default_chunk_frames: int = Field(DEFAULT_CHUNK_FRAMES, ge=1, le=10_000)
    accepted_sample_rates: tuple[int, ...] = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)

    # --- limits ------------------------------------------------------------------
    max_streams: int = Field(256, ge=1)
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_buffered_s: float = Field(30.0, gt=0.0)
    max_utterance_s: float = Field(900.0, gt=0.0)
    idle_timeout_s: float = Field(60.0, gt=0.0, description="Longest wait for a client message.")
    send_timeout_s: float = Field(30.0, gt=0.0, description="Longest wait for a client to read.")
    max_response_queue: int = Field(256, ge=1, description="Outgoing messages per stream.")
    shutdown_drain_s: float = Field(10.0, ge=0.0)

    # --- security ----------------------------------------------------------------
    auth_token: SecretStr | None = None
    cors_origins: tuple[str, ...] = ()

    # --- logging -----------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = False
    cloudwatch_log_group: str | None = None
    cloudwatch_log_stream: str | None = None

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
