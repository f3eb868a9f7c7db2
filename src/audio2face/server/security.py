"""Optional authentication and CORS.

Authentication is off unless ``auth_token`` is set. Then every HTTP route except the
orchestrator probes (``/health``, ``/ready``) and every WebSocket needs the token, as
``Authorization: Bearer <token>``, ``X-API-Key: <token>``, or, for browsers, which cannot
set headers on a WebSocket, the ``access_token`` query parameter. Tokens are compared
in constant time.

Cross-origin requests: CORS (when ``cors_origins`` is set) lets listed origins *read*
GET responses. It never stops a "simple" cross-site POST (a form, ``text/plain``) from
running, so :class:`CrossOriginGuard` refuses (403) every request other than GET, HEAD
and OPTIONS whose ``Origin`` is not the service's own, whatever ``cors_origins`` says.
Slash redirects are off: a redirect is built from the ``Host`` header, which a client
chooses (``/metrics/`` would send a browser to ``http://evil.example/metrics``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from audio2face.settings import Settings

PUBLIC_PATHS = frozenset({"/health", "/ready", "/"})
# The demo page and its scripts hold no secret (the page asks for the token and sends it
# on the socket); the socket, /api/v2/info, uploads and metrics stay protected.
PUBLIC_PREFIXES = ("/web/",)


def presented_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token a request carries, if any."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    if key := headers.get("x-api-key"):
        return key.strip()
    return query.get("access_token")


def token_ok(expected: str, presented: str | None) -> bool:
    if presented is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


class HttpAuthMiddleware:
    """Refuses HTTP requests without the token (401). WebSockets are checked by their
    handlers, so the refusal can carry a close code and reason."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request

        request = Request(scope)
        if token_ok(self.token, presented_token(request.headers, request.query_params)):
            await self.app(scope, receive, send)
            return
        from starlette.responses import JSONResponse

        response = JSONResponse(
            {"detail": "missing or invalid token"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def same_origin(origin: str, host: str) -> bool:
    """``origin`` (``scheme://host[:port]``) names the server ``host`` answered as."""
    return origin.split("://", 1)[-1] == host


class CrossOriginGuard:
    """Refuses (403) state-changing requests sent by a page of another origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            origin = headers.get("origin")
            if origin is not None and not same_origin(origin, headers.get("host", "")):
                from starlette.responses import JSONResponse

                response = JSONResponse(
                    {"detail": f"cross-origin {scope['method']} requests are refused; "
                     "CORS allows GET only"},
                    status_code=403,
                )  # fmt: skip
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add CORS (only when origins are configured), the cross-origin guard and HTTP
    authentication, and turn off slash redirects."""
    # A redirect's absolute URL comes from the client's Host header (see the module doc).
    app.router.redirect_slashes = False
    if settings.cors_origins:
        wildcard = "*" in settings.cors_origins
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            # Credentials with a wildcard origin would let any site act as the user.
            allow_credentials=not wildcard,
            allow_methods=["GET"],
            allow_headers=["Authorization", "X-API-Key"],
        )
    # Added after CORS, so it runs before it: a refused request never reaches a handler.
    app.add_middleware(CrossOriginGuard)
    if settings.auth_token is not None:
        app.add_middleware(HttpAuthMiddleware, token=settings.auth_token.get_secret_value())
