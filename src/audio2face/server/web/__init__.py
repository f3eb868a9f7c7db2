"""The demo page and the JavaScript client, served from the package (nothing from a CDN).

``/`` is the page; ``/web/...`` the files beside this module: ``audio2face.js`` (the
ES module client, a stable path), ``pcm-worklet.js``, the page's scripts and styles, and
``vendor/`` (three.js and @pixiv/three-vrm with their licences, see ``docs/web.md``).
Turned off with the ``web_ui`` setting.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["WEB_DIR", "WEB_PREFIX", "install_web_ui"]

WEB_DIR = Path(__file__).resolve().parent
WEB_PREFIX = "/web"
_HIDDEN_SUFFIXES = (".py", ".pyc")


class _WebFiles(StaticFiles):
    """Static files of this folder, except its Python sources."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.endswith(_HIDDEN_SUFFIXES) or "__pycache__" in path:
            return Response("Not Found", status_code=404, media_type="text/plain")
        return await super().get_response(path, scope)


def install_web_ui(app: FastAPI) -> None:
    """Serve the page at ``/`` and its files under ``/web``."""

    async def index() -> FileResponse:
        # no-cache: a page from an older install must not pair with newer scripts
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount(WEB_PREFIX, _WebFiles(directory=WEB_DIR), name="web")
