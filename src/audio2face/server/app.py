"""The ASGI application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from audio2face.logs import install_redaction
from audio2face.metrics import Metrics
from audio2face.runtime import Runtime
from audio2face.server.http_animate import ANIMATE_PATH, animate
from audio2face.server.memory import TRIM_INTERVAL_S, trim_malloc
from audio2face.server.security import install_security
from audio2face.server.state import ServerState
from audio2face.server.web import install_web_ui
from audio2face.server.ws_v1 import V1_PATH, handle_v1
from audio2face.server.ws_v2 import V2_INFO_PATH, V2_PATH, handle_v2, v2_info
from audio2face.settings import Settings
from audio2face.types import Engine

logger = logging.getLogger("audio2face.server")


async def _trim_memory_forever() -> None:
    while True:
        await asyncio.sleep(TRIM_INTERVAL_S)
        # Closed connections leave small reference cycles (transport <-> protocol) that
        # hold their buffers; left to the generational GC they reach the oldest
        # generation, which is collected rarely, and RSS creeps up between collections.
        gc.collect()
        await asyncio.to_thread(trim_malloc)


def create_app(settings: Settings, *, engines: Mapping[str, Engine] | None = None) -> FastAPI:
    """Build the service. Models load in the lifespan, off the event loop; ``/ready``
    answers 503 until they have.

    ``engines`` (name -> :class:`~audio2face.types.Engine`) replaces model loading: it
    is how tests inject a failing or slow engine, and how an embedding application
    brings its own. Settings only ever name model *files*; configuration never points
    at code to run.
    """
    state = ServerState(settings=settings, metrics=Metrics())
    # uvicorn logs request lines with their query string (?access_token=...).
    install_redaction(settings)
    state.metrics.record_limits(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.runtime = await asyncio.to_thread(
            Runtime.start, settings, engines=engines, metrics=state.metrics
        )
        logger.info("ready: %s", settings.model_dump(exclude={"auth_token"}))
        trimmer = asyncio.create_task(_trim_memory_forever(), name="a2f-malloc-trim")
        state.capacity.start()  # measure the engines' load once a second from now on
        try:
            yield
        finally:
            trimmer.cancel()
            state.draining = True
            state.runtime.close()

    # No docs, no schema: the service exposes exactly its probes, metrics and the socket.
    app = FastAPI(
        title="audio2face",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,  # a redirect is built from the client's Host header
    )
    app.state.a2f = state
    install_security(app, settings)

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse("OK")

    @app.get("/ready")
    async def ready() -> JSONResponse:
        if state.runtime is None or state.draining:
            return JSONResponse({"ready": False}, status_code=503)
        headroom = state.capacity.headroom(state.open_engines())
        return JSONResponse(
            {"ready": True, "engines": sorted(state.runtime.engines), "headroom": headroom}
        )

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(
            generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    app.add_api_websocket_route(V1_PATH, handle_v1)
    app.add_api_websocket_route(V2_PATH, handle_v2)
    app.add_api_route(V2_INFO_PATH, v2_info, methods=["GET"])
    if settings.web_ui:
        install_web_ui(app)
    app.add_api_route(ANIMATE_PATH, animate, methods=["POST"])
    return app
