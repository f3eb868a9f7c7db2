"""The auth token never reaches a log line (issue 9, part 2, item 4): not through the
access log's request line (``?access_token=``), not through headers written as text,
not in JSON logs, not in tracebacks."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import websockets
from cli_support import TOKEN, auth_server, free_port

from audio2face.logs import REDACTED, JsonFormatter, RedactTokens


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, msg, args, exc_info)


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        (
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5", "GET", f"/metrics?access_token={TOKEN}", "1.1", 200),
        ),
        (
            '%s - "WebSocket %s" [accepted]',
            ("127.0.0.1:5", f"/api/v1/x?a=1&access_token={TOKEN}&b=2"),
        ),
        ("headers: Authorization: Bearer %s", (TOKEN,)),
        ("headers: {'x-api-key': '%s'}", (TOKEN,)),
        ("someone logged the value itself: %s", (TOKEN,)),
    ],
)
def test_a_filter_redacts_every_place_a_token_shows(msg: str, args: tuple[object, ...]) -> None:
    rec = record(msg, *args)
    assert RedactTokens([TOKEN]).filter(rec) is True
    text = rec.getMessage()
    assert TOKEN not in text and REDACTED in text


def test_query_tokens_are_redacted_even_when_the_value_is_unknown() -> None:
    rec = record('"GET %s HTTP/1.1"', "/ready?access_token=abc&x=1")
    RedactTokens().filter(rec)
    assert rec.getMessage() == f'"GET /ready?access_token={REDACTED}&x=1 HTTP/1.1"'


def test_tracebacks_and_json_lines_are_redacted() -> None:
    try:
        raise ValueError(f"bad url ws://h/p?access_token={TOKEN}")
    except ValueError as exc:
        rec = record("failed", exc=exc)
    RedactTokens([TOKEN]).filter(rec)
    line = JsonFormatter().format(rec)
    assert TOKEN not in line and REDACTED in json.loads(line)["exc"]
    assert TOKEN not in logging.Formatter().format(rec)


def test_an_in_process_server_redacts_uvicorns_lines(caplog, tiny_unitalker_path: Path) -> None:
    """create_app puts the filter on uvicorn's loggers, so an application that embeds
    the service with its own handlers is covered too."""
    caplog.set_level(logging.INFO)
    with auth_server(tiny_unitalker_path) as server:
        with urllib.request.urlopen(f"{server.http_url}/metrics?access_token={TOKEN}") as r:
            assert r.status == 200

        async def connect() -> None:
            async with websockets.connect(f"{server.ws_url}?access_token={TOKEN}"):
                pass

        asyncio.run(connect())
    lines = [r.getMessage() for r in caplog.records]
    assert any("/metrics?access_token=" in line for line in lines), lines
    assert any("WebSocket" in line for line in lines), lines
    assert not [line for line in lines if TOKEN in line]


def test_serve_never_logs_the_token(tmp_path: Path) -> None:
    """The real command with JSON logs: requests carrying the token in the URL."""
    port = free_port()
    env = dict(os.environ, AUDIO2FACE_AUTH_TOKEN=TOKEN, AUDIO2FACE_LOG_JSON="true")
    proc = subprocess.Popen(
        [sys.executable, "-m", "audio2face.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/metrics?access_token={TOKEN}"
                ) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)

        async def connect() -> None:
            url = f"ws://127.0.0.1:{port}/api/v1/streaming_audio2face/ws?access_token={TOKEN}"
            async with websockets.connect(url):
                pass

        asyncio.run(connect())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    messages = [line["msg"] for line in lines]
    assert any("access_token=" + REDACTED in m for m in messages), messages
    assert TOKEN not in err
