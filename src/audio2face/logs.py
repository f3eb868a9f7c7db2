"""Logging setup: plain or JSON lines, with optional AWS CloudWatch shipping."""

from __future__ import annotations

import json
import logging
import sys
import time

from audio2face.settings import Settings


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
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Configure the ``audio2face`` and ``uvicorn`` loggers from settings."""
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
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(settings.log_level.upper())
