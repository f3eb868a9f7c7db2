"""The code in README.md and docs/*.md works as written (issue 9, part 2, item 10).

* Every ```python block runs, as a reader would run it: in a fresh interpreter, in an
  empty folder holding the ``speech.wav`` the docs talk about (top-level ``await`` runs
  on an event loop, as in ``python -m asyncio``). A marker comment on the
  line before a block says what else it needs: ``<!-- needs: espeak-ng -->`` (skipped,
  with the reason, where libespeak-ng is missing), ``<!-- needs: server -->`` (a live
  server is started and the block's ``127.0.0.1:18083`` pointed at it), or
  ``<!-- no-test: why -->`` for a block that truly cannot run here.
* Every ``audio2face ...`` command line in a shell block parses with the real CLI
  parser, so no documented flag is misspelt or gone.
* The README's two opening commands are there, and its test command is the one .ci/run
  runs.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DEFAULT_ADDRESS = "127.0.0.1:18083"
RUN_TIMEOUT_S = 120

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
MARKER = re.compile(r"<!--\s*(no-test|needs)\s*:\s*(.*?)\s*-->")
SHELL_LANGS = {"bash", "sh", "shell", "console"}  # plain fences hold output and synopses
NEEDS = {"espeak-ng", "server"}

RUNNER = """
import ast, asyncio, sys
path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    code = compile(f.read(), path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
result = eval(code, {"__name__": "__main__", "__file__": path})
if asyncio.iscoroutine(result):
    asyncio.run(result)
"""
"""Runs an example as a script; one with top-level ``await`` (as ``python -m asyncio``
allows) runs on an event loop."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    code: str
    marker: tuple[str, str] | None
    """``(kind, value)`` of a marker comment on the last non-blank line before the fence."""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def code_blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        marker = MARKER.fullmatch(before[-1].strip()) if before else None
        found.append(
            Block(
                path=path,
                line=text.count("\n", 0, match.start()) + 1,
                lang=match.group(1).lower(),
                code=match.group(2),
                marker=(marker.group(1), marker.group(2)) if marker else None,
            )
        )
    return found


ALL_BLOCKS = [block for path in DOCS for block in code_blocks(path)]
PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.lang in ("python", "py")]
SHELL_BLOCKS = [b for b in ALL_BLOCKS if b.lang in SHELL_LANGS]


def write_speech(path: Path, seconds: float = 2.0, rate: int = 22050) -> None:
    """``speech.wav`` for the examples: voiced-looking bursts at 22.05 kHz, so an example
    that assumes 16 kHz input fails here as it would for a user's file."""
    t = np.arange(int(rate * seconds)) / rate
    audio = 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 2.5 * t) > 0)
    sf.write(path, audio.astype(np.float32), rate)


@pytest.fixture(scope="module")
def docs_server():
    """A live server with the embedded default model (what the docs' examples talk to)."""
    from audio2face.server import create_app
    from audio2face.settings import Settings
    from conftest import LiveServer

    with LiveServer(create_app(Settings())) as server:
        yield server


def test_the_docs_have_python_blocks() -> None:
    readme = [b for b in PYTHON_BLOCKS if b.path.name == "README.md"]
    assert readme, "README.md lost its Python example"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.id)
def test_python_block_runs(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    code = block.code
    if block.marker is not None:
        kind, value = block.marker
        if kind == "no-test":
            assert value, f"{block.id}: a no-test marker must say why"
            pytest.skip(f"{block.id}: {value}")
        assert value in NEEDS, f"{block.id}: unknown need {value!r}; known: {sorted(NEEDS)}"
        if value == "espeak-ng":
            from audio2face.engines.phonemes import espeak

            if not espeak.available():
                pytest.skip(f"{block.id} needs libespeak-ng (apt-get install espeak-ng)")
        elif value == "server":
            server = request.getfixturevalue("docs_server")
            assert DEFAULT_ADDRESS in code, f"{block.id}: needs a server but names no address"
            code = code.replace(DEFAULT_ADDRESS, f"127.0.0.1:{server.port}")
    write_speech(tmp_path / "speech.wav")
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script)], cwd=tmp_path, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, f"{block.id} failed:\n{result.stderr[-3000:]}"


def cli_commands(block: Block) -> list[list[str]]:
    """The ``audio2face ...`` invocations of a shell block, as argv lists."""
    text = re.sub(r"\\\n", " ", block.code)  # line continuations
    commands = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue  # not shell (a table or output): nothing to check
        part: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "||", ";", "|"):
                while part and "=" in part[0] and not part[0].startswith("-"):
                    part = part[1:]  # VAR=value prefixes
                if part and Path(part[0]).name == "audio2face":
                    commands.append(part[1:])
                part = []
            else:
                part.append(word)
    return commands


def test_documented_cli_lines_parse() -> None:
    from audio2face.cli import build_parser

    checked, wrong = 0, []
    for block in SHELL_BLOCKS:
        for argv in cli_commands(block):
            if not argv or argv[0] == "bench":  # bench parses its own options
                continue
            try:
                build_parser().parse_args(argv)
            except SystemExit:
                wrong.append(f"{block.id}: audio2face {shlex.join(argv)}")
            checked += 1
    assert not wrong, "documented commands that do not parse:\n" + "\n".join(wrong)
    assert checked >= 10, f"only {checked} documented command lines found"


def test_readme_opening_commands_match_ci() -> None:
    readme = [b for b in SHELL_BLOCKS if b.path.name == "README.md"]
    install, tests = readme[0].code.strip(), readme[1].code.strip()
    assert "pip install ." in install and install.endswith(".venv/bin/audio2face serve")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    marker = next(i for i, line in enumerate(ci) if "The README's test command" in line)
    ci_command = ci[marker + 1].strip()
    assert tests == f"python3 -m venv .venv && {ci_command}", (tests, ci_command)
    assert "pytest" in ci_command
