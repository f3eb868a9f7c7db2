"""Where the deployment tests find linters that live outside the project's venv."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL_DIRS = (
    os.environ.get("A2F_TOOLS_BIN", ""),
    str(Path(sys.executable).parent),
    # checkov pins old versions of boto3, packaging and more, so .ci/run installs the
    # linters into a venv of their own.
    str(ROOT / ".venv-tools" / "bin"),
    "/opt/a2f-tools/bin",
)


def find_tool(name: str) -> str | None:
    """``name`` from ``$A2F_TOOLS_BIN``, this venv, ``.venv-tools`` or the PATH."""
    for folder in TOOL_DIRS:
        if folder and (Path(folder) / name).is_file():
            return str(Path(folder) / name)
    return shutil.which(name)
