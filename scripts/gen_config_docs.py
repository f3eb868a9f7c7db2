"""Regenerate the settings table in docs/configuration.md from the Settings model.

    python scripts/gen_config_docs.py > docs/configuration.md
"""

from __future__ import annotations

from audio2face.settings import Settings

HEAD = """# Configuration

Settings come from, in increasing precedence: defaults, `AUDIO2FACE_*` environment
variables, a TOML file (`--config FILE` or `AUDIO2FACE_CONFIG=FILE`, keys as below), and
`audio2face serve` flags. Unknown keys are an error, so a typo never goes unnoticed.
Tuples and lists are written as JSON in environment variables
(`AUDIO2FACE_CORS_ORIGINS='["https://app.example"]'`).

```toml
# example audio2face.toml
host = "0.0.0.0"
max_streams = 64
unitalker_model = "/models/unitalker_v0.4.0_base.onnx"
unitalker_mode = "window"
```

| setting | environment variable | default | meaning |
|---|---|---|---|
"""


def main() -> None:
    rows = []
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "computed"
        else:
            default = repr(field.default) if field.default is not None else "unset"
        desc = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | `AUDIO2FACE_{name.upper()}` | `{default}` | {desc} |")
    print(HEAD + "\n".join(rows))


if __name__ == "__main__":
    main()
