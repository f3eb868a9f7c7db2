"""Optional AWS CloudWatch Logs shipping (extra ``cloudwatch``: watchtower + boto3).

Nothing here is imported unless ``settings.cloudwatch_log_group`` is set, so the
default install has no AWS dependency. Credentials and region come from the usual
boto3 chain (environment, profile, instance role); settings never hold them.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from audio2face.errors import ConfigError
from audio2face.settings import Settings

INSTALL_HINT = "pip install 'audio2face[cloudwatch]'"


def cloudwatch_handler(settings: Settings, *, client: Any | None = None) -> logging.Handler:
    """A watchtower handler for ``settings.cloudwatch_log_group``, lines formatted as
    JSON (one object per event, with ``stream_id`` and per-stream summaries).

    ``client`` is a ``boto3`` CloudWatch Logs client to use instead of the default one
    (tests point it at a local endpoint). The log stream defaults to the host name.
    """
    if not settings.cloudwatch_log_group:
        raise ConfigError("cloudwatch_log_group is not set")
    try:
        import boto3
        import watchtower
    except ImportError as exc:
        raise ConfigError(
            f"CloudWatch logging needs watchtower and boto3 ({exc.name} is missing): "
            f"{INSTALL_HINT}"
        ) from exc
    from audio2face.logs import JsonFormatter

    handler = watchtower.CloudWatchLogHandler(
        log_group_name=settings.cloudwatch_log_group,
        log_stream_name=settings.cloudwatch_log_stream or socket.gethostname(),
        boto3_client=client or boto3.client("logs"),
        create_log_group=True,
        send_interval=5,
    )
    handler.setFormatter(JsonFormatter())
    return handler
