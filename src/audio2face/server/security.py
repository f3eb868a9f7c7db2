"""Optional authentication and CORS.

Authentication is off unless ``auth_token`` is set. Then every HTTP route except the
orchestrator probes (``/health``, ``/ready``) and every WebSocket needs the token, as
``Authorization: Bearer <token>``, ``X-API-Key: <token>``, or, for browsers, which cannot
set headers on a WebSocket, the ``access_token`` query parameter. Tokens are compared
in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from audio2face.settings import Settings

PUBLIC_PATHS = frozenset({"/health", "/ready"})


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
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
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


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add CORS (only when origins are configured) and HTTP authentication."""
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
    if settings.auth_token is not None:
        app.add_middleware(HttpAuthMiddleware, token=settings.auth_token.get_secret_value())
