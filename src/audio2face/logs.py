"""Logging setup: plain or JSON lines, with optional AWS CloudWatch shipping, and the
auth token redacted from every line.

Browsers cannot set headers on a WebSocket, so they send the token as
``?access_token=...``, and uvicorn writes request lines, query string included, to
its access log (``uvicorn.access`` for HTTP, ``uvicorn.error`` for WebSockets).
:class:`RedactTokens` rewrites such lines before any handler formats them: it is
installed on every handler :func:`configure_logging` sets up (plain, JSON and
CloudWatch) and on uvicorn's own loggers (:func:`install_redaction`), so an embedding
application with its own handlers is covered too.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable

from audio2face.settings import Settings

__all__ = [
    "REDACTED",
    "UVICORN_LOGGERS",
    "JsonFormatter",
    "RedactTokens",
    "configure_logging",
    "install_redaction",
]

REDACTED = "[redacted]"

UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error")
"""Where uvicorn writes request lines: HTTP to ``access``, WebSocket handshakes to ``error``."""

MIN_LITERAL_SECRET = 6
"""Shorter configured tokens are not replaced wherever they occur as plain text (that
would mangle ordinary words); the patterns below still catch them in their usual places."""

_SECRET_PATTERNS = (
    # query parameters: ?access_token=..., &token=..., api_key=...
    re.compile(r"(?i)(\b(?:access_token|token|api_key|apikey)=)[^&\s\"'#]+"),
    # headers as text: "Authorization: Bearer ...", "X-API-Key: ..."
    re.compile(r"(?i)(\bbearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)(\bx-api-key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"),
)


MAX_LOGGED_CHARS = 2048
"""Longest log message kept whole; longer ones are cut (and say how long they were)."""


class RedactTokens(logging.Filter):
    """Replaces auth tokens in a record's message and traceback with ``[redacted]``.

    Tokens are found by where they appear (query parameters, ``Bearer`` values,
    ``X-API-Key``) and, when ``secrets`` are given, wherever the literal values occur.
    Always lets the record through.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if len(s) >= MIN_LITERAL_SECRET)

    def redact(self, text: str) -> str:
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let the handler report it as usual
            return True
        clean = self.redact(message)
        if len(clean) > MAX_LOGGED_CHARS:
            # Client-controlled text (uvicorn's access line holds the whole URL) must not
            # let one request write megabytes of log.
            clean = f"{clean[:MAX_LOGGED_CHARS]}...({len(clean)} chars)"
        if clean != message:
            # The formatted text replaces msg/args, so every later handler sees it.
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _secrets(settings: Settings) -> list[str]:
    return [settings.auth_token.get_secret_value()] if settings.auth_token is not None else []


def install_redaction(settings: Settings, loggers: Iterable[str] = UVICORN_LOGGERS) -> None:
    """Put a :class:`RedactTokens` for ``settings``' token on ``loggers`` (replacing one
    installed before), so their records are clean before any handler sees them."""
    for name in loggers:
        target = logging.getLogger(name)
        for old in [f for f in target.filters if isinstance(f, RedactTokens)]:
            target.removeFilter(old)
        target.addFilter(RedactTokens(_secrets(settings)))


class JsonFormatter(logging.Formatter):
    """One JSON object per line. A ``stream_id`` extra is kept, and a ``summary``
    extra (a stream's end: outcome, duration_s, audio_s, frames, rtf, engine) is
    merged in as fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("stream_id", "outcome"):
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        # A stream's summary line carries its numbers as fields, not only as text.
        summary = getattr(record, "summary", None)
        if isinstance(summary, dict):
            doc.update({k: v for k, v in summary.items() if k not in doc})
        if record.exc_text:  # the (redacted) traceback a filter prepared
            doc["exc"] = record.exc_text
        elif record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Configure the root logger (so ``audio2face`` and ``uvicorn``) from settings; every
    handler redacts auth tokens."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if settings.log_json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handlers: list[logging.Handler] = [handler]
    if settings.cloudwatch_log_group:
        from audio2face.cloudwatch import cloudwatch_handler

        handlers.append(cloudwatch_handler(settings))
    redact = RedactTokens(_secrets(settings))
    for h in handlers:
        h.addFilter(redact)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(settings.log_level.upper())
    install_redaction(settings)
