"""The code passes the project's ruff configuration (pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_passes() -> None:
    ruff = shutil.which("ruff") or str(Path(__import__("sys").executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    result = subprocess.run(
        [ruff, "check", "--no-cache", "src", "tests", "training", "benchmarks", "scripts", "deploy"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes() -> None:
    """``src/`` type-checks with the configuration in pyproject.toml ([tool.mypy])."""
    mypy = Path(sys.executable).parent / "mypy"
    if not mypy.exists():
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    result = subprocess.run([str(mypy)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_new_type_ignore_without_a_reason() -> None:
    """Every ``type: ignore`` in src/ names its error code and says why after it."""
    bare = []
    for path in (ROOT / "src").rglob("*.py"):
        if path.name.endswith("_pb2.py"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "type: ignore" in line:
                tail = line.split("type: ignore", 1)[1]
                if not tail.startswith("[") or "#" not in tail:
                    bare.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bare, "type: ignore needs [code] and a '# why' comment:\n" + "\n".join(bare)
