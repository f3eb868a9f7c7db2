"""Settings: environment, TOML and overrides; the documented table stays in sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from audio2face.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_precedence_env_then_toml_then_overrides(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AUDIO2FACE_PORT", "1111")
    monkeypatch.setenv("AUDIO2FACE_MAX_STREAMS", "7")
    assert Settings().port == 1111
    cfg = tmp_path / "a2f.toml"
    cfg.write_text('port = 2222\nhost = "0.0.0.0"\n')
    s = Settings.load(cfg, port=3333, host=None)
    assert (s.port, s.host, s.max_streams) == (3333, "0.0.0.0", 7)


def test_unknown_keys_and_bad_values_are_refused(tmp_path) -> None:
    cfg = tmp_path / "a2f.toml"
    cfg.write_text("max_stream = 3\n")
    with pytest.raises(ValidationError, match="max_stream"):
        Settings.load(cfg)
    with pytest.raises(ValidationError):
        Settings(accepted_sample_rates=(0,))
    with pytest.raises(ValidationError):
        Settings(max_streams=0)


def test_secret_is_not_printed() -> None:
    s = Settings(auth_token="hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())


def test_configuration_doc_matches_settings() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_config_docs.py")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert out.stdout.strip() in doc, "run: python scripts/gen_config_docs.py > docs/configuration.md"
