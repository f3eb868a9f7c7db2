"""``stream`` shows progress as ``convert`` does, only on a terminal (issue 9, part 2,
item 12); every option of every command has help text and shows its default
(item 10, ``stream --help``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
from cli_support import run_cli, write_speech

from audio2face.cli import build_parser


@pytest.mark.parametrize("command", ["stream", "convert"])
@pytest.mark.parametrize(
    ("tty", "quiet", "shown"), [(True, False, True), (True, True, False), (False, False, False)]
)
def test_progress_only_on_a_terminal_and_not_with_q(
    capsys,
    monkeypatch,
    tmp_path: Path,
    unitalker_server,
    command: str,
    tty: bool,
    quiet: bool,
    shown: bool,
) -> None:
    wav = write_speech(tmp_path / "speech.wav", 2.0)
    argv = [command, str(wav), "-o", str(tmp_path / "o.npz")]
    if command == "stream":
        argv += ["--url", unitalker_server.ws_url]
    if quiet:
        argv.append("-q")
    capsys.readouterr()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    run = run_cli(capsys, *argv)
    assert run.rc == 0, run.err
    label = "streaming" if command == "stream" else "animating"
    assert (label in run.err and "100%" in run.err) is shown, run.err


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(set(subcommands()) - {"bench"}))  # bench: its own parser
def test_every_option_has_help(name: str) -> None:
    sub = subcommands()[name]
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.option_strings or action.dest} has no help text"


def test_stream_help_shows_the_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["stream", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    from audio2face.client import DEFAULT_URL

    for expected in (f"(default: {DEFAULT_URL} for v1", "(default: 40.0)", "(default: 30.0)",
                     "Authorization: Bearer", "AUDIO2FACE_AUTH_TOKEN", "no progress bar"):  # fmt: skip
        assert expected in text, expected


def test_bench_has_real_options_and_help(capsys) -> None:
    from audio2face.cli import main

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    assert "--streams" in out and "--utterances" in out and "bench_args" not in out
