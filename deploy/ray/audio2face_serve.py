"""audio2face as a Ray Serve application: the service's own FastAPI app (protocol v1 and
v2 WebSockets, ``/animate``, probes, ``/metrics``) as the ingress deployment, one app and
one set of models per replica.

Run it on a cluster (this folder on the Python path of every node, e.g. ``--app-dir``)::

    serve run audio2face_serve:build --app-dir deploy/ray max_replicas=8

or with ``deploy/ray/serve_config.yaml`` (``serve deploy``). Service settings come from
``AUDIO2FACE_*`` variables in the replicas' environment (``runtime_env.env_vars``), as
for ``audio2face serve``.

* **Scaling**: Ray's autoscaler counts ongoing requests per replica; a WebSocket is one
  ongoing request for as long as it is open, so it scales on streams.
  ``target_streams`` is the number it aims at per replica; ``max_ongoing_requests`` is
  the service's own ``max_streams``, so Ray never queues more on a replica than it
  admits.
* **Draining**: a replica that is scaled down or replaced gets no new streams and keeps
  its open ones for ``graceful_shutdown_timeout_s`` (longer than ``shutdown_drain_s``),
  then its app shuts down as under ``audio2face serve``.
* **A lost replica**: a stream whose replica dies (node lost, process killed) would
  drop without a close frame (1006). With
  ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=audio2face_serve.proxy_middlewares`` in
  the environment of the Ray nodes, the proxy closes it with **1012** ("service
  restart": reconnect), and Ray routes the reconnection to a live replica.
* **Which replica**: every HTTP response and every WebSocket handshake carries
  ``x-a2f-replica`` (the replica's id), for logs and for the test that checks the spread.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ray import serve
from ray.serve import Application
from starlette.middleware import Middleware

from audio2face.errors import ConfigError
from audio2face.server.app import create_app
from audio2face.settings import Settings

REPLICA_HEADER = b"x-a2f-replica"
DRAIN_MARGIN_S = 5.0
"""Ray's grace period is the service's drain plus this, so the app's own drain decides."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


class ReplicaTag:
    """ASGI middleware: adds ``x-a2f-replica: <id>`` to responses and handshakes."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app = app
        self.header = (REPLICA_HEADER, replica.encode())

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        async def tagged(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = dict(message)
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, tagged)

    def add_exception_handler(self, exc: type[Exception], handler: Any) -> None:
        """Ray installs its back-pressure handler on the app it is given: pass it on."""
        add = getattr(self.app, "add_exception_handler", None)
        if add is not None:
            add(exc, handler)


LOST_REPLICA_CODE = 1012
LOST_REPLICA_REASON = "audio2face replica lost; reconnect to continue"


class CloseLostStreams:
    """Ray proxy middleware (ASGI): a WebSocket whose replica ended without closing it
    (the replica died) is closed with :data:`LOST_REPLICA_CODE` instead of a bare TCP
    close, so clients see why and reconnect. Streams the app or the client closed, and
    HTTP requests, pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        accepted = closed = False

        async def watch_send(message: Message) -> None:
            nonlocal accepted, closed
            if message["type"] == "websocket.accept":
                accepted = True
            elif message["type"] == "websocket.close":
                closed = True
            await send(message)

        async def watch_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.disconnect":
                closed = True  # the client left: nothing to tell it
            return message

        try:
            await self.app(scope, watch_receive, watch_send)
        finally:
            if accepted and not closed:
                # The client may be gone too; then there is nobody to tell.
                with contextlib.suppress(Exception):
                    await send(
                        {
                            "type": "websocket.close",
                            "code": LOST_REPLICA_CODE,
                            "reason": LOST_REPLICA_REASON,
                        }
                    )


def proxy_middlewares() -> list[Middleware]:
    """For ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=audio2face_serve.proxy_middlewares``."""
    return [Middleware(CloseLostStreams)]


@serve.ingress()
class Audio2Face:
    """One replica: the service's app with its models, built on the replica itself
    (the app holds loaded engines and threads, which do not travel between processes)."""

    def __init__(self) -> None:
        self.settings = Settings.load()
        self.replica = serve.get_replica_context().replica_id.unique_id

    def __serve_build_asgi_app__(self) -> ReplicaTag:
        self.service = create_app(self.settings)
        return ReplicaTag(self.service, self.replica)

    def check_health(self) -> None:
        """Ray restarts a replica whose check raises: one whose models are gone."""
        state = self.service.state.a2f
        if state.runtime is None and not state.draining:
            raise RuntimeError("audio2face models are not loaded")


def _number(args: dict[str, str], name: str, default: float) -> float:
    raw = args.get(name, default)
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"Ray app argument {name}={raw!r} is not a number") from None


KNOWN_ARGS = (
    "min_replicas",
    "max_replicas",
    "initial_replicas",
    "target_streams",
    "num_cpus",
    "upscale_delay_s",
    "downscale_delay_s",
)


def build(args: dict[str, str]) -> Application:
    """The application, for ``serve run audio2face_serve:build key=value ...``.

    ``min_replicas`` (1), ``max_replicas`` (4), ``initial_replicas`` (min),
    ``target_streams`` (streams per replica the autoscaler aims at; default: 60 % of
    ``max_streams``), ``num_cpus`` (per replica; default 1), ``upscale_delay_s`` (10)
    and ``downscale_delay_s`` (300): how long the load must stay above or below the
    target before replicas are added or drained. Service settings are
    ``AUDIO2FACE_*`` variables, as everywhere."""
    unknown = sorted(set(args) - set(KNOWN_ARGS))
    if unknown:
        raise ConfigError(f"unknown Ray app argument(s) {unknown}; known: {list(KNOWN_ARGS)}")
    settings = Settings.load()
    minimum = int(_number(args, "min_replicas", 1))
    maximum = int(_number(args, "max_replicas", 4))
    if not 0 <= minimum <= maximum or maximum < 1:
        raise ConfigError(
            f"min_replicas={minimum}, max_replicas={maximum}: need 0 <= min <= max, max >= 1"
        )
    target = _number(args, "target_streams", max(1.0, 0.6 * settings.max_streams))
    if not 0 < target <= settings.max_streams:
        raise ConfigError(
            f"target_streams={target} must be above 0 and at most max_streams "
            f"({settings.max_streams})"
        )
    options = serve.deployment(
        name="audio2face",
        max_ongoing_requests=settings.max_streams,
        autoscaling_config={
            "min_replicas": minimum,
            "max_replicas": maximum,
            "initial_replicas": int(_number(args, "initial_replicas", minimum)),
            "target_ongoing_requests": target,
            # Streams last seconds to minutes: react within seconds, shed load slowly.
            "upscale_delay_s": _number(args, "upscale_delay_s", 10.0),
            "downscale_delay_s": _number(args, "downscale_delay_s", 300.0),
        },
        graceful_shutdown_timeout_s=settings.shutdown_drain_s + DRAIN_MARGIN_S,
        graceful_shutdown_wait_loop_s=1.0,
        health_check_period_s=10.0,
        ray_actor_options={
            "num_cpus": _number(args, "num_cpus", 1.0),
            # The driver's AUDIO2FACE_* variables travel to the replicas, so a replica
            # on another node serves what the operator configured here.
            "runtime_env": {"env_vars": service_env()},
        },
    )
    return options(Audio2Face).bind()


def service_env() -> dict[str, str]:
    """The ``AUDIO2FACE_*`` variables of this process."""
    return {k: v for k, v in os.environ.items() if k.startswith("AUDIO2FACE_")}


app = build
"""``serve run audio2face_serve:app`` works as well."""
